"""EdgeL3's front end in NumPy: 16 kHz -> 8 kHz, 1-s windows, and the kapre 0.1 log-mel it was trained on.

The pretrained EdgeL3 SEA-UST-64 network (MIT, ``ksangeeta2429/edgel3``) shipped its front end as kapre 0.1
``Melspectrogram`` layers. Their stored configuration and weights (``edgel3_sea_ust_audio_emb_64.h5``) give:

- STFT as a strided convolution with windowed-DFT kernels: periodic Hann window, ``n_dft`` 1024, hop 160,
  TensorFlow ``'same'`` padding (432 zeros on each side of an 8000-sample window -> 50 frames);
- power spectrum (``power_spectrogram`` 2.0), times the stored 513 x 64 mel matrix, which equals
  ``librosa.filters.mel(sr=8000, n_fft=1024, n_mels=64, fmin=0, fmax=4000, htk=True, norm='slaney')``
  (max abs difference 4e-9, checked in ``tests/test_edgel3.py``), so it is computed here;
- ``power_melgram`` 1.0: the square root of the mel power;
- kapre's ``amplitude_to_decibel``: ``10 * log10(max(x, 1e-10))`` (10, not 20, although ``x`` is an amplitude),
  minus its maximum over the whole window (bands and frames), floored at -80 dB.

Every window is thus scaled to its own loudest cell: EdgeL3 does not hear a window's absolute level.
The network takes ``(batch, 64 bands, 50 frames)`` here (the Keras rebuild adds the channel axis).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .features import mel_filterbank

__all__ = [
    "EDGEL3_FRAMES",
    "EDGEL3_N_MELS",
    "EDGEL3_SAMPLE_RATE",
    "EDGEL3_WINDOW",
    "decimate_16k_to_8k",
    "decimator_taps",
    "edgel3_front_end",
    "edgel3_log_mel",
    "edgel3_mel_matrix",
    "frame_windows",
]

EDGEL3_SAMPLE_RATE = 8000
EDGEL3_WINDOW = 8000  # samples: the network hears 1 s at a time
EDGEL3_N_MELS = 64
EDGEL3_FRAMES = 50
_N_DFT = 1024
_HOP = 160
_AMIN = 1e-10
_DYNAMIC_RANGE = 80.0
_CHUNK = 4  # windows per FFT batch
# TensorFlow 'same' padding of a stride-160 convolution with a 1024-tap kernel over 8000 samples:
# 50 outputs need (50 - 1) * 160 + 1024 = 8864 samples, the 864 extra split evenly.
_PAD = ((EDGEL3_FRAMES - 1) * _HOP + _N_DFT - EDGEL3_WINDOW) // 2

# Decimator: a half-band Kaiser-windowed sinc. Cutting at fs/4 = 4 kHz makes every second tap zero (half the
# multiplications) and puts the transition band symmetrically around 4 kHz (3.4-4.6 kHz here).
_N_TAPS = 95
_KAISER_BETA = 10.06  # Kaiser's formula 0.1102 * (A - 8.7) for A = 100 dB attenuation


@lru_cache(maxsize=1)
def decimator_taps() -> np.ndarray:
    """The linear-phase FIR low-pass used by :func:`decimate_16k_to_8k`.

    95 taps, Kaiser window (beta 10.06) on a sinc cut at 4 kHz (fs/4 at 16 kHz); the taps at an even,
    non-zero distance from the centre are exactly zero and the DC gain is exactly 1.
    Measured (2**16-point FFT of the taps, asserted in ``tests/test_edgel3.py::test_decimator_response``):
    gain within +-8.6e-5 dB up to 3.4 kHz, -100.08 dB at worst from 4.6 kHz, -6.02 dB at 4 kHz.

    Returns
    -------
    np.ndarray, shape (95,), float64, read-only
    """
    centre = _N_TAPS // 2
    offset = np.arange(_N_TAPS) - centre
    taps = 0.5 * np.sinc(offset / 2.0) * np.kaiser(_N_TAPS, _KAISER_BETA)
    taps[(offset % 2 == 0) & (offset != 0)] = 0.0
    taps[centre] = 0.0
    taps *= 0.5 / taps.sum()  # the other taps sum to 1/2 exactly: unit DC gain, half-band symmetry kept
    taps[centre] = 0.5
    taps.setflags(write=False)
    return taps


def decimate_16k_to_8k(y: np.ndarray) -> np.ndarray:
    """Low-pass filter 16 kHz audio below 4 kHz and keep every second sample.

    Zero phase: output sample ``m`` is centred on input sample ``2 m`` (the filter's 47-sample delay is
    compensated, the ends see zeros beyond the signal), as ``np.convolve(y, taps, 'same')[::2]``.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono audio at 16 kHz.

    Returns
    -------
    np.ndarray, shape (ceil(n / 2),), float32
        Audio at 8 kHz.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"decimate_16k_to_8k expects mono audio of shape (n,), got shape {y.shape}")
    taps = decimator_taps()
    centre = _N_TAPS // 2  # 47, odd: the non-zero side taps sit at even indices and meet odd input samples
    n_out = (y.size + 1) // 2
    even_taps = taps[0::2].astype(np.float32)  # 48 taps
    # out[m] = sum_j even_taps[j] * y[2m + 47 - 2j] + 0.5 * y[2m]; y[2m + 47 - 2j] = y_odd[m + 23 - j].
    if y.size < 2:  # no odd samples to filter
        return np.float32(0.5) * y
    filtered = np.convolve(y[1::2], even_taps)[centre // 2 : centre // 2 + n_out]
    if filtered.size < n_out:  # a clip shorter than the filter
        filtered = np.pad(filtered, (0, n_out - filtered.size))
    return filtered + np.float32(0.5) * y[0::2]


def frame_windows(y8k: np.ndarray, *, window: int = EDGEL3_WINDOW, hop: int = EDGEL3_WINDOW) -> np.ndarray:
    """Cut 8 kHz audio into windows of ``window`` samples, ``hop`` apart.

    Parameters
    ----------
    y8k : np.ndarray, shape (n,)
        Mono audio at 8 kHz.
    window, hop : int
        Window length and hop, in samples (8000 and 4000 give 1-s windows every 0.5 s).

    Returns
    -------
    np.ndarray, shape (n_windows, window), float32
        ``1 + (n - window) // hop`` windows (a read-only view where possible); trailing samples that do not
        fill a window are dropped, and a clip shorter than one window gives ``(0, window)``.
    """
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    y8k = np.asarray(y8k, dtype=np.float32)
    if y8k.ndim != 1:
        raise ValueError(f"frame_windows expects mono audio of shape (n,), got shape {y8k.shape}")
    if y8k.size < window:
        return np.zeros((0, window), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(y8k, window)[::hop]


@lru_cache(maxsize=1)
def edgel3_mel_matrix() -> np.ndarray:
    """EdgeL3's mel matrix: 64 HTK-mel triangles over 0-4 kHz with Slaney area normalisation.

    Equal to the matrix stored in the h5 (kapre 0.1's copy of ``librosa.filters.mel`` with ``htk=True``,
    ``norm=1``), within 4e-9.

    Returns
    -------
    np.ndarray, shape (513, 64), float32, read-only
        Maps a 1024-point power spectrum (bins 0..512) to mel bands.
    """
    weights = mel_filterbank(sample_rate=EDGEL3_SAMPLE_RATE, n_fft=_N_DFT, n_mels=EDGEL3_N_MELS, htk=True)
    matrix = np.ascontiguousarray(weights.T, dtype=np.float32)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=1)
def _dft_window64() -> np.ndarray:
    # Periodic Hann, as in the stored DFT kernels (max abs difference 6e-8 against them).
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_N_DFT) / _N_DFT)
    window.setflags(write=False)
    return window


