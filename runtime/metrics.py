"""Detection metrics in NumPy (no scikit-learn at run time).

``roc_auc`` and ``partial_roc_auc`` reproduce ``sklearn.metrics.roc_auc_score`` (the
latter with ``max_fpr``, McClish-standardised as DCASE's baseline reports pAUC).
Labels: 1 = abnormal, 0 = normal; higher scores mean more anomalous.
"""

from __future__ import annotations

import numpy as np

__all__ = ["partial_roc_auc", "precision_recall_f1", "roc_auc", "roc_curve"]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score threshold (descending).

    Returns
    -------
    fpr, tpr, thresholds : np.ndarray
        Both rates start at 0 (threshold +inf) and end at 1.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.all() or not y.any():
        raise ValueError("ROC needs both normal and abnormal clips")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / y.sum()]
    fpr = np.r_[0.0, fps / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[distinct]]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))


def partial_roc_auc(labels: np.ndarray, scores: np.ndarray, *, max_fpr: float = 0.1) -> float:
    """Standardised partial AUC for FPR in [0, max_fpr] (McClish), as scikit-learn and DCASE."""
    fpr, tpr, _ = roc_curve(labels, scores)
    stop = np.searchsorted(fpr, max_fpr, side="right")
    x = np.r_[fpr[:stop], max_fpr]
    y_interp = np.interp(max_fpr, [fpr[stop - 1], fpr[stop]], [tpr[stop - 1], tpr[stop]])
    y = np.r_[tpr[:stop], y_interp]
    partial = np.trapezoid(y, x)
    min_area = 0.5 * max_fpr**2
    max_area = max_fpr
    return float(0.5 * (1 + (partial - min_area) / (max_area - min_area)))


def precision_recall_f1(labels: np.ndarray, scores: np.ndarray, *, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of ``score > threshold`` for the abnormal class, and accuracy."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) > threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": float((pred == y).mean())}
