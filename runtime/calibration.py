"""Thresholds from normal recordings alone.

A detector's threshold is set from scores of *normal* clips the detector did not see while
it was fitted (held-out clips, or clips scored leave-one-out). Abnormal recordings never
take part. The rule is shared by training (:mod:`soundsentry.train.pipeline`) and
enrollment (:mod:`soundsentry.enroll`), so a bundle's card can name it in words.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from .detector_kinds import DEFAULT_DETECTOR
from .detector_kinds import LOG_SPREAD_PRIORS as _LOG_SPREAD_PRIORS

__all__ = [
    "DEFAULT_QUANTILE",
    "LOG_SPREAD_PRIORS",
    "MAD_TO_SIGMA",
    "PRIOR_LOG_SPREAD",
    "PRIOR_WEIGHT",
    "SINGLE_RECORDING_LOG_SPREAD",
    "lognormal_threshold",
    "lognormal_threshold_rule",
    "robust_threshold",
    "robust_threshold_rule",
]

#: The default threshold: this quantile of the rule's fitted distribution of normal clip scores
#: (training, enrollment and the CLI all default to it).
DEFAULT_QUANTILE = 0.99

#: 1.4826 x MAD estimates the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


def _checked_scores(scores: Sequence[float], *, quantile: float) -> list[float]:
    """The calibration scores as floats, after the checks both threshold rules share."""
    values = [float(s) for s in scores]
    if not values:
        raise ValueError("a threshold needs at least one normal calibration score")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return values


def robust_threshold(scores: Sequence[float], *, quantile: float = DEFAULT_QUANTILE) -> float:
    """Upper ``quantile`` of a normal distribution fitted robustly (median, 1.4826 x MAD) to normal clips' scores.

    Robust because one odd calibration clip (another microphone, a machine heard once) would
    otherwise inflate the spread and put the threshold far above every typical normal clip.
    The spread has a small floor so identical scores still give a usable threshold.

    Parameters
    ----------
    scores : sequence of float, length >= 1
        Clip scores of normal recordings (higher = more anomalous).
    quantile : float in (0, 1)

    Returns
    -------
    float
    """
    values = _checked_scores(scores, quantile=quantile)
    median = statistics.median(values)
    mad = statistics.median(abs(s - median) for s in values)
    spread = max(MAD_TO_SIGMA * mad, 1e-6 * max(abs(median), 1.0))
    return float(statistics.NormalDist(median, spread).inv_cdf(quantile))


def robust_threshold_rule(quantile: float) -> str:
    """The rule of :func:`robust_threshold` in words, for a card."""
    return f"{quantile:.0%} quantile of a normal distribution fitted robustly (median, 1.4826 x MAD)"


#: Spreads of log clip scores between normal recordings of one machine, per detector, in
#: natural-log units: ``(prior, single_recording)``. ``prior`` is pooled with the observed spread of
#: a few recordings' leave-one-out scores; ``single_recording`` is used alone when one recording
#: (cut into blocks) is all there is. Each detector kind declares its own (soundsentry.detector_kinds,
#: with how they were measured).
LOG_SPREAD_PRIORS: dict[str, tuple[float, float]] = dict(_LOG_SPREAD_PRIORS)
#: The default detector's spreads (the defaults of :func:`lognormal_threshold`).
PRIOR_LOG_SPREAD, SINGLE_RECORDING_LOG_SPREAD = LOG_SPREAD_PRIORS[DEFAULT_DETECTOR]
#: The prior counts as this many recordings' worth of evidence about the spread.
PRIOR_WEIGHT = 4


def lognormal_threshold(
    scores: Sequence[float],
    *,
    quantile: float = DEFAULT_QUANTILE,
    n_recordings: int | None = None,
    prior_spread: float = PRIOR_LOG_SPREAD,
    prior_weight: float = PRIOR_WEIGHT,
    single_recording_spread: float = SINGLE_RECORDING_LOG_SPREAD,
) -> float:
    """Upper prediction bound of a log-normal fitted to positive normal clip scores, for few recordings.

    LOF clip scores are ratios (about 1 for inliers), distance detectors' scores distances; all
    are positive with a long right tail, so they are fitted in log space. The centre is the median log score. The spread pools the observed standard
    deviation of the log scores with a prior spread (``prior_spread``, weight ``prior_weight``
    recordings), because two or three leave-one-out scores say little about how much a next
    normal recording can differ; with a single recording (``n_recordings == 1``, block scores)
    the fixed ``single_recording_spread`` is used. The bound widens with ``sqrt(1 + 1/m)`` for
    ``m`` calibration scores, as a prediction interval does.

    Parameters
    ----------
    scores : sequence of float > 0
        Leave-one-out clip scores of normal recordings (or block scores of one recording).
    quantile : float in (0, 1)
    n_recordings : int, optional
        Recordings behind the scores (default: one per score).

    Returns
    -------
    float
    """
    values = _checked_scores(scores, quantile=quantile)
    if min(values) <= 0:
        raise ValueError("the log-normal rule needs positive scores (ratio or distance detectors); use robust_threshold for others")
    logs = [math.log(v) for v in values]
    n_recordings = len(values) if n_recordings is None else n_recordings
    z = statistics.NormalDist().inv_cdf(quantile)
    if n_recordings <= 1:
        spread, m = single_recording_spread, 1
    else:
        m = len(logs)
        observed = statistics.variance(logs) if m > 1 else 0.0
        spread = math.sqrt((prior_weight * prior_spread**2 + (m - 1) * observed) / (prior_weight + m - 1))
    return float(math.exp(statistics.median(logs) + z * spread * math.sqrt(1 + 1 / m)))


def lognormal_threshold_rule(
    quantile: float,
    *,
    n_recordings: int,
    prior_spread: float = PRIOR_LOG_SPREAD,
    single_recording_spread: float = SINGLE_RECORDING_LOG_SPREAD,
) -> str:
    """The rule of :func:`lognormal_threshold` in words, for a card."""
    if n_recordings <= 1:
        return (
            f"{quantile:.0%} upper bound of a log-normal centred on the median log block score, with an assumed "
            f"log spread of {single_recording_spread} (one recording shows no spread between recordings)"
        )
    return (
        f"{quantile:.0%} upper prediction bound of a log-normal fitted to the leave-one-out scores (centre: median "
        f"log score; spread: their standard deviation pooled with a prior of {prior_spread} worth "
        f"{PRIOR_WEIGHT} recordings)"
    )
