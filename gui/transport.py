"""Playback and recording through an :class:`~soundsentry.devices.AudioBackend`.

Both keep the audio thread's work to a copy: the player's callback copies the next block
out of the samples and advances a position the GUI reads on a timer for the cursor; the
recorder's callback copies the block into a ring buffer the GUI drains on a timer.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from soundsentry.devices import AudioBackend, DeviceInfo, RingBuffer

log = logging.getLogger(__name__)

__all__ = ["Player", "Recorder"]

BLOCKSIZE = 1024  # playback: samples per callback, 64 ms at 16 kHz
#: Recording blocks of 10 ms: a spectrogram column (hop 512 at 16 kHz) is 32 ms, so each column
#: reaches the screen within about one block and one drain tick, and the live view can move at
#: the column rate (31 per second) instead of the 16 per second that 64 ms blocks would allow.
RECORD_BLOCK_SECONDS = 0.01
#: A stream that delivers nothing for this long while recording is treated as a lost device.
SILENT_DEVICE_SECONDS = 2.0


class Player(QObject):
    """Plays mono samples (or a region of them) and reports the playing position.

    Signals
    -------
    position(float)
        Seconds from the start of the samples, about every 30 ms while playing.
    stopped()
    failed(str)
    """

    position = Signal(float)
    stopped = Signal()
    failed = Signal(str)

    def __init__(self, backend: AudioBackend, parent=None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._stream = None
        self._samples = np.zeros(0, np.float32)
        self._rate = 16000
        self._pos = 0
        self._end = 0
        self._done = threading.Event()
        self._timer = QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._tick)

    @property
    def playing(self) -> bool:
        return self._stream is not None

    def play(self, samples: np.ndarray, *, sample_rate: int, start: float = 0.0, stop: float | None = None) -> bool:
        self.stop()
        if not self.backend.available:
            self.failed.emit(f"cannot play: {self.backend.reason}")
            return False
        self._samples = np.ascontiguousarray(samples, dtype=np.float32)
        self._rate = int(sample_rate)
        n = self._samples.shape[0]
        self._pos = int(np.clip(start * sample_rate, 0, n))
        self._end = n if stop is None else int(np.clip(stop * sample_rate, self._pos, n))
        self._done.clear()
        try:
            self._stream = self.backend.output_stream(
                samplerate=self._rate,
                channels=1,
                blocksize=BLOCKSIZE,
                callback=self._callback,
                finished_callback=self._done.set,
            )
            self._stream.start()
        except Exception as exc:
            log.warning("playback failed: %s", exc)
            self._stream = None
            self.failed.emit(f"Cannot play: no usable audio output ({exc})")
            return False
        self._timer.start()
        return True

    def _callback(self, outdata, frames, time_info, status) -> None:
        # Audio thread: copy the next block, advance the position, nothing else.
        n = min(frames, self._end - self._pos)
        outdata[:n, 0] = self._samples[self._pos : self._pos + n]
        outdata[n:] = 0
        self._pos += n
        if self._pos >= self._end:
            raise self.backend.callback_stop()

    def _tick(self) -> None:
        self.position.emit(self._pos / self._rate)
        if self._done.is_set():
            self.stop()

    def stop(self) -> None:
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        self._timer.stop()
        try:
            stream.stop()
            stream.close()
        except Exception as exc:  # a device that vanished cannot be stopped cleanly
            log.warning("closing the output stream: %s", exc)
        self.stopped.emit()


class Recorder(QObject):
    """Records from an input device into memory while handing each drained chunk on.

    Signals
    -------
    chunk(np.ndarray)
        Samples drained from the ring buffer, shape (n,), at the device's rate.
    level(float)
        Peak of the last chunk (0..1), for the level meter.
    stopped(str)
        The recording ended; the text is empty for a user stop, else what went wrong.
    """

    chunk = Signal(object)
    level = Signal(float)
    stopped = Signal(str)

    def __init__(self, backend: AudioBackend, parent=None, *, drain_ms: int = 10) -> None:
        super().__init__(parent)
        self.backend = backend
        self._stream = None
        self._ring: RingBuffer | None = None
        self._chunks: list[np.ndarray] = []
        self.sample_rate = 0
        self.paused = False
        self._device_gone = threading.Event()
        self._user_stop = False
        self._last_data = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(drain_ms)
        self._timer.timeout.connect(self.drain)

    @property
    def recording(self) -> bool:
        return self._stream is not None

    @property
    def samples(self) -> np.ndarray:
        """Everything recorded so far, shape (n,), at :attr:`sample_rate`."""
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    @property
    def dropped(self) -> int:
        return self._ring.dropped if self._ring is not None else 0

    def start(self, device: DeviceInfo, *, sample_rate: int) -> None:
        """Open and start the input stream; raises what the backend raises (shown by the window)."""
        self.stop()
        self._chunks = []
        self.sample_rate = int(sample_rate)
        self.paused = False
        self._user_stop = False
        self._device_gone.clear()
        self._ring = RingBuffer(capacity=self.sample_rate * 10)  # 10 s: the GUI may stall that long
        self._stream = self.backend.input_stream(
            device,
            samplerate=self.sample_rate,
            blocksize=max(1, round(self.sample_rate * RECORD_BLOCK_SECONDS)),
            callback=self._callback,
            finished_callback=self._finished,
        )
        self._stream.start()
        self._last_data = time.monotonic()
        self._timer.start()

    def _callback(self, indata, frames, time_info, status) -> None:
        # Audio thread: one copy into the ring buffer. Overflows are counted by the buffer.
        self._ring.write(indata)

    def _finished(self) -> None:
        # Audio thread: the stream ended. If the user did not ask for it, the device is gone.
        if not self._user_stop and not self.paused:
            self._device_gone.set()

    def pause(self, on: bool) -> None:
        if self._stream is None or on == self.paused:
            return
        self.paused = on
        if on:
            self._stream.stop()
            self.drain()
        else:
            self._last_data = time.monotonic()
            self._stream.start()

    def drain(self) -> None:
        """Move what the callback buffered to the recording and the ``chunk`` signal (GUI timer)."""
        if self._ring is None:
            return
        data = self._ring.read_all()
        now = time.monotonic()
        if data.shape[0]:
            self._last_data = now
            mono = data[:, 0].copy()
            self._chunks.append(mono)
            self.chunk.emit(mono)
            self.level.emit(float(np.max(np.abs(mono))))
        if self._stream is None:
            return
        if self._device_gone.is_set():
            self._close("the input device stopped delivering audio (unplugged or taken by another program)")
        elif not self.paused and now - self._last_data > SILENT_DEVICE_SECONDS:
            # Some drivers keep a stream open after the device is pulled, and just stop calling back.
            self._close(f"no audio from the input device for {SILENT_DEVICE_SECONDS:g} s (unplugged?)")

    def stop(self) -> None:
        if self._stream is None:
            return
        self._user_stop = True
        self._close("")

    def _close(self, problem: str) -> None:
        stream, self._stream = self._stream, None
        try:
            stream.stop()
            stream.close()
        except Exception as exc:
            log.warning("closing the input stream: %s", exc)
        self._timer.stop()
        self.drain()
        self.stopped.emit(problem)
