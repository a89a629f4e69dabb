"""The ``"edgel3-views"`` encoder kind: one STFT, three views per 1-s window.

Every 20 ms (hop 320 at 16 kHz) a 2048-sample periodic-Hann frame (128 ms) is transformed once,
and each frame gives three things (the rows of :meth:`EdgeL3ViewsEncoder.features`):

- rows ``0:64``: 64 Slaney mel bands over 0-8 kHz in dB: the spectrogram the GUI shows, and the
  source of the *shape* view (the window's mean band spectrum minus its mean over bands);
- rows ``64:128``: EdgeL3's own 64 HTK mel bands over 0-4 kHz, as power in dB. The bins 0-4 kHz
  of a 2048-point FFT at 16 kHz are the frequencies of EdgeL3's 1024-point FFT at 8 kHz; weighting
  them with the power response of :func:`~soundsentry.edgel3_frontend.decimator_taps` gives what the
  network heard after the 16 -> 8 kHz decimation (aliasing from above 4 kHz is below -100 dB there).
  A constant scale cancels, since EdgeL3's front end subtracts each window's maximum;
- row ``128``: the frame's power in dBFS (Parseval), the source of the *level* view.

A window is 50 frames (1 s of hops, 1.108 s of audio), one per second. Its latent row is
``[EdgeL3 block-3 embedding (ONNX) | shape (64) | level (1)]``, which the ``views`` detector
(:mod:`soundsentry.views`) splits into views by the card's ``encoder.views``. Frames are computed
without padding, so streamed frames are exactly the whole clip's.

The EdgeL3 network (SEA-UST-64, MIT licence, ``ksangeeta2429/edgel3``) was rebuilt in Keras and
exported to ONNX by :mod:`soundsentry.export.edgel3`; only its blocks 1-3 run, averaged over bands
and frames to 128 values per window.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from .encoder_kinds import StreamGeometry
from .errors import ModelIntegrityError
from .features import FeatureParams, mel_filterbank, periodic_hann
from .onnx_session import open_session

__all__ = [
    "DISPLAY_BANDS",
    "EDGEL3_INPUT",
    "EDGEL3_OUTPUT",
    "FRAME_HOP",
    "N_FFT",
    "SAMPLE_RATE",
    "WINDOW_FRAMES",
    "EdgeL3ViewsEncoder",
    "display_band_edges_hz",
    "edgel3_inputs",
    "frame_rows",
    "frame_windows",
    "signal_rows",
]

SAMPLE_RATE = 16000
N_FFT = 2048
FRAME_HOP = 320
WINDOW_FRAMES = 50
DISPLAY_BANDS = 64
_EDGEL3_BANDS = 64
_ROWS = DISPLAY_BANDS + _EDGEL3_BANDS + 1
EDGEL3_INPUT = "logmel"
EDGEL3_OUTPUT = "latent"
_POWER_FLOOR = 1e-12  # about -120 dB: digital silence stays finite
_DYNAMIC_RANGE = 80.0  # kapre's floor below the window's maximum


@lru_cache(maxsize=1)
def _matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from .edgel3_frontend import decimator_taps, edgel3_mel_matrix

    window = periodic_hann(N_FFT).astype(np.float64)
    display = np.ascontiguousarray(
        mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=DISPLAY_BANDS).T, dtype=np.float32
    )
    freqs = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)[: N_FFT // 4 + 1]  # 0..4 kHz: EdgeL3's 513 bins
    taps = decimator_taps()
    response = np.abs(np.exp(-2j * np.pi * np.outer(freqs / SAMPLE_RATE, np.arange(taps.size) - taps.size // 2)) @ taps)
    # float64: these rows go through the int8 encoder's input quantiser, where a last-digit difference of
    # float32 sums (BLAS kernels differ between machines and libraries) can move a value to the next level
    # and a latent by ~1e-3; float64 sums rounded once to float32 give the same rows everywhere.
    edgel3 = np.ascontiguousarray(response[:, None] ** 2 * edgel3_mel_matrix(), dtype=np.float64)
    # Parseval for a one-sided spectrum of a Hann-weighted frame: the frame's (window-weighted) mean square.
    parseval = np.full(N_FFT // 2 + 1, 2.0)
    parseval[[0, -1]] = 1.0
    parseval /= N_FFT * float((window**2).sum())
    return window, display, edgel3, parseval.astype(np.float32)


@lru_cache(maxsize=1)
def display_band_edges_hz() -> np.ndarray:
    """Lower and upper edge in Hz of each display (and shape) band, shape (64, 2): where its filter is non-zero.

    Computed once (every flag's explanation names bands); the array is read-only.
    """
    fb = _matrices()[1]
    freqs = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    edges = np.empty((DISPLAY_BANDS, 2))
    for b in range(DISPLAY_BANDS):
        nz = np.nonzero(fb[:, b] > 0)[0]
        edges[b] = (freqs[max(nz[0] - 1, 0)], freqs[min(nz[-1] + 1, freqs.size - 1)])
    edges.setflags(write=False)
    return edges


def frame_rows(samples: np.ndarray) -> np.ndarray:
    """The per-frame rows of uncentred frames (no padding): every 2048 samples every 320.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        Mono audio at 16 kHz.

    Returns
    -------
    np.ndarray, shape (129, n_frames), float32
        ``n_frames = 1 + (n - 2048) // 320`` (0 when shorter). Rows: 64 display mel bands (dB),
        64 EdgeL3 mel bands (power dB), frame power (dBFS).
    """
    samples = np.asarray(samples, dtype=np.float32)
    n_frames = 0 if samples.shape[0] < N_FFT else 1 + (samples.shape[0] - N_FFT) // FRAME_HOP
    out = np.empty((_ROWS, n_frames), dtype=np.float32)
    if n_frames == 0:
        return out
    window, display, edgel3, parseval = _matrices()
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::FRAME_HOP][:n_frames]
    block = 256  # frames per FFT batch: the spectra of a long recording need not exist at once
    for start in range(0, n_frames, block):
        spectrum = np.fft.rfft(frames[start : start + block] * window, axis=-1)
        power64 = spectrum.real**2 + spectrum.imag**2
        with np.errstate(over="ignore", invalid="ignore"):
            power = power64.astype(np.float32)
            sums = (power @ display, power @ parseval)
        if not all(np.isfinite(x).all() for x in sums):
            # Samples near float32's limit (a corrupt or absurdly scaled file) overflow float32 power: the same
            # sums in float64 stay finite. Below that limit the float32 results above are used unchanged.
            sums = (power64 @ display, power64 @ parseval)
        stop = start + power.shape[0]
        out[:DISPLAY_BANDS, start:stop] = (10.0 * np.log10(sums[0] + _POWER_FLOOR)).T
        # EdgeL3's rows in float64, rounded once: the int8 encoder's input must not depend on float32 summation order.
        out[DISPLAY_BANDS : DISPLAY_BANDS + _EDGEL3_BANDS, start:stop] = (
            10.0 * np.log10(power64[:, : edgel3.shape[0]] @ edgel3 + _POWER_FLOOR)
        ).T
        out[-1, start:stop] = 10.0 * np.log10(sums[1] + _POWER_FLOOR)
    return out


def frame_windows(rows: np.ndarray) -> np.ndarray:
    """Non-overlapping windows of 50 frames of :func:`frame_rows`' output.

    Parameters
    ----------
    rows : np.ndarray, shape (129, n_frames)

    Returns
    -------
    np.ndarray, shape (n_windows, 129, 50), float32
        ``n_windows = n_frames // 50``; trailing frames that do not fill a window are dropped.
    """
    n = rows.shape[1] // WINDOW_FRAMES
    view = rows[:, : n * WINDOW_FRAMES].reshape(rows.shape[0], n, WINDOW_FRAMES)
    return np.ascontiguousarray(view.transpose(1, 0, 2), dtype=np.float32)


def edgel3_inputs(windows: np.ndarray) -> np.ndarray:
    """EdgeL3's input of each window: kapre's ``10 log10`` of the mel *amplitude*, minus the window's
    maximum, floored at -80 dB.

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, 129, 50)

    Returns
    -------
    np.ndarray, shape (n_windows, 64, 50), float32
    """
    db = np.float32(0.5) * windows[:, DISPLAY_BANDS : DISPLAY_BANDS + _EDGEL3_BANDS, :]  # sqrt of the power
    db = db - db.max(axis=(1, 2), keepdims=True)
    return np.ascontiguousarray(np.maximum(db, np.float32(-_DYNAMIC_RANGE)), dtype=np.float32)


def signal_rows(windows: np.ndarray) -> np.ndarray:
    """The shape and level views of each window.

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, 129, 50)

    Returns
    -------
    np.ndarray, shape (n_windows, 65), float32
        Columns 0-63: the window's mean power per display band in dB minus its mean over bands (the
        spectrum's shape, loudness taken out); column 64: the window's power in dBFS.
    """
    bands = 10.0 * np.log10(np.mean(10.0 ** (windows[:, :DISPLAY_BANDS, :].astype(np.float64) / 10.0), axis=2))
    level = 10.0 * np.log10(np.mean(10.0 ** (windows[:, -1, :].astype(np.float64) / 10.0), axis=1))
    out = np.empty((windows.shape[0], DISPLAY_BANDS + 1), dtype=np.float32)
    out[:, :DISPLAY_BANDS] = bands - bands.mean(axis=1, keepdims=True)
    out[:, DISPLAY_BANDS] = level
    return out


class EdgeL3ViewsEncoder:
    """EdgeL3 block-3 embedding + spectrum shape + level per 1-s window (see the module docstring).

    Parameters
    ----------
    card : mapping
        The model card; ``encoder.file`` names the ONNX network, ``encoder.embedding_dim`` its output size.
    bundle : soundsentry.bundle.Bundle
    session_options : onnxruntime.SessionOptions, optional
    """

    kind = "edgel3-views"
    sample_rate = SAMPLE_RATE
    #: Loudness is a view of its own: windows are never levelled (enrollment's levelling does not apply).
    level_reference_db = None
    #: The display rows of :meth:`features`, as log-mel parameters (the GUI's frequency axis).
    feature_params = FeatureParams(sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=FRAME_HOP, n_mels=DISPLAY_BANDS)

    @classmethod
    def validate_card(cls, card: Mapping[str, Any], where) -> None:
        encoder = card.get("encoder")
        if not isinstance(encoder, Mapping) or not isinstance(encoder.get("file"), str):
            raise ModelIntegrityError(f"{where}: encoder.file is missing")
        dim = encoder.get("embedding_dim")
        if not isinstance(dim, int) or not 1 <= dim <= 4096:
            raise ModelIntegrityError(f"{where}: encoder.embedding_dim must be an integer in [1, 4096]")

    def __init__(self, card: Mapping[str, Any], *, bundle, session_options=None) -> None:
        self.validate_card(card, bundle.root)
        self.embedding_dim = int(card["encoder"]["embedding_dim"])
        self.latent_dim = self.embedding_dim + DISPLAY_BANDS + 1
        self._session = open_session(
            bundle.path(card["encoder"]["file"]), inputs=[EDGEL3_INPUT], outputs=[EDGEL3_OUTPUT], options=session_options
        )
        shape = list(self._session.get_inputs()[0].shape[1:])
        out = self._session.get_outputs()[0].shape[-1]
        if shape != [_EDGEL3_BANDS, WINDOW_FRAMES] or out != self.embedding_dim:
            raise ModelIntegrityError(
                f"{bundle.root}: the encoder takes {shape} and gives {out} values; an EdgeL3 views encoder takes "
                f"[{_EDGEL3_BANDS}, {WINDOW_FRAMES}] and gives encoder.embedding_dim = {self.embedding_dim}"
            )

    # -- front end ---------------------------------------------------------------------------
    def features(self, y: np.ndarray) -> np.ndarray:
        """Frame rows (129, n_frames) of a whole recording (:func:`frame_rows`)."""
        return frame_rows(y)

    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        """Frame rows of samples for streaming: the same uncentred framing as :meth:`features`."""
        return frame_rows(samples)

    def display(self, features: np.ndarray) -> np.ndarray:
        """The rows to draw as a spectrogram: 64 mel bands over 0-8 kHz in dB, shape (64, n_frames)."""
        return features[:DISPLAY_BANDS]

    # -- windows -----------------------------------------------------------------------------
    def windows(self, features: np.ndarray, *, level_reference_db: float | None = None) -> np.ndarray:
        """Non-overlapping windows of 50 frames (:func:`frame_windows`), shape (n_windows, 129, 50), float32.

        ``level_reference_db`` is not used: loudness is a view of its own here, never erased.
        """
        return frame_windows(features)

    def window_starts(self, n_windows: int) -> np.ndarray:
        return np.arange(n_windows) * (WINDOW_FRAMES * FRAME_HOP / SAMPLE_RATE)

    @property
    def window_seconds(self) -> float:
        return ((WINDOW_FRAMES - 1) * FRAME_HOP + N_FFT) / SAMPLE_RATE

    @property
    def min_samples(self) -> int:
        return (WINDOW_FRAMES - 1) * FRAME_HOP + N_FFT

    @property
    def stream(self) -> StreamGeometry:
        return StreamGeometry(
            pad_samples=0,
            frame_length=N_FFT,
            frame_hop=FRAME_HOP,
            window_frames=WINDOW_FRAMES,
            window_hop_frames=WINDOW_FRAMES,
            n_features=_ROWS,
        )

    # -- encoder -----------------------------------------------------------------------------
    def embed(self, windows: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Latent rows ``[embedding | shape | level]``, shape (n_windows, embedding_dim + 65)."""
        out = np.empty((windows.shape[0], self.latent_dim), dtype=np.float32)
        for i in range(0, windows.shape[0], batch_size):
            chunk = windows[i : i + batch_size]
            out[i : i + len(chunk), : self.embedding_dim] = self._session.run(
                [EDGEL3_OUTPUT], {EDGEL3_INPUT: edgel3_inputs(chunk)}
            )[0]
            out[i : i + len(chunk), self.embedding_dim :] = signal_rows(chunk)
        return out

    def shape_band_edges_hz(self) -> np.ndarray:
        """Edges of the shape view's bands in Hz, shape (64, 2) (for the evidence's band names)."""
        return display_band_edges_hz()

    def view_columns(self) -> dict[str, tuple[int, int]]:
        """Columns of each measured quantity in a latent row."""
        e = self.embedding_dim
        return {"embedding": (0, e), "shape": (e, e + DISPLAY_BANDS), "level": (e + DISPLAY_BANDS, e + DISPLAY_BANDS + 1)}
