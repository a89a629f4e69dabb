"""The one path from a file or an array to scores.

decode -> channel -> (resample) -> too-short check -> features -> windows -> embed -> every
requested detector at once -> aggregation. :meth:`Model.score`, batch scoring, streaming (its
length check), evaluation, enrollment's loading and the GUI workers all go through here, so a
change to any step changes them all alike.

The functions take a :class:`~soundsentry.model.Model` but do not import it (the model imports this module).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .audio import check_samples, read_audio, select_channel
from .errors import AudioTooLongError, AudioTooShortError
from .quality import signal_flags

if TYPE_CHECKING:
    from .model import Model, ScoreResult

__all__ = [
    "STREAM_ABOVE_SECONDS",
    "WHOLE_DECODE_MAX_SECONDS",
    "Scores",
    "check_length",
    "decode",
    "mono_samples",
    "score_mono",
    "score_path",
    "too_short",
]

#: Files whose header says they are longer than this are decoded and scored block by block
#: (:func:`~soundsentry.streaming.score_file_streamed`); below it, whole-file decoding is a little
#: faster and memory is small anyway.
STREAM_ABOVE_SECONDS = 120.0
#: Longest recording decoded whole: files whose header says more are streamed from the
#: start, and a file that decodes to more than its header said is streamed when it passes this.
WHOLE_DECODE_MAX_SECONDS = 2 * STREAM_ABOVE_SECONDS


@dataclass
class Scores:
    """Every step's output for one recording.

    Attributes
    ----------
    samples : np.ndarray, shape (n_samples,)
        Mono samples at the model's rate.
    features : np.ndarray, shape (n_features, n_frames)
        The front end's output (the log-mel spectrogram of log-mel kinds).
    latents : np.ndarray, shape (n_windows, latent_dim)
    window_scores : dict of str to np.ndarray of shape (n_windows,)
        Per requested detector.
    """

    samples: np.ndarray
    features: np.ndarray
    latents: np.ndarray
    window_scores: dict[str, np.ndarray] = field(default_factory=dict)

    def clip_scores(self, model: Model) -> dict[str, float]:
        """Each detector's clip score (:meth:`~soundsentry.model.Model.clip_score`)."""
        return {det: model.clip_score(s, latents=self.latents, detector=det) for det, s in self.window_scores.items()}


def too_short(model: Model, n_samples: int, *, path: str | os.PathLike[str] | None = None) -> AudioTooShortError:
    """The error for a recording of ``n_samples`` (at the model's rate) that gives no window: one wording everywhere."""
    rate = model.sample_rate
    need = model.encoder.min_samples / rate
    return AudioTooShortError(
        None if path is None else os.fspath(path),
        f"too short: {n_samples / rate:.2f} s, one window needs {need:.2f} s",
    )


def check_length(model: Model, y: np.ndarray, *, path: str | os.PathLike[str] | None = None) -> None:
    """Raise :func:`too_short`'s error if ``y`` (mono, at the model's rate) gives no analysis window."""
    if y.shape[0] < model.encoder.min_samples:
        raise too_short(model, y.shape[0], path=path)


def decode(model: Model, path: str | os.PathLike[str], *, limit: bool = True) -> tuple[np.ndarray, tuple[str, ...]]:
    """Decode ``path`` into mono samples at the model's rate and the signal flags of what was decoded.

    The flags (:func:`~soundsentry.quality.signal_flags`) are computed on the channel the
    model hears at the file's own rate, before resampling can smooth a clipped peak.

    Raises
    ------
    AudioError
        Naming ``path``; with ``limit``, :class:`~soundsentry.errors.AudioTooLongError` past
        :data:`WHOLE_DECODE_MAX_SECONDS` (the caller streams such a file instead).
    """
    path = os.fspath(path)
    samples, rate = read_audio(path, max_seconds=WHOLE_DECODE_MAX_SECONDS if limit else None)
    check_samples(samples, path=path)
    mono = select_channel(samples, policy=model.channel)
    del samples  # an 8-channel hour is large; keep only the channel scored
    flags = signal_flags(mono)
    return model.prepare(mono, sample_rate=rate, path=path), flags


def mono_samples(
    model: Model, audio: str | os.PathLike[str] | np.ndarray, *, sample_rate: int | None = None
) -> np.ndarray:
    """A file path (decoded whole, however long) or an array of shape (n,) or (n, channels) -> checked mono
    samples at the model's rate."""
    if isinstance(audio, (str, os.PathLike)):
        return decode(model, audio, limit=False)[0]
    return model.prepare(audio, sample_rate=sample_rate)


def score_mono(
    model: Model,
    y: np.ndarray,
    *,
    detectors: list[str] | tuple[str, ...],
    path: str | os.PathLike[str] | None = None,
) -> Scores:
    """Length check, features, windows, embedding once, then every detector in ``detectors``."""
    check_length(model, y, path=path)
    features = model.features(y)
    latents = model.embed(model.windows(features))
    scores = {det: model.score_latents(latents, detector=det) for det in detectors}
    return Scores(samples=y, features=features, latents=latents, window_scores=scores)


def score_path(
    model: Model,
    path: str | os.PathLike[str],
    *,
    detector: str | None = None,
    threshold: float | None = None,
    cancel: threading.Event | None = None,
) -> ScoreResult:
    """Score one file; a long one is decoded block by block, so memory does not grow with its length.

    Returns the :class:`~soundsentry.model.ScoreResult` with ``extra["flags"]``, the signal flags of the scored channel.
    ``cancel``, once set, stops a long file between blocks (:class:`~soundsentry.errors.ScoringCancelled`).
    """
    from .streaming import file_seconds, score_file_streamed

    path = os.fspath(path)
    seconds = file_seconds(path)
    if seconds is not None and seconds > STREAM_ABOVE_SECONDS:
        return score_file_streamed(model, path, detector=detector, threshold=threshold, cancel=cancel)
    try:
        y, flags = decode(model, path)
    except AudioTooLongError:
        # The header said short (or nothing), the data goes on: stream it after all.
        return score_file_streamed(model, path, detector=detector, threshold=threshold, cancel=cancel)
    result = model.score_samples(y, detector=detector, threshold=threshold, path=path)
    result.extra["flags"] = flags
    return result
