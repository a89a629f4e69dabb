"""The ``"logmel-conv"`` encoder kind: log-mel spectrogram, standardised windows, convolutional ONNX encoder.

Every bundle shipped so far has this kind (cards without ``encoder.kind``). Registered in
:mod:`soundsentry.encoder_kinds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .card import check_int_ranges, is_number
from .encoder_kinds import StreamGeometry
from .errors import ModelIntegrityError
from .features import (
    CENTER_MODES,
    FeatureParams,
    analysis_windows,
    log_mel_spectrogram,
    mel_power_to_db,
    power_spectrogram,
    window_levels,
)
from .onnx_session import open_session

__all__ = ["ENCODER_INPUT", "ENCODER_OUTPUT", "LogMelConvEncoder", "WindowParams"]

ENCODER_INPUT = "logmel"
ENCODER_OUTPUT = "latent"


@dataclass(frozen=True)
class WindowParams:
    """Sliding analysis windows, in spectrogram frames."""

    frames: int = 64
    hop_frames: int = 16

    def min_samples(self, params: FeatureParams) -> int:
        """Fewest samples that give one full window with centred framing."""
        return (self.frames - 1) * params.hop_length


#: Ranges of the card's numbers: beyond them a card could make scoring allocate without bound
#: (a huge FFT or window).
INT_RANGES = {
    ("features", "sample_rate"): (1000, 384_000),
    ("features", "n_fft"): (16, 65_536),
    ("features", "hop_length"): (1, 65_536),
    ("features", "n_mels"): (1, 1024),
    ("window", "frames"): (1, 4096),
    ("window", "hop_frames"): (1, 4096),
}


class LogMelConvEncoder:
    """Log-mel front end + per-band standardisation (+ optional levelling and centring) + ONNX conv encoder.

    Parameters
    ----------
    card : mapping
        The model card (its ``features``, ``window``, ``normalization`` and ``encoder`` sections).
    bundle : soundsentry.bundle.Bundle
        Where the encoder file is.
    session_options : onnxruntime.SessionOptions, optional
    """

    kind = "logmel-conv"

    @classmethod
    def validate_card(cls, card: Mapping[str, Any], where) -> None:
        """Check this kind's sections of a card (``features``, ``window``, ``normalization``) before files open."""
        missing = [key for key in ("features", "window", "normalization") if key not in card]
        if missing:
            raise ModelIntegrityError(f"{where}: card lacks {', '.join(missing)}")
        for section in ("features", "window", "normalization"):
            if not isinstance(card[section], dict):
                raise ModelIntegrityError(f"{where}: {section!r} must be a JSON object")
        check_int_ranges(card, INT_RANGES, where)
        norm = card["normalization"]
        for key in ("mean", "std"):
            values = norm.get(key)
            if not isinstance(values, list) or not all(is_number(v) for v in values):
                raise ModelIntegrityError(f"{where}: normalization.{key} must be a list of finite numbers")
        if not all(v > 0 for v in norm["std"]):
            raise ModelIntegrityError(f"{where}: normalization.std must be positive")

    def __init__(self, card: Mapping[str, Any], *, bundle, session_options=None) -> None:
        root = bundle.root
        try:
            self.feature_params = FeatureParams.from_dict(card["features"])
            self.window = WindowParams(frames=int(card["window"]["frames"]), hop_frames=int(card["window"]["hop_frames"]))
            norm = card["normalization"]
            self.norm_mean = np.asarray(norm["mean"], dtype=np.float32)[:, None]
            self.norm_std = np.asarray(norm["std"], dtype=np.float32)[:, None]
            # Cards written before window centring existed have no "center": they were trained without it.
            self.norm_center: str = norm.get("center", "none")
            # Enrolled bundles move each window's level (mean dB) to this reference; absent = no level step.
            level = norm.get("level_reference_db")
            self.level_reference_db: float | None = None if level is None else float(level)
            self.latent_dim = int(card["encoder"]["latent_dim"])
            encoder_file = card["encoder"]["file"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"{root}: malformed card ({exc!r})") from exc
        if self.norm_mean.shape != (self.feature_params.n_mels, 1) or self.norm_std.shape != self.norm_mean.shape:
            raise ModelIntegrityError(f"{root}: normalisation does not match {self.feature_params.n_mels} mels")
        if self.level_reference_db is not None and not np.isfinite(self.level_reference_db):
            raise ModelIntegrityError(f"{root}: level_reference_db must be a finite number")
        if self.norm_center not in CENTER_MODES:
            raise ModelIntegrityError(f"{root}: unknown normalisation centring {self.norm_center!r}")
        if self.window.frames < 1 or self.window.hop_frames < 1:
            raise ModelIntegrityError(f"{root}: window frames and hop must be positive")
        self.sample_rate = self.feature_params.sample_rate
        self._session = open_session(
            bundle.path(encoder_file), inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT], options=session_options
        )
        # The window shape in the card must be the one the graph was exported for.
        expected = [self.feature_params.n_mels, self.window.frames]
        got = list(self._session.get_inputs()[0].shape[1:])
        if got != expected:
            raise ModelIntegrityError(f"{root}: encoder expects windows of shape {got}, the card says {expected}")

    # -- front end ---------------------------------------------------------------------------
    def features(self, y: np.ndarray) -> np.ndarray:
        """Log-mel spectrogram (n_mels, n_frames) of mono samples at the model's rate (centred frames)."""
        return log_mel_spectrogram(y, params=self.feature_params)

    def frame_features(self, samples: np.ndarray) -> np.ndarray:
        """Log-mel columns (n_mels, n_frames) of uncentred frames: every ``n_fft`` samples every hop."""
        p = self.feature_params
        power = power_spectrogram(samples, n_fft=p.n_fft, hop_length=p.hop_length, center=False)
        return mel_power_to_db(power, params=p)

    # -- windows -----------------------------------------------------------------------------
    def windows(self, features: np.ndarray, *, level_reference_db: float | None = None) -> np.ndarray:
        """Normalised analysis windows, shape (n_windows, n_mels, frames), float32.

        With a level reference (the card's ``normalization.level_reference_db``, or the argument,
        which enrollment uses before the card exists) each window's level, its mean in dB over
        bands and frames, is moved to the reference before standardisation.
        """
        reference = self.level_reference_db if level_reference_db is None else level_reference_db
        return analysis_windows(
            features,
            mean=self.norm_mean,
            std=self.norm_std,
            length=self.window.frames,
            hop=self.window.hop_frames,
            center=self.norm_center,
            level_reference_db=reference,
        )

    def window_levels(self, features: np.ndarray) -> np.ndarray:
        """Level of each analysis window: mean of the log-mel dB over its bands and frames, shape (n_windows,)."""
        return window_levels(features, length=self.window.frames, hop=self.window.hop_frames)

    def window_starts(self, n_windows: int) -> np.ndarray:
        """Start of each window in seconds, shape (n_windows,)."""
        p = self.feature_params
        hop_seconds = p.hop_length / p.sample_rate
        starts = np.arange(n_windows) * self.window.hop_frames * hop_seconds
        # Frame j is centred on sample j*hop, so a window starts half a frame earlier, clipped at 0.
        return np.maximum(starts - p.n_fft / 2 / p.sample_rate, 0.0)

    @property
    def window_seconds(self) -> float:
        p = self.feature_params
        return ((self.window.frames - 1) * p.hop_length + p.n_fft) / p.sample_rate

    @property
    def min_samples(self) -> int:
        return self.window.min_samples(self.feature_params)

    @property
    def stream(self) -> StreamGeometry:
        p = self.feature_params
        return StreamGeometry(
            pad_samples=p.n_fft // 2,  # centred framing's padding
            frame_length=p.n_fft,
            frame_hop=p.hop_length,
            window_frames=self.window.frames,
            window_hop_frames=self.window.hop_frames,
            n_features=p.n_mels,
        )

    # -- encoder -----------------------------------------------------------------------------
    def embed(self, windows: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Encoder latents of windows, shape (n_windows, latent_dim)."""
        out = [
            self._session.run([ENCODER_OUTPUT], {ENCODER_INPUT: windows[i : i + batch_size]})[0]
            for i in range(0, len(windows), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.latent_dim), np.float32)
