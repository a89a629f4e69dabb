"""A loaded model bundle: audio -> log-mel windows -> latents -> detector scores -> verdict."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import ChannelPolicy, check_sample_rate, check_samples, load_audio, resample, select_channel
from .bundle import Bundle, read_bundle
from .detector_kinds import DEFAULT_DETECTOR, detector_kind
from .errors import AudioTooShortError, ModelIntegrityError
from .features import (
    CENTER_MODES,
    FeatureParams,
    center_windows,
    level_offsets,
    log_mel_spectrogram,
    sliding_windows,
    window_levels,
)
from .onnx_session import default_session_options, open_session

__all__ = ["Model", "ScoreResult", "WindowParams", "aggregate_scores", "load_model"]

log = logging.getLogger(__name__)

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


@dataclass
class ScoreResult:
    """Scores of one recording. Higher scores mean more anomalous.

    Attributes
    ----------
    window_scores : np.ndarray, shape (n_windows,)
        Anomaly score of each analysis window.
    window_starts : np.ndarray, shape (n_windows,)
        Start time of each window in seconds.
    score : float
        Clip score, the windows aggregated by the model's rule.
    threshold : float
    verdict : str
        ``"abnormal"`` if ``score > threshold`` else ``"normal"``.
    """

    window_scores: np.ndarray
    window_starts: np.ndarray
    score: float
    threshold: float
    verdict: str
    detector: str
    model: str
    path: str | None = None
    window_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def aggregate_scores(window_scores: np.ndarray, *, rule: str = "mean") -> float:
    """Clip score from window scores. ``"mean"`` is robust to a single odd window; ``"max"`` is not."""
    if window_scores.size == 0:
        raise ValueError("no windows to aggregate")
    if rule == "mean":
        return float(np.mean(window_scores))
    if rule == "max":
        return float(np.max(window_scores))
    raise ValueError(f"unknown aggregation rule {rule!r}")


class Model:
    """A model bundle ready to score audio.

    Use :func:`load_model` to create one. Scores point one way everywhere: higher means
    more anomalous, and a clip is ``"abnormal"`` when its score exceeds the threshold.
    """

    def __init__(self, bundle: Bundle, *, threads: int | None = None) -> None:
        card = bundle.card
        self.bundle = bundle
        self.card = card
        self.name: str = bundle.name
        try:
            self.feature_params = FeatureParams.from_dict(card["features"])
            self.window = WindowParams(
                frames=int(card["window"]["frames"]), hop_frames=int(card["window"]["hop_frames"])
            )
            self.channel: ChannelPolicy = card["channel"]["policy"]
            norm = card["normalization"]
            self.norm_mean = np.asarray(norm["mean"], dtype=np.float32)[:, None]
            self.norm_std = np.asarray(norm["std"], dtype=np.float32)[:, None]
            # Cards written before window centring existed have no "center": they were trained without it.
            self.norm_center: str = norm.get("center", "none")
            # Enrolled bundles move each window's level (mean dB) to this reference; absent = no level step.
            level = norm.get("level_reference_db")
            self.level_reference_db: float | None = None if level is None else float(level)
            self.aggregate: str = card.get("aggregate", "mean")
            self.default_detector: str = card.get("default_detector", DEFAULT_DETECTOR)
            self.thresholds: dict[str, float] = {k: float(v["threshold"]) for k, v in card["detectors"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"{bundle.root}: malformed card ({exc!r})") from exc
        if self.norm_mean.shape != (self.feature_params.n_mels, 1) or self.norm_std.shape != self.norm_mean.shape:
            raise ModelIntegrityError(f"{bundle.root}: normalisation does not match {self.feature_params.n_mels} mels")
        if self.level_reference_db is not None and not np.isfinite(self.level_reference_db):
            raise ModelIntegrityError(f"{bundle.root}: level_reference_db must be a finite number")
        if self.norm_center not in CENTER_MODES:
            raise ModelIntegrityError(f"{bundle.root}: unknown normalisation centring {self.norm_center!r}")
        if self.channel not in ("first", "mean"):
            raise ModelIntegrityError(f"{bundle.root}: unknown channel policy {self.channel!r}")
        if self.window.frames < 1 or self.window.hop_frames < 1:
            raise ModelIntegrityError(f"{bundle.root}: window frames and hop must be positive")
        if self.default_detector not in self.thresholds:
            raise ModelIntegrityError(f"{bundle.root}: default detector {self.default_detector!r} is not in the card")
        options = default_session_options(threads=threads)
        self._encoder = open_session(
            bundle.path(card["encoder"]["file"]), inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT], options=options
        )
        # The window shape in the card must be the one the graph was exported for.
        expected = [self.feature_params.n_mels, self.window.frames]
        got = list(self._encoder.get_inputs()[0].shape[1:])
        if got != expected:
            raise ModelIntegrityError(
                f"{bundle.root}: encoder expects windows of shape {got}, the card says {expected}"
            )
        self._session_options = options
        self._detectors: dict[str, Any] = {}

    # -- the pipeline, one step per method -------------------------------------------------
    @property
    def detectors(self) -> list[str]:
        """Detector names the bundle provides."""
        return list(self.thresholds)

    def detector(self, name: str | None = None):
        """The detector ``name`` (default: the card's), loaded on first use."""
        name = name or self.default_detector
        if name not in self.thresholds:
            raise ValueError(f"model {self.name!r} has no detector {name!r} (has: {', '.join(self.detectors)})")
        if name not in self._detectors:
            spec = self.card["detectors"][name]
            path = self.bundle.path(spec["file"])
            try:
                kind = detector_kind(name)
            except KeyError:
                raise ModelIntegrityError(f"{self.bundle.root}: unknown detector kind {name!r}") from None
            self._detectors[name] = kind.load(path, session_options=self._session_options)
        return self._detectors[name]

    def prepare(self, y: np.ndarray, *, sample_rate: int | None = None, path: str | None = None) -> np.ndarray:
        """Check, reduce to mono and resample raw samples of shape (n,) or (n, channels)."""
        y = np.asarray(y, dtype=np.float32)
        check_samples(y, path=path)
        y = select_channel(y, policy=self.channel) if y.ndim == 2 else y
        rate = sample_rate or self.feature_params.sample_rate
        check_sample_rate(rate, path=path)  # 1 Hz would be resampled 16,000-fold
        return resample(y, orig_sr=rate, target_sr=self.feature_params.sample_rate)

    def features(self, y: np.ndarray) -> np.ndarray:
        """Log-mel spectrogram (n_mels, n_frames) of mono samples at the model's rate."""
        return log_mel_spectrogram(y, params=self.feature_params)

    def windows(self, logmel: np.ndarray, *, level_reference_db: float | None = None) -> np.ndarray:
        """Normalised analysis windows, shape (n_windows, n_mels, frames), float32.

        With a level reference (the card's ``normalization.level_reference_db``, or the argument,
        which enrollment uses before the card exists) each window's level, its mean in dB over
        bands and frames, is moved to the reference before standardisation.
        """
        normalised = (logmel - self.norm_mean) / self.norm_std
        windows = sliding_windows(normalised, length=self.window.frames, hop=self.window.hop_frames)
        reference = self.level_reference_db if level_reference_db is None else level_reference_db
        if reference is not None:
            windows = windows - self._level_offsets(logmel, reference)
        return np.ascontiguousarray(center_windows(windows, mode=self.norm_center))

    def window_levels(self, logmel: np.ndarray) -> np.ndarray:
        """Level of each analysis window: mean of the log-mel dB over its bands and frames, shape (n_windows,)."""
        return window_levels(logmel, length=self.window.frames, hop=self.window.hop_frames)

    def _level_offsets(self, logmel: np.ndarray, reference: float) -> np.ndarray:
        # Why levelling: see soundsentry.features.level_offsets (training builds its windows with it too).
        return level_offsets(
            logmel, reference_db=reference, std=self.norm_std, length=self.window.frames, hop=self.window.hop_frames
        )

    def embed(self, windows: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Encoder latents of windows, shape (n_windows, latent_dim)."""
        out = [
            self._encoder.run([ENCODER_OUTPUT], {ENCODER_INPUT: windows[i : i + batch_size]})[0]
            for i in range(0, len(windows), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, int(self.card["encoder"]["latent_dim"])), np.float32)

    def score_latents(self, latents: np.ndarray, *, detector: str | None = None) -> np.ndarray:
        """Window anomaly scores (higher = more anomalous), shape (n_windows,)."""
        return self.detector(detector).anomaly_score(latents)

    def verdict(self, score: float, *, threshold: float) -> str:
        return "abnormal" if score > threshold else "normal"

    # -- whole recordings ------------------------------------------------------------------
    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode a file into mono samples at the model's rate, following its channel policy."""
        return load_audio(path, sample_rate=self.feature_params.sample_rate, channel=self.channel)

    def score(
        self,
        audio: str | os.PathLike[str] | np.ndarray,
        *,
        sample_rate: int | None = None,
        detector: str | None = None,
        threshold: float | None = None,
    ) -> ScoreResult:
        """Score a file path or an array of samples.

        A file longer than :data:`~soundsentry.streaming.STREAM_ABOVE_SECONDS` is decoded and
        scored block by block (:func:`~soundsentry.streaming.score_file_streamed`), so memory does
        not grow with its length; the scores equal whole-file scoring within float rounding.

        Parameters
        ----------
        audio : path or np.ndarray of shape (n_samples,) or (n_samples, n_channels)
        sample_rate : int, optional
            Rate of an array input (default: the model's); ignored for files.
        detector : str, optional
            A detector of the bundle (:attr:`detectors`); default: the card's.
        threshold : float, optional
            Overrides the card's threshold for this detector.

        Raises
        ------
        AudioError
            The file cannot be decoded, or the samples are empty, non-finite or too short.
        """
        path = None
        if isinstance(audio, (str, os.PathLike)):
            path = os.fspath(audio)
            from .streaming import STREAM_ABOVE_SECONDS, file_seconds, score_file_streamed

            seconds = file_seconds(path)
            if seconds is not None and seconds > STREAM_ABOVE_SECONDS:
                # Decoded block by block: memory does not grow with the recording's length.
                return score_file_streamed(self, path, detector=detector, threshold=threshold)
            y = self.load(path)
        else:
            y = self.prepare(audio, sample_rate=sample_rate)
        return self.score_samples(y, detector=detector, threshold=threshold, path=path)

    def score_samples(
        self, y: np.ndarray, *, detector: str | None = None, threshold: float | None = None, path: str | None = None
    ) -> ScoreResult:
        """Score mono samples already at the model's rate."""
        min_samples = self.window.min_samples(self.feature_params)
        if y.shape[0] < min_samples:
            seconds = min_samples / self.feature_params.sample_rate
            raise AudioTooShortError(
                path,
                f"too short: {y.shape[0] / self.feature_params.sample_rate:.2f} s, one window needs {seconds:.2f} s",
            )
        window_scores = self.score_latents(self.embed(self.windows(self.features(y))), detector=detector)
        return self.result(window_scores, detector=detector, threshold=threshold, path=path)

    def result(
        self, window_scores: np.ndarray, *, detector: str | None = None, threshold: float | None = None, path=None
    ) -> ScoreResult:
        """Aggregate window scores into a :class:`ScoreResult`."""
        detector = detector or self.default_detector
        threshold = self.thresholds[detector] if threshold is None else float(threshold)
        score = aggregate_scores(window_scores, rule=self.aggregate)
        hop_seconds = self.feature_params.hop_length / self.feature_params.sample_rate
        starts = np.arange(window_scores.shape[0]) * self.window.hop_frames * hop_seconds
        # Frame j is centred on sample j*hop, so a window starts half a frame earlier, clipped at 0.
        starts = np.maximum(starts - self.feature_params.n_fft / 2 / self.feature_params.sample_rate, 0.0)
        return ScoreResult(
            window_scores=window_scores,
            window_starts=starts,
            score=score,
            threshold=threshold,
            verdict=self.verdict(score, threshold=threshold),
            detector=detector,
            model=self.name,
            path=path,
            window_seconds=self.window_seconds,
        )

    @property
    def window_seconds(self) -> float:
        p = self.feature_params
        return ((self.window.frames - 1) * p.hop_length + p.n_fft) / p.sample_rate

    def enroll(self, normal, *, out: str | os.PathLike[str], **options: Any) -> Model:
        """A new bundle for one machine: this model's encoder, detector(s) fitted on ``normal`` recordings.

        ``normal`` is a sequence of audio paths, folders, ``(samples, rate)`` tuples or arrays.
        Writes the bundle to ``out`` and returns it loaded. Options (``detectors``, ``name``,
        ``quantile``, ``overwrite``, ``progress``...) are those of :func:`soundsentry.enroll.enroll`.
        """
        from .enroll import enroll

        return enroll(self, normal, out=out, **options)

    def stream(self, *, sample_rate: int | None = None, detector: str | None = None, threshold: float | None = None):
        """A :class:`~soundsentry.streaming.StreamingScorer` for audio arriving in chunks."""
        from .streaming import StreamingScorer

        return StreamingScorer(self, sample_rate=sample_rate, detector=detector, threshold=threshold)

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, detectors={self.detectors}, root={str(self.bundle.root)!r})"


def load_model(
    name_or_path: str | os.PathLike[str] = "fan", *, threads: int | None = None, verify: bool = True
) -> Model:
    """Load a shipped model by name (``"fan"``) or a bundle folder by path.

    The card is checked (format, version, file checksums, ONNX interface) before use.
    """
    bundle = read_bundle(name_or_path, verify=verify)
    log.debug("loading model %s from %s", bundle.name, bundle.root)
    return Model(bundle, threads=threads)
