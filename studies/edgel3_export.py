"""Export the EdgeL3 encoders for the lead and time the front end and each encoder on one 10-s clip.

Run from the repository root (needs the [train] extra and ``shared/weights/edgel3-sea-ust-64``)::

    OMP_NUM_THREADS=1 python studies/edgel3_export.py --out /work/scratch/edgel3

Writes ``OUT/<encoder>.onnx`` (input ``logmel`` float32 (batch, 64, 50), output ``latent`` float32 (batch, dim))
and ``OUT/README.md`` with the shapes, the ONNX-vs-Keras check and the timings: the median of 20 runs, one
onnxruntime thread (intra- and inter-op), after 3 warm-up runs, for the clip as 10 windows (hop 1 s) and as
19 windows (hop 0.5 s).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import onnxruntime as ort
import soundfile as sf
from soundsentry.edgel3_frontend import decimate_16k_to_8k, edgel3_front_end, edgel3_log_mel, frame_windows
from soundsentry.export.edgel3 import clip_log_mel, export_edgel3

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLIP = REPO / "examples" / "ronwise_id_00_normal_id_00_00000000.flac"
ENCODERS = ("block3_time_mean_flat", "block3_mean", "full64")
HOPS = (8000, 4000)  # samples at 8 kHz: 1 s and 0.5 s
RUNS, WARMUP = 20, 3


def median_ms(fn) -> tuple[float, float]:
    """Median CPU time (``process_time``: robust to other jobs taking the cores) and wall time, in ms."""
    for _ in range(WARMUP):
        fn()
    cpu, wall = [], []
    for _ in range(RUNS):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return 1e3 * float(np.median(cpu)), 1e3 * float(np.median(wall))


def one_thread_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def notes() -> list[str]:
    """What the lead needs to know beyond the numbers, with the multiply-accumulates counted from the h5."""
    from soundsentry.train.edgel3 import load_edgel3_h5

    stored = load_edgel3_h5()
    convs = [
        "conv2d_1",
        "conv2d_2",
        "conv2d_3",
        "conv2d_4",
        "conv2d_5",
        "conv2d_6",
        "conv2d_7",
        "audio_embedding_layer",
    ]
    sizes = [(64, 50)] * 2 + [(32, 25)] * 2 + [(16, 12)] * 2 + [(8, 6)] * 2  # 'same' convs, 2x2 pools between
    macs = [h * w * int(np.prod(stored[c]["kernel"].shape)) for c, (h, w) in zip(convs, sizes, strict=True)]
    return [
        "## Notes",
        "",
        f"- Multiply-accumulates per window (3x3 convs, from the h5's kernel shapes): {sum(macs) / 1e6:.1f} M in all, "
        f"{sum(macs[:6]) / 1e6:.1f} M up to block 3 ({100 * sum(macs[:6]) / sum(macs):.0f}%): cutting at block 3 "
        "saves little time; blocks 1-2 cost the most.",
        "- `edgel3_log_mel` subtracts each window's maximum (kapre's dB): EdgeL3 does not hear a window's level; "
        "loudness must be another view.",
        "- Other cuts: `soundsentry.train.edgel3.build_edgel3(block=3, reduce=..., pooled=False)` (block 3 before "
        "its pool, 16 x 12 x 128), `block4_time_mean_flat` (512) and `block4_mean` (64) in `ENCODERS`; export any "
        "with `python -m soundsentry.export.edgel3 OUT --encoders NAME... --clip CLIP`.",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a 10-s 16 kHz clip")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    y, sr = sf.read(str(args.clip), dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y[:, 0])
    assert sr == 16000, f"{args.clip}: {sr} Hz"

    exported = [export_edgel3(n, args.out / f"{n}.onnx", check_windows=clip_log_mel(args.clip)) for n in ENCODERS]

    rows = []
    decimate_ms = median_ms(lambda: decimate_16k_to_8k(y))
    for hop in HOPS:
        logmel = edgel3_front_end(y, hop=hop)
        windows = frame_windows(decimate_16k_to_8k(y), hop=hop)
        row = {
            "windows": logmel.shape[0],
            "hop": hop / 8000,
            "decimate": decimate_ms,
            "log-mel": median_ms(lambda windows=windows: edgel3_log_mel(windows)),
            "front end": median_ms(lambda hop=hop: edgel3_front_end(y, hop=hop)),
        }
        for done in exported:
            session = one_thread_session(done.path)
            row[done.name] = median_ms(lambda s=session, x=logmel: s.run(["latent"], {"logmel": x}))
        rows.append(row)

    lines = [
        "# EdgeL3 SEA-UST-64 encoders (generated, not in git)",
        "",
        "Written by `studies/edgel3_export.py` (branch `edgel3`) from "
        "`shared/weights/edgel3-sea-ust-64/edgel3_sea_ust_audio_emb_64.h5.gz` (MIT: keep "
        "`shared/weights/edgel3-sea-ust-64/LICENSE` with anything derived from it).",
        "",
        "Front end (runtime, NumPy): `soundsentry.edgel3_frontend.edgel3_front_end(y16k, hop=4000)` = `decimate_16k_to_8k(y16k)` -> "
        "`frame_windows(y8k, window=8000, hop=...)` (n, 8000) -> `edgel3_log_mel(windows)` (n, 64, 50) float32 dB.",
        "",
        "| file | input `logmel` | output `latent` | what | ONNX vs Keras max abs diff (max abs latent) | size |",
        "|---|---|---|---|---|---|",
    ]
    what = {
        "block3_time_mean_flat": "block 3 (after its 2x2 pool: 8 bands x 6 frames x 128), mean over frames, "
        "flattened band-major (index = band * 128 + channel)",
        "block3_mean": "block 3 (8 x 6 x 128), mean over bands and frames",
        "full64": "EdgeL3's own 64-d embedding (block 4, max-pool 8x6)",
    }
    for done in exported:
        lines.append(
            f"| `{done.path.name}` | float32 (batch, 64, 50) | float32 (batch, {done.output_dim}) | {what[done.name]} "
            f"| {done.max_abs_diff:.1e} ({done.latent_scale:.3g}) | {done.path.stat().st_size / 1e6:.2f} MB |"
        )
    lines += [
        "",
        f"ONNX checked on the 19 windows of `{args.clip.name}`.",
        "",
        f"## Cost of one 10-s clip (`{args.clip.name}`), ms, median of {RUNS} runs, one thread",
        "",
        f"onnxruntime {ort.__version__} (intra_op_num_threads=1, inter_op_num_threads=1), NumPy {np.__version__} "
        f"with OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other work (load average {os.getloadavg()[0]:.1f} at the end). "
        "Each cell: CPU time (`time.process_time`) / wall time; the wall time grows when other jobs hold the cores.",
        "",
        "| windows (hop) | decimate | log-mel | front end (decimate + frame + log-mel) | "
        + " | ".join(f"`{d.name}`" for d in exported)
        + " |",
        "|---|---|---|---|" + "---|" * len(exported),
    ]
    keys = ["decimate", "log-mel", "front end", *(d.name for d in exported)]
    for row in rows:
        lines.append(
            f"| {row['windows']} ({row['hop']:g} s) | "
            + " | ".join(f"{row[k][0]:.1f} / {row[k][1]:.1f}" for k in keys)
            + " |"
        )
    lines += ["", *notes()]
    text = "\n".join(lines) + "\n"
    (args.out / "README.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
