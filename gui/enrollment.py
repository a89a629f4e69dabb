"""Enrollment: the dialog that collects normal recordings, and fitting a bundle off the GUI thread."""

from __future__ import annotations

import logging
from importlib.util import find_spec
from pathlib import Path

import soundsentry
from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
)
from soundsentry.detector_kinds import DEFAULT_DETECTOR, KINDS
from soundsentry.enroll import NUMPY_DETECTORS, TRAIN_EXTRA_HINT, default_enrollment_detector

from .files import AUDIO_FILTER
from .workers import ModelTask

log = logging.getLogger(__name__)

__all__ = [
    "ENROLL_DETECTORS",
    "RECORDING_ITEM",
    "EnrollDialog",
    "EnrollMixin",
    "enrolled_models_dir",
    "train_extra_available",
]


RECORDING_ITEM = "<the last recording>"


def enrolled_models_dir() -> Path:
    """Where the app saves enrolled bundles by default (the user's app-data folder)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base) / "models"


class EnrollMixin:
    """Enrolls this machine from the dialog's recordings and switches to the new bundle."""

    def enroll_dialog(self) -> None:
        dlg = EnrollDialog(self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.enroll(
                dlg.normal_inputs(), out=dlg.out_edit.text(), name=dlg.name_edit.text() or None, detector=dlg.detector()
            )

    def enroll(self, normal: list, *, out: str, name: str | None = None, detector: str = DEFAULT_DETECTOR) -> None:
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


#: Detectors the enrollment dialog offers, in the registry's order, with their labels.
ENROLL_DETECTORS = {kind.name: kind.label for kind in KINDS}


def train_extra_available() -> bool:
    """Whether scikit-learn and skl2onnx (the [train] extra) are installed, without importing them (slow)."""
    try:
        return all(find_spec(m) is not None for m in ("sklearn", "skl2onnx"))
    except (ImportError, ValueError):  # a broken or half-imported package counts as missing
        return False


class EnrollDialog(QDialog):
    """Pick normal recordings (files, a folder, the current recording), a name and a folder."""

    def __init__(self, window) -> None:
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
        # The current model's own default where the plain install can fit it, else the registry's.
        default = DEFAULT_DETECTOR if window.model is None else default_enrollment_detector(window.model)
        self.detector_combo.setCurrentIndex(self.detector_combo.findData(default))
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
