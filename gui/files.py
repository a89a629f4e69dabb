"""Opening files: dialogs, drag and drop, recent files, the file view and playback."""

from __future__ import annotations

import logging
import os
from html import escape
from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
)
from soundsentry import formats
from soundsentry.batch import AUDIO_SUFFIXES, find_audio_files

from .views import frame_offset
from .workers import FileAnalysis, FileTask

log = logging.getLogger(__name__)

__all__ = [
    "AUDIO_FILTER",
    "MAX_RECENT",
    "START_TITLE",
    "FilesMixin",
    "audio_suffixes",
    "is_audio_path",
]


MAX_RECENT = 8
START_TITLE = "Open a recording (File ▸ Open, or drop files here), a folder, or record."

def audio_suffixes() -> tuple[str, ...]:
    """Every suffix the open dialog and drag and drop take: the runtime's folder-search formats, and M4A
    even without PyAV (the runtime then says which extra decodes it). Sorted, lower case, with the dot."""
    return tuple(sorted(set(formats.audio_suffixes()) | set(AUDIO_SUFFIXES) | set(formats.AV_SUFFIXES)))


def model_place(model) -> str:
    """Where a model comes from, for the title: "shipped" for the package's own bundles, else its folder."""
    import soundsentry.models

    root = Path(model.bundle.root).resolve()
    return "shipped" if root.parent == Path(soundsentry.models.__file__).resolve().parent else str(root)


def is_audio_path(path: str) -> bool:
    """A folder (searched when opened) or a file whose suffix is one :func:`audio_suffixes` lists."""
    return os.path.isdir(path) or path.lower().endswith(audio_suffixes())


AUDIO_FILTER = "Audio (" + " ".join(f"*{s}" for s in audio_suffixes()) + ");;All files (*)"


class FilesMixin:
    """Opens, scores and shows one file at a time; plays it back."""

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
        # Nothing of the previous file may stay on screen under this file's name (or under none).
        self.clear_view(
            title=f"<b>{escape(Path(path).name)}</b> &nbsp; could not be scored<br><small>{escape(path)}</small>"
        )
        self.show_error(f"Cannot score this file: {message}")
        self.fileShown.emit(path)

    def clear_view(self, *, title: str = START_TITLE) -> None:
        """Empty the view, the verdict and the title: nothing shown, nothing to play."""
        self.player.stop()
        self.analysis = None
        self.current_label = ""
        self.view.reset_view()
        self.title_label.setText(title)
        self._show_verdict()
        self._update_actions()

    def _on_auto_levels(self, on: bool) -> None:
        self.view.set_auto_levels(on)

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
        self.view.frame_offset = frame_offset(self.model)
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
            f"<small>{what if os.sep in what else ''}<br>model <b>{model.name}</b> ({model_place(model)}) · "
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

    # ====================================================================== drag & drop ====
    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() and is_audio_path(u.toLocalFile()) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        dropped = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        paths = [p for p in dropped if is_audio_path(p)]
        skipped = [os.path.basename(p) for p in dropped if p not in paths]
        if skipped:
            self.show_info(f"not audio, left out: {', '.join(skipped)}")
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
