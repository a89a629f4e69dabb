"""EdgeL3 encoders (whole or cut after block 3/4) -> ONNX, checked against Keras on real windows.

``python -m soundsentry.export.edgel3 OUT_DIR [--encoders full64 block3_mean ...] [--clip CLIP]`` writes
``OUT_DIR/<name>.onnx`` for each encoder of :data:`soundsentry.train.edgel3.ENCODERS` and prints each one's
input/output shapes and max abs difference from Keras. Input ``logmel`` float32 (batch, 64, 50), the output of
:func:`soundsentry.edgel3_frontend.edgel3_log_mel`; output ``latent`` float32 (batch, dim).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from soundsentry.edgel3_frontend import EDGEL3_FRAMES, EDGEL3_N_MELS, edgel3_front_end
from soundsentry.logmel_encoder import ENCODER_INPUT, ENCODER_OUTPUT
from soundsentry.onnx_session import open_session

from .encoder import export_encoder
from .errors import ExportCheckError

log = logging.getLogger(__name__)

__all__ = ["ExportedEncoder", "QuantizedEncoder", "clip_log_mel", "export_edgel3", "main", "quantize_encoder"]


@dataclass(frozen=True)
class ExportedEncoder:
    """One exported EdgeL3 encoder and its check against Keras."""

    name: str
    path: Path
    output_dim: int
    max_abs_diff: float  # ONNX vs Keras on the check windows
    latent_scale: float  # max |latent| on the same windows, to judge the difference by


def clip_log_mel(path: str | Path, *, hop: int = 4000) -> np.ndarray:
    """Log-mel windows of a 16 kHz clip's first channel, as the runtime will compute them.

    Returns
    -------
    np.ndarray, shape (n_windows, 64, 50), float32
    """
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != 16000:
        raise ValueError(f"{path}: expected 16 kHz audio, got {sr} Hz")
    return edgel3_front_end(y[:, 0], hop=hop)


def export_edgel3(
    name: str,
    path: str | Path,
    *,
    check_windows: np.ndarray,
    weights: str | Path | None = None,
    tol: float = 1e-4,
) -> ExportedEncoder:
    """Build the named EdgeL3 encoder, write it as ONNX and compare ONNX with Keras.

    Parameters
    ----------
    name : str
        A key of :data:`soundsentry.train.edgel3.ENCODERS`, e.g. ``"block3_time_mean_flat"``.
    path : path
        The ``.onnx`` file to write.
    check_windows : np.ndarray, shape (n, 64, 50)
        Real log-mel windows (e.g. from :func:`clip_log_mel`) to compare ONNX and Keras on.
    tol : float
        Largest accepted max abs difference relative to the largest latent value.

    Raises
    ------
    ExportCheckError
        ONNX and Keras differ by more than ``tol`` (relative).
    """
    from soundsentry.train.edgel3 import build_named_encoder

    keras_model = build_named_encoder(name, weights=weights)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_encoder(keras_model, path, n_mels=EDGEL3_N_MELS, frames=EDGEL3_FRAMES)
    session = open_session(path, inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT])
    windows = np.asarray(check_windows, dtype=np.float32)
    got = session.run([ENCODER_OUTPUT], {ENCODER_INPUT: windows})[0]
    want = np.asarray(keras_model(windows, training=False))
    diff = float(np.abs(got - want).max())
    scale = float(np.abs(want).max()) or 1.0
    if not diff <= tol * scale:
        raise ExportCheckError(f"{path}: ONNX differs from Keras by {diff:.2e} (latents up to {scale:.3g})")
    log.info("%s: %s, latent %d-d, ONNX vs Keras max abs diff %.2e", name, path, got.shape[1], diff)
    return ExportedEncoder(name=name, path=path, output_dim=int(got.shape[1]), max_abs_diff=diff, latent_scale=scale)


@dataclass(frozen=True)
class QuantizedEncoder:
    """An int8 copy of an encoder and how far it moves the latents."""

    path: Path
    max_abs_diff: float  # int8 vs float on the check windows
    latent_scale: float
    correlation: float  # of all latent values, int8 vs float


def quantize_encoder(
    src: str | Path, dst: str | Path, *, calibration_windows: np.ndarray, check_windows: np.ndarray
) -> QuantizedEncoder:
    """Write an int8 copy of an ONNX encoder (static, QDQ, per-channel weights) and compare it with the float one.

    About 2.5x faster on one CPU thread here (EdgeL3 blocks 1-3: 22.6 -> 8.8 ms for a 10-s clip). The
    activation ranges come from ``calibration_windows``: windows of *normal* recordings only.

    Parameters
    ----------
    src, dst : path
        Float encoder in, int8 encoder out.
    calibration_windows, check_windows : np.ndarray, shape (n, 64, 50)
        Encoder inputs to calibrate the activation ranges on, and to compare the two encoders on.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Windows(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(np.asarray(calibration_windows, dtype=np.float32)[:, None])

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {ENCODER_INPUT: batch}

    dst = Path(dst)
    pre = dst.with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(src), str(pre))
        quantize_static(
            str(pre),
            str(dst),
            _Windows(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        pre.unlink(missing_ok=True)
    _drop_unused_opsets(dst)
    windows = np.asarray(check_windows, dtype=np.float32)
    want = open_session(src, inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT]).run([ENCODER_OUTPUT], {ENCODER_INPUT: windows})[0]
    got = open_session(dst, inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT]).run([ENCODER_OUTPUT], {ENCODER_INPUT: windows})[0]
    corr = float(np.corrcoef(got.ravel(), want.ravel())[0, 1])
    return QuantizedEncoder(
        path=dst, max_abs_diff=float(np.abs(got - want).max()), latent_scale=float(np.abs(want).max()), correlation=corr
    )


def _drop_unused_opsets(path: Path) -> None:
    """Keep only the operator sets the graph's nodes use.

    The quantiser declares Microsoft's and PyTorch's operator sets although a QDQ graph uses only
    standard ONNX operators; the runtime refuses any graph that imports a custom set.
    """
    import onnx

    model = onnx.load(str(path))
    used = {node.domain or "" for node in model.graph.node}
    keep = [o for o in model.opset_import if (o.domain or "") in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    """Command line: export EdgeL3 encoders to a folder (see the module docstring)."""
    from soundsentry.train.edgel3 import ENCODERS

    parser = argparse.ArgumentParser(prog="python -m soundsentry.export.edgel3", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the .onnx files")
    parser.add_argument("--encoders", nargs="+", default=["block3_time_mean_flat", "block3_mean", "full64"])
    parser.add_argument("--clip", type=Path, required=True, help="a real 16 kHz clip to check ONNX against Keras on")
    parser.add_argument("--weights", type=Path, default=None, help="the EdgeL3 .h5(.gz); default: shared/weights")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.encoders) - set(ENCODERS))
    if unknown:
        parser.error(f"unknown encoders {unknown}; choose from {sorted(ENCODERS)}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    windows = clip_log_mel(args.clip)
    for name in args.encoders:
        done = export_edgel3(name, args.out / f"{name}.onnx", check_windows=windows, weights=args.weights)
        print(
            f"{done.path}: logmel (batch, 64, 50) -> latent (batch, {done.output_dim}); "
            f"ONNX vs Keras max abs diff {done.max_abs_diff:.2e} (latents up to {done.latent_scale:.3g})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
