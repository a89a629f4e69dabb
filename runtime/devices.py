"""Audio input and output behind a seam tests and benchmarks can feed (no Qt here).

The app's window and ``soundsentry listen`` never talk to sounddevice directly: they ask an :class:`AudioBackend` for
devices and streams. :class:`SoundDeviceBackend` is the real one (PortAudio through
sounddevice); :class:`ClipBackend` replays a recording as if it were a microphone, with
the same callback contract sounddevice uses (``callback(indata, frames, time, status)``
from a thread other than the GUI's, in real-time-sized blocks), and consumes playback in
real time without a sound card. Tests, the screenshot script and the frame-rate
benchmark use it, and so do ``soundsentry listen``'s tests; so can a user on a machine without
PortAudio (``--input-clip``).

The audio callback only copies samples into a :class:`RingBuffer`; the GUI (on a timer) or
the headless listener drains it. Nothing in a callback touches Qt or allocates more than a copy.
sounddevice is imported only by :func:`default_backend`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "AudioBackend",
    "CallbackStop",
    "ClipBackend",
    "ClipInputStream",
    "ClockedOutputStream",
    "DeviceInfo",
    "NoAudioBackend",
    "RingBuffer",
    "SoundDeviceBackend",
    "default_backend",
]

#: Rates offered for an input device when it accepts them (checked with the backend).
COMMON_RATES = (16000, 22050, 32000, 44100, 48000)


@dataclass(frozen=True)
class DeviceInfo:
    """An input device as the window lists it."""

    index: int | str
    name: str
    max_input_channels: int
    default_samplerate: int


class Stream(Protocol):
    """The part of ``sounddevice.InputStream``/``OutputStream`` the app uses."""

    @property
    def active(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class AudioBackend(Protocol):
    available: bool
    reason: str
    callback_stop: type[Exception]

    def input_devices(self) -> list[DeviceInfo]: ...

    def supported_rates(self, device: DeviceInfo) -> list[int]: ...

    def input_stream(
        self, device: DeviceInfo, *, samplerate: int, blocksize: int, callback: Callable, finished_callback: Callable
    ) -> Stream: ...

    def output_stream(
        self, *, samplerate: int, channels: int, blocksize: int, callback: Callable, finished_callback: Callable
    ) -> Stream: ...


class CallbackStop(Exception):
    """Raised by an output callback to end playback (sounddevice.CallbackStop's role)."""


# --------------------------------------------------------------------------------------------
class RingBuffer:
    """A fixed-size single-producer/single-consumer sample buffer.

    ``write`` runs in the audio thread and only copies; ``read_all`` runs on the GUI timer.
    When the reader falls behind by more than the capacity the oldest samples are dropped
    and counted in :attr:`dropped` (an overflow the window reports) rather than blocking the
    audio thread.
    """

    def __init__(self, capacity: int, channels: int = 1) -> None:
        self._buf = np.zeros((capacity, channels), dtype=np.float32)
        self._capacity = capacity
        self._write = 0  # total samples ever written
        self._read = 0  # total samples ever read
        self._lock = threading.Lock()
        self.dropped = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def write(self, data: np.ndarray) -> None:
        data = data.reshape(data.shape[0], -1)
        n = data.shape[0]
        with self._lock:
            if n > self._capacity:
                self.dropped += n - self._capacity
                data = data[-self._capacity :]
                n = self._capacity
            start = self._write % self._capacity
            first = min(n, self._capacity - start)
            self._buf[start : start + first] = data[:first]
            self._buf[: n - first] = data[first:]
            self._write += n
            lag = self._write - self._read
            if lag > self._capacity:
                self.dropped += lag - self._capacity
                self._read = self._write - self._capacity

    def read_all(self) -> np.ndarray:
        """Every sample written since the last read, shape (n, channels)."""
        with self._lock:
            n = self._write - self._read
            start = self._read % self._capacity
            first = min(n, self._capacity - start)
            out = np.concatenate([self._buf[start : start + first], self._buf[: n - first]])
            self._read = self._write
        return out


# --------------------------------------------------------------------------------------------
class NoAudioBackend:
    """No PortAudio (or sounddevice not installed): the app runs in file-only mode."""

    available = False
    callback_stop = CallbackStop

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def input_devices(self) -> list[DeviceInfo]:
        return []

    def supported_rates(self, device: DeviceInfo) -> list[int]:
        return []

    def input_stream(self, device, **kwargs):
        raise RuntimeError(f"no audio input: {self.reason}")

    def output_stream(self, **kwargs):
        raise RuntimeError(f"no audio output: {self.reason}")


class SoundDeviceBackend:
    """The real microphone and speakers, through sounddevice (PortAudio)."""

    available = True
    reason = ""

    def __init__(self, sd: Any) -> None:
        self._sd = sd
        self.callback_stop = sd.CallbackStop

    def input_devices(self) -> list[DeviceInfo]:
        out = []
        for i, dev in enumerate(self._sd.query_devices()):
            if int(dev["max_input_channels"]) > 0:
                out.append(
                    DeviceInfo(i, str(dev["name"]), int(dev["max_input_channels"]), int(dev["default_samplerate"]))
                )
        return out

    def supported_rates(self, device: DeviceInfo) -> list[int]:
        rates = []
        for rate in sorted({*COMMON_RATES, device.default_samplerate}):
            try:
                self._sd.check_input_settings(device=device.index, samplerate=rate, channels=1, dtype="float32")
            except Exception:  # PortAudio says no: not offered
                continue
            rates.append(rate)
        return rates

    def input_stream(self, device, *, samplerate, blocksize, callback, finished_callback):
        return self._sd.InputStream(
            device=device.index,
            samplerate=samplerate,
            channels=1,
            dtype="float32",
            blocksize=blocksize,
            callback=callback,
            finished_callback=finished_callback,
        )

    def output_stream(self, *, samplerate, channels, blocksize, callback, finished_callback):
        return self._sd.OutputStream(
            samplerate=samplerate,
            channels=channels,
            dtype="float32",
            blocksize=blocksize,
            callback=callback,
            finished_callback=finished_callback,
        )


def default_backend() -> AudioBackend:
    """sounddevice if it imports (it raises OSError when PortAudio is missing), else file-only mode."""
    try:
        import sounddevice as sd
    except ImportError:
        return NoAudioBackend("sounddevice is not installed (pip install 'soundsentry[gui]')")
    except OSError as exc:  # "PortAudio library not found"
        return NoAudioBackend(f"{exc} (install libportaudio2)")
    try:
        sd.query_devices()
    except Exception as exc:
        return NoAudioBackend(f"PortAudio cannot list devices: {exc}")
    return SoundDeviceBackend(sd)


# --------------------------------------------------------------------------------------------
class _ClockedThread:
    """Calls ``step(frames)`` every ``frames / samplerate / speed`` seconds from its own thread."""

    def __init__(self, *, samplerate: int, blocksize: int, speed: float, finished_callback: Callable | None) -> None:
        self._rate = samplerate
        self._block = blocksize
        self._speed = speed
        self._finished_callback = finished_callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._active = True
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._active = False

    def close(self) -> None:
        self.stop()

    def _run(self) -> None:
        period = self._block / self._rate / self._speed
        next_t = time.perf_counter()
        try:
            while not self._stop.is_set():
                if not self._step(self._block):
                    break
                next_t += period
                delay = next_t - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
        except Exception:
            log.exception("%s stopped with an error", type(self).__name__)
        finally:
            self._active = False
            if self._finished_callback is not None:
                self._finished_callback()

    def _step(self, frames: int) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


class ClipInputStream(_ClockedThread):
    """A recording played into ``callback(indata, frames, time, status)`` as a microphone would.

    Parameters
    ----------
    samples : np.ndarray, shape (n,) or (n, channels)
        What the "microphone" hears, at ``samplerate``.
    blocksize : int
        Samples per callback (a sound card's period, e.g. 1024).
    speed : float
        1.0 is real time; tests may run faster, the chunks stay the same size.
    fail_after : float, optional
        Seconds of audio after which the device "disappears" (the stream aborts and
        ``finished_callback`` runs, as PortAudio does when a USB microphone is unplugged).
    hang_after : float, optional
        Seconds of audio after which the device goes silent but the stream stays open
        (what some drivers do when a device is pulled).
    """

    def __init__(
        self,
        samples: np.ndarray,
        *,
        samplerate: int,
        blocksize: int = 1024,
        callback: Callable,
        finished_callback: Callable | None = None,
        speed: float = 1.0,
        loop: bool = False,
        fail_after: float | None = None,
        hang_after: float | None = None,
    ) -> None:
        super().__init__(samplerate=samplerate, blocksize=blocksize, speed=speed, finished_callback=finished_callback)
        samples = np.asarray(samples, dtype=np.float32)
        self._samples = samples.reshape(samples.shape[0], -1)
        self._callback = callback
        self._pos = 0
        self._loop = loop
        self._fail_at = None if fail_after is None else int(fail_after * samplerate)
        self._hang_at = None if hang_after is None else int(hang_after * samplerate)

    def _step(self, frames: int) -> bool:
        if self._fail_at is not None and self._pos >= self._fail_at:
            log.warning("simulated input device disappeared after %d samples", self._pos)
            return False
        if self._hang_at is not None and self._pos >= self._hang_at:
            return True  # still "running", nothing delivered
        if self._pos >= self._samples.shape[0]:
            if not self._loop:
                return False
            self._pos = 0
        block = self._samples[self._pos : self._pos + frames]
        self._pos += block.shape[0]
        # sounddevice hands the callback a fresh (frames, channels) float32 array each time.
        self._callback(block.copy(), block.shape[0], None, None)
        return True


class ClockedOutputStream(_ClockedThread):
    """An output "device" that pulls ``callback(outdata, frames, time, status)`` in real time.

    What the callback wrote is kept in :attr:`played` so a test can check what was heard.
    ``callback`` raising :class:`CallbackStop` ends the stream, as ``sounddevice.CallbackStop``
    does in sounddevice.
    """

    def __init__(
        self,
        *,
        samplerate: int,
        channels: int = 1,
        blocksize: int = 1024,
        callback: Callable,
        finished_callback: Callable | None = None,
        speed: float = 1.0,
    ) -> None:
        super().__init__(samplerate=samplerate, blocksize=blocksize, speed=speed, finished_callback=finished_callback)
        self._callback = callback
        self._channels = channels
        self.played: list[np.ndarray] = []

    def _step(self, frames: int) -> bool:
        out = np.zeros((frames, self._channels), dtype=np.float32)
        try:
            self._callback(out, frames, None, None)
        except CallbackStop:
            self.played.append(out.copy())
            return False
        self.played.append(out.copy())
        return True


class ClipBackend:
    """A backend whose only input device replays a recording (and whose output is silent)."""

    available = True
    reason = ""
    callback_stop = CallbackStop

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        loop: bool = False,
        fail_after: float | None = None,
        hang_after: float | None = None,
        name: str | None = None,
    ) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.name = name or f"Recording: {self.path.name}"  # the input device's name in the window
        self.samples, self.samplerate = sf.read(str(path), dtype="float32", always_2d=True)
        self.speed = speed
        self.loop = loop
        self.fail_after = fail_after
        self.hang_after = hang_after
        self.streams: list[_ClockedThread] = []

    def input_devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(f"clip:{self.path.name}", self.name, 1, int(self.samplerate))]

    def supported_rates(self, device: DeviceInfo) -> list[int]:
        return [int(self.samplerate)]

    def input_stream(self, device, *, samplerate, blocksize, callback, finished_callback):
        if samplerate != self.samplerate:
            raise ValueError(f"{self.path.name} is recorded at {self.samplerate} Hz, not {samplerate} Hz")
        stream = ClipInputStream(
            self.samples[:, :1],
            samplerate=samplerate,
            blocksize=blocksize,
            callback=callback,
            finished_callback=finished_callback,
            speed=self.speed,
            loop=self.loop,
            fail_after=self.fail_after,
            hang_after=self.hang_after,
        )
        self.streams.append(stream)
        return stream

    def output_stream(self, *, samplerate, channels, blocksize, callback, finished_callback):
        stream = ClockedOutputStream(
            samplerate=samplerate,
            channels=channels,
            blocksize=blocksize,
            callback=callback,
            finished_callback=finished_callback,
            speed=self.speed,
        )
        self.streams.append(stream)
        return stream
