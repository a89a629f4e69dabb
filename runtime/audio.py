"""Decoding audio files into mono float32 samples at the model's rate.

soundfile (libsndfile) reads WAV, FLAC, OGG, MP3, AIFF, CAF and the other formats it lists
(:mod:`soundsentry.formats`) in any integer or float sample format; M4A/AAC goes through PyAV
(:mod:`soundsentry.av_decode`, the ``[m4a]`` extra); soxr resamples with a proper anti-aliasing filter. Every failure becomes an
:class:`~soundsentry.errors.AudioError` that names the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioDecodeError, AudioTooLongError, InvalidAudioError
from .formats import needs_av

__all__ = [
    "MAX_DECODED_SAMPLES",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioBlocks",
    "ChannelPolicy",
    "check_sample_rate",
    "check_samples",
    "load_audio",
    "read_audio",
    "resample",
    "select_channel",
]

#: How a multichannel recording becomes the mono signal the model hears.
#: ``"first"`` takes channel 0 (what MIMII and DCASE evaluations score);
#: ``"mean"`` mixes all channels down.
ChannelPolicy = Literal["first", "mean"]


#: Most samples (frames x channels) one file may decode to: 2 GiB of float32, an hour of
#: 8 channels at 16 kHz or of stereo at 48 kHz. A header cannot make the decoder allocate
#: more, whatever length it claims.
MAX_DECODED_SAMPLES = 1 << 29

# Samples decoded per read (8 MiB of float32): the header's frame count is never trusted for an
# allocation. A 10-s clip of 8 channels at 16 kHz fits one read, so it is not copied into one piece.
_BLOCK_SAMPLES = 1 << 21


#: Sample rates a file may have. Below 1 kHz a file holds nothing of a machine's sound the
#: model hears, and resampling it to 16 kHz would multiply its length (a header saying 1 Hz
#: turns 40,000 samples into 640 million); above 768 kHz no audio interface records.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000


def check_sample_rate(rate: int, *, path: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`InvalidAudioError` for a rate outside ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidAudioError(
            path, f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz (damaged header?)"
        )


def read_audio(path: str | os.PathLike[str], *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file.

    ``max_seconds`` bounds what is held in memory: a file that decodes to more raises
    :class:`AudioTooLongError` (so a caller can stream it instead), whatever its header said.

    Returns
    -------
    samples : np.ndarray, shape (n_samples, n_channels), float32
    sample_rate : int

    Raises
    ------
    AudioDecodeError
        Missing file, a folder or other non-regular file, no permission, not audio, or a
        decoder error.
    InvalidAudioError
        More than :data:`MAX_DECODED_SAMPLES` samples.
    """
    p = os.fspath(path)
    _check_openable(p)
    try:
        with _open(p) as fh:
            rate, channels = int(fh.samplerate), int(fh.channels)
            if rate <= 0 or channels <= 0:
                raise AudioDecodeError(p, f"cannot decode audio (header says {rate} Hz, {channels} channels)")
            check_sample_rate(rate, path=p)
            limit = MAX_DECODED_SAMPLES if max_seconds is None else min(MAX_DECODED_SAMPLES, int(max_seconds * rate) * channels)
            blocks, total = [], 0
            while True:
                block = fh.read(max(1, _BLOCK_SAMPLES // channels), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                total += block.size
                if total > limit:
                    raise AudioTooLongError(
                        p,
                        f"too long to decode in one piece: more than {limit // channels / rate:.0f} s "
                        f"at {rate} Hz x {channels} channels",
                    )
                blocks.append(block)
    except PermissionError as exc:
        raise AudioDecodeError(p, "permission denied") from exc
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError, EOFError) as exc:
        raise AudioDecodeError(p, f"cannot decode audio ({_short(exc)})") from exc
    if not blocks:
        return np.zeros((0, channels), np.float32), rate
    samples = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return samples, rate


def _check_openable(p: str) -> None:
    """Raise :class:`AudioDecodeError` unless ``p`` is a non-empty regular file we may read."""
    try:
        info = os.stat(p)
    except FileNotFoundError:
        raise AudioDecodeError(p, "file not found") from None
    except OSError as exc:  # a name too long, a folder on the way without permission, a link loop
        raise AudioDecodeError(p, f"cannot open ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioDecodeError(p, "is a folder, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO would wait forever for a writer; a device could be endless.
        raise AudioDecodeError(p, "is not a regular file (a pipe, socket or device)")
    if info.st_size == 0:
        raise AudioDecodeError(p, "file is empty (0 bytes)")
    try:
        open(p, "rb").close()  # tells "no permission" apart from "not audio", which libsndfile does not
    except FileNotFoundError:
        raise AudioDecodeError(p, "file not found") from None
    except PermissionError:
        raise AudioDecodeError(p, "permission denied") from None
    except OSError as exc:
        raise AudioDecodeError(p, f"cannot open ({exc.strerror or type(exc).__name__})") from None


def _open(p: str):
    """The decoder for ``p``: PyAV for M4A/MP4, libsndfile for the rest (same reading interface)."""
    if needs_av(p):
        from .av_decode import AvFile

        return AvFile(p)
    # Bytes, not str: soundfile encodes a str strictly, so a name that is not valid UTF-8
    # (a surrogate-escaped str here) would fail as "cannot decode".
    return sf.SoundFile(os.fsencode(p))


def _short(exc: BaseException) -> str:
    # libsndfile's own words ("Format not recognised."), not soundfile's prefix that repeats
    # the file name as Python bytes (b'...'): the error carrying this text names the file.
    error_string = getattr(exc, "error_string", None)
    if isinstance(exc, sf.LibsndfileError) and error_string:
        return str(error_string).strip().rstrip(".")
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def select_channel(samples: np.ndarray, *, policy: ChannelPolicy = "first") -> np.ndarray:
    """Reduce ``(n_samples, n_channels)`` samples to mono following the model's channel policy.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    if samples.ndim == 1:
        return samples
    if policy == "first":
        return np.ascontiguousarray(samples[:, 0])
    if policy == "mean":
        return samples.mean(axis=1, dtype=np.float32)
    raise ValueError(f"unknown channel policy {policy!r}")


def resample(samples: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along axis 0 with soxr's high-quality anti-aliasing filter (no-op if rates match)."""
    if orig_sr == target_sr:
        return samples
    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def check_samples(samples: np.ndarray, *, path: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`InvalidAudioError` for empty input or NaN/infinite samples."""
    if samples.size == 0:
        raise InvalidAudioError(path, "contains no samples")
    if not np.isfinite(samples).all():
        raise InvalidAudioError(path, "contains NaN or infinite samples")


def load_audio(path: str | os.PathLike[str], *, sample_rate: int, channel: ChannelPolicy = "first") -> np.ndarray:
    """Decode, pick the channel, check and resample a file.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file (:func:`soundsentry.formats.audio_suffixes`).
    sample_rate : int
        Rate the result is resampled to.
    channel : {"first", "mean"}
        Channel policy for multichannel files.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    samples, rate = read_audio(path)
    check_samples(samples, path=path)
    mono = select_channel(samples, policy=channel)
    return resample(mono, orig_sr=rate, target_sr=sample_rate)


class AudioBlocks:
    """Decode a file block by block, for recordings too long to hold in memory.

    Memory stays at one block whatever the file's length, so an hour of audio costs what a
    few seconds do. The samples are the ones :func:`read_audio` and :func:`select_channel`
    give for the whole file, cut into consecutive blocks.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file (:func:`soundsentry.formats.audio_suffixes`).
    block_frames : int
        Frames (samples per channel) per block; the last block may be shorter.
    channel : {"first", "mean"}
        Channel policy for multichannel files.

    Attributes
    ----------
    sample_rate, channels : int
        From the file's header.

    Raises
    ------
    AudioDecodeError
        On opening (missing, not audio, ...) or, while iterating, on a decoder error.
    InvalidAudioError
        While iterating, for a block with NaN or infinite samples, or a file with no samples.

    Examples
    --------
    >>> with AudioBlocks("long.flac", block_frames=65536) as blocks:  # doctest: +SKIP
    ...     for mono in blocks:  # np.ndarray, shape (n <= 65536,), float32
    ...         ...
    """

    def __init__(self, path: str | os.PathLike[str], *, block_frames: int = 1 << 16, channel: ChannelPolicy = "first"):
        if block_frames < 1:
            raise ValueError("block_frames must be positive")
        self.path = os.fspath(path)
        self.block_frames = int(block_frames)
        self.channel: ChannelPolicy = channel
        _check_openable(self.path)
        try:
            self._file = _open(self.path)
        except PermissionError as exc:
            raise AudioDecodeError(self.path, "permission denied") from exc
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError, EOFError) as exc:
            raise AudioDecodeError(self.path, f"cannot decode audio ({_short(exc)})") from exc
        self.sample_rate, self.channels = int(self._file.samplerate), int(self._file.channels)
        if self.sample_rate <= 0 or self.channels <= 0:
            self.close()
            raise AudioDecodeError(
                self.path, f"cannot decode audio (header says {self.sample_rate} Hz, {self.channels} channels)"
            )
        try:
            check_sample_rate(self.sample_rate, path=self.path)
        except InvalidAudioError:
            self.close()
            raise

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks of shape (n,), ``0 < n <= block_frames``, then close the file."""
        delivered = 0
        try:
            while True:
                try:
                    block = self._file.read(self.block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError, EOFError) as exc:
                    raise AudioDecodeError(self.path, f"cannot decode audio ({_short(exc)})") from exc
                if block.shape[0] == 0:
                    break
                check_samples(block, path=self.path)
                delivered += block.shape[0]
                yield select_channel(block, policy=self.channel)
        finally:
            self.close()
        if delivered == 0:
            raise InvalidAudioError(self.path, "contains no samples")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioBlocks:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
