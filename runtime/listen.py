"""Listening to a microphone without a screen: the app's live path, headless.

:class:`Listener` opens an input stream through an :class:`~soundsentry.devices.AudioBackend`
(sounddevice, or a recording replayed as a microphone), drains the ring buffer the audio
callback fills, feeds the model's :class:`~soundsentry.streaming.StreamingScorer` (which
resamples from the device's rate) and hands on one :class:`WindowRow` per analysis window: its
score, and the *running* score and verdict, the model's aggregate (mean) of the last
``running_windows`` window scores. The card's threshold is calibrated on clip scores, the mean
over a 10-s clip's windows, so the running verdict over that many windows is the one to act on
(and the one alerts follow); a single window is noisier.

``save`` keeps what was heard in rolling FLAC files of fixed length (:class:`RollingAudio`), so a
flagged moment can be opened in the app later; each row names the file and the offset of its
window in it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .devices import AudioBackend, DeviceInfo, RingBuffer
from .errors import SoundSentryError

__all__ = [
    "LISTEN_FIELDS",
    "AudioInputError",
    "Listener",
    "RollingAudio",
    "WindowRow",
    "choose_device",
    "clip_windows",
]

log = logging.getLogger(__name__)

#: A stream that delivers nothing for this long is treated as a lost device (as in the app).
SILENT_DEVICE_SECONDS = 2.0


class AudioInputError(SoundSentryError):
    """No audio input: no PortAudio, no such device, a rate it refuses, or the device went away."""


@dataclass
class WindowRow:
    """One analysis window of a live stream.

    Attributes
    ----------
    time : str
        Wall-clock time (ISO 8601 UTC) the window was scored.
    window : int
        Index since listening began.
    start_s : float
        Start of the window in seconds of audio since listening began.
    score : float
        The window's anomaly score.
    running_score : float
        Clip score (:meth:`~soundsentry.Model.clip_score`: the card's aggregate of the window scores, or the
        views detector's judgement of the windows' latents) of the last ``running_windows`` windows.
    verdict : str
        ``running_score > threshold``: ``"abnormal"`` or ``"normal"``.
    file, file_offset_s
        The rolling audio file holding the window's start and its offset there (``--save``).
    """

    time: str
    window: int
    start_s: float
    score: float
    running_score: float
    verdict: str
    threshold: float
    model: str
    detector: str
    file: str = ""
    file_offset_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


#: Field names of a :class:`WindowRow`, in CSV column order.
LISTEN_FIELDS = tuple(WindowRow.__dataclass_fields__)


def clip_windows(model, seconds: float = 10.0) -> int:
    """Windows in a clip of ``seconds`` (the length the model's threshold was calibrated on)."""
    g = model.encoder.stream
    # Centred framing: the padding on both sides adds frames; a window needs window_frames of them.
    frames = 1 + (int(seconds * model.sample_rate) + 2 * g.pad_samples - g.frame_length) // g.frame_hop
    return max(1, 1 + (frames - g.window_frames) // g.window_hop_frames)


def choose_device(backend: AudioBackend, wanted: str | None) -> DeviceInfo:
    """The input device ``wanted`` (an index, or part of its name; default: the first).

    Raises
    ------
    AudioInputError
        No audio input at all, or no device matches (the message lists them).
    """
    if not backend.available:
        raise AudioInputError(f"no audio input: {backend.reason}")
    devices = backend.input_devices()
    if not devices:
        raise AudioInputError("no audio input device found")
    if wanted is None:
        return devices[0]
    for dev in devices:
        if str(dev.index) == wanted:
            return dev
    matches = [dev for dev in devices if wanted.lower() in dev.name.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{d.index}: {d.name}" for d in devices)
    how = "several devices match" if matches else "no device matches"
    raise AudioInputError(f"{how} {wanted!r} (input devices: {listing})")


class RollingAudio:
    """Writes mono audio into FLAC files of ``seconds`` each in ``folder``, named by their start time.

    ``keep`` > 0 deletes the oldest files this writer made beyond that many.
    """

    def __init__(self, folder: str | os.PathLike[str], *, sample_rate: int, seconds: float = 60.0, keep: int = 0):
        if seconds <= 0:
            raise ValueError("--save-seconds must be positive")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.per_file = max(1, round(seconds * sample_rate))
        self.keep = keep
        self._file = None
        self._path: Path | None = None
        self._in_file = 0
        self._written = 0  # samples since listening began
        self._starts: deque[tuple[int, Path]] = deque()  # (first sample, file), oldest first
        self.made: list[Path] = []

    def write(self, samples: np.ndarray) -> None:
        import soundfile as sf

        while samples.shape[0]:
            if self._file is None:
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")[:-4] + "Z"
                self._path = self.folder / f"listen_{stamp}.flac"
                self._file = sf.SoundFile(self._path, "w", self.sample_rate, 1, subtype="PCM_24", format="FLAC")
                self._in_file = 0
                self._starts.append((self._written, self._path))
                self.made.append(self._path)
                self._prune()
            n = min(samples.shape[0], self.per_file - self._in_file)
            self._file.write(samples[:n])
            self._in_file += n
            self._written += n
            samples = samples[n:]
            if self._in_file >= self.per_file:
                self._close_file()

    def where(self, seconds: float) -> tuple[str, float | None]:
        """The file holding the moment ``seconds`` after listening began, and the offset in it."""
        sample = round(seconds * self.sample_rate)
        for first, path in reversed(self._starts):
            if first <= sample:
                return str(path), (sample - first) / self.sample_rate
        return "", None

    def _prune(self) -> None:
        while self.keep > 0 and len(self._starts) > self.keep:
            _, old = self._starts.popleft()
            try:
                old.unlink()
            except OSError as exc:
                log.warning("cannot delete old audio %s: %s", old, exc)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._close_file()


class Listener:
    """Score a live input stream window by window until stopped, the stream ends or the device is lost.

    Parameters
    ----------
    model : soundsentry.Model
    backend : AudioBackend
    device : DeviceInfo
    sample_rate : int
        The device's rate; the streaming scorer resamples to the model's.
    on_window : callable
        Called with each :class:`WindowRow`, in the listener's thread.
    detector, threshold
        As for ``soundsentry score``.
    running_windows : int, optional
        Windows in the running score (default: as many as a 10-s clip has).
    save : RollingAudio, optional
    block_seconds : float
        Samples per audio callback.
    poll_seconds : float
        How often the ring buffer is drained.
    """

    def __init__(
        self,
        model,
        backend: AudioBackend,
        device: DeviceInfo,
        *,
        sample_rate: int,
        on_window: Callable[[WindowRow], None],
        detector: str | None = None,
        threshold: float | None = None,
        running_windows: int | None = None,
        save: RollingAudio | None = None,
        block_seconds: float = 0.05,
        poll_seconds: float = 0.05,
    ) -> None:
        self.model = model
        self.backend = backend
        self.device = device
        self.sample_rate = int(sample_rate)
        self.detector = detector or model.default_detector
        self.threshold = model.thresholds[self.detector] if threshold is None else float(threshold)
        self._on_window = on_window
        self._recent: deque[float] = deque(maxlen=running_windows or clip_windows(model))
        # The views detector judges a clip from its windows' latents, not from the window scores.
        self._recent_latents: deque[np.ndarray] = deque(maxlen=self._recent.maxlen)
        self.save = save
        self._block = max(1, round(self.sample_rate * block_seconds))
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._ended = threading.Event()
        self.windows = 0
        self.abnormal = 0
        self.samples = 0

    def stop(self) -> None:
        """Ask :meth:`run` to finish (safe from a signal handler)."""
        self._stop.set()

    def status_line(self) -> str:
        seconds = self.samples / self.sample_rate if self.sample_rate else 0.0
        return (
            f"status: {seconds / 3600:.2f} h heard from {self.device.name!r} at {self.sample_rate} Hz, "
            f"{self.windows} windows, {self.abnormal} with an abnormal running verdict"
        )

    def run(self) -> str:
        """Listen until :meth:`stop` or the end of the stream.

        Returns
        -------
        str
            ``"stopped"`` after :meth:`stop`; ``"ended"`` when the stream ended by itself (the end
            of a replayed recording; for a microphone, a device that went away).

        Raises
        ------
        AudioInputError
            The stream cannot be opened, or the device stopped delivering audio while listening
            (unplugged, taken by another program). What was heard until then has been handed on.
        """
        scorer = self.model.stream(sample_rate=self.sample_rate, detector=self.detector, threshold=self.threshold)
        ring = RingBuffer(capacity=self.sample_rate * 30)  # 30 s: scoring may stall that long before audio is lost

        def callback(indata, frames, time_info, status) -> None:
            ring.write(indata)  # audio thread: one copy

        try:
            stream = self.backend.input_stream(
                self.device,
                samplerate=self.sample_rate,
                blocksize=self._block,
                callback=callback,
                finished_callback=self._ended.set,
            )
            stream.start()
        except Exception as exc:  # PortAudio's errors are plain Exceptions with the reason in words
            raise AudioInputError(f"cannot open {self.device.name!r} at {self.sample_rate} Hz: {exc}") from exc
        last_data = time.monotonic()
        lost = ""
        try:
            while True:
                stopping = self._stop.is_set()
                ended = self._ended.is_set()
                data = ring.read_all()
                if data.shape[0]:
                    last_data = time.monotonic()
                    self._consume(scorer, data[:, 0])
                elif not (stopping or ended) and time.monotonic() - last_data > SILENT_DEVICE_SECONDS:
                    lost = f"no audio from {self.device.name!r} for {SILENT_DEVICE_SECONDS:g} s (unplugged?)"
                if stopping or ended or lost:
                    break
                self._stop.wait(self._poll)
        finally:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:
                log.warning("closing the input stream: %s", exc)
            self._consume(scorer, ring.read_all()[:, 0])
            if ring.dropped:
                log.warning("%d samples were lost: scoring fell behind the device", ring.dropped)
            if scorer.samples_received:
                try:
                    scores = scorer.finish().window_scores
                    self._emit(scores[self.windows :], scorer.latents[self.windows :])
                except SoundSentryError as exc:  # less than one window heard
                    log.warning("nothing scored: %s", exc)
            if self.save is not None:
                self.save.close()
        if lost:
            raise AudioInputError(lost)
        return "stopped" if self._stop.is_set() else "ended"

    def _consume(self, scorer, mono: np.ndarray) -> None:
        if not mono.shape[0]:
            return
        self.samples += mono.shape[0]
        if self.save is not None:
            self.save.write(mono)
        update = scorer.push(mono)
        self._emit(update.window_scores, update.latents)

    def _emit(self, scores: np.ndarray, latents: np.ndarray) -> None:
        if not scores.shape[0]:
            return
        g = self.model.encoder.stream
        index = np.arange(self.windows, self.windows + scores.shape[0])
        # As the encoder's window_starts, without building the whole history: window i begins
        # i window hops in, less the padding of centred framing, clipped at 0.
        starts = np.maximum(index * g.window_hop_frames * g.frame_hop - g.pad_samples, 0) / self.model.sample_rate
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        for score, start, latent in zip(scores, starts, latents, strict=True):
            self._recent.append(float(score))
            self._recent_latents.append(latent)
            running = self.model.clip_score(
                np.asarray(self._recent), latents=np.stack(self._recent_latents), detector=self.detector
            )
            verdict = "abnormal" if running > self.threshold else "normal"
            file, offset = self.save.where(float(start)) if self.save is not None else ("", None)
            row = WindowRow(
                time=now,
                window=self.windows,
                start_s=float(start),
                score=float(score),
                running_score=running,
                verdict=verdict,
                threshold=self.threshold,
                model=self.model.name,
                detector=self.detector,
                file=file,
                file_offset_s=offset,
            )
            self.windows += 1
            self.abnormal += verdict == "abnormal"
            self._on_window(row)
