"""The main window: its state, models, messages and settings.

Each job lives in a module of its own, mixed in here: the layout (:mod:`.layout`), files and
playback (:mod:`.files`), the folder table (:mod:`.folder`), the threshold and verdict
(:mod:`.threshold`), recording (:mod:`.recording`), enrollment (:mod:`.enrollment`) and export
(:mod:`.export`). They share the window's attributes; none holds state of its own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundsentry
from PySide6.QtCore import QSettings, QThreadPool, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
)
from soundsentry.devices import AudioBackend
from soundsentry.quality import SignalStats

from .enrollment import EnrollMixin, enrolled_models_dir
from .export import ExportMixin
from .files import MAX_RECENT, FilesMixin
from .folder import FolderMixin
from .layout import LayoutMixin
from .recording import RecordingMixin
from .threshold import ThresholdMixin
from .transport import Player, Recorder
from .views import frame_offset
from .workers import FileAnalysis, FolderTask, LiveScorer, ModelTask

log = logging.getLogger(__name__)

__all__ = ["MainWindow"]


class MainWindow(
    LayoutMixin,
    FilesMixin,
    FolderMixin,
    ThresholdMixin,
    RecordingMixin,
    EnrollMixin,
    ExportMixin,
    QMainWindow,
):
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
        self.live_latents: list[np.ndarray] = []  # per live update, the rows of its new windows
        self.live_stats: SignalStats | None = None  # the live recording's level and clipping so far
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

    # Every slot returns None: PySide6 6.12 releases a reference of whatever a Python slot returns
    # one time too many (a lambda returning a tuple with True in it crashed the interpreter here).
    def _on_model_chosen(self, i: int) -> None:
        self.load_model(self.model_combo.itemData(i))

    def _on_detector_chosen(self, i: int) -> None:
        self.set_detector(self.detector_combo.itemText(i))

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
        self.view.frame_offset = frame_offset(model)
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
