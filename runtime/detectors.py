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

__all__ = [
    "KNearestNeighbors",
    "LocalOutlierFactor",
    "Mahalanobis",
    "OneClassSVMOnnx",
    "ledoit_wolf",
    "pairwise_distances",
]

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


def _onnx_distances(g, x: str, reference: np.ndarray) -> str:
    """Graph nodes of :func:`pairwise_distances` between float64 rows ``x`` and ``reference``, same formula."""
    a2 = g.op("ReduceSum", g.op("Mul", x, x), g.const([1], "ax", np.int64), keepdims=1)
    b2 = g.const((reference * reference).sum(1)[None, :], "ref_sq")
    ab = g.op("MatMul", x, g.const(np.ascontiguousarray(reference.T), "ref_t"))
    sq = g.op("Sub", g.op("Add", a2, b2), g.op("Mul", g.const(2.0, "two", np.float64), ab))
    return g.op("Sqrt", g.op("Max", sq, g.const(0.0, "zero", np.float64)), hint="distances")


def _onnx_k_nearest(g, distances: str, k: int) -> tuple[str, str]:
    """Graph nodes of :func:`_k_nearest`: the k smallest distances per row, ascending, and their indices."""
    return g.op("TopK", distances, g.const([k], "k", np.int64), outputs=2, axis=1, largest=0, sorted=1)


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

    def onnx_scores(self, g, latent: str) -> str:
        """:meth:`anomaly_score` as ONNX graph nodes (the single-file export).

        ``g`` is a graph builder (:class:`soundsentry.export.onnx_pipeline.Graph`: ``g.op(type, *inputs,
        **attributes)`` and ``g.const(array, hint, dtype)`` return value names; nothing here imports
        onnx); ``latent`` names the float32 latents (n, n_features). Returns the name of the float64
        anomaly scores (n,), equal to :meth:`anomaly_score`'s.
        """
        nd, ni = _onnx_k_nearest(g, _onnx_distances(g, g.op("Cast", latent, to=11), self.reference_), self.n_neighbors_)
        reach = g.op("Max", nd, g.op("Gather", g.const(self.k_distance_, "k_distance"), ni, axis=0))
        mean_reach = g.op("ReduceMean", reach, axes=[1], keepdims=1)
        lrd = g.op("Reciprocal", g.op("Add", mean_reach, g.const(_LRD_EPS, "eps", np.float64)))
        ratio = g.op("Div", g.op("Gather", g.const(self.lrd_, "lrd"), ni, axis=0), lrd)
        return g.op("ReduceMean", ratio, axes=[1], keepdims=0)

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
    def load(cls, path: str | os.PathLike[str], *, session_options=None) -> LocalOutlierFactor:
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


