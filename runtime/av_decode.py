"""Decoding M4A/AAC through PyAV (the ``[m4a]`` extra), with the reading interface of ``soundfile.SoundFile``.

:func:`soundsentry.audio.read_audio` and :class:`soundsentry.audio.AudioBlocks` read blocks of
frames from whatever they opened; this class gives them those blocks from FFmpeg's decoder, so
an M4A file is checked, limited and streamed exactly as a FLAC file is.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import AudioDecodeError
from .formats import AV_EXTRA_HINT

__all__ = ["AvFile"]


class AvFile:
    """An audio file decoded through PyAV, read in blocks of float32 frames.

    Parameters
    ----------
    path : str or os.PathLike
        An M4A (AAC in MP4) file, or anything else FFmpeg decodes.

    Attributes
    ----------
    samplerate, channels : int
        Of the first audio stream.
    frames : int
        Frames the container's header announces (0 when it says nothing); never used to size a buffer.

    Raises
    ------
    AudioDecodeError
        PyAV is not installed (naming the extra), the file has no audio stream, or FFmpeg cannot open it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            import av
        except ImportError:
            raise AudioDecodeError(self.path, AV_EXTRA_HINT) from None
        self._av = av
        try:
            self._container = av.open(self.path, mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise AudioDecodeError(self.path, f"cannot decode audio ({_plain(exc)})") from None
        if not self._container.streams.audio:
            self._container.close()
            raise AudioDecodeError(self.path, "cannot decode audio (the file holds no audio stream)")
        self._stream = self._container.streams.audio[0]
        self.samplerate = int(self._stream.rate or 0)
        self.channels = int(self._stream.channels or 0)
        duration = self._stream.duration
        base = self._stream.time_base
        self.frames = int(duration * base * self.samplerate) if duration and base else 0
        # Packed float32 at the stream's own rate and layout: only the sample format changes.
        self._resampler = av.AudioResampler(format="flt", layout=self._stream.layout, rate=self.samplerate)
        self._frames = self._container.decode(self._stream)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._done = False

    def _decode_more(self) -> bool:
        try:
            frame = next(self._frames)
        except StopIteration:
            self._done = True
            frames = self._resampler.resample(None)  # flush what the resampler holds
        except self._av.FFmpegError as exc:
            raise AudioDecodeError(self.path, f"cannot decode audio ({_plain(exc)})") from None
        else:
            frames = self._resampler.resample(frame)
        for f in frames:
            block = f.to_ndarray().reshape(-1, self.channels)
            self._pending.append(block)
            self._n_pending += block.shape[0]
        return not self._done

    def read(self, frames: int, *, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """Up to ``frames`` frames, shape (n, channels) float32; n == 0 at the end of the file."""
        while self._n_pending < frames and self._decode_more():
            pass
        if not self._pending:
            return np.zeros((0, self.channels), np.float32)
        data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        out, rest = data[:frames], data[frames:]
        self._pending = [rest] if rest.shape[0] else []
        self._n_pending = rest.shape[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> AvFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _plain(exc: BaseException) -> str:
    # FFmpeg errors read "[Errno 1094995529] Invalid data found when processing input: 'x.m4a'":
    # keep the words, the file is named by the error that carries this text.
    text = getattr(exc, "strerror", None) or str(exc)
    return text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
