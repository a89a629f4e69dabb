"""The measurement behind enrollment's threshold spreads (studies.threshold_prior).

The spreads in ``soundsentry.calibration.LOG_SPREAD_PRIORS`` mean something only if the bound the
measurement fits is the bound ``soundsentry enroll`` applies, and if the shipped values are the
ones the measurement gave (stored in docs/enrollment_thresholds.md with the command that redoes it).
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("studies.threshold_prior")  # needs the [train] extra's data helpers

from soundsentry.calibration import LOG_SPREAD_PRIORS, lognormal_threshold
from soundsentry.enroll import enrollment_threshold

from studies.threshold_prior import Trial, false_alarm_rate, fit_spread, offset_bound

DOC = Path(__file__).resolve().parents[1] / "docs" / "enrollment_thresholds.md"


def _trial(scores: list[float], n_recordings: int, offsets: list[float], machine: str = "m") -> Trial:
    logs = [math.log(s) for s in scores]
    return Trial(
        bundle="b",
        machine=machine,
        detector="knn",
        n_recordings=n_recordings,
        n_scores=len(scores),
        observed_var=statistics.variance(logs) if len(logs) > 1 else 0.0,
        robust_offset=0.0,
        same=offsets,
    )


@pytest.mark.parametrize("n_recordings", [1, 2, 3, 7])
@pytest.mark.parametrize("spread", [0.1, 0.38, 0.9])
def test_fitted_bound_is_the_runtime_threshold(n_recordings, spread):
    """offset_bound (what the fit flags) == log(lognormal_threshold) - median log score (what enrollment sets)."""
    rng = np.random.default_rng(n_recordings)
    scores = list(np.exp(rng.normal(0.3, 0.2, size=max(n_recordings, 4) if n_recordings == 1 else n_recordings)))
    trial = _trial(scores, n_recordings, [])
    threshold = lognormal_threshold(
        scores, quantile=0.99, n_recordings=n_recordings, prior_spread=spread, single_recording_spread=spread
    )
    centre = statistics.median(math.log(s) for s in scores)
    assert offset_bound(trial, spread) == pytest.approx(math.log(threshold) - centre, rel=1e-12)


def test_enrollment_uses_each_detectors_spreads():
    scores = [1.1, 1.3, 0.9]
    for det, (prior, single) in LOG_SPREAD_PRIORS.items():
        many, _ = enrollment_threshold(det, scores, quantile=0.99, n_recordings=3)
        one, rule = enrollment_threshold(det, scores, quantile=0.99, n_recordings=1)
        assert many == pytest.approx(lognormal_threshold(scores, n_recordings=3, prior_spread=prior))
        assert one == pytest.approx(lognormal_threshold(scores, n_recordings=1, single_recording_spread=single))
        assert f"log spread of {single} " in rule
    # The One-Class SVM's scores can be negative: it keeps the robust normal rule.
    threshold, rule = enrollment_threshold("ocsvm", [-0.2, 0.1, 0.05], quantile=0.99, n_recordings=3)
    assert "robustly" in rule and threshold > 0.1


def test_fit_spread_is_the_smallest_that_keeps_false_alarms_at_one_percent():
    """200 offsets per machine, two machines of different spread; the fit answers for the pair average."""
    rng = np.random.default_rng(0)
    trials = [
        _trial([1.0], 1, list(rng.normal(0.0, 0.1, 200)), machine="quiet"),
        _trial([1.0], 1, list(rng.normal(0.1, 0.4, 200)), machine="wide"),
    ]
    s = fit_spread(trials)
    assert false_alarm_rate(trials, s) <= 0.01
    assert false_alarm_rate(trials, round(s - 0.02, 2)) > 0.01
    # The wide machine alone needs more than both together (the quiet one's rate is 0 there).
    assert fit_spread(trials[1:]) > s


def test_shipped_spreads_are_the_measured_ones():
    """docs/enrollment_thresholds.md, written by the measurement, lists fitted and shipped spreads side by side."""
    text = DOC.read_text(encoding="utf-8")
    assert "python -m studies.threshold_prior" in text
    rows = re.findall(r"^\| (lof|knn|mahalanobis) \| \d+ \| ([\d.]+) \| ([\d.]+) \| ([\d.]+), ([\d.]+) \|", text, re.M)
    assert {r[0] for r in rows} == set(LOG_SPREAD_PRIORS)
    for det, prior, single, used_prior, used_single in rows:
        assert (float(prior), float(single)) == LOG_SPREAD_PRIORS[det]
        assert (float(used_prior), float(used_single)) == LOG_SPREAD_PRIORS[det]
