"""The main window: open, see, choose, listen, record, enroll, export."""

from __future__ import annotations

import logging
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import soundfile as sf
import soundsentry
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)
from soundsentry.batch import AUDIO_SUFFIXES, find_audio_files
from soundsentry.enroll import NUMPY_DETECTORS, TRAIN_EXTRA_HINT
from soundsentry.report import make_writer

from .devices import AudioBackend, DeviceInfo
from .table import FolderFilter, FolderTableModel
from .transport import Player, Recorder
from .views import ABNORMAL_COLOUR, NORMAL_COLOUR, AnalysisView
from .workers import FileAnalysis, FileTask, FolderTask, LiveScorer, ModelTask, analyse_samples

log = logging.getLogger(__name__)

__all__ = ["MainWindow"]

SLIDER_STEPS = 1000
MAX_RECENT = 8
RECORDING_ITEM = "<the last recording>"
AUDIO_FILTER = "Audio (" + " ".join(f"*{s}" for s in AUDIO_SUFFIXES) + ");;All files (*)"


def enrolled_models_dir() -> Path:
    """Where the app saves enrolled bundles by default (the user's app-data folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base) / "models"


class MainWindow(QMainWindow):
    """Signals (for tests and scripts): ``fileShown(path)``, ``folderDone(n)``, ``recordingDone()``,
    ``modelChanged(name)``, ``message(text)`` (every message shown in the window)."""

    fileShown = Signal(str)
    folderDone = Signal(int)
    recordingDone = Signal()
    modelChanged = Signal(str)
    enrolled = Signal(str)
    message = Signal(str)

    def __init__(self, *, backend: AudioBackend, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("SoundSentry")
        self.setAcceptDrops(True)
        self.resize(1200, 800)
        self.backend = backend
        self.settings = settings or QSettings()
        self.pool = QThreadPool.globalInstance()
        self.model: soundsentry.Model | None = None
        self.detector = ""
        self.threshold = 0.0
        self.analysis: FileAnalysis | None = None
        self.current_label = ""  # what the view shows: a path or "recording"
        self.folder_task: FolderTask | None = None
        self.live: LiveScorer | None = None
        self.live_scores: list[float] = []
        self.live_result: soundsentry.ScoreResult | None = None  # the last recording's streamed result
        self.recorded: np.ndarray | None = None
        self.recorded_rate = 0
        self._tasks: set = set()  # keep QRunnables' signal objects alive until they report
        self._generation = 0  # file results from an older request are ignored

        self.player = Player(backend, self)
        self.player.position.connect(self._on_play_position)
        self.player.stopped.connect(self._on_play_stopped)
        self.player.failed.connect(self.show_error)
        self.recorder = Recorder(backend, self)
        self.recorder.chunk.connect(self._on_recorded_chunk)
        self.recorder.level.connect(self._on_level)
        self.recorder.stopped.connect(self._on_recording_stopped)

        self._build_ui()
        self._restore_settings()

    # ================================================================================ UI ====
    def _build_ui(self) -> None:
        # ---- actions and menus
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

        # ---- model toolbar: model, detector, threshold, verdict
        tb = QToolBar("Model", self)
        tb.setObjectName("model-toolbar")
        self.addToolBar(tb)
        self.model_combo = QComboBox()
        self.model_combo.setMinimumContentsLength(14)
        self.model_combo.activated.connect(self._on_model_chosen)
        self.detector_combo = QComboBox()
        self.detector_combo.activated.connect(self._on_detector_chosen)
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
        for w in (
            QLabel(" model "),
            self.model_combo,
            QLabel(" detector "),
            self.detector_combo,
            QLabel(" threshold "),
            self.threshold_slider,
            self.threshold_spin,
            reset,
        ):
            tb.addWidget(w)
        tb.addAction(self.load_bundle_action)
        tb.addAction(self.enroll_action)

        # ---- audio toolbar: play, record, device, rate, level
        atb = QToolBar("Audio", self)
        atb.setObjectName("audio-toolbar")
        self.addToolBarBreak()
        self.addToolBar(atb)
        atb.addActions([self.open_action, self.open_folder_action])
        atb.addSeparator()
        atb.addActions([self.play_action, self.stop_play_action])
        self.play_selection_check = QCheckBox("selection only")
        self.play_selection_check.setToolTip("Play only the region marked on the score track (drag its edges)")
        self.play_selection_check.toggled.connect(self._toggle_region)
        atb.addWidget(self.play_selection_check)
        atb.addSeparator()
        self.device_combo = QComboBox()
        self.device_combo.setMinimumContentsLength(18)
        self.device_combo.currentIndexChanged.connect(self._fill_rates)
        self.rate_combo = QComboBox()
        self.level_bar = QProgressBar()
        self.level_bar.setRange(0, 100)
        self.level_bar.setTextVisible(False)
        self.level_bar.setMaximumWidth(80)
        self.level_bar.setToolTip("input level (peak of the last block)")
        for w in (QLabel(" input "), self.device_combo, QLabel(" Hz "), self.rate_combo):
            atb.addWidget(w)
        atb.addActions([self.record_action, self.pause_action, self.stop_record_action])
        atb.addWidget(QLabel(" level "))
        atb.addWidget(self.level_bar)
        atb.addAction(self.save_recording_action)

        # ---- centre: message banner, report panel (header + analysis view), folder panel
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
        splitter = QSplitter(Qt.Orientation.Vertical)
        layout.addWidget(splitter, 1)

        self.report_panel = QWidget()
        self.report_panel.setObjectName("report")
        rl = QVBoxLayout(self.report_panel)
        rl.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.title_label = QLabel("Open a recording (File ▸ Open, or drop files here), a folder, or record.")
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
        self.table.verticalHeader().hide()
        self.table.clicked.connect(self._on_table_clicked)
        self.table.activated.connect(self._on_table_clicked)
        fl.addWidget(self.table, 1)
        splitter.addWidget(self.folder_panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.folder_panel.hide()
        self.setCentralWidget(central)

        self._status_timer = QTimer(self)
        self._fill_devices()
        self._fill_models()
        self._update_actions()
        self._show_verdict()

    def _action(self, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))

        def triggered(checked: bool = False) -> None:
            slot()

        action.triggered.connect(triggered)
        return action

    # Every slot returns None: PySide6 6.12 releases a reference of whatever a Python slot returns
    # one time too many (a lambda returning a tuple with True in it crashed the interpreter here).
    def _on_level(self, value: float) -> None:
        self.level_bar.setValue(int(min(1.0, value) * 100))

    def _on_model_chosen(self, i: int) -> None:
        self.load_model(self.model_combo.itemData(i))

    def _on_detector_chosen(self, i: int) -> None:
        self.set_detector(self.detector_combo.itemText(i))

    def toggle_pause(self) -> None:
        self.pause_recording(not self.recorder.paused)

    def _run_task(self, task, on_done, on_failed=None) -> None:
        """Start a worker; its result goes to ``on_done(result)``, a failure to ``on_failed(what, message)``."""

        def done(result) -> None:
            self._tasks.discard(task)
            on_done(result)

        def failed(what: str, message: str) -> None:
            self._tasks.discard(task)
            if on_failed is not None:
                on_failed(what, message)

        task.signals.done.connect(done)
        task.signals.failed.connect(failed)
        self._tasks.add(task)  # keeps the task's signal object alive until it reports
        self.pool.start(task)

    def _update_actions(self) -> None:
        recording = self.recorder.recording
        has_audio = self.analysis is not None
        self.play_action.setEnabled(has_audio and self.backend.available and not recording)
        self.stop_play_action.setEnabled(self.player.playing)
        self.record_action.setEnabled(
            self.backend.available and self.device_combo.count() > 0 and not recording and self.model is not None
        )
        self.pause_action.setEnabled(recording)
        self.pause_action.setText("▶ Resume" if recording and self.recorder.paused else "❚❚ Pause")
        self.stop_record_action.setEnabled(recording)
        self.save_recording_action.setEnabled(self.recorded is not None and not recording)
        self.export_csv_action.setEnabled(any(r is not None for r in self.table_model.rows))
        self.export_png_action.setEnabled(has_audio or recording)
        self.enroll_action.setEnabled(self.model is not None and not recording)
        for w in (self.device_combo, self.rate_combo, self.model_combo, self.detector_combo):
            w.setEnabled(not recording)

    # ========================================================================= messages ====
    def show_error(self, text: str) -> None:
        """A problem the user should see; the app goes on. Shown in the banner, not a dialog."""
        log.warning("%s", text)
        self.banner.setText(text)
        self.banner.show()
        self.statusBar().showMessage(text, 15000)
        self.message.emit(text)

    def show_info(self, text: str, *, timeout: int = 8000) -> None:
        self.statusBar().showMessage(text, timeout)
        self.message.emit(text)

    def clear_error(self) -> None:
        self.banner.hide()
        self.banner.clear()

    # =========================================================================== models ====
    def _fill_models(self, select: str | None = None) -> None:
        self.model_combo.clear()
        for name in soundsentry.list_shipped_models():
            self.model_combo.addItem(name, name)
        enrolled = enrolled_models_dir()
        if enrolled.is_dir():
            for d in sorted(enrolled.iterdir()):
                if (d / "model.json").is_file():
                    self.model_combo.addItem(f"{d.name} (enrolled)", str(d))
        for path in self.settings.value("bundles", [], type=list) or []:
            if Path(path).is_dir() and self.model_combo.findData(path) < 0:
                self.model_combo.addItem(f"{Path(path).name} (folder)", path)
        if select is not None:
            self._select_model_item(select)

    def _select_model_item(self, ref: str) -> None:
        i = self.model_combo.findData(ref)
        if i < 0:
            name = Path(ref).name
            self.model_combo.addItem(f"{name} (folder)", ref)
            i = self.model_combo.count() - 1
        self.model_combo.setCurrentIndex(i)

    def load_model(self, ref: str, *, threshold: float | None = None, detector: str | None = None) -> None:
        """Load a shipped model by name or a bundle folder, off the GUI thread."""
        if not ref:
            return
        self.show_info(f"loading model {ref}…", timeout=0)
        task = ModelTask(f"model {ref}", soundsentry.load_model, ref)

        def loaded(model) -> None:
            self._on_model_loaded(model, ref, threshold, detector)

        def failed(what: str, message: str) -> None:
            self._on_model_failed(ref, message)

        self._run_task(task, loaded, failed)

    def _on_model_failed(self, ref: str, message: str) -> None:
        self.show_error(f"Cannot load the model: {message}. The previous model stays in use.")
        if self.model is not None:
            self._select_model_item(self.settings.value("model", "fan"))

    def _on_model_loaded(self, model: soundsentry.Model, ref: str, threshold, detector) -> None:
        self.model = model
        self.view.params = model.feature_params
        self._select_model_item(ref)
        self.settings.setValue("model", ref)
        if not (Path(ref).is_dir() and Path(ref).parent == enrolled_models_dir()) and os.sep in ref:
            bundles = [p for p in self.settings.value("bundles", [], type=list) or [] if p != ref]
            self.settings.setValue("bundles", [ref, *bundles][:MAX_RECENT])
        self.detector_combo.clear()
        self.detector_combo.addItems(model.detectors)
        det = detector if detector in model.detectors else model.default_detector
        self.detector_combo.setCurrentText(det)
        self.detector = det
        self._set_threshold_range(model.thresholds[det] if threshold is None else threshold)
        self.show_info(f"model {model.name} ({', '.join(model.detectors)}) loaded from {model.bundle.root}")
        self._update_actions()
        self.modelChanged.emit(model.name)
        self._rescore_current()

    def set_detector(self, name: str) -> None:
        if self.model is None or name == self.detector:
            return
        self.detector = name
        self.detector_combo.setCurrentText(name)
        self.settings.setValue("detector", name)
        self._set_threshold_range(self.model.thresholds[name])
        if self.analysis is not None:
            # The latents do not depend on the detector: only the detector runs again.
            a = self.analysis
            scores = self.model.score_latents(a.latents, detector=name)
            self.analysis = FileAnalysis(**{**a.__dict__, "window_scores": scores, "detector": name})
            self.view.show_scores(scores, a.window_starts, a.window_seconds)
        if self.table_model.paths:
            self.open_folder(self.table_model.paths, root=self.table_model.root)
        self._show_verdict()

    def load_bundle_dialog(self) -> None:
        start = self.settings.value("last_bundle_dir", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder (with model.json)", start)
        if path:
            self.settings.setValue("last_bundle_dir", str(Path(path).parent))
            self.load_model(path)

    def _rescore_current(self) -> None:
        if self.analysis is not None and self.current_label and os.path.isfile(self.current_label):
            self.open_file(self.current_label)
        elif self.current_label == "recording" and self.recorded is not None:
            self._analyse_recording()
        if self.table_model.paths:
            self.open_folder(self.table_model.paths, root=self.table_model.root)

    # ======================================================================== threshold ====
    def _set_threshold_range(self, threshold: float) -> None:
        """Slider range around the model's threshold: from 0 (or below the lowest score) to twice it."""
        model_thr = self.model.thresholds[self.detector]
        span = max(abs(model_thr), 0.5)
        self._thr_lo = min(model_thr - span, threshold - span * 0.1)
        self._thr_hi = max(model_thr + span, threshold + span * 0.1)
        self.set_threshold(threshold)

    def _on_slider(self, value: int) -> None:
        if getattr(self, "_syncing", False):
            return
        self.set_threshold(self._thr_lo + (self._thr_hi - self._thr_lo) * value / SLIDER_STEPS)

    def _on_spin(self, value: float) -> None:
        # The spin box shows 3 decimals; its rounded value must not replace the exact threshold.
        if not getattr(self, "_syncing", False):
            self.set_threshold(value)

    def set_threshold(self, value: float) -> None:
        """Move the threshold: verdicts, the threshold line and the table update; nothing is rescored."""
        if self.model is None:
            return
        self.threshold = float(value)
        self._syncing = True
        try:
            self.threshold_spin.setValue(self.threshold)
            pos = (self.threshold - self._thr_lo) / (self._thr_hi - self._thr_lo) * SLIDER_STEPS
            self.threshold_slider.setValue(round(np.clip(pos, 0, SLIDER_STEPS)))
        finally:
            self._syncing = False
        self.view.set_threshold(self.threshold)
        self.table_model.set_threshold(self.threshold)
        self.table_proxy.refilter()
        self.settings.setValue("threshold", self.threshold)
        self._show_verdict()

    def reset_threshold(self) -> None:
        if self.model is not None:
            self.set_threshold(self.model.thresholds[self.detector])

    def current_scores(self) -> np.ndarray | None:
        if self.recorder.recording:
            return np.asarray(self.live_scores)
        return None if self.analysis is None else self.analysis.window_scores

    def clip_result(self) -> soundsentry.ScoreResult | None:
        """The shown clip's result with the slider's threshold (the runtime's own aggregation)."""
        scores = self.current_scores()
        if self.model is None or scores is None or scores.size == 0:
            return None
        return self.model.result(scores, detector=self.detector, threshold=self.threshold, path=self.current_label)

    def _show_verdict(self) -> None:
        result = self.clip_result()
        if result is None:
            self.verdict_badge.setText("no verdict yet")
            self.verdict_badge.setStyleSheet(
                "QLabel#verdict { color: #555; border: 2px solid #bbb; padding: 6px; font-size: 16px; }"
            )
            return
        colour = ABNORMAL_COLOUR if result.verdict == "abnormal" else NORMAL_COLOUR
        live = " (so far)" if self.recorder.recording else ""
        sign = ">" if result.verdict == "abnormal" else "≤"
        self.verdict_badge.setText(
            f"{result.verdict.upper()}{live}\nscore {result.score:.3f} {sign} {result.threshold:.3f}"
        )
        self.verdict_badge.setStyleSheet(
            f"QLabel#verdict {{ background: {colour.name()}; color: white; font-weight: bold; font-size: 16px;"
            " padding: 6px; border-radius: 4px; }"
        )

    # ============================================================================ files ====
    def open_paths(self, paths: list[str]) -> None:
        """What the command line and drag-and-drop give: one file opens in the view, several files or
        a folder open as a table (the first file is shown)."""
        paths = [os.fspath(p) for p in paths]
        if not paths:
            return
        if len(paths) == 1 and not os.path.isdir(paths[0]):
            self.open_file(paths[0])
            return
        files = find_audio_files(paths)
        if not files:
            self.show_error(f"No audio files ({', '.join(AUDIO_SUFFIXES)}) in {', '.join(paths)}")
            return
        root = (
            paths[0]
            if len(paths) == 1 and os.path.isdir(paths[0])
            else os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
        )
        self.open_folder(files, root=root)

    def open_files_dialog(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open recordings", start, AUDIO_FILTER)
        if paths:
            self.settings.setValue("last_folder", str(Path(paths[0]).parent))
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Open a folder of recordings", start)
        if path:
            self.settings.setValue("last_folder", path)
            self.open_paths([path])

    def open_file(self, path: str) -> None:
        """Decode and score one file off the GUI thread, then show it."""
        if self.model is None:
            self.show_error("No model is loaded; choose one in the model list.")
            return
        if self.recorder.recording:
            self.show_error("Stop the recording before opening a file.")
            return
        self.player.stop()
        self._generation += 1
        gen = self._generation
        self.show_info(f"scoring {path}…", timeout=0)
        task = FileTask(self.model, path, detector=self.detector)

        def done(a: FileAnalysis) -> None:
            if gen == self._generation:  # a newer request wins
                self._on_file_scored(a)

        def failed(p: str, message: str) -> None:
            if gen == self._generation:
                self._on_file_failed(p, message)

        self._run_task(task, done, failed)

    def _on_file_failed(self, path: str, message: str) -> None:
        self.show_error(f"Cannot score this file: {message}")
        self.fileShown.emit(path)

    def _on_file_scored(self, a: FileAnalysis) -> None:
        self.clear_error()
        # The last recording stays in memory (Save recording, enrollment) until the next one starts.
        self._show_analysis(a, label=a.path)
        if a.path != "recording":
            self._add_recent(a.path)
            self.settings.setValue("last_folder", str(Path(a.path).parent))
        self.statusBar().clearMessage()
        self.fileShown.emit(a.path)

    def _show_analysis(self, a: FileAnalysis, *, label: str) -> None:
        self.analysis = a
        self.current_label = label
        duration = a.samples.shape[0] / a.sample_rate
        self.view.params = self.model.feature_params
        self.view.show_spectrogram(a.logmel, duration=duration)
        self.view.show_scores(a.window_scores, a.window_starts, a.window_seconds)
        self.view.set_threshold(self.threshold)
        if self.play_selection_check.isChecked():
            self._toggle_region(True)
        self._show_title()
        self._show_verdict()
        self._update_actions()

    def _show_title(self) -> None:
        if self.analysis is None and not self.recorder.recording:
            return
        what = "live recording" if self.recorder.recording else self.current_label
        dur = self.view.duration
        model = self.model
        self.title_label.setText(
            f"<b>{Path(what).name if os.sep in what else what}</b> &nbsp; {dur:.1f} s<br>"
            f"<small>{what if os.sep in what else ''}<br>model <b>{model.name}</b> ({model.bundle.root}) · "
            f"detector <b>{self.detector}</b> · threshold {self.threshold:.3f} "
            f"(model's {model.thresholds[self.detector]:.3f})</small>"
        )

    def _add_recent(self, path: str) -> None:
        recent = [p for p in self.settings.value("recent", [], type=list) or [] if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._fill_recent()

    def _on_recent(self) -> None:
        self.open_paths([self.sender().data()])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.value("recent", [], type=list) or []:
            act = self.recent_menu.addAction(p)
            act.setData(p)
            act.triggered.connect(self._on_recent)
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    # =========================================================================== folder ====
    def open_folder(self, files: list[str], *, root: str = "") -> None:
        if self.model is None:
            self.show_error("No model is loaded; choose one in the model list.")
            return
        self.cancel_folder()
        self.table_model.reset(files, root=root)
        self.table_model.set_threshold(self.threshold)
        self.folder_panel.show()
        self.folder_progress.setRange(0, len(files))
        self.folder_progress.setValue(0)
        self.cancel_button.setEnabled(True)
        task = FolderTask(self.model, files, detector=self.detector)
        self.folder_task = task
        task.signals.row.connect(self._on_folder_row)
        task.signals.progress.connect(self._on_folder_progress)

        def done(n: int) -> None:
            self._on_folder_done(task, n)

        self._run_task(task, done)
        self.show_info(f"scoring {len(files)} files in {root or 'the selection'}…", timeout=0)

    def _from_current_folder_task(self) -> bool:
        # A cancelled task may still deliver a row or two; only the current task's count.
        return self.folder_task is not None and self.sender() is self.folder_task.signals

    def _on_folder_progress(self, done: int, total: int) -> None:
        if self._from_current_folder_task():
            self.folder_progress.setValue(done)

    def _on_folder_row(self, i: int, row) -> None:
        if self._from_current_folder_task():
            self.table_model.set_row(i, row)
            self._update_actions()

    def _on_folder_done(self, task: FolderTask, n: int) -> None:
        if task is not self.folder_task:
            return
        self.folder_task = None
        self.cancel_button.setEnabled(False)
        errors = sum(1 for i in range(n) if self.table_model.verdict(i) == "error")
        abnormal = sum(1 for i in range(n) if self.table_model.verdict(i) == "abnormal")
        what = "cancelled after" if task.cancelled else "scored"
        self.show_info(
            f"{what} {n} of {len(task.paths)} files: {abnormal} abnormal, {errors} could not be scored", timeout=0
        )
        self._update_actions()
        self.folderDone.emit(n)

    def cancel_folder(self) -> None:
        if self.folder_task is not None:
            self.folder_task.cancel()
            self.cancel_button.setEnabled(False)

    def _on_table_clicked(self, index) -> None:
        src = self.table_proxy.mapToSource(index)
        if src.isValid():
            self.open_file(self.table_model.paths[src.row()])

    # ====================================================================== drag & drop ====
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ========================================================================= playback ====
    def _toggle_region(self, on: bool) -> None:
        if on and self.analysis is not None:
            if not self.view.region.isVisible():
                d = self.view.duration
                self.view.show_region(d * 0.25, d * 0.5)
        else:
            self.view.region.hide()

    def play(self) -> None:
        if self.analysis is None:
            return
        a = self.analysis
        start, stop = 0.0, None
        region = self.view.selected_region() if self.play_selection_check.isChecked() else None
        if region is not None:
            start, stop = region
        if self.player.play(a.samples, sample_rate=a.sample_rate, start=start, stop=stop):
            self.view.set_cursor(start)
        self._update_actions()

    def _on_play_position(self, seconds: float) -> None:
        self.view.set_cursor(seconds)

    def _on_play_stopped(self) -> None:
        self._update_actions()

    # ======================================================================== recording ====
    def _fill_devices(self) -> None:
        self.device_combo.clear()
        if not self.backend.available:
            self.device_combo.addItem("no audio input")
            self.device_combo.setToolTip(self.backend.reason)
            self.show_error(
                f"File-only mode: {self.backend.reason}. Opening and scoring files works; recording and "
                "playback need an audio device."
            )
            return
        try:
            devices = self.backend.input_devices()
        except Exception as exc:
            self.show_error(f"Cannot list audio devices: {exc}")
            devices = []
        for dev in devices:
            self.device_combo.addItem(dev.name, dev)
        if not devices:
            self.show_info("no input device found: recording is off, files work")

    def _fill_rates(self) -> None:
        self.rate_combo.clear()
        dev = self.device_combo.currentData()
        if not isinstance(dev, DeviceInfo):
            return
        try:
            rates = self.backend.supported_rates(dev)
        except Exception as exc:
            self.show_error(f"Cannot query {dev.name}: {exc}")
            rates = []
        for r in rates:
            self.rate_combo.addItem(str(r), r)
        i = self.rate_combo.findData(dev.default_samplerate)
        if i >= 0:
            self.rate_combo.setCurrentIndex(i)

    def start_recording(self) -> None:
        dev = self.device_combo.currentData()
        rate = self.rate_combo.currentData()
        if self.model is None or not isinstance(dev, DeviceInfo) or not rate:
            self.show_error("Choose an input device and a sample rate first.")
            return
        self.player.stop()
        self.cancel_folder()
        self.live_scores = []
        self.live_result = None
        self.analysis = None
        self.recorded = None
        self.current_label = "recording"
        self.live = LiveScorer(self.model, sample_rate=int(rate), detector=self.detector, parent=self)
        self.live.update.connect(self._on_live_update)
        self.live.failed.connect(self.show_error)
        self.live.finished.connect(self._on_live_finished)
        self.view.start_live(seconds=10.0)
        self.view.set_threshold(self.threshold)
        try:
            self.recorder.start(dev, sample_rate=int(rate))
        except Exception as exc:
            log.warning("cannot start recording: %s", exc)
            self.live.shutdown()
            self.live = None
            self.show_error(f"Cannot record from {dev.name} at {rate} Hz: {exc}")
            self._update_actions()
            return
        self.settings.setValue("device", dev.name)
        self.settings.setValue("rate", int(rate))
        self.clear_error()
        self._show_title()
        self._show_verdict()
        self._update_actions()

    def pause_recording(self, on: bool) -> None:
        self.recorder.pause(on)
        self.show_info("recording paused" if on else "recording")
        self._update_actions()

    def _on_recorded_chunk(self, mono: np.ndarray) -> None:
        if self.live is not None:
            self.live.push(mono)

    def _on_live_update(self, frames: np.ndarray, scores: np.ndarray, first: int) -> None:
        if frames.shape[1]:
            self.view.push_frames(frames)
        if scores.size:
            self.live_scores.extend(float(s) for s in scores)
            res = self.model.result(np.asarray(self.live_scores), detector=self.detector, threshold=self.threshold)
            self.view.push_scores(scores, first, window_starts=res.window_starts, window_seconds=res.window_seconds)
            self._show_verdict()
        self._show_title()

    def _on_recording_stopped(self, problem: str) -> None:
        self.recorded = self.recorder.samples
        self.recorded_rate = self.recorder.sample_rate
        secs = self.recorded.shape[0] / max(1, self.recorded_rate)
        if problem:
            self.show_error(
                f"Recording stopped: {problem}. The {secs:.1f} s recorded so far are kept "
                "(Save recording… to keep them on disk)."
            )
        if self.recorder.dropped:
            self.show_error(f"{self.recorder.dropped} samples were lost because the app fell behind the input.")
        if self.live is not None:
            self.live.finish()
        self._update_actions()

    def _on_live_finished(self, result) -> None:
        self.live = None
        if result is not None:
            self.live_result = result
        self._update_actions()
        if result is not None and self.recorded is not None and self.recorded.size:
            self._analyse_recording()  # too short for the stream is too short here too: said once
        self.recordingDone.emit()

    def _analyse_recording(self) -> None:
        """Show the whole recording as a file (static spectrogram, scores, playback)."""
        task = ModelTask(
            "the recording",
            analyse_samples,
            self.model,
            self.recorded,
            sample_rate=self.recorded_rate,
            detector=self.detector,
        )

        def done(a: FileAnalysis) -> None:
            self._show_analysis(a, label="recording")

        def failed(what: str, message: str) -> None:
            self.show_error(f"Cannot score {what}: {message}")

        self._run_task(task, done, failed)

    def save_recording_dialog(self) -> None:
        if self.recorded is None:
            return
        start = self.settings.value("last_folder", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the recording", str(Path(start) / "recording.flac"), "FLAC (*.flac);;WAV (*.wav)"
        )
        if path:
            self.save_recording(path)

    def save_recording(self, path: str) -> bool:
        """Write the recording at the device's rate (FLAC or WAV by suffix, 24-bit PCM)."""
        if self.recorded is None:
            return False
        fmt = "WAV" if path.lower().endswith(".wav") else "FLAC"
        if not path.lower().endswith((".wav", ".flac")):
            path += ".flac"
        try:
            sf.write(path, self.recorded, self.recorded_rate, format=fmt, subtype="PCM_24")
        except Exception as exc:
            self.show_error(f"Cannot save the recording to {path}: {exc}")
            return False
        self.show_info(f"saved {self.recorded.shape[0] / self.recorded_rate:.1f} s to {path}")
        return True

    # ======================================================================= enrollment ====
    def enroll_dialog(self) -> None:
        dlg = EnrollDialog(self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.enroll(
                dlg.normal_inputs(), out=dlg.out_edit.text(), name=dlg.name_edit.text() or None, detector=dlg.detector()
            )

    def enroll(self, normal: list, *, out: str, name: str | None = None, detector: str = "lof") -> None:
        """Fit ``detector`` on this machine's normal recordings (current model's encoder), save, and switch to it."""
        if self.model is None:
            return
        if not normal:
            self.show_error("Enrollment needs at least one normal recording.")
            return
        self.show_info(f"enrolling {len(normal)} recordings into {out}…", timeout=0)
        self.enroll_action.setEnabled(False)
        task = ModelTask("enrollment", self.model.enroll, normal, out=out, name=name, detectors=(detector,))

        def done(model) -> None:
            self._on_enrolled(model, out)

        def failed(what: str, message: str) -> None:
            self.show_error(f"Enrollment failed: {message}")
            self._update_actions()

        self._run_task(task, done, failed)

    def _on_enrolled(self, model: soundsentry.Model, out: str) -> None:
        det = model.default_detector  # the detector chosen in the dialog: enroll() makes its first one the default
        self.show_info(
            f"enrolled {model.name} with {ENROLL_DETECTORS.get(det, det)} ({det}): "
            f"threshold {model.thresholds[det]:.3f}, saved to {out}"
        )
        self._fill_models()
        ref = str(Path(out))
        self._on_model_loaded(model, ref, None, model.default_detector)
        self.enrolled.emit(ref)

    # =========================================================================== export ====
    def export_csv_dialog(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(self, "Export the table", str(Path(start) / "scores.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> bool:
        """The table as CSV, with the runtime's CSV fields and the verdicts now shown."""
        try:
            with open(path, "w", encoding="utf-8", newline="") as f:
                writer = make_writer("csv", f)
                writer.begin()
                for row in self.table_model.current_rows():
                    writer.write(row)
                writer.end()
        except OSError as exc:
            self.show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        self.show_info(f"table written to {path}")
        return True

    def export_png_dialog(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        stem = Path(self.current_label).stem if self.current_label else "view"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the view", str(Path(start) / f"{stem}-report.png"), "PNG (*.png)"
        )
        if path:
            self.export_png(path)

    def export_png(self, path: str) -> bool:
        """The report panel (file, model, verdict, spectrogram, score track) as a PNG."""
        if not path.lower().endswith(".png"):
            path += ".png"
        if not self.report_panel.grab().save(path, "PNG"):
            self.show_error(f"Cannot write {path}")
            return False
        self.show_info(f"view written to {path}")
        return True

    # ========================================================================= settings ====
    def _restore_settings(self) -> None:
        self._fill_recent()
        dev_name = self.settings.value("device", "")
        i = self.device_combo.findText(dev_name) if dev_name else -1
        if i >= 0:
            self.device_combo.setCurrentIndex(i)
        rate = self.settings.value("rate", 0, type=int)
        j = self.rate_combo.findData(rate)
        if j >= 0:
            self.rate_combo.setCurrentIndex(j)
        ref = self.settings.value("model", "fan")
        thr = self.settings.value("threshold", None)
        det = self.settings.value("detector", None)
        self.load_model(ref, threshold=float(thr) if thr is not None else None, detector=det)

    def closeEvent(self, event) -> None:
        self.cancel_folder()
        self.player.stop()
        self.recorder.stop()
        if self.live is not None:
            self.live.shutdown()
        self.settings.sync()
        self.pool.waitForDone(5000)
        super().closeEvent(event)


#: Detectors the enrollment dialog offers, in menu order, with their labels; the first is the default.
ENROLL_DETECTORS = {
    "lof": "Local outlier factor (recommended)",
    "knn": "k nearest neighbours",
    "mahalanobis": "Mahalanobis distance",
    "ocsvm": "One-Class SVM",
}


def train_extra_available() -> bool:
    """Whether scikit-learn and skl2onnx (the [train] extra) are installed, without importing them (slow)."""
    try:
        return all(find_spec(m) is not None for m in ("sklearn", "skl2onnx"))
    except (ImportError, ValueError):  # a broken or half-imported package counts as missing
        return False


class EnrollDialog(QDialog):
    """Pick normal recordings (files, a folder, the current recording), a name and a folder."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Enroll this machine")
        self.window_ = window
        form = QFormLayout(self)
        form.addRow(
            QLabel(
                "Normal recordings of <b>this</b> machine only: an abnormal sound here would be learned "
                "as normal. A few minutes in total, from more than one day or load if you can."
            )
        )
        self.list = QListWidget()
        form.addRow(self.list)
        buttons = QHBoxLayout()
        add = QPushButton("Add files…")
        add.clicked.connect(self._add_files)
        add_dir = QPushButton("Add folder…")
        add_dir.clicked.connect(self._add_folder)
        add_rec = QPushButton("Add the last recording")
        add_rec.setEnabled(window.recorded is not None)
        add_rec.clicked.connect(self._add_recording)
        for b in (add, add_dir, add_rec):
            buttons.addWidget(b)
        form.addRow(buttons)
        self.name_edit = QLineEdit("my-machine")
        form.addRow("name", self.name_edit)
        self.out_edit = QLineEdit(str(enrolled_models_dir() / "my-machine"))
        self.name_edit.textChanged.connect(self._on_name)
        form.addRow("save to", self.out_edit)
        self.detector_combo = QComboBox()
        train_extra = train_extra_available()
        for name, label in ENROLL_DETECTORS.items():
            self.detector_combo.addItem(label, name)
            if name not in NUMPY_DETECTORS and not train_extra:
                # Shown but greyed out, so users learn it exists and how to get it.
                item = self.detector_combo.model().item(self.detector_combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip(f"needs the [train] extra: {TRAIN_EXTRA_HINT}")
        self.detector_combo.setCurrentIndex(self.detector_combo.findData("lof"))
        form.addRow("detector", self.detector_combo)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def _add_recording(self) -> None:
        self.list.addItem(RECORDING_ITEM)

    def _on_name(self, text: str) -> None:
        self.out_edit.setText(str(enrolled_models_dir() / (text or "my-machine")))

    def _add_files(self) -> None:
        start = self.window_.settings.value("last_folder", str(Path.home()))
        paths, _ = QFileDialog.getOpenFileNames(self, "Normal recordings", start, AUDIO_FILTER)
        self.list.addItems(paths)

    def _add_folder(self) -> None:
        start = self.window_.settings.value("last_folder", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Folder of normal recordings", start)
        if path:
            self.list.addItem(path)

    def detector(self) -> str:
        """The chosen detector's name, as ``soundsentry.enroll.enroll(detectors=...)`` takes it."""
        return self.detector_combo.currentData()

    def normal_inputs(self) -> list:
        out: list = []
        for i in range(self.list.count()):
            text = self.list.item(i).text()
            if text == RECORDING_ITEM:
                out.append((self.window_.recorded, self.window_.recorded_rate))
            else:
                out.append(text)
        return out
