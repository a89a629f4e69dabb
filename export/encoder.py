"""Keras encoder -> ONNX with tf2onnx, under stable input/output names."""

from __future__ import annotations

from pathlib import Path

from soundsentry.logmel_encoder import ENCODER_INPUT, ENCODER_OUTPUT

__all__ = ["export_encoder"]


def export_encoder(encoder, path: str | Path, *, n_mels: int, frames: int, opset: int = 17) -> None:
    """Write ``encoder`` as ONNX with input ``logmel`` (batch, n_mels, frames) and output ``latent``.

    ``tf2onnx.convert.from_keras`` does not handle Keras 3 models (onnx/tensorflow-onnx#2329),
    so the encoder is wrapped in a ``tf.function`` with an explicit, dynamic-batch signature.
    """
    from .tf_compat import import_tensorflow

    tf = import_tensorflow()
    import tf2onnx

    signature = [tf.TensorSpec([None, n_mels, frames], tf.float32, name=ENCODER_INPUT)]

    @tf.function(input_signature=signature)
    def encode(logmel):
        return {ENCODER_OUTPUT: encoder(logmel, training=False)}

    proto, _ = tf2onnx.convert.from_function(encode, input_signature=signature, opset=opset)
    proto.producer_name = "soundsentry.export"
    Path(path).write_bytes(proto.SerializeToString())
