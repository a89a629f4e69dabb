"""The measured views of a window that need no network: steady spectrum shape, level, transients.

Each analysis window of raw audio (16 kHz, typically 1 s) is cut into frames; the views are

- ``shape``: the window's mean power spectrum in mel bands, in dB, *minus its mean over bands*:
  what a fault that changes the machine's steady sound moves, with the loudness taken out so that
  the level view alone speaks for loudness;
- ``level``: the window's power in dBFS (a louder or quieter machine, or a gain change: the
  evidence says which view moved, the engineer judges);
- ``transient``: how far the loudest frame rises above the window's median frame (dB), and the
  spread of frame energies (dB): clicks, knocks and valve actuations that a mean drowns.

Kept apart from the neural embedding so that a flag can be explained in units an engineer reads
("4.7 dB louder than enrolled", "1-2 kHz band +6 dB").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .features import mel_filterbank, periodic_hann

__all__ = ["SignalViewParams", "band_edges_hz", "signal_views"]

#: Power floor (about -120 dBFS) so digital silence gives finite decibels.
_POWER_FLOOR = 1e-12


@dataclass(frozen=True)
class SignalViewParams:
    """Framing of the signal views inside one window (stored in the model card)."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_bands: int = 64

    @property
    def width(self) -> int:
        """Columns the views take in a window's feature row: shape bands + level + 2 transient values."""
        return self.n_bands + 3

    def to_dict(self) -> dict:
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length, "n_bands": self.n_bands}


@lru_cache(maxsize=4)
def _filters(params: SignalViewParams) -> np.ndarray:
    fb = mel_filterbank(sample_rate=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_bands)
    return np.ascontiguousarray(fb.T, dtype=np.float32)  # (n_fft//2+1, n_bands)


def band_edges_hz(params: SignalViewParams) -> np.ndarray:
    """Lower and upper edge of each shape band in Hz, shape (n_bands, 2) (where its filter is non-zero)."""
    fb = _filters(params)
    freqs = np.fft.rfftfreq(params.n_fft, d=1.0 / params.sample_rate)
    edges = np.empty((params.n_bands, 2))
    for b in range(params.n_bands):
        nz = np.nonzero(fb[:, b] > 0)[0]
        edges[b] = (freqs[max(nz[0] - 1, 0)], freqs[min(nz[-1] + 1, len(freqs) - 1)])
    return edges


def signal_views(segments: np.ndarray, *, params: SignalViewParams = SignalViewParams()) -> np.ndarray:
    """Shape, level and transient views of windows of raw audio.

    Parameters
    ----------
    segments : np.ndarray, shape (n_windows, n_samples)
        Windows of mono audio at ``params.sample_rate``, ``n_samples >= params.n_fft``.
    params : SignalViewParams

    Returns
    -------
    np.ndarray, shape (n_windows, params.width), float32
        Columns ``[0, n_bands)``: band dB minus the window's mean band dB; ``n_bands``: level in
        dBFS; ``n_bands + 1``: loudest frame minus median frame (dB); ``n_bands + 2``: standard
        deviation of frame energies (dB).
    """
    segments = np.asarray(segments, dtype=np.float32)
    if segments.ndim != 2 or segments.shape[1] < params.n_fft:
        raise ValueError(f"segments must be (n_windows, >= {params.n_fft}) samples, got {segments.shape}")
    n_frames = 1 + (segments.shape[1] - params.n_fft) // params.hop_length
    index = np.arange(params.n_fft)[None, :] + params.hop_length * np.arange(n_frames)[:, None]
    window = periodic_hann(params.n_fft).astype(np.float32)
    frames = segments[:, index]  # (n_windows, n_frames, n_fft)
    spectrum = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2 / float((window**2).sum())
    bands_db = 10.0 * np.log10(spectrum.mean(axis=1) @ _filters(params) + _POWER_FLOOR)
    level_db = 10.0 * np.log10(np.mean(segments.astype(np.float64) ** 2, axis=1) + _POWER_FLOOR)
    frame_db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=-1) + _POWER_FLOOR)
    rise = frame_db.max(axis=1) - np.median(frame_db, axis=1)
    out = np.empty((segments.shape[0], params.width), dtype=np.float32)
    out[:, : params.n_bands] = bands_db - bands_db.mean(axis=1, keepdims=True)
    out[:, params.n_bands] = level_db
    out[:, params.n_bands + 1] = rise
    out[:, params.n_bands + 2] = frame_db.std(axis=1)
    return out
