"""Throughput of the single-file ONNX pipeline (``soundsentry export-onnx``) beside the runtime's.

Run: ``python -m benchmarks.onnx_pipeline [--model fan] [--repeats 5]`` (needs the [export] extra).

Both sides get the same real clips as 16 kHz mono float32 samples already in memory (decoding
is the same work for both and is left out), one thread each (ONNX Runtime intra-op threads 1,
NumPy's BLAS 1), model loaded and warmed up. Prints a Markdown table of the median
milliseconds per 10-s clip with the range over repeats, and the FFT part alone: the pipeline's
spectra as a DFT-matrix product and with ONNX's DFT operator, at the card's ``n_fft`` and at a
size that is not a power of two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def _clips(limit: int) -> list[np.ndarray]:
    import soundfile as sf

    from tests.conftest import DATA_CLIPS, EXAMPLES_DIR

    out = []
    for path in [*DATA_CLIPS, *sorted(EXAMPLES_DIR.glob("*.flac"))][:limit]:
        y, rate = sf.read(path, dtype="float32", always_2d=True)
        assert rate == 16000
        out.append(np.ascontiguousarray(y[:, 0]))
    return out


def _session(proto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _time(fn, clips, repeats: int) -> list[float]:
    for y in clips[:2]:
        fn(y)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for y in clips:
            fn(y)
        times.append((time.perf_counter() - start) / len(clips) * 1000)
    return times


def _fmt(times: list[float]) -> str:
    return f"{statistics.median(times):.1f} ms ({min(times):.1f}–{max(times):.1f}, n={len(times)})"


def _fft_only(n_fft: int, mode: str, n_frames: int):
    """A graph of framed, windowed float64 frames (n_frames, n_fft) -> power spectra, one way or the other."""
    from onnx import TensorProto, helper
    from soundsentry.export.onnx_pipeline import OPSET, Graph

    g = Graph()
    if mode == "matmul":
        k = np.arange(n_fft // 2 + 1)[None, :]
        t = np.arange(n_fft)[:, None]
        angle = 2.0 * np.pi * ((t * k) % n_fft) / n_fft
        spectrum = g.op("MatMul", "frames", g.const(np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)))
        g.op("Mul", spectrum, spectrum, out="power")
    else:
        real = g.op("Unsqueeze", "frames", g.const([2], "ax", np.int64))
        g.op("ReduceSumSquare", g.op("DFT", real, axis=1, onesided=1), axes=[2], keepdims=0, out="power")
    graph = helper.make_graph(
        g.nodes,
        "fft",
        [helper.make_tensor_value_info("frames", TensorProto.DOUBLE, [n_frames, n_fft])],
        [helper.make_tensor_value_info("power", TensorProto.DOUBLE, None)],
        initializer=g.initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fan")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clips", type=int, default=8)
    args = parser.parse_args(argv)

    import onnxruntime
    import soundsentry
    from soundsentry.export.onnx_pipeline import build_pipeline

    model = soundsentry.load_model(args.model, threads=1)
    clips = _clips(args.clips)
    rows = [("runtime, `Model.score_samples`", _time(model.score_samples, clips, args.repeats))]
    for fft, precision in (("matmul", "float64"), ("dft", "float64"), ("dft", "float32")):
        session = _session(build_pipeline(model, fft=fft, precision=precision))
        name = f"single ONNX file, FFT as {fft}, front end in {precision}"
        rows.append((name, _time(lambda y, s=session: s.run(None, {"samples": y}), clips, args.repeats)))
    print(
        f"model {model.name}, detector {model.default_detector}, {len(clips)} clips of 10 s, onnxruntime {onnxruntime.__version__}\n"
    )
    print("| pipeline | per 10-s clip | clips/s |\n|---|---|---|")
    for name, times in rows:
        print(f"| {name} | {_fmt(times)} | {1000 / statistics.median(times):.0f} |")

    geometry = model.encoder.stream  # frames of a 10-s clip: 313 for the log-mel kind, 494 for edgel3-views
    n_frames = (10 * model.sample_rate + 2 * geometry.pad_samples - geometry.frame_length) // geometry.frame_hop + 1
    rng = np.random.default_rng(0)
    print(f"\n| FFT part alone ({n_frames} frames) | matmul | ONNX DFT |\n|---|---|---|")
    for n_fft in (model.feature_params.n_fft, 1000):
        x = rng.standard_normal((n_frames, n_fft))
        cells = []
        for mode in ("matmul", "dft"):
            session = _session(_fft_only(n_fft, mode, n_frames))
            cells.append(_fmt(_time(lambda y, s=session: s.run(None, {"frames": y}), [x] * 4, args.repeats)))
        print(f"| n_fft {n_fft} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
