"""scikit-learn One-Class SVM -> ONNX with skl2onnx."""

from __future__ import annotations

from pathlib import Path

__all__ = ["export_ocsvm"]


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
