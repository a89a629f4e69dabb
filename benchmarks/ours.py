"""In-process timings of SoundSentry's own path: the per-clip stage split and the levers.

Every function returns seconds per repeat (lists), so the caller reports medians and spread.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
from soundsentry.logmel_encoder import ENCODER_INPUT, ENCODER_OUTPUT
from soundsentry.scoring import decode as decode_file


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def stage_split(model, clips: list[str], repeats: int) -> dict[str, list[float]]:
    """Seconds per repeat for each stage over all clips, as ``soundsentry score`` runs them per file.

    decode: file -> mono samples at the model's rate (and signal flags, as the batch does);
    features: the front end and its windows; encoder: ONNX encoder (and, for EdgeL3 views, the shape and level
    rows); detector: the card's default detector.
    """
    out: dict[str, list[float]] = {k: [] for k in ("loop", "decode", "features", "encoder", "detector")}
    model.score(clips[0])  # warm
    for _ in range(repeats):
        out["loop"].append(_timed(lambda: [model.score_samples(decode_file(model, c)[0]) for c in clips]))
        t0 = time.perf_counter()
        ys = [decode_file(model, c)[0] for c in clips]
        t1 = time.perf_counter()
        ws = [model.windows(model.features(y)) for y in ys]
        t2 = time.perf_counter()
        zs = [model.embed(w) for w in ws]
        t3 = time.perf_counter()
        for z in zs:
            model.score_latents(z)
        t4 = time.perf_counter()
        for key, value in zip(("decode", "features", "encoder", "detector"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=False):
            out[key].append(value)
    return out


def _graph_input(model, windows: np.ndarray) -> np.ndarray:
    """What the encoder's ONNX graph takes of windows: the log-mel windows themselves, or EdgeL3's input of them."""
    if model.encoder.kind == "edgel3-views":
        from soundsentry.edgel3_encoder import edgel3_inputs

        return edgel3_inputs(windows)
    return windows


def _session(path: str, *, threads: int, spinning: bool, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, save=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = level
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if save:
        options.optimized_model_filepath = str(save)
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def encoder_levers(model, clips: list[str], repeats: int, tmpdir) -> dict[str, dict[str, list[float]]]:
    """ONNX Runtime settings and cross-file batching, on the real windows of ``clips``.

    Returns, per variant, ``run`` (seconds to embed every clip's windows) and, for graph
    optimisation, ``open`` (seconds to create the session).
    """
    path = str(model.bundle.path(model.card["encoder"]["file"]))
    windows = [_graph_input(model, model.windows(model.features(model.load(c)))) for c in clips]
    together = np.ascontiguousarray(np.concatenate(windows))

    def per_file(sess):
        return lambda: [sess.run([ENCODER_OUTPUT], {ENCODER_INPUT: w}) for w in windows]

    def batched(sess, size=256):
        return lambda: [
            sess.run([ENCODER_OUTPUT], {ENCODER_INPUT: together[i : i + size]}) for i in range(0, len(together), size)
        ]

    import os

    cores = os.cpu_count() or 1
    results: dict[str, dict[str, list[float]]] = {}
    variants = {
        f"{cores} threads, spinning (ONNX Runtime default)": dict(threads=cores, spinning=True),
        f"{cores} threads, no spinning": dict(threads=cores, spinning=False),
        "1 thread": dict(threads=1, spinning=False),
    }
    sessions = {name: _session(path, **kw) for name, kw in variants.items()}
    for name, sess in sessions.items():
        per_file(sess)()  # warm
        results[f"per file, {name}"] = {"run": [_timed(per_file(sess)) for _ in range(repeats)]}
    for name in (f"{cores} threads, no spinning", "1 thread"):
        sess = sessions[name]
        batched(sess)()
        results[f"256 windows across files, {name}"] = {"run": [_timed(batched(sess)) for _ in range(repeats)]}

    # Graph optimisation: online at each start, or done once offline and saved.
    levels = {
        "no graph optimisation": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all, online at each start (current)": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    saved = os.path.join(str(tmpdir), "encoder.optimized.onnx")
    _session(path, threads=1, spinning=False, save=saved)
    for name, level in levels.items():
        opens, runs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sess = _session(path, threads=1, spinning=False, level=level)
            opens.append(time.perf_counter() - t0)
            per_file(sess)()
            runs.append(_timed(per_file(sess)))
        results[f"graph: {name}"] = {"open": opens, "run": runs}
    opens, runs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess = _session(saved, threads=1, spinning=False, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        opens.append(time.perf_counter() - t0)
        per_file(sess)()
        runs.append(_timed(per_file(sess)))
    results["graph: all, saved offline and loaded as is"] = {"open": opens, "run": runs}
    return results


def lof_levers(model, clips: list[str], repeats: int) -> dict[str, list[float]]:
    """Scoring every clip's window latents: one matrix product per clip vs a loop per window vs scikit-learn."""
    lof = model.detector("lof")
    latents = [model.embed(model.windows(model.features(model.load(c)))) for c in clips]

    def loop_per_window():
        ref = lof.reference_
        for z in latents:
            for row in z.astype(np.float64):
                d = np.sqrt(((ref - row) ** 2).sum(axis=1))
                idx = np.argsort(d, kind="stable")[: lof.n_neighbors_]
                reach = np.maximum(d[idx], lof.k_distance_[idx])
                lrd = 1.0 / (reach.mean() + 1e-10)
                _ = (lof.lrd_[idx] / lrd).mean()

    out = {
        "vectorised (one matrix product per clip, current)": [
            _timed(lambda: [lof.anomaly_score(z) for z in latents]) for _ in range(repeats)
        ],
        "vectorised, all clips in one call": [
            _timed(lambda: lof.anomaly_score(np.concatenate(latents))) for _ in range(repeats)
        ],
        "Python loop per window": [_timed(loop_per_window) for _ in range(repeats)],
    }
    try:
        from sklearn.neighbors import LocalOutlierFactor as SkLOF
    except ImportError:
        return out
    sk = SkLOF(n_neighbors=lof.n_neighbors_, novelty=True).fit(lof.reference_)
    out["scikit-learn LocalOutlierFactor, per clip"] = [
        _timed(lambda: [sk.score_samples(z) for z in latents]) for _ in range(repeats)
    ]
    return out


def decode_levers(model, clips: list[str], repeats: int, threads: int = 2) -> dict[str, list[float]]:
    """Decoding every clip serially and in a thread pool; scoring them one after the other and
    ``threads`` at a time in threads of this process (:func:`soundsentry.batch.score_files`)."""
    from soundsentry.batch import score_files

    with ThreadPoolExecutor(threads) as pool:
        out = {
            "decode, serial (current)": [_timed(lambda: [decode_file(model, c) for c in clips]) for _ in range(repeats)],
            f"decode, {threads} threads": [
                _timed(lambda: list(pool.map(lambda c: decode_file(model, c), clips))) for _ in range(repeats)
            ],
        }
    serial, threaded = [], []
    for _ in range(repeats):  # interleaved: load on the machine hits both alike
        serial.append(_timed(lambda: list(score_files(model, clips, threads=1))))
        threaded.append(_timed(lambda: list(score_files(model, clips, threads=threads))))
    out["decode + score, one file after the other (`--threads 1`)"] = serial
    out[f"decode + score, {threads} files at once in threads (the default here)"] = threaded
    return out