def edgel3_log_mel(windows_8k: np.ndarray) -> np.ndarray:
    """kapre 0.1's log-mel of each 1-s window, as EdgeL3 was trained on.

    Parameters
    ----------
    windows_8k : np.ndarray, shape (n, 8000)
        Windows of 8 kHz audio (from :func:`frame_windows`), any float scale.

    Returns
    -------
    np.ndarray, shape (n, 64, 50), float32
        dB in [-80, 0]: each window's maximum is 0.
    """
    windows_8k = np.asarray(windows_8k, dtype=np.float32)
    if windows_8k.ndim != 2 or windows_8k.shape[1] != EDGEL3_WINDOW:
        raise ValueError(f"edgel3_log_mel expects windows of shape (n, {EDGEL3_WINDOW}), got {windows_8k.shape}")
    out = np.empty((windows_8k.shape[0], EDGEL3_N_MELS, EDGEL3_FRAMES), dtype=np.float32)
    # A few windows at a time: the float64 spectra of 19 windows (16 MB) fall out of cache and ran 2x slower here.
    for start in range(0, windows_8k.shape[0], _CHUNK):
        out[start : start + _CHUNK] = _log_mel_chunk(windows_8k[start : start + _CHUNK])
    return out


def _log_mel_chunk(windows_8k: np.ndarray) -> np.ndarray:
    n = windows_8k.shape[0]
    padded = np.pad(windows_8k, ((0, 0), (_PAD, _PAD)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_DFT, axis=1)[:, ::_HOP]  # (n, 50, 1024)
    # float64 on purpose: NumPy 2.4's pocketfft ran 3x slower on float32 frames here (8.5 vs 2.6 ms, 19 windows).
    spectrum = np.fft.rfft(frames * _dft_window64(), axis=-1)  # (n, 50, 513)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32).reshape(n * EDGEL3_FRAMES, -1)
    amplitude = np.sqrt(power @ edgel3_mel_matrix()).reshape(n, EDGEL3_FRAMES, EDGEL3_N_MELS)
    db = np.float32(10.0) * np.log10(np.maximum(amplitude, np.float32(_AMIN)))
    db -= db.max(axis=(1, 2), keepdims=True)
    np.maximum(db, np.float32(-_DYNAMIC_RANGE), out=db)
    return db.transpose(0, 2, 1)


def edgel3_front_end(y16k: np.ndarray, *, hop: int = EDGEL3_WINDOW // 2) -> np.ndarray:
    """The whole front end: 16 kHz mono audio -> EdgeL3 log-mel windows.

    :func:`decimate_16k_to_8k`, then :func:`frame_windows` (1-s windows, ``hop`` samples at 8 kHz apart),
    then :func:`edgel3_log_mel`.

    Parameters
    ----------
    y16k : np.ndarray, shape (n,)
    hop : int
        Window hop in samples at 8 kHz (4000: 19 windows from a 10-s clip; 8000: 10 windows).

    Returns
    -------
    np.ndarray, shape (n_windows, 64, 50), float32
    """
    return edgel3_log_mel(frame_windows(decimate_16k_to_8k(y16k), hop=hop))
