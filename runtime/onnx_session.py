"""Opening ONNX Runtime sessions the one way SoundSentry trusts."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from .errors import ModelIntegrityError
from .untrusted import check_onnx

__all__ = ["default_session_options", "open_session"]


def default_session_options(*, threads: int | None = None) -> ort.SessionOptions:
    """CPU session options for batch work.

    ``threads`` defaults to ``SOUNDSENTRY_THREADS`` or the number of CPUs. Inter-op
    parallelism stays at 1: the graphs are a single chain of ops.
    """
    options = ort.SessionOptions()
    if threads is None:
        env = os.environ.get("SOUNDSENTRY_THREADS")
        threads = int(env) if env else (os.cpu_count() or 1)
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle pool threads would otherwise spin waiting for work: on a busy or shared CPU that burns
    # the cores decoding needs, and the encoder ran up to 2x slower (docs/performance.md, levers).
    # Scheduling only: the latents are bit-for-bit the same.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def open_session(
    path: str | os.PathLike[str],
    *,
    inputs: list[str],
    outputs: list[str],
    options: ort.SessionOptions | None = None,
) -> ort.InferenceSession:
    """Open ``path`` on the CPU provider and check its input and output names.

    Raises
    ------
    ModelIntegrityError
        The file is not a loadable ONNX graph or its interface differs from ``inputs``/``outputs``.
    """
    p = Path(path)
    check_onnx(p)  # custom operators, local functions, external data: refused before ONNX Runtime parses it
    try:
        session = ort.InferenceSession(
            str(p), sess_options=options or default_session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelIntegrityError(f"{p}: cannot load ONNX graph ({exc})") from exc
    got_in = [i.name for i in session.get_inputs()]
    got_out = [o.name for o in session.get_outputs()]
    if got_in != inputs or sorted(got_out) != sorted(outputs):
        raise ModelIntegrityError(
            f"{p}: unexpected ONNX interface: inputs {got_in} outputs {got_out}, expected inputs {inputs} outputs {outputs}"
        )
    odd = [f"{i.name}: {i.type}" for i in session.get_inputs() if i.type != "tensor(float)"]
    if odd:
        raise ModelIntegrityError(f"{p}: unexpected ONNX input types ({', '.join(odd)}); SoundSentry feeds float32 tensors")
    return session
