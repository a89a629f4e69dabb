"""A loaded model bundle: audio -> log-mel windows -> latents -> detector scores -> verdict."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import ChannelPolicy, check_sample_rate, check_samples, resample, select_channel
from .bundle import Bundle, read_bundle
from .detector_kinds import detector_kind
from .encoder_kinds import Encoder, open_encoder
from .errors import ModelIntegrityError
from .features import FeatureParams
from .logmel_encoder import WindowParams
from .onnx_session import default_session_options
from .scoring import mono_samples, score_mono, score_path

__all__ = ["Model", "ScoreResult", "WindowParams", "aggregate_scores", "load_model"]

log = logging.getLogger(__name__)

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
    #: Per-view evidence of a ``views`` detector (:class:`~soundsentry.evidence.ViewEvidence`, most flagged
    #: first); empty for single-score detectors.
    evidence: list = field(default_factory=list)

    @property
    def explanation(self) -> str:
        """One line saying which view raised the flag and by how much ("" without evidence)."""
        from .evidence import summary

        return summary(self.evidence) if self.evidence else ""


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
        card = bundle.card  # validated by soundsentry.card when the bundle was read
        self.bundle = bundle
        self.card = card
        self.name: str = bundle.name
        self.channel: ChannelPolicy = card.channel
        self.aggregate: str = card.aggregate
        self.default_detector: str = card.default_detector
        self.thresholds: dict[str, float] = card.thresholds
        options = default_session_options(threads=threads)
        #: The front end + encoder (:mod:`soundsentry.encoder_kinds`): features, windows, embedding, timing.
        self.encoder: Encoder = open_encoder(card, bundle=bundle, session_options=options)
        self._session_options = options
        self._detectors: dict[str, Any] = {}

    # -- the encoder kind's settings (log-mel kinds) ---------------------------------------
    @property
    def sample_rate(self) -> int:
        """The model's sample rate in Hz."""
        return self.encoder.sample_rate

    @property
    def feature_params(self) -> FeatureParams:
        return self.encoder.feature_params

    @property
    def window(self) -> WindowParams:
        return self.encoder.window

    @property
    def norm_mean(self) -> np.ndarray:
        return self.encoder.norm_mean

    @property
    def norm_std(self) -> np.ndarray:
        return self.encoder.norm_std

    @property
    def norm_center(self) -> str:
        return self.encoder.norm_center

    @property
    def level_reference_db(self) -> float | None:
        return self.encoder.level_reference_db

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
        rate = sample_rate or self.sample_rate
        check_sample_rate(rate, path=path)  # 1 Hz would be resampled 16,000-fold
        return resample(y, orig_sr=rate, target_sr=self.sample_rate)

    def features(self, y: np.ndarray) -> np.ndarray:
        """Front end of mono samples at the model's rate: the log-mel spectrogram (n_mels, n_frames) of log-mel kinds."""
        return self.encoder.features(y)

    def windows(self, logmel: np.ndarray, *, level_reference_db: float | None = None) -> np.ndarray:
        """Encoder input windows, shape (n_windows, n_mels, frames), float32 (see the encoder kind's ``windows``)."""
        return self.encoder.windows(logmel, level_reference_db=level_reference_db)

    def display(self, features: np.ndarray) -> np.ndarray:
        """The spectrogram to draw of :meth:`features`' output, shape (n_mels, n_frames) in dB."""
        display = getattr(self.encoder, "display", None)
        return features if display is None else display(features)

    def window_levels(self, logmel: np.ndarray) -> np.ndarray:
        """Level of each analysis window: mean of the log-mel dB over its bands and frames, shape (n_windows,)."""
        return self.encoder.window_levels(logmel)

    def embed(self, windows: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Encoder latents of windows, shape (n_windows, latent_dim)."""
        return self.encoder.embed(windows, batch_size=batch_size)

    def score_latents(self, latents: np.ndarray, *, detector: str | None = None) -> np.ndarray:
        """Window anomaly scores (higher = more anomalous), shape (n_windows,)."""
        return self.detector(detector).anomaly_score(latents)

    def verdict(self, score: float, *, threshold: float) -> str:
        return "abnormal" if score > threshold else "normal"

    # -- whole recordings ------------------------------------------------------------------
    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Decode a file into mono samples at the model's rate, following its channel policy."""
        return mono_samples(self, path)

    def score(
        self,
        audio: str | os.PathLike[str] | np.ndarray,
        *,
        sample_rate: int | None = None,
        detector: str | None = None,
        threshold: float | None = None,
    ) -> ScoreResult:
        """Score a file path or an array of samples.

        A file longer than :data:`~soundsentry.scoring.STREAM_ABOVE_SECONDS` is decoded and
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
        if isinstance(audio, (str, os.PathLike)):
            return score_path(self, audio, detector=detector, threshold=threshold)
        y = self.prepare(audio, sample_rate=sample_rate)
        return self.score_samples(y, detector=detector, threshold=threshold)

    def score_samples(
        self, y: np.ndarray, *, detector: str | None = None, threshold: float | None = None, path: str | None = None
    ) -> ScoreResult:
        """Score mono samples already at the model's rate."""
        detector = detector or self.default_detector
        scores = score_mono(self, y, detectors=[detector], path=path)
        return self.result(
            scores.window_scores[detector], latents=scores.latents, detector=detector, threshold=threshold, path=path
        )

    def clip_score(
        self, window_scores: np.ndarray, *, latents: np.ndarray | None = None, detector: str | None = None
    ) -> float:
        """The clip score: the detector's own (the ``views`` detector judges the clip's rows, ``latents``)
        or the window scores aggregated by the card's rule (``aggregate``)."""
        det = self.detector(detector)
        if hasattr(det, "clip_score"):
            if latents is None:
                raise ValueError(f"the {detector or self.default_detector} detector's clip score needs the window latents")
            return det.clip_score(latents)
        return aggregate_scores(window_scores, rule=self.aggregate)

    def evidence(self, latents: np.ndarray, *, detector: str | None = None) -> list:
        """Per-view evidence of a clip (empty for detectors without views)."""
        det = self.detector(detector)
        if not hasattr(det, "views"):
            return []
        from .evidence import explain

        edges = getattr(self.encoder, "shape_band_edges_hz", None)
        return explain(det, latents, band_edges_hz=None if edges is None else edges())

    def result(
        self,
        window_scores: np.ndarray,
        *,
        latents: np.ndarray | None = None,
        detector: str | None = None,
        threshold: float | None = None,
        path=None,
    ) -> ScoreResult:
        """Aggregate window scores (and, for the ``views`` detector, the window latents) into a :class:`ScoreResult`."""
        detector = detector or self.default_detector
        threshold = self.thresholds[detector] if threshold is None else float(threshold)
        score = self.clip_score(window_scores, latents=latents, detector=detector)
        starts = self.encoder.window_starts(window_scores.shape[0])
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
            evidence=[] if latents is None else self.evidence(latents, detector=detector),
        )

    @property
    def window_seconds(self) -> float:
        """Length of one analysis window in seconds."""
        return self.encoder.window_seconds

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
