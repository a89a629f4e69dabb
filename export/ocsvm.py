"""scikit-learn One-Class SVM -> ONNX with skl2onnx."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SklearnOCSVM", "export_ocsvm", "fit_ocsvm", "save_ocsvm"]


def export_ocsvm(svm, path: str | Path, *, latent_dim: int) -> None:
    """Write a fitted ``OneClassSVM`` as ONNX with input ``latent`` and outputs ``label``, ``scores``.

    ``scores`` is scikit-learn's ``decision_function`` (higher = more normal).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    proto = convert_sklearn(
        svm,
        initial_types=[("latent", FloatTensorType([None, latent_dim]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    proto.producer_name = "soundsentry.export"
    Path(path).write_bytes(proto.SerializeToString())


class SklearnOCSVM:
    """scikit-learn's One-Class SVM with the runtime's sign convention (higher = more anomalous)."""

    def __init__(self, svm) -> None:
        self.svm = svm

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return -self.svm.decision_function(np.asarray(X, dtype=np.float32).astype(np.float64))


def fit_ocsvm(latents: np.ndarray, *, params: dict) -> SklearnOCSVM:
    """The registry's fit hook: scikit-learn ``OneClassSVM`` on normal latents (n, d)."""
    from sklearn.svm import OneClassSVM

    return SklearnOCSVM(OneClassSVM(nu=float(params.get("nu", 0.05)), gamma=params.get("gamma", "scale")).fit(latents))


def save_ocsvm(fitted: SklearnOCSVM, path: str | Path, *, latent_dim: int) -> None:
    """The registry's save hook: the fitted SVM as ONNX (:func:`export_ocsvm`)."""
    export_ocsvm(fitted.svm, path, latent_dim=latent_dim)
