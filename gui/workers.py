"""Work that must not run on the GUI thread: decoding, features, scoring, folders, enrollment.

Each task runs in Qt's global thread pool (or its own QThread for the live scorer) and
reports back through signals, which Qt delivers on the GUI thread (queued connections).
A task never touches a widget.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThread, Signal, Slot
from soundsentry.audio import select_channel
from soundsentry.batch import score_files
from soundsentry.errors import AudioTooLongError, SoundSentryError
from soundsentry.quality import signal_flags
from soundsentry.scoring import decode, score_mono

log = logging.getLogger(__name__)

__all__ = [
    "FileAnalysis",
    "FileTask",
    "FolderTask",
    "LiveScorer",
    "ModelTask",
    "analyse",
    "analyse_samples",
    "describe_error",
]


def describe_error(exc: BaseException) -> str:
    """A message a user can act on: SoundSentry errors already name the file and problem."""
    if isinstance(exc, SoundSentryError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


@dataclass
class FileAnalysis:
    """Everything the window shows for one file.

    ``samples`` are mono at the model's rate (what the model hears, and what is played).
    ``latents`` are kept so that another detector can score without decoding again.
    ``flags`` are the runtime's signal flags (``"silent"``, ``"clipped"``; :mod:`soundsentry.quality`)
    of the decoded channel, as a batch row carries them.
    """

    path: str
    samples: np.ndarray  # (n,)
    sample_rate: int
    logmel: np.ndarray  # (n_mels, n_frames) dB
    latents: np.ndarray  # (n_windows, latent_dim)
    window_scores: np.ndarray  # (n_windows,)
    window_starts: np.ndarray  # (n_windows,) s
    window_seconds: float
    detector: str
    flags: tuple[str, ...] = ()


def analyse(model, path: str, *, detector: str) -> FileAnalysis:
    """Decode and score a file step by step, keeping the intermediate results the view needs.

    The steps are the runtime's own (``Model.load``, ``features``, ``windows``, ``embed``,
    ``score_latents``, ``result``), so the scores are exactly ``model.score(path)``'s.
    """
    try:
        # The batch's own decoding: the same samples as ``model.load``, and the flags a row gets.
        y, flags = decode(model, path)
    except AudioTooLongError:
        # Longer than the batch decodes whole (it streams those); the view needs every sample anyway.
        y = model.load(path)
        flags = signal_flags(y)
    return _analyse_mono(model, y, path=path, detector=detector, flags=flags)


def analyse_samples(model, samples: np.ndarray, *, sample_rate: int, detector: str) -> FileAnalysis:
    """As :func:`analyse` for samples in memory (a recording), shape (n,) or (n, channels)."""
    raw = np.asarray(samples, dtype=np.float32)
    flags = signal_flags(select_channel(raw, policy=model.channel) if raw.ndim == 2 else raw)
    y = model.prepare(samples, sample_rate=sample_rate)
    return _analyse_mono(model, y, path="recording", detector=detector, flags=flags)


def _analyse_mono(model, y: np.ndarray, *, path: str, detector: str, flags: tuple[str, ...]) -> FileAnalysis:
    scores = score_mono(model, y, detectors=[detector], path=path)  # the runtime's one scoring path
    result = model.result(scores.window_scores[detector], latents=scores.latents, detector=detector, path=path)
    return FileAnalysis(
        path=path,
        samples=y,
        sample_rate=model.sample_rate,
        logmel=model.display(scores.features),
        latents=scores.latents,
        window_scores=scores.window_scores[detector],
        window_starts=result.window_starts,
        window_seconds=result.window_seconds,
        detector=detector,
        flags=tuple(flags),
    )


class TaskSignals(QObject):
    done = Signal(object)  # the task's result
    failed = Signal(str, str)  # (path or what, message)
    progress = Signal(int, int)  # (done, total)
    row = Signal(int, object)  # folder rows as they come: (index, soundsentry.report.Row)


class FileTask(QRunnable):
    """Decode, compute features and score one file."""

    def __init__(self, model, path: str, *, detector: str) -> None:
        super().__init__()
        self.signals = TaskSignals()
        self.model, self.path, self.detector = model, path, detector

    @Slot()
    def run(self) -> None:
        try:
            result = analyse(self.model, self.path, detector=self.detector)
        except Exception as exc:
            if not isinstance(exc, SoundSentryError):
                log.error("scoring %s failed:\n%s", self.path, traceback.format_exc())
            self.signals.failed.emit(self.path, describe_error(exc))
            return
        self.signals.done.emit(result)


class FolderTask(QRunnable):
    """Score many files in order, one row each; a bad file gives an error row and the batch goes on."""

    def __init__(self, model, paths: list[str], *, detector: str) -> None:
        super().__init__()
        self.signals = TaskSignals()
        self.model, self.paths, self.detector = model, list(paths), detector
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        n = len(self.paths)
        done = 0
        # The command line's batch: a few files at once in threads, rows in order. threshold=None: the row
        # keeps the model's threshold; the table re-verdicts with the slider's.
        rows = score_files(self.model, self.paths, detector=self.detector, threshold=None)
        try:
            for i, row in enumerate(rows):
                if self._cancel.is_set():
                    break
                self.signals.row.emit(i, row)
                done = i + 1
                self.signals.progress.emit(done, n)
        finally:
            rows.close()  # files not started are dropped; those being scored finish unseen
        self.signals.done.emit(done)


class ModelTask(QRunnable):
    """Load a model (or run any other slow call returning one) off the GUI thread."""

    def __init__(self, what: str, fn, *args, **kwargs) -> None:
        super().__init__()
        self.signals = TaskSignals()
        self.what, self.fn, self.args, self.kwargs = what, fn, args, kwargs

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:
            if not isinstance(exc, SoundSentryError):
                log.error("%s failed:\n%s", self.what, traceback.format_exc())
            self.signals.failed.emit(self.what, describe_error(exc))
            return
        self.signals.done.emit(result)


class _LiveWorker(QObject):
    """Lives in the live scorer's thread; owns the StreamingScorer."""

    update = Signal(object, object, int, object)  # (new spectrogram frames, new window scores, first window, their latents)
    finished = Signal(object)  # ScoreResult or None (too short)
    failed = Signal(str)

    def __init__(self, model, *, sample_rate: int, detector: str) -> None:
        super().__init__()
        self._stream = model.stream(sample_rate=sample_rate, detector=detector)

    @Slot(object)
    def push(self, chunk: np.ndarray) -> None:
        try:
            up = self._stream.push(chunk)
        except Exception as exc:
            log.error("live scoring failed:\n%s", traceback.format_exc())
            self.failed.emit(describe_error(exc))
            return
        if up.frames.shape[1] or up.window_scores.size:
            self.update.emit(up.frames, up.window_scores, up.first_window, up.latents)

    @Slot()
    def finish(self) -> None:
        try:
            result = self._stream.finish()
        except SoundSentryError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.failed.emit(f"The recording cannot be scored: {problem}")
            self.finished.emit(None)
            return
        self.finished.emit(result)


class LiveScorer(QObject):
    """Scores audio chunks in a thread of its own, in order, and reports each new frame and window.

    ``push`` may be called from the GUI thread as often as the drain timer fires; the chunks
    queue up in the worker thread's event loop so the GUI never waits for the encoder.
    """

    update = Signal(object, object, int, object)
    finished = Signal(object)
    failed = Signal(str)
    _push = Signal(object)
    _finish = Signal()

    def __init__(self, model, *, sample_rate: int, detector: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("live-scorer")
        self._worker = _LiveWorker(model, sample_rate=sample_rate, detector=detector)
        self._worker.moveToThread(self._thread)
        self._push.connect(self._worker.push)
        self._finish.connect(self._worker.finish)
        self._worker.update.connect(self.update)
        self._worker.failed.connect(self.failed)
        self._worker.finished.connect(self._on_finished)
        self._thread.start()

    def push(self, chunk: np.ndarray) -> None:
        self._push.emit(chunk)

    def finish(self) -> None:
        """Flush the stream; ``finished`` follows once every queued chunk is scored."""
        self._finish.emit()

    def _on_finished(self, result) -> None:
        self.finished.emit(result)
        self.shutdown()

    def shutdown(self) -> None:
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait(5000)
