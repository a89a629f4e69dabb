"""Export checks its own work: every exported part against the library it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from soundsentry.detectors import KNearestNeighbors, LocalOutlierFactor, Mahalanobis, OneClassSVMOnnx
from soundsentry.logmel_encoder import ENCODER_INPUT, ENCODER_OUTPUT
from soundsentry.onnx_session import open_session

from .errors import ExportCheckError

__all__ = [
    "check_encoder",
    "check_knn",
    "check_lof",
    "check_mahalanobis",
    "check_ocsvm",
    "max_relative_error",
    "verify_knn",
    "verify_lof",
    "verify_mahalanobis",
    "verify_ocsvm",
]


def max_relative_error(got: np.ndarray, want: np.ndarray, *, floor: float) -> float:
    """Largest ``|got - want| / max(|want|, floor)``."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)))


def check_encoder(onnx_path: str | Path, keras_encoder, windows: np.ndarray, *, tol: float = 1e-4) -> float:
    """ONNX encoder vs Keras on real windows; returns the max abs error relative to the latent scale."""
    session = open_session(onnx_path, inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT])
    got = session.run([ENCODER_OUTPUT], {ENCODER_INPUT: windows.astype(np.float32)})[0]
    want = keras_encoder.predict(windows, verbose=0)
    scale = float(np.abs(want).max()) or 1.0
    err = float(np.abs(got - want).max()) / scale
    if not err <= tol:
        raise ExportCheckError(f"{onnx_path}: ONNX encoder differs from Keras by {err:.2e} (relative), tolerance {tol}")
    return err


def check_ocsvm(onnx_path: str | Path, svm, latents: np.ndarray, *, tol: float = 1e-4) -> float:
    """ONNX One-Class SVM vs scikit-learn ``decision_function``; returns max abs error / score scale."""
    got = OneClassSVMOnnx(onnx_path).score_samples(latents)
    want = svm.decision_function(latents)
    scale = float(np.abs(want).max()) or 1.0
    err = float(np.abs(got - want).max()) / scale
    if not err <= tol:
        raise ExportCheckError(f"{onnx_path}: ONNX OC-SVM differs from scikit-learn by {err:.2e}, tolerance {tol}")
    return err


def check_lof(lof: LocalOutlierFactor, reference: np.ndarray, queries: np.ndarray, *, tol: float = 1e-5) -> float:
    """NumPy LOF vs ``sklearn.neighbors.LocalOutlierFactor(novelty=True)``; returns max relative error."""
    from sklearn.neighbors import LocalOutlierFactor as SkLOF

    sk = SkLOF(n_neighbors=lof.n_neighbors_, novelty=True).fit(reference)
    err = max_relative_error(lof.score_samples(queries), sk.score_samples(queries), floor=1e-12)
    if not err <= tol:
        raise ExportCheckError(f"NumPy LOF differs from scikit-learn by {err:.2e} (relative), tolerance {tol}")
    return err


def check_knn(knn: KNearestNeighbors, reference: np.ndarray, queries: np.ndarray, *, tol: float = 1e-5) -> float:
    """NumPy kNN vs ``sklearn.neighbors.NearestNeighbors`` (mean of the k distances); returns max relative error."""
    from sklearn.neighbors import NearestNeighbors

    distances, _ = NearestNeighbors(n_neighbors=knn.n_neighbors_).fit(reference).kneighbors(queries)
    want = distances.mean(axis=1)
    # A query at a reference point has a true distance of 0 that both compute only to ~sqrt(eps) x its norm,
    # so tiny distances are compared at a hundredth of the largest one.
    err = max_relative_error(knn.anomaly_score(queries), want, floor=1e-2 * float(np.abs(want).max()) or 1e-12)
    if not err <= tol:
        raise ExportCheckError(f"NumPy kNN differs from scikit-learn by {err:.2e} (relative), tolerance {tol}")
    return err


def check_mahalanobis(maha: Mahalanobis, reference: np.ndarray, queries: np.ndarray, *, tol: float = 1e-5) -> float:
    """NumPy Mahalanobis vs ``sklearn.covariance.LedoitWolf``; returns max relative error of the squared distance.

    scikit-learn's ``mahalanobis`` returns the squared distance, the runtime's score its square root.
    """
    from sklearn.covariance import LedoitWolf

    want = LedoitWolf().fit(reference).mahalanobis(queries)
    err = max_relative_error(maha.anomaly_score(queries) ** 2, want, floor=1e-2 * float(np.abs(want).max()) or 1e-12)
    if not err <= tol:
        raise ExportCheckError(f"NumPy Mahalanobis differs from scikit-learn by {err:.2e} (relative), tolerance {tol}")
    return err


# -- the registry's check hooks (soundsentry.detector_kinds): check(path, fitted, reference, queries) --------
def verify_lof(path, fitted, reference: np.ndarray, queries: np.ndarray) -> float:
    return check_lof(LocalOutlierFactor.load(path), reference, queries)


def verify_knn(path, fitted, reference: np.ndarray, queries: np.ndarray) -> float:
    return check_knn(KNearestNeighbors.load(path), reference, queries)


def verify_mahalanobis(path, fitted, reference: np.ndarray, queries: np.ndarray) -> float:
    return check_mahalanobis(Mahalanobis.load(path), reference, queries)


def verify_ocsvm(path, fitted, reference: np.ndarray, queries: np.ndarray) -> float:
    return check_ocsvm(path, fitted.svm, queries)
