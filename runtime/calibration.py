"""Thresholds from normal recordings alone.

A detector's threshold is set from scores of *normal* clips the detector did not see while
it was fitted (held-out clips, or clips scored leave-one-out). Abnormal recordings never
take part. The rule is shared by training (:mod:`soundsentry.train.pipeline`) and
enrollment (:mod:`soundsentry.enroll`), so a bundle's card can name it in words.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["MAD_TO_SIGMA", "robust_threshold", "robust_threshold_rule"]

#: 1.4826 x MAD estimates the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


def robust_threshold(scores: Sequence[float], *, quantile: float = 0.99) -> float:
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
    values = [float(s) for s in scores]
    if not values:
        raise ValueError("a threshold needs at least one normal calibration score")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    median = statistics.median(values)
    mad = statistics.median(abs(s - median) for s in values)
    spread = max(MAD_TO_SIGMA * mad, 1e-6 * max(abs(median), 1.0))
    return float(statistics.NormalDist(median, spread).inv_cdf(quantile))


def robust_threshold_rule(quantile: float) -> str:
    """The rule of :func:`robust_threshold` in words, for a card."""
    return f"{quantile:.0%} quantile of a normal distribution fitted robustly (median, 1.4826 x MAD)"
