"""One self-contained ONNX graph per bundle: 16 kHz mono samples in, window and clip scores out.

For integrators who call onnxruntime from C#, C++, Java or JavaScript and must not run Python:
``soundsentry export-onnx --model pump pump.onnx`` writes a graph that holds the whole
pipeline of :meth:`soundsentry.Model.score_samples` for the bundle's default detector (or the
one asked for):

framing (centred, zero padded) -> periodic Hann -> DFT (as a matrix product, or ONNX's DFT
operator) -> power -> mel filterbank -> 10·log10 -> per-band standardisation -> sliding
windows -> level and centring steps of the card -> the bundle's encoder (inlined) -> the
detector (each detector class builds its own nodes: distances and neighbours as ONNX
operators, or its own graph inlined) -> mean (or max) of the window scores.

The ``edgel3-views`` kind (the shipped bundles): uncentred 2048-point frames every 320 samples ->
periodic Hann -> DFT -> power -> display mel, EdgeL3 mel and Parseval rows in dB -> windows of 50
frames -> EdgeL3's input (inlined int8 encoder) beside the shape and level columns -> the ``views``
detector, whose clip score is its own (``onnx_clip_score``: each view's clip statistic over its
threshold), not an aggregate of the window scores.

Interface
    input ``samples``: float32, shape (n,), mono at the card's sample rate (16 kHz), any
    length; outputs ``window_scores`` float64 (n_windows,), ``score`` float64 scalar,
    ``abnormal`` bool scalar (``score > threshold``). ``n_windows = max(0, (1 + n // hop -
    frames) // hop_frames + 1)`` (log-mel kind; ``edgel3-views``: ``max(0, n - 1728) // 320 // 50``);
    an input shorter than one window gives no window scores, a NaN score and ``abnormal`` false. The model's name, detector, threshold and window
    geometry are in the model's metadata properties.

The front end is built per encoder kind (:data:`FRONT_ENDS`): each builder turns ``samples``
into the encoder's input windows (and any columns the kind appends to the encoder's output), so a
kind with another front end adds its own builder and the rest is shared. Each detector class builds
its own nodes (``onnx_scores`` in :mod:`soundsentry.detectors` and :mod:`soundsentry.views`, and
``onnx_clip_score`` where the detector has its own clip score, as :meth:`soundsentry.Model.clip_score`
asks it; given the builder: the runtime never imports onnx).

The front end computes in float64 up to the log-mel values, as the runtime does, then in
float32 (as the runtime's windows and encoder); detectors in float64. Needs the ``onnx``
package (``pip install "soundsentry[export]"``); the runtime never imports this module.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["FFT_MODES", "FRONT_ENDS", "OPSET", "PRECISIONS", "build_pipeline", "export_pipeline"]

#: ONNX opset of the graph: the encoders are exported at 17 (DFT exists from 17).
OPSET = 17
ML_OPSET = 2

#: How the front end computes its spectra: a matrix product with a real DFT matrix, or ONNX's DFT
#: operator; "auto" takes DFT for power-of-two sizes and the matrix product otherwise, where
#: onnxruntime's DFT is several times slower (docs/performance.md, "Single-file ONNX pipeline").
FFT_MODES = ("auto", "matmul", "dft")

#: Arithmetic of the front end (see :func:`build_pipeline`).
PRECISIONS = ("float64", "float32")

INPUT = "samples"


class FrontEnd(NamedTuple):
    """What a front-end builder gives: the encoder's input windows, and the columns the kind appends
    to the encoder's output to make its latent rows (``None``: the encoder's output is the latent)."""

    windows: str
    columns: str | None = None
    #: The number of windows of the input (int64, shape (1,)) where the builder computes at least one
    #: from zero padding, for encoders that cannot take an empty batch: the graph keeps that many scores.
    n_windows: str | None = None


@dataclass
class Graph:
    """Nodes and constants being assembled, with fresh names for intermediate values."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    _n: int = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value, hint: str = "c", dtype=None) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        array = np.asarray(value, dtype=dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def inline(self, onnx_path, prefix: str, inputs: dict[str, str]) -> dict[str, str]:
        """Add the graph in ``onnx_path`` with every name prefixed; ``inputs`` maps its inputs to ours.

        Returns its output names (unprefixed -> prefixed).
        """
        import onnx
        from onnx import compose

        sub = compose.add_prefix(onnx.load(str(onnx_path)), prefix)
        for name, source in inputs.items():
            self.op("Identity", source, out=prefix + name)
        self.nodes.extend(sub.graph.node)
        self.initializers.extend(sub.graph.initializer)
        return {o.name[len(prefix) :]: o.name for o in sub.graph.output}

    def op(
        self, op_type: str, *inputs: str, hint: str | None = None, outputs: int = 1, out: str | None = None, **attrs
    ):
        from onnx import helper

        names = [out] if out else [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names


# -- front ends, one per encoder kind ---------------------------------------------------------
def _frames_and_windows(g: Graph, n_frames: str, *, frames: int, hop_frames: int) -> str:
    """Index matrix (n_windows, frames) of the sliding windows over ``n_frames`` spectrogram frames."""
    # (F - frames + hop) // hop, clamped at 0: no window at all when F < frames.
    span = g.op("Add", n_frames, g.const([hop_frames - frames], "k", np.int64))
    span = g.op("Max", span, g.const([0], "zero", np.int64))
    n_windows = g.op("Div", span, g.const([hop_frames], "hop", np.int64))
    starts = g.op(
        "Range",
        g.const(0, "zero", np.int64),
        g.op("Squeeze", n_windows, g.const([0], "ax", np.int64)),
        g.const(1, "one", np.int64),
    )
    starts = g.op("Mul", starts, g.const(hop_frames, "hop", np.int64))
    return g.op(
        "Add",
        g.op("Unsqueeze", starts, g.const([1], "ax", np.int64)),
        g.const(np.arange(frames, dtype=np.int64)[None, :], "offsets"),
        hint="window_index",
    )


def _median_last_axis(g: Graph, x: str, n: int) -> str:
    """``np.median(x, axis=-1, keepdims=True)`` of float32 ``x`` whose last axis has ``n`` values."""
    k = n // 2 + 1
    values, _ = g.op("TopK", x, g.const([k], "k", np.int64), outputs=2, axis=-1, largest=0, sorted=1)
    upper = g.op(
        "Slice", values, g.const([k - 1], "s", np.int64), g.const([k], "e", np.int64), g.const([-1], "a", np.int64)
    )
    if n % 2:
        return upper
    lower = g.op(
        "Slice", values, g.const([k - 2], "s", np.int64), g.const([k - 1], "e", np.int64), g.const([-1], "a", np.int64)
    )
    return g.op("Mul", g.op("Add", lower, upper), g.const(np.float32(0.5), "half"))


def build_logmel_front_end(g: Graph, model, *, fft: str, precision: str = "float64") -> FrontEnd:
    """``samples`` -> normalised log-mel windows (n_windows, n_mels, frames), float32, as the runtime's
    :meth:`Model.windows(Model.features(y)) <soundsentry.Model.windows>`."""
    from soundsentry.features import _hann, mel_filterbank

    p = model.feature_params
    n_fft, hop = p.n_fft, p.hop_length
    real = {"float64": np.float64, "float32": np.float32}[precision]
    x = g.op("Cast", INPUT, to=11 if precision == "float64" else 1)  # float64: as the runtime's STFT
    padded = g.op("Pad", x, g.const([n_fft // 2, n_fft // 2], "pads", np.int64), g.const(0.0, "zero", real))
    n = g.op("Shape", INPUT)
    n_frames = g.op("Add", g.op("Div", n, g.const([hop], "hop", np.int64)), g.const([1], "one", np.int64))
    if n_fft % hop == 0:
        # Frames of r = n_fft / hop hops: r shifted row-slices of the signal cut into hops, side by
        # side. A tenth of the time of gathering (n_frames, n_fft) samples one by one.
        r = n_fft // hop
        rows = g.op("Add", n_frames, g.const([r - 1], "k", np.int64))
        used = g.op("Mul", rows, g.const([hop], "hop", np.int64))
        hops = g.op(
            "Reshape",
            g.op("Slice", padded, g.const([0], "s", np.int64), used, g.const([0], "a", np.int64)),
            g.op("Concat", rows, g.const([hop], "hop", np.int64), axis=0),
        )
        parts = [
            g.op(
                "Slice",
                hops,
                g.const([i], "s", np.int64),
                g.op("Add", n_frames, g.const([i], "k", np.int64)),
                g.const([0], "a", np.int64),
            )
            for i in range(r)
        ]
        framed = g.op("Concat", *parts, axis=1) if r > 1 else parts[0]
    else:
        starts = g.op(
            "Range",
            g.const(0, "zero", np.int64),
            g.op("Squeeze", n_frames, g.const([0], "ax", np.int64)),
            g.const(1, "one", np.int64),
        )
        index = g.op(
            "Add",
            g.op("Unsqueeze", g.op("Mul", starts, g.const(hop, "hop", np.int64)), g.const([1], "ax", np.int64)),
            g.const(np.arange(n_fft, dtype=np.int64)[None, :], "offsets"),
        )
        framed = g.op("Gather", padded, index, axis=0)
    frames = g.op("Mul", framed, g.const(_hann(n_fft), "hann", real), hint="frames")
    power = _power_spectra(g, frames, n_fft=n_fft, fft=fft, real=real)
    fb = mel_filterbank(sample_rate=p.sample_rate, n_fft=n_fft, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax)
    mel = g.op("MatMul", power, g.const(np.ascontiguousarray(fb.T), "mel", real))  # (F, n_mels)
    mel = g.op("Max", mel, g.const(p.amin, "amin", real))
    db = g.op("Mul", g.op("Log", mel), g.const(10.0 / math.log(10.0), "db", real))
    logmel = g.op("Transpose", g.op("Cast", db, to=1), perm=[1, 0], hint="logmel")  # (n_mels, F) float32
    normalised = g.op("Div", g.op("Sub", logmel, g.const(model.norm_mean, "mean")), g.const(model.norm_std, "std"))
    w = model.window
    index = _frames_and_windows(g, n_frames, frames=w.frames, hop_frames=w.hop_frames)
    windows = g.op("Transpose", g.op("Gather", normalised, index, axis=1), perm=[1, 0, 2], hint="windows")
    if model.level_reference_db is not None:
        # Each window's level (mean dB over bands and frames) moved to the card's reference.
        raw = g.op("Transpose", g.op("Gather", logmel, index, axis=1), perm=[1, 0, 2])
        level = g.op("ReduceMean", g.op("Cast", raw, to=11), axes=[1, 2], keepdims=1)  # (W, 1, 1)
        shift = g.op("Sub", level, g.const(model.level_reference_db, "ref", np.float64))
        std = g.const(model.norm_std[None].astype(np.float64), "std")
        windows = g.op("Sub", windows, g.op("Cast", g.op("Div", shift, std), to=1))
    if model.norm_center == "window_median":
        windows = g.op("Sub", windows, _median_last_axis(g, windows, w.frames))
    elif model.norm_center != "none":
        raise ValueError(f"no ONNX front end for window centring {model.norm_center!r}")
    return FrontEnd(windows)


def _power_spectra(g: Graph, frames: str, *, n_fft: int, fft: str, real) -> str:
    """Power spectra (F, n_fft // 2 + 1) of windowed ``frames`` (F, n_fft), in ``frames``' float type."""
    n_bins = n_fft // 2 + 1
    if fft == "auto":
        fft = "dft" if n_fft & (n_fft - 1) == 0 else "matmul"
    if fft == "matmul":
        k = np.arange(n_bins)[None, :]
        t = np.arange(n_fft)[:, None]
        angle = 2.0 * np.pi * ((t * k) % n_fft) / n_fft  # reduced mod n_fft: exact angles for large t*k
        basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)  # (n_fft, 2 * n_bins)
        spectrum = g.op("MatMul", frames, g.const(basis, "dft", real))
        squared = g.op("Mul", spectrum, spectrum)
        re2, im2 = g.op("Split", squared, g.const([n_bins, n_bins], "split", np.int64), axis=1, outputs=2)
        return g.op("Add", re2, im2, hint="power")
    if fft == "dft":
        column = g.op("Unsqueeze", frames, g.const([2], "ax", np.int64))  # (F, n_fft, 1)
        spectrum = g.op("DFT", column, axis=1, onesided=1)  # (F, n_bins, 2)
        return g.op("ReduceSumSquare", spectrum, axes=[2], keepdims=0, hint="power")
    raise ValueError(f"fft must be one of {FFT_MODES}, not {fft!r}")


def _db(g: Graph, power: str, floor: float, dtype) -> str:
    """``10 * log10(power + floor)`` in ``dtype``."""
    return g.op(
        "Mul",
        g.op("Log", g.op("Add", power, g.const(floor, "floor", dtype))),
        g.const(10.0 / math.log(10.0), "db", dtype),
    )


def build_edgel3_views_front_end(g: Graph, model, *, fft: str, precision: str = "float64") -> FrontEnd:
    """``samples`` -> EdgeL3's input windows (n_windows, 64, 50) and the shape and level columns
    (n_windows, 65), float32, as the runtime's :class:`~soundsentry.edgel3_encoder.EdgeL3ViewsEncoder`:
    :func:`~soundsentry.edgel3_encoder.frame_rows` (uncentred 2048-point frames every 320 samples),
    windows of 50 frames every 50, :func:`~soundsentry.edgel3_encoder.edgel3_inputs` and
    :func:`~soundsentry.edgel3_encoder.signal_rows`. Only the frames of whole windows are computed."""
    from soundsentry import edgel3_encoder as e3

    window, display, edgel3, parseval = e3._matrices()  # the runtime's own filterbanks, not copies
    n_fft, hop, frames_per_window = e3.N_FFT, e3.FRAME_HOP, e3.WINDOW_FRAMES
    bands, n_low = e3.DISPLAY_BANDS, edgel3.shape[0]
    floor = e3._POWER_FLOOR
    real = {"float64": np.float64, "float32": np.float32}[precision]
    # Frames: 1 + (n - n_fft) // hop, none below n_fft; written with a clamp, as ONNX's integer Div truncates.
    n = g.op("Shape", INPUT)
    n_frames = g.op(
        "Div",
        g.op("Max", g.op("Sub", n, g.const([n_fft - hop], "k", np.int64)), g.const([0], "zero", np.int64)),
        g.const([hop], "hop", np.int64),
    )
    n_windows = g.op("Div", n_frames, g.const([frames_per_window], "w", np.int64))
    # At least one window, from zero padding: onnxruntime's int8 convolutions crash (SIGSEGV, onnxruntime
    # 1.32 with a thread pool) on an empty batch. build_pipeline keeps the scores of the n_windows real ones.
    computed = g.op("Max", n_windows, g.const([1], "one", np.int64))
    used = g.op("Mul", computed, g.const([frames_per_window], "w", np.int64))  # frames of whole windows
    # Frame f is hops f .. f + r - 1 of the signal cut into hops (r = ceil(n_fft / hop)), its first n_fft
    # samples: r shifted row-slices side by side, as the log-mel front end (no Gather of every sample).
    r = -(-n_fft // hop)
    rows = g.op("Add", used, g.const([r - 1], "k", np.int64))
    x = g.op("Cast", INPUT, to=11 if precision == "float64" else 1)
    min_samples = (frames_per_window - 1) * hop + n_fft
    padded = g.op("Pad", x, g.const([0, min_samples + r * hop], "pads", np.int64), g.const(0.0, "zero", real))
    hops = g.op(
        "Reshape",
        g.op(
            "Slice",
            padded,
            g.const([0], "s", np.int64),
            g.op("Mul", rows, g.const([hop], "hop", np.int64)),
            g.const([0], "a", np.int64),
        ),
        g.op("Concat", rows, g.const([hop], "hop", np.int64), axis=0),
    )
    parts = []
    for i in range(r):
        part = g.op(
            "Slice",
            hops,
            g.const([i], "s", np.int64),
            g.op("Add", used, g.const([i], "k", np.int64)),
            g.const([0], "a", np.int64),
        )
        width = min(hop, n_fft - i * hop)
        if width < hop:
            part = g.op(
                "Slice", part, g.const([0], "s", np.int64), g.const([width], "e", np.int64), g.const([1], "a", np.int64)
            )
        parts.append(part)
    framed = g.op("Concat", *parts, axis=1)
    frames = g.op("Mul", framed, g.const(window, "hann", real), hint="frames")
    exact = _power_spectra(g, frames, n_fft=n_fft, fft=fft, real=real)
    power = g.op("Cast", exact, to=1) if precision == "float64" else exact  # the runtime's float32 power
    # EdgeL3's rows from the unrounded power, in float64 as the runtime (they feed the int8 quantiser).
    low = g.op(
        "Slice", exact, g.const([0], "s", np.int64), g.const([n_low], "e", np.int64), g.const([1], "a", np.int64)
    )
    edgel3_db = _db(g, g.op("MatMul", low, g.const(edgel3, "edgel3_mel", real)), floor, real)
    frame_rows = g.op(
        "Concat",
        _db(g, g.op("MatMul", power, g.const(display, "mel", np.float32)), floor, np.float32),
        g.op("Cast", edgel3_db, to=1) if precision == "float64" else edgel3_db,
        _db(g, g.op("MatMul", power, g.const(parseval[:, None], "parseval", np.float32)), floor, np.float32),
        axis=1,
    )  # (F, 129): the transpose of frame_rows'
    shape = g.op("Concat", computed, g.const([frames_per_window, 2 * bands + 1], "shape", np.int64), axis=0)
    windows = g.op("Reshape", frame_rows, shape)  # (W, 50, 129)

    def rows_of(start: int, stop: int) -> str:
        return g.op(
            "Slice",
            windows,
            g.const([start], "s", np.int64),
            g.const([stop], "e", np.int64),
            g.const([2], "a", np.int64),
        )

    # edgel3_inputs: half the power dB (the amplitude's), minus the window's maximum, floored.
    db = g.op("Mul", rows_of(bands, 2 * bands), g.const(np.float32(0.5), "half"))
    db = g.op("Sub", db, g.op("ReduceMax", db, axes=[1, 2], keepdims=1))
    inputs = g.op("Transpose", g.op("Max", db, g.const(np.float32(-e3._DYNAMIC_RANGE), "range")), perm=[0, 2, 1])

    # signal_rows, in float64 as the runtime: the mean power over frames in dB; shape = bands minus their mean.
    def mean_db(rows: str) -> str:
        power = g.op(
            "Pow",
            g.const(10.0, "ten", np.float64),
            g.op("Div", g.op("Cast", rows, to=11), g.const(10.0, "ten", np.float64)),
        )
        mean = g.op("ReduceMean", power, axes=[1], keepdims=0)
        return g.op("Mul", g.op("Log", mean), g.const(10.0 / math.log(10.0), "db", np.float64))

    band_db = mean_db(rows_of(0, bands))  # (W, 64)
    spectrum_shape = g.op("Sub", band_db, g.op("ReduceMean", band_db, axes=[1], keepdims=1))
    level = mean_db(rows_of(2 * bands, 2 * bands + 1))  # (W, 1)
    columns = g.op("Cast", g.op("Concat", spectrum_shape, level, axis=1), to=1, hint="signal_rows")
    return FrontEnd(inputs, columns, n_windows)


#: Front-end builders by encoder kind (the keys of :data:`soundsentry.encoder_kinds.ENCODER_KINDS`): ``builder(graph, model, fft=..., precision=...) -> FrontEnd`` (the encoder's input, and the columns the kind appends to its output).
FRONT_ENDS: dict[str, Callable[..., FrontEnd]] = {
    "logmel-conv": build_logmel_front_end,
    "edgel3-views": build_edgel3_views_front_end,
}


def _encoder_kind(model) -> str:
    return model.encoder.kind  # the key of soundsentry.encoder_kinds.ENCODER_KINDS


# -- encoder and detectors --------------------------------------------------------------------
def _detector_scores(g: Graph, latent: str, model, name: str) -> str:
    # Each detector class builds its own nodes (``onnx_scores``), so a new kind needs nothing here.
    det = model.detector(name)
    if not hasattr(det, "onnx_scores"):
        raise ValueError(f"detector {name!r} has no ONNX form (no onnx_scores method)")
    return det.onnx_scores(g, latent)


# -- the whole pipeline -----------------------------------------------------------------------
def build_pipeline(
    model,
    *,
    detector: str | None = None,
    threshold: float | None = None,
    fft: str = "auto",
    precision: str = "float64",
):
    """The pipeline of ``model`` (a loaded :class:`soundsentry.Model`) as an ``onnx.ModelProto``.

    Parameters
    ----------
    model : soundsentry.Model
    detector : str, optional
        Default: the card's.
    threshold : float, optional
        Default: the card's threshold of that detector; ``abnormal`` is ``score > threshold``.
    fft : {"auto", "matmul", "dft"}
        Spectra as a product with a DFT matrix, or with ONNX's DFT operator (see :data:`FFT_MODES`).
    precision : {"float64", "float32"}
        Arithmetic of the front end up to the log-mel values. float64 is the runtime's (scores
        equal to its within float rounding); float32 is faster, a few 1e-7 relative off on real
        clips, and may differ more on spectra with bins far below the frame's loudest (synthetic tones).
    """
    import onnx
    from onnx import TensorProto, helper
    from soundsentry.logmel_encoder import ENCODER_INPUT, ENCODER_OUTPUT

    detector = detector or model.default_detector
    threshold = model.thresholds[detector] if threshold is None else float(threshold)
    kind = _encoder_kind(model)
    if kind not in FRONT_ENDS:
        raise ValueError(f"no ONNX front end for encoder kind {kind!r} (have: {', '.join(FRONT_ENDS)})")
    g = Graph()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    front = FRONT_ENDS[kind](g, model, fft=fft, precision=precision)
    # Every encoder kind's ONNX network takes "logmel" windows and gives "latent" rows.
    encoder = g.inline(model.bundle.path(model.card["encoder"]["file"]), "encoder/", {ENCODER_INPUT: front.windows})
    latent = encoder[ENCODER_OUTPUT]
    if front.columns is not None:
        latent = g.op("Concat", latent, front.columns, axis=1, hint="latent")
    scores = _detector_scores(g, latent, model, detector)
    if front.n_windows is not None:  # a padded window of an input shorter than one: no score
        scores = g.op("Slice", scores, g.const([0], "s", np.int64), front.n_windows, g.const([0], "a", np.int64))
    g.op("Identity", scores, out="window_scores")
    det = model.detector(detector)
    if hasattr(det, "onnx_clip_score"):
        # The detector's own clip score (views: each view's clip statistic), as Model.clip_score asks it.
        pooled = det.onnx_clip_score(g, latent)
    else:
        reduce = {"mean": "ReduceMean", "max": "ReduceMax"}[model.aggregate]
        pooled = g.op(reduce, "window_scores", axes=[0], keepdims=0)
    # No window (an input shorter than one): a NaN score, not the 0 an empty ReduceMean gives.
    count = g.op("Squeeze", g.op("Shape", "window_scores"), g.const([0], "ax", np.int64))
    g.op(
        "Where",
        g.op("Greater", count, g.const(0, "zero", np.int64)),
        pooled,
        g.const(np.nan, "nan", np.float64),
        out="score",
    )
    g.op("Greater", "score", g.const(threshold, "threshold", np.float64), out="abnormal")
    graph = helper.make_graph(
        g.nodes,
        f"soundsentry_{model.name}_{detector}",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n_samples"])],
        [
            helper.make_tensor_value_info("window_scores", TensorProto.DOUBLE, ["n_windows"]),
            helper.make_tensor_value_info("score", TensorProto.DOUBLE, []),
            helper.make_tensor_value_info("abnormal", TensorProto.BOOL, []),
        ],
        initializer=g.initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="soundsentry.export.onnx_pipeline",
        doc_string=(
            f"SoundSentry model {model.name!r}, detector {detector}: 16 kHz mono float32 samples in; window "
            "scores, clip score (higher = more anomalous) and abnormal (score > threshold) out."
        ),
    )
    proto.ir_version = 8  # what onnxruntime 1.17, the oldest the runtime supports, reads
    stream = model.encoder.stream  # the window geometry of every encoder kind
    meta = {
        "soundsentry.model": model.name,
        "soundsentry.detector": detector,
        "soundsentry.threshold": repr(threshold),
        "soundsentry.aggregate": model.aggregate,
        "soundsentry.clip_score": "detector" if hasattr(det, "onnx_clip_score") else model.aggregate,
        "soundsentry.sample_rate": str(model.sample_rate),
        "soundsentry.min_samples": str(model.encoder.min_samples),
        "soundsentry.window_seconds": repr(model.window_seconds),
        "soundsentry.window_hop_seconds": repr(stream.window_hop_frames * stream.frame_hop / model.sample_rate),
        "soundsentry.fft": fft,
        "soundsentry.precision": precision,
    }
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_pipeline(
    model,
    out: str | os.PathLike[str],
    *,
    detector: str | None = None,
    threshold: float | None = None,
    fft: str = "auto",
    precision: str = "float64",
) -> Path:
    """Write the single-file pipeline of ``model`` (a :class:`soundsentry.Model`, name or folder) to ``out``."""
    if isinstance(model, (str, os.PathLike)):
        from soundsentry.model import load_model

        model = load_model(model)
    proto = build_pipeline(model, detector=detector, threshold=threshold, fft=fft, precision=precision)
    out = Path(out)
    out.write_bytes(proto.SerializeToString())
    return out
