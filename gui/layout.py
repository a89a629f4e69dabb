"""The main window's widgets, toolbars, menus and layout (built once, at start)."""

from __future__ import annotations

import logging

import soundsentry
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .files import START_TITLE
from .level import LevelMeter
from .table import FolderFilter, FolderTableModel
from .threshold import SLIDER_STEPS
from .views import AnalysisView

log = logging.getLogger(__name__)

__all__ = ["LayoutMixin"]


class LayoutMixin:
    """Builds the window's widgets; the other mixins connect to them."""

    def _build_ui(self) -> None:
        self._build_actions()
        self._build_model_toolbar()
        self._build_view_toolbar()
        self._build_audio_toolbar()
        self._build_centre()
        self._status_timer = QTimer(self)
        self._fill_devices()
        self._fill_models()
        self._update_actions()
        self._show_verdict()

    def _build_actions(self) -> None:
        """Actions, shared by the menus and the toolbars."""
        self.open_action = self._action("&Open files…", self.open_files_dialog, QKeySequence.StandardKey.Open)
        self.open_folder_action = self._action("Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.save_recording_action = self._action("&Save recording…", self.save_recording_dialog, "Ctrl+S")
        self.export_csv_action = self._action("Export table as &CSV…", self.export_csv_dialog)
        self.export_png_action = self._action("Export view as &PNG…", self.export_png_dialog, "Ctrl+E")
        self.load_bundle_action = self._action("Load model &bundle…", self.load_bundle_dialog)
        self.enroll_action = self._action("&Enroll this machine…", self.enroll_dialog)
        self.play_action = self._action("▶ Play", self.play, "Space")
        self.stop_play_action = self._action("■ Stop", self.player.stop)
        self.record_action = self._action("● Record", self.start_recording, "Ctrl+R")
        self.pause_action = self._action("❚❚ Pause", self.toggle_pause)
        self.stop_record_action = self._action("■ Stop recording", self.recorder.stop)
        menu = self.menuBar().addMenu("&File")
        menu.addActions([self.open_action, self.open_folder_action])
        self.recent_menu = menu.addMenu("Open &recent")
        menu.addSeparator()
        menu.addActions([self.save_recording_action, self.export_csv_action, self.export_png_action])
        menu.addSeparator()
        menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        mmenu = self.menuBar().addMenu("&Model")
        mmenu.addActions([self.load_bundle_action, self.enroll_action])
        amenu = self.menuBar().addMenu("&Audio")
        amenu.addActions(
            [self.play_action, self.stop_play_action, self.record_action, self.pause_action, self.stop_record_action]
        )

    def _toolbar(self, title: str, name: str, *, new_row: bool) -> QToolBar:
        tb = QToolBar(title, self)
        tb.setObjectName(name)
        tb.setMovable(False)  # rows laid out to fit 1024 px; a moved toolbar could overflow again
        if new_row:
            self.addToolBarBreak()
        self.addToolBar(tb)
        return tb

    def _build_model_toolbar(self) -> None:
        """Open, model, detector, bundle and enrollment: the first row."""
        tb = self._toolbar("Model", "model-toolbar", new_row=False)
        tb.addActions([self.open_action, self.open_folder_action])
        tb.addSeparator()
        self.model_combo = QComboBox()
        self.model_combo.setMinimumContentsLength(14)
        self.model_combo.activated.connect(self._on_model_chosen)
        self.detector_combo = QComboBox()
        # Wide enough for the longest detector name, whatever the font.
        self.detector_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.detector_combo.activated.connect(self._on_detector_chosen)
        for w in (QLabel(" model "), self.model_combo, QLabel(" detector "), self.detector_combo):
            tb.addWidget(w)
        tb.addSeparator()
        tb.addAction(self.load_bundle_action)
        tb.addAction(self.enroll_action)

    def _build_view_toolbar(self) -> None:
        """Threshold, playback and the spectrogram's levels: the second row."""
        tb = self._toolbar("Threshold and playback", "view-toolbar", new_row=True)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, SLIDER_STEPS)
        self.threshold_slider.setMinimumWidth(180)
        self.threshold_slider.valueChanged.connect(self._on_slider)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setRange(-1e6, 1e6)
        self.threshold_spin.setKeyboardTracking(False)
        self.threshold_spin.valueChanged.connect(self._on_spin)
        reset = QPushButton("model's")
        reset.setToolTip("Back to the model's own threshold")
        reset.clicked.connect(self.reset_threshold)
        self.verdict_badge = QLabel()
        self.verdict_badge.setObjectName("verdict")
        self.verdict_badge.setMinimumWidth(230)
        self.verdict_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for w in (QLabel(" threshold "), self.threshold_slider, self.threshold_spin, reset):
            tb.addWidget(w)
        tb.addSeparator()
        tb.addActions([self.play_action, self.stop_play_action])
        self.play_selection_check = QCheckBox("selection only")
        self.play_selection_check.setToolTip("Play only the region marked on the score track (drag its edges)")
        self.play_selection_check.toggled.connect(self._toggle_region)
        tb.addWidget(self.play_selection_check)
        tb.addSeparator()
        self.auto_levels_check = QCheckBox("auto levels")
        self.auto_levels_check.setToolTip(
            "Spread the spectrogram's colours over this clip's own range. Off: fixed -70..0 dB, "
            "the same colours for the same level in every file."
        )
        self.auto_levels_check.toggled.connect(self._on_auto_levels)
        tb.addWidget(self.auto_levels_check)

    def _build_audio_toolbar(self) -> None:
        """Input device, rate, record, level, save: the third row."""
        atb = self._toolbar("Recording", "audio-toolbar", new_row=True)
        self.device_combo = QComboBox()
        self.device_combo.setMinimumContentsLength(18)
        # Long device names are elided in the box (the full name is in its list), not widening the row.
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.currentIndexChanged.connect(self._fill_rates)
        self.rate_combo = QComboBox()
        self.level_meter = LevelMeter()
        for w in (QLabel(" input "), self.device_combo, QLabel(" Hz "), self.rate_combo):
            atb.addWidget(w)
        atb.addSeparator()
        atb.addActions([self.record_action, self.pause_action, self.stop_record_action])
        atb.addSeparator()
        atb.addWidget(QLabel(" level "))
        atb.addWidget(self.level_meter)
        atb.addSeparator()
        atb.addAction(self.save_recording_action)

    def _build_centre(self) -> None:
        """Message banner, report panel (header + analysis view), folder panel."""
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 4, 6, 4)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(
            "QLabel#banner { background: #fff4e5; color: #7a4100; padding: 6px; border: 1px solid #f0c36d; }"
        )
        self.banner.hide()
        layout.addWidget(self.banner)
        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        layout.addWidget(splitter, 1)

        self.report_panel = QWidget()
        self.report_panel.setObjectName("report")
        rl = QVBoxLayout(self.report_panel)
        rl.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.title_label = QLabel(START_TITLE)
        self.title_label.setWordWrap(True)
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header.addWidget(self.title_label, 1)
        header.addWidget(self.verdict_badge)
        rl.addLayout(header)
        self.view = AnalysisView(soundsentry.features.FeatureParams())
        rl.addWidget(self.view, 1)
        splitter.addWidget(self.report_panel)

        self.folder_panel = QWidget()
        fl = QVBoxLayout(self.folder_panel)
        fl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter by file name")
        self.anomalies_check = QCheckBox("anomalies only")
        self.anomalies_check.setToolTip("Only abnormal files and files flagged silent or clipped")
        self.folder_progress = QProgressBar()
        self.folder_progress.setFormat("%v / %m files")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_folder)
        self.cancel_button.setEnabled(False)
        for w in (self.filter_edit, self.anomalies_check, self.folder_progress, self.cancel_button):
            row.addWidget(w)
        fl.addLayout(row)
        self.table_model = FolderTableModel(self)
        self.table_proxy = FolderFilter(self)
        self.table_proxy.setSourceModel(self.table_model)
        self.filter_edit.textChanged.connect(self.table_proxy.setFilterFixedString)
        self.anomalies_check.toggled.connect(self.table_proxy.set_anomalies_only)
        self.table = QTableView()
        self.table.setModel(self.table_proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, header.ResizeMode.Interactive)
        header.resizeSection(0, 420)
        # One line per row: long names are elided in the middle (the full path is the tooltip).
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(rows.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        rows.hide()
        self.table.clicked.connect(self._on_table_clicked)
        self.table.activated.connect(self._on_table_clicked)
        fl.addWidget(self.table, 1)
        splitter.addWidget(self.folder_panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.folder_panel.hide()
        self.setCentralWidget(central)

    def _action(self, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))

        def triggered(checked: bool = False) -> None:
            slot()

        action.triggered.connect(triggered)
        return action

    # Every slot returns None: PySide6 6.12 releases a reference of whatever a Python slot returns
