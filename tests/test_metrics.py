"""Detection metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from soundsentry.metrics import partial_roc_auc, precision_recall_f1, roc_auc, roc_curve


@pytest.fixture(scope="module")
def skm():
    return pytest.importorskip("sklearn.metrics")


def _labelled(seed: int, n: int = 200, *, ties: bool):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]  # both classes present
    scores = rng.standard_normal(n) + 0.8 * labels
    if ties:
        scores = np.round(scores, 1)  # many equal scores across both classes
    return labels, scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_matches_sklearn(skm, seed, ties):
    labels, scores = _labelled(seed, ties=ties)
    assert roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("max_fpr", [0.1, 0.05, 0.3])
def test_partial_roc_auc_matches_sklearn(skm, seed, ties, max_fpr):
    labels, scores = _labelled(seed, ties=ties)
    expected = skm.roc_auc_score(labels, scores, max_fpr=max_fpr)
    assert partial_roc_auc(labels, scores, max_fpr=max_fpr) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_auc_extremes():
    labels = np.array([0, 0, 0, 1, 1])
    good = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(labels, good) == pytest.approx(1.0)
    assert roc_auc(labels, -good) == pytest.approx(0.0)
    assert roc_auc(labels, np.zeros(5)) == pytest.approx(0.5)
    assert partial_roc_auc(labels, good, max_fpr=0.1) == pytest.approx(1.0)
    assert partial_roc_auc(labels, np.zeros(5), max_fpr=0.1) == pytest.approx(0.5)  # McClish: chance level is 0.5


def test_roc_curve_matches_sklearn_points(skm):
    labels, scores = _labelled(7, ties=True)
    fpr, tpr, _ = roc_curve(labels, scores)
    ref_fpr, ref_tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)


def test_single_class_is_refused():
    with pytest.raises(ValueError):
        roc_auc(np.zeros(5), np.arange(5.0))
    with pytest.raises(ValueError):
        partial_roc_auc(np.ones(5), np.arange(5.0))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.4, 1.5, 10.0])
def test_precision_recall_f1_match_sklearn(skm, seed, threshold):
    labels, scores = _labelled(seed, n=120, ties=True)
    pred = (scores > threshold).astype(int)
    got = precision_recall_f1(labels, scores, threshold=threshold)
    assert got["precision"] == pytest.approx(skm.precision_score(labels, pred, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(labels, pred, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(labels, pred, zero_division=0))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))


def test_threshold_is_strict():
    # A score equal to the threshold is normal, as in the verdict rule ``score > threshold``.
    got = precision_recall_f1(np.array([1, 0]), np.array([1.0, 0.0]), threshold=1.0)
    assert got["recall"] == 0.0