class KNearestNeighbors:
    """Mean distance to the k nearest normal reference points, in NumPy.

    The anomaly score is the mean Euclidean distance from a query to its ``n_neighbors``
    nearest reference points, i.e. the mean of
    ``sklearn.neighbors.NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(X)[0]``
    over each row. A query is never its own neighbour: scoring is novelty detection, the
    queries are not part of the reference set. ``score_samples`` is its negation.

    Parameters
    ----------
    n_neighbors : int
        Neighbours averaged; must not exceed the number of reference points.
    block_size : int
        Queries scored at a time; memory is ``block_size x n_reference`` distances.

    Attributes
    ----------
    reference_ : np.ndarray, shape (n_reference, n_features)
        Latent vectors of normal windows.
    n_neighbors_ : int
    """

    def __init__(self, *, n_neighbors: int = 5, block_size: int = 1024) -> None:
        self.n_neighbors = n_neighbors
        self.block_size = block_size

    def fit(self, X: np.ndarray) -> KNearestNeighbors:
        """Keep normal latents ``X`` of shape (n_samples, n_features) as the reference set.

        Raises
        ------
        ValueError
            ``X`` is not 2-D, or ``n_neighbors`` is not in ``1..n_samples``.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError("kNN needs a 2-D array with at least one reference point")
        k = int(self.n_neighbors)
        if not 1 <= k <= X.shape[0]:
            raise ValueError(f"kNN n_neighbors={k} needs 1 <= n_neighbors <= the {X.shape[0]} reference points")
        self.reference_ = X
        self.n_neighbors_ = k
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """Mean distance of each row of ``X`` (n_samples, n_features) to its k nearest reference points, shape (n_samples,)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        out = np.empty(X.shape[0])
        # Blocks bound memory to block_size x n_reference distances whatever the batch.
        for start in range(0, X.shape[0], self.block_size):
            block = X[start : start + self.block_size]
            nd, _ = _k_nearest(pairwise_distances(block, self.reference_), self.n_neighbors_)
            out[start : start + len(block)] = nd.mean(axis=1)
        return out

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Negated mean k-nearest distance (higher = more normal), shape (n_samples,)."""
        return -self.anomaly_score(X)

    def onnx_scores(self, g, latent: str) -> str:
        """:meth:`anomaly_score` as ONNX graph nodes (the single-file export).

        ``g`` is a graph builder (:class:`soundsentry.export.onnx_pipeline.Graph`: ``g.op(type, *inputs,
        **attributes)`` and ``g.const(array, hint, dtype)`` return value names; nothing here imports
        onnx); ``latent`` names the float32 latents (n, n_features). Returns the name of the float64
        anomaly scores (n,), equal to :meth:`anomaly_score`'s.
        """
        nd, _ = _onnx_k_nearest(g, _onnx_distances(g, g.op("Cast", latent, to=11), self.reference_), self.n_neighbors_)
        return g.op("ReduceMean", nd, axes=[1], keepdims=0)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted state as a plain ``.npz`` (no pickle)."""
        np.savez(path, reference=self.reference_.astype(np.float32), n_neighbors=np.int64(self.n_neighbors_))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, session_options=None) -> KNearestNeighbors:
        """Read a state written by :meth:`save`; refuses pickled content and inconsistent shapes."""
        try:
            with np.load(path, allow_pickle=False) as data:
                reference = np.asarray(data["reference"], dtype=np.float64)
                k = int(data["n_neighbors"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"{path}: not a valid kNN reference set ({exc})") from exc
        n = reference.shape[0] if reference.ndim == 2 else -1
        if n < 1 or not 1 <= k <= n or not np.isfinite(reference).all():
            raise ModelIntegrityError(f"{path}: kNN reference set has inconsistent shapes or values")
        knn = cls(n_neighbors=k)
        knn.reference_, knn.n_neighbors_ = reference, k
        return knn


def ledoit_wolf(X: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of ``X`` (n_samples, n_features) and its shrinkage.

    The formula of ``sklearn.covariance.ledoit_wolf`` (not assuming centred data): the
    empirical (biased, ``1/n``) covariance is pulled towards ``mu * I``, ``mu`` the mean
    variance, by the shrinkage that minimises the expected squared error. Few, correlated
    windows make the plain covariance near-singular; the shrunk one stays invertible as
    long as any feature varies.

    Returns
    -------
    covariance : np.ndarray, shape (n_features, n_features)
    shrinkage : float in [0, 1]
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    X = X - X.mean(axis=0)
    emp_cov = X.T @ X / n
    if d == 1:
        # scikit-learn does not shrink a single feature.
        return emp_cov, 0.0
    X2 = X * X
    emp_cov_trace = X2.sum(axis=0) / n
    mu = float(emp_cov_trace.sum()) / d
    beta_ = float(np.sum(X2.T @ X2))
    delta_ = float(np.sum(emp_cov**2))
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * float(emp_cov_trace.sum()) + d * mu**2) / d
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    covariance = (1.0 - shrinkage) * emp_cov
    covariance.flat[:: d + 1] += shrinkage * mu
    return covariance, float(shrinkage)


def _pinvh(a: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of a symmetric matrix, eigenvalues below ``d * eps * max|eigenvalue|`` dropped (as scipy's pinvh)."""
    w, v = np.linalg.eigh(a)
    cutoff = a.shape[0] * np.finfo(np.float64).eps * (np.abs(w).max() if w.size else 0.0)
    keep = np.abs(w) > cutoff
    return (v[:, keep] / w[keep]) @ v[:, keep].T


class Mahalanobis:
    """Mahalanobis distance to the normal latents' mean under a Ledoit-Wolf shrunk covariance, in NumPy.

    ``anomaly_score`` is the distance itself, ``sqrt((x - location_) precision_ (x - location_))``,
    so its scale is that of a distance; ``sklearn.covariance.LedoitWolf().fit(reference).mahalanobis(X)``
    returns its square. ``score_samples`` is its negation.

    Attributes
    ----------
    location_ : np.ndarray, shape (n_features,)
        Mean of the reference latents.
    precision_ : np.ndarray, shape (n_features, n_features)
        Pseudo-inverse of the shrunk covariance.
    shrinkage_ : float
        Ledoit-Wolf shrinkage towards a scaled identity, in [0, 1].
    n_reference_ : int
        Reference points it was fitted on.
    """

    def fit(self, X: np.ndarray) -> Mahalanobis:
        """Fit on normal latents ``X`` of shape (n_samples, n_features), n_samples >= 2."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError("Mahalanobis needs a 2-D array with at least two reference points")
        if not np.isfinite(X).all():
            raise ValueError("Mahalanobis reference points must be finite")
        covariance, self.shrinkage_ = ledoit_wolf(X)
        self.location_ = X.mean(axis=0)
        self.precision_ = _pinvh(covariance)
        self.n_reference_ = int(X.shape[0])
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``X`` (n_samples, n_features), shape (n_samples,)."""
        centred = np.atleast_2d(np.asarray(X, dtype=np.float64)) - self.location_
        # Clamped at 0: rounding can make the quadratic form of a near-null direction slightly negative.
        return np.sqrt(np.maximum(np.einsum("ij,ij->i", centred @ self.precision_, centred), 0.0))

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Negated Mahalanobis distance (higher = more normal), shape (n_samples,)."""
        return -self.anomaly_score(X)

    def onnx_scores(self, g, latent: str) -> str:
        """:meth:`anomaly_score` as ONNX graph nodes (the single-file export).

        ``g`` is a graph builder (:class:`soundsentry.export.onnx_pipeline.Graph`: ``g.op(type, *inputs,
        **attributes)`` and ``g.const(array, hint, dtype)`` return value names; nothing here imports
        onnx); ``latent`` names the float32 latents (n, n_features). Returns the name of the float64
        anomaly scores (n,), equal to :meth:`anomaly_score`'s.
        """
        centred = g.op("Sub", g.op("Cast", latent, to=11), g.const(self.location_, "location"))
        product = g.op("Mul", g.op("MatMul", centred, g.const(self.precision_, "precision")), centred)
        q = g.op("ReduceSum", product, g.const([1], "ax", np.int64), keepdims=0)
        return g.op("Sqrt", g.op("Max", q, g.const(0.0, "zero", np.float64)))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted state as a plain ``.npz`` (no pickle)."""
        np.savez(
            path,
            location=self.location_,
            precision=self.precision_,
            shrinkage=np.float64(self.shrinkage_),
            n_reference=np.int64(self.n_reference_),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, session_options=None) -> Mahalanobis:
        """Read a state written by :meth:`save`; refuses pickled content and inconsistent shapes."""
        try:
            with np.load(path, allow_pickle=False) as data:
                location = np.asarray(data["location"], dtype=np.float64)
                precision = np.asarray(data["precision"], dtype=np.float64)
                shrinkage = float(data["shrinkage"])
                n_reference = int(data["n_reference"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"{path}: not a valid Mahalanobis state ({exc})") from exc
        d = location.shape[0] if location.ndim == 1 else -1
        if d < 1 or precision.shape != (d, d) or n_reference < 2:
            raise ModelIntegrityError(f"{path}: Mahalanobis state has inconsistent shapes")
        if not (np.isfinite(location).all() and np.isfinite(precision).all() and 0.0 <= shrinkage <= 1.0):
            raise ModelIntegrityError(f"{path}: Mahalanobis state holds non-finite or out-of-range values")
        maha = cls()
        maha.location_, maha.precision_, maha.shrinkage_, maha.n_reference_ = (
            location,
            precision,
            shrinkage,
            n_reference,
        )
        return maha


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

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, session_options=None) -> OneClassSVMOnnx:
        """The ONNX file at ``path`` in an ONNX Runtime session (the registry's uniform loader)."""
        return cls(path, session_options=session_options)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=np.float32)
        (scores,) = self.session.run([self.output_name], {self.input_name: X})
        return np.asarray(scores, dtype=np.float64).reshape(-1)

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return -self.score_samples(X)

    def onnx_scores(self, g, latent: str) -> str:
        """:meth:`anomaly_score` as ONNX graph nodes: this detector's own graph inlined (``g.inline``).

        ``g`` is a graph builder (:class:`soundsentry.export.onnx_pipeline.Graph`: ``g.op(type, *inputs,
        **attributes)`` and ``g.const(array, hint, dtype)`` return value names; nothing here imports
        onnx); ``latent`` names the float32 latents (n, n_features). Returns the name of the float64
        anomaly scores (n,), equal to :meth:`anomaly_score`'s.
        """
        outputs = g.inline(self.path, "ocsvm/", {self.input_name: latent})
        scores = g.op("Reshape", outputs[self.output_name], g.const([-1], "flat", np.int64))
        return g.op("Neg", g.op("Cast", scores, to=11))


# -- hooks of the detector registry (soundsentry.detector_kinds) -------------------------------
def fit_lof(latents: np.ndarray, *, params: dict) -> LocalOutlierFactor:
    """LOF on normal latents (n, d)."""
    return LocalOutlierFactor(n_neighbors=int(params.get("n_neighbors", 20))).fit(latents)


def fit_knn(latents: np.ndarray, *, params: dict) -> KNearestNeighbors:
    """kNN distance on normal latents (n, d); refuses fewer reference windows than neighbours."""
    from .errors import EnrollmentError

    k = int(params.get("n_neighbors", 5))
    if k > len(latents):
        raise EnrollmentError(
            f"kNN with {k} neighbours needs at least {k} reference windows, a refit has {len(latents)}; enroll more audio"
        )
    return KNearestNeighbors(n_neighbors=k).fit(latents)


def fit_mahalanobis(latents: np.ndarray, *, params: dict) -> Mahalanobis:
    """Mahalanobis distance with a Ledoit-Wolf shrunk covariance of normal latents (n, d)."""
    return Mahalanobis().fit(latents)


def save_npz(fitted, path: str | os.PathLike[str], *, latent_dim: int) -> None:
    """Write a NumPy detector's state (its own ``save``)."""
    fitted.save(path)


def neighbours_card(fitted, *, params: dict, n_reference: int) -> dict:
    """Card fields of LOF and kNN."""
    return {"n_neighbors": fitted.n_neighbors_, "n_reference": n_reference}


def mahalanobis_card(fitted: Mahalanobis, *, params: dict, n_reference: int) -> dict:
    """Card fields of the Mahalanobis distance."""
    return {"n_reference": n_reference, "covariance": "Ledoit-Wolf shrunk", "shrinkage": round(fitted.shrinkage_, 6)}


def ocsvm_card(fitted, *, params: dict, n_reference: int) -> dict:
    """Card fields of the One-Class SVM (an ONNX graph from latent to scores)."""
    return {"input": "latent", "output": "scores", "nu": params["nu"], "gamma": params["gamma"]}
