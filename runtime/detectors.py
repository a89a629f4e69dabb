"""Outlier detectors on the encoder's latent space.

Conventions follow scikit-learn: ``score_samples`` is *higher for more normal* points
(so parity tests compare like with like). SoundSentry's own scores, returned by
``anomaly_score`` and used everywhere else (CLI, reports, thresholds), point the other
way: **higher means more anomalous**.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ModelIntegrityError

__all__ = ["LocalOutlierFactor", "OneClassSVMOnnx", "pairwise_distances"]

# scikit-learn adds this to mean reachability distances to avoid dividing by zero.
_LRD_EPS = 1e-10


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of ``a`` (n, d) and ``b`` (m, d), float64, shape (n, m).

    One matrix product instead of a Python loop; clamped at 0 because rounding can make
    ``|a|^2 + |b|^2 - 2ab`` slightly negative for identical rows.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def _k_nearest(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of the k smallest entries per row, sorted ascending."""
    idx = np.argpartition(distances, k - 1, axis=1)[:, :k]
    d = np.take_along_axis(distances, idx, axis=1)
    order = np.argsort(d, axis=1, kind="stable")
    return np.take_along_axis(d, order, axis=1), np.take_along_axis(idx, order, axis=1)


class LocalOutlierFactor:
    """Local Outlier Factor in novelty mode, in NumPy.

    Matches ``sklearn.neighbors.LocalOutlierFactor(novelty=True, metric="euclidean")``:
    ``score_samples`` equals scikit-learn's (the negated LOF), so ``anomaly_score`` is
    the LOF itself, about 1 for inliers and larger for outliers.

    Parameters
    ----------
    n_neighbors : int
        Neighbours used; reduced to ``n_samples - 1`` when the reference set is smaller.

    Attributes
    ----------
    reference_ : np.ndarray, shape (n_reference, n_features)
        Latent vectors of normal windows.
    n_neighbors_ : int
    k_distance_ : np.ndarray, shape (n_reference,)
        Distance of each reference point to its ``n_neighbors_``-th neighbour.
    lrd_ : np.ndarray, shape (n_reference,)
        Local reachability density of each reference point.
    """

    def __init__(self, *, n_neighbors: int = 20, block_size: int = 1024) -> None:
        self.n_neighbors = n_neighbors
        self.block_size = block_size

    def fit(self, X: np.ndarray) -> LocalOutlierFactor:
        """Fit on normal latents ``X`` of shape (n_samples, n_features)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError("LOF needs a 2-D array with at least two reference points")
        k = max(1, min(self.n_neighbors, X.shape[0] - 1))
        dist = pairwise_distances(X, X)
        # A point is not its own neighbour in scikit-learn's fit.
        np.fill_diagonal(dist, np.inf)
        nd, ni = _k_nearest(dist, k)
        self.reference_ = X
        self.n_neighbors_ = k
        self.k_distance_ = nd[:, -1]
        self.lrd_ = self._lrd(nd, ni)
        return self

    def _lrd(self, neighbor_dist: np.ndarray, neighbor_idx: np.ndarray) -> np.ndarray:
        reach = np.maximum(neighbor_dist, self.k_distance_[neighbor_idx])
        return 1.0 / (reach.mean(axis=1) + _LRD_EPS)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Negated LOF of each row of ``X`` (higher = more normal), shape (n_samples,)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        out = np.empty(X.shape[0])
        # Blocks bound memory to block_size x n_reference distances whatever the batch.
        for start in range(0, X.shape[0], self.block_size):
            block = X[start : start + self.block_size]
            nd, ni = _k_nearest(pairwise_distances(block, self.reference_), self.n_neighbors_)
            lrd = self._lrd(nd, ni)
            out[start : start + len(block)] = -(self.lrd_[ni] / lrd[:, None]).mean(axis=1)
        return out

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """LOF of each row (higher = more anomalous), shape (n_samples,)."""
        return -self.score_samples(X)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted state as a plain ``.npz`` (no pickle)."""
        np.savez(
            path,
            reference=self.reference_.astype(np.float32),
            k_distance=self.k_distance_,
            lrd=self.lrd_,
            n_neighbors=np.int64(self.n_neighbors_),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LocalOutlierFactor:
        """Read a state written by :meth:`save`; refuses pickled content."""
        try:
            with np.load(path, allow_pickle=False) as data:
                reference = np.asarray(data["reference"], dtype=np.float64)
                k_distance = np.asarray(data["k_distance"], dtype=np.float64)
                lrd = np.asarray(data["lrd"], dtype=np.float64)
                k = int(data["n_neighbors"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelIntegrityError(f"{path}: not a valid LOF reference set ({exc})") from exc
        n = reference.shape[0] if reference.ndim == 2 else -1
        if n < 2 or k_distance.shape != (n,) or lrd.shape != (n,) or not 1 <= k < n:
            raise ModelIntegrityError(f"{path}: LOF reference set has inconsistent shapes")
        lof = cls(n_neighbors=k)
        # Recompute nothing: the stored reference float32 rounding is what scoring uses.
        lof.reference_, lof.k_distance_, lof.lrd_, lof.n_neighbors_ = reference, k_distance, lrd, k
        return lof


class OneClassSVMOnnx:
    """A One-Class SVM exported by skl2onnx, run with ONNX Runtime.

    ``score_samples`` returns the ONNX graph's ``scores`` output, scikit-learn's
    ``decision_function`` (positive inside the learned support, higher = more normal);
    ``anomaly_score`` is its negation.
    """

    input_name = "latent"
    output_name = "scores"

    def __init__(self, path: str | os.PathLike[str], *, session_options=None) -> None:
        from .onnx_session import open_session

        self.path = Path(path)
        self.session = open_session(
            self.path, inputs=[self.input_name], outputs=["label", self.output_name], options=session_options
        )

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=np.float32)
        (scores,) = self.session.run([self.output_name], {self.input_name: X})
        return np.asarray(scores, dtype=np.float64).reshape(-1)

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return -self.score_samples(X)
