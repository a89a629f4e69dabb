"""Log-mel spectrogram features in NumPy, shared by training and scoring.

The defaults are the seed project's (16 kHz, ``n_fft=1024``, ``hop_length=512``,
128 mels) and the maths follows librosa's defaults (centred frames with zero padding,
periodic Hann window, Slaney mel scale and area normalisation), so that
``log_mel_spectrogram`` matches ``librosa.power_to_db(librosa.feature.melspectrogram(...))``
to well under 0.01 dB without needing librosa at run time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "CENTER_MODES",
    "FeatureParams",
    "analysis_windows",
    "center_windows",
    "frame_count",
    "hz_to_mel",
    "level_offsets",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "periodic_hann",
    "power_spectrogram",
    "power_to_db",
    "sliding_windows",
    "window_count",
    "window_levels",
]

#: Ways to centre each analysis window after the global standardisation (card ``normalization.center``).
CENTER_MODES = ("none", "window_median")


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of the log-mel front end, stored in every model card."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    amin: float = 1e-10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureParams:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Convert Hz to mels on the Slaney scale (linear below 1 kHz, log above).

    Parameters
    ----------
    frequencies : np.ndarray or float
        Frequencies in Hz.

    Returns
    -------
    np.ndarray
        Mel values, same shape as ``frequencies``.
    """
    f = np.asanyarray(frequencies, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel` (Slaney scale)."""
    m = np.asanyarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def _hz_to_mel_htk(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz_htk(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(
    *, sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None, htk: bool = False
) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, on the Slaney mel scale (or HTK's with
    ``htk=True``, as ``librosa.filters.mel``).

    Returns
    -------
    np.ndarray, shape (n_mels, n_fft // 2 + 1), float64
        Read-only weights mapping a power spectrum to mel bands.
    """
    if fmax is None:
        fmax = sample_rate / 2.0
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    to_mel, to_hz = (_hz_to_mel_htk, _mel_to_hz_htk) if htk else (hz_to_mel, mel_to_hz)
    mel_points = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    # Periodic Hann, as scipy.signal.get_window("hann", n, fftbins=True) and librosa use.
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    window.setflags(write=False)
    return window


def periodic_hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (read-only, float64), as librosa and SciPy's ``fftbins=True``."""
    return _hann(n_fft)


def frame_count(n_samples: int, *, hop_length: int) -> int:
    """Number of centred STFT frames for ``n_samples`` samples (librosa ``center=True``)."""
    return 1 + n_samples // hop_length


def power_spectrogram(frames_source: np.ndarray, *, n_fft: int, hop_length: int, center: bool = True) -> np.ndarray:
    """Power spectrogram ``|STFT|**2`` of a mono signal.

    Parameters
    ----------
    frames_source : np.ndarray, shape (n_samples,)
        Mono samples.
    n_fft, hop_length : int
        Frame length and hop in samples.
    center : bool
        Pad ``n_fft // 2`` zeros on both sides first, as librosa does by default.

    Returns
    -------
    np.ndarray, shape (n_fft // 2 + 1, n_frames), float64
    """
    y = np.asarray(frames_source, dtype=np.float64)
    if center:
        y = np.pad(y, n_fft // 2)
    if y.shape[0] < n_fft:
        return np.zeros((n_fft // 2 + 1, 0))
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop_length]
    spectrum = np.fft.rfft(frames * _hann(n_fft), axis=1)
    return (spectrum.real**2 + spectrum.imag**2).T


def power_to_db(power: np.ndarray, *, amin: float = 1e-10) -> np.ndarray:
    """``10 * log10(max(power, amin))``: absolute decibels (librosa ``ref=1.0, top_db=None``).

    Absolute rather than peak-relative levels keep a window's value independent of the rest
    of the clip, which streaming and sliding-window scoring need.
    """
    return 10.0 * np.log10(np.maximum(power, amin))


def log_mel_spectrogram(y: np.ndarray, *, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Log-mel spectrogram of a mono signal in dB.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono samples at ``params.sample_rate``.
    params : FeatureParams
        Front-end parameters.

    Returns
    -------
    np.ndarray, shape (n_mels, n_frames), float32
        ``n_frames == 1 + n_samples // hop_length``.
    """
    power = power_spectrogram(y, n_fft=params.n_fft, hop_length=params.hop_length)
    return mel_power_to_db(power, params=params)


def mel_power_to_db(power: np.ndarray, *, params: FeatureParams) -> np.ndarray:
    """Apply the mel filterbank to a power spectrogram and convert to dB (float32)."""
    fb = mel_filterbank(
        sample_rate=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax
    )
    return power_to_db(fb @ power, amin=params.amin).astype(np.float32)


def window_count(n_frames: int, *, length: int, hop: int) -> int:
    """Number of full windows of ``length`` frames, ``hop`` frames apart, in ``n_frames``."""
    return 0 if n_frames < length else 1 + (n_frames - length) // hop


def sliding_windows(spectrogram: np.ndarray, *, length: int, hop: int) -> np.ndarray:
    """Cut a spectrogram into overlapping windows along time.

    Parameters
    ----------
    spectrogram : np.ndarray, shape (n_mels, n_frames)
    length, hop : int
        Window length and hop, in frames.

    Returns
    -------
    np.ndarray, shape (n_windows, n_mels, length)
        A read-only view; trailing frames that do not fill a window are dropped.
    """
    n = window_count(spectrogram.shape[1], length=length, hop=hop)
    if n == 0:
        return np.zeros((0, spectrogram.shape[0], length), dtype=spectrogram.dtype)
    view = np.lib.stride_tricks.sliding_window_view(spectrogram, length, axis=1)[:, ::hop]
    return view[:, :n].transpose(1, 0, 2)


def window_levels(spectrogram: np.ndarray, *, length: int, hop: int) -> np.ndarray:
    """Level of each window: the mean of the log-mel dB over its bands and frames.

    Parameters
    ----------
    spectrogram : np.ndarray, shape (n_mels, n_frames)
        Log-mel dB, before standardisation.
    length, hop : int
        Window length and hop, in frames (as for :func:`sliding_windows`).

    Returns
    -------
    np.ndarray, shape (n_windows,), float64
    """
    return sliding_windows(spectrogram, length=length, hop=hop).mean(axis=(1, 2), dtype=np.float64)


def level_offsets(
    spectrogram: np.ndarray, *, reference_db: float, std: np.ndarray, length: int, hop: int
) -> np.ndarray:
    """What to subtract from each standardised window to move its level to ``reference_db``.

    A gain, distance or room change adds the same dB to every band: removing each window's own
    level cancels it (the same healthy machine recorded on another day must not be flagged),
    window by window, so streaming and whole-file scoring still agree. The cost: a machine that
    only gets louder is not seen as different.

    Parameters
    ----------
    spectrogram : np.ndarray, shape (n_mels, n_frames)
        Log-mel dB, before standardisation.
    reference_db : float
        The level every window is moved to.
    std : np.ndarray, shape (n_mels, 1)
        The per-band standard deviation the windows were divided by.
    length, hop : int
        Window length and hop, in frames.

    Returns
    -------
    np.ndarray, shape (n_windows, n_mels, 1), float32
    """
    shift = window_levels(spectrogram, length=length, hop=hop) - reference_db
    return (shift[:, None, None] / np.asarray(std)[None]).astype(np.float32)


def center_windows(windows: np.ndarray, *, mode: str = "none") -> np.ndarray:
    """Remove each window's own level per mel band, when ``mode`` asks for it.

    ``"window_median"`` subtracts, per window and mel band, the median over the window's frames.
    A microphone, gain or channel change adds a roughly constant dB offset per band; this cancels
    it, so the model judges how the sound moves within the window, not its absolute spectrum.
    Each window is handled alone, so streaming and whole-file scoring agree exactly.

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, n_mels, frames)
    mode : {"none", "window_median"}

    Returns
    -------
    np.ndarray, shape (n_windows, n_mels, frames)
        ``windows`` itself for ``"none"``, else a new float32 array.
    """
    if mode == "none":
        return windows
    if mode == "window_median":
        return (windows - np.median(windows, axis=2, keepdims=True)).astype(np.float32)
    raise ValueError(f"unknown window centring {mode!r}; expected one of {CENTER_MODES}")


def analysis_windows(
    logmel: np.ndarray,
    *,
    mean: np.ndarray,
    std: np.ndarray,
    length: int,
    hop: int,
    center: str = "none",
    level_reference_db: float | None = None,
) -> np.ndarray:
    """The encoder's input windows of one log-mel spectrogram: training and scoring both build them here.

    Per-band standardisation with ``mean`` and ``std`` (shape (n_mels, 1)), sliding windows, then,
    with a level reference, each window's level (mean dB) moved to it (:func:`level_offsets`), then
    the centring ``center`` (:func:`center_windows`).

    Parameters
    ----------
    logmel : np.ndarray, shape (n_mels, n_frames)
    mean, std : np.ndarray, shape (n_mels, 1)
    length, hop : int
        Window length and hop in frames.
    center : {"none", "window_median"}
    level_reference_db : float, optional

    Returns
    -------
    np.ndarray, shape (n_windows, n_mels, length), float32, C-contiguous
    """
    windows = sliding_windows((logmel - mean) / std, length=length, hop=hop)
    if level_reference_db is not None:
        windows = windows - level_offsets(logmel, reference_db=level_reference_db, std=std, length=length, hop=hop)
    return np.ascontiguousarray(center_windows(windows, mode=center), dtype=np.float32)
