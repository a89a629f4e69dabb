"""Evidence in views, one verdict: the ``views`` detector.

A window's feature row holds several *views* of the sound side by side (for the ``edgel3``
encoder: the pretrained embedding, the steady spectrum's shape, the level, transients). Each view
is judged on its own against the enrolled normal windows:

1. **Clip statistic.** A steady view (``pool="clip"``: embedding, spectrum shape, level) compares
   the clip's mean row with the enrolled recordings' mean rows (mean distance to the
   ``n_neighbors`` nearest, Euclidean within the view's columns): averaging over the clip removes
   the window-to-window noise of a steady machine. An event view (``pool="windows"``: transients)
   compares each window with the enrolled windows and averages the ``top_k`` largest distances, so
   that a few bad windows of an intermittent machine (a valve's actuation) count instead of being
   averaged away.
2. **Threshold.** Each enrolled recording is scored by the view fitted *without it*
   (leave-one-recording-out); a log-normal is fitted to those clip statistics and the threshold is
   its upper prediction bound (:func:`soundsentry.calibration.lognormal_threshold`), at
   ``1 - (1 - quantile) / n_views`` so that the views together keep the false-alarm rate
   (Bonferroni). A view may declare a floor below which it never flags (the level view: a
   microphone moved on the same healthy machine changes its level by up to ~3 dB).

3. **One score** (``combine``). The clip is **abnormal when any view passes its own threshold**
   (its ratio ``statistic / threshold`` > 1), whatever the combination. ``"max"`` (bundles built
   before the other existed): the score is the largest ratio. ``"max-then-sum"`` (what enrollment
   and the shipped bundles use): a normal clip's score is the largest ratio as well, but an
   abnormal clip's is ``1 + sum of the ratios / sum threshold``, the sum threshold being the same
   log-normal bound at ``quantile`` fitted to the enrolled recordings' leave-one-out sums: flagged
   clips are ranked by what all views say together. Chosen on normal clips and synthetic faults
   alone (``python -m studies.view_combination``): under a gain change of a whole recording
   (another day, another microphone setting) every clip is flagged "x dB quieter/louder", and by
   the largest ratio alone the faults that add sound ranked *below* the normal clips; with the
   sum they keep what the other views heard.

Whatever the combination, each view's ratio is reported (``soundsentry.evidence``): a view over 1 is
out of its own normal range, and the evidence says which and by how much. A window's score is the
same combination per window (for the score track). Anomalous recordings never take part. Only
NumPy: enrollment works from the plain install.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import lognormal_threshold
from .detectors import _onnx_distances, pairwise_distances
from .errors import ModelIntegrityError

__all__ = ["COMBINES", "POOLS", "ViewSpec", "ViewsDetector", "combine_rule", "top_k_mean"]

#: How a view turns windows into a clip statistic (see :class:`ViewSpec`).
POOLS = ("clip", "windows")
#: How the views' ratios make one score (see :class:`ViewsDetector`); stored as an index into this.
COMBINES = ("max", "max-then-sum")
_NAME_BYTES = 16


@dataclass(frozen=True)
class ViewSpec:
    """One view: a named run of columns of the window feature row.

    Attributes
    ----------
    name : str
    start, stop : int
        Column slice ``[start, stop)`` of the feature row.
    floor : float
        The view's threshold is never below this (in the view's distance units); 0 = no floor.
    pool : {"clip", "windows"}
        ``"clip"``: the clip's mean row is compared with the enrolled recordings' mean rows (a steady
        sound: averaging over the clip removes the window-to-window noise); ``"windows"``: every
        window is compared with the enrolled windows and the ``top_k`` largest distances are
        averaged (short events that a mean would drown).
    """

    name: str
    start: int
    stop: int
    floor: float = 0.0
    pool: str = "clip"

    def __post_init__(self) -> None:
        if not self.name.isascii() or not 0 < len(self.name) <= _NAME_BYTES:
            raise ValueError(f"view name {self.name!r}: 1 to {_NAME_BYTES} ASCII characters")
        if self.pool not in POOLS:
            raise ValueError(f"view {self.name!r}: pool must be one of {POOLS}, got {self.pool!r}")

    def columns(self, X: np.ndarray) -> np.ndarray:
        return X[:, self.start : self.stop]

    def to_dict(self) -> dict:
        return {"name": self.name, "start": self.start, "stop": self.stop, "floor": self.floor, "pool": self.pool}

    @classmethod
    def from_dict(cls, data: dict) -> ViewSpec:
        return cls(
            name=str(data["name"]),
            start=int(data["start"]),
            stop=int(data["stop"]),
            floor=float(data["floor"]),
            pool=str(data.get("pool", "clip")),
        )


def top_k_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest entries along the last axis (all of them when fewer)."""
    values = np.asarray(values, dtype=np.float64)
    k = max(1, min(k, values.shape[-1]))
    return -np.mean(np.partition(-values, k - 1, axis=-1)[..., :k], axis=-1)


#: Rows of ``X`` whose distances to the reference are held at once: an hour of 1-s windows against a
#: few thousand enrolled windows would otherwise be a matrix of hundreds of MB.
_DISTANCE_BLOCK = 256


def _knn_distance(X: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean distance of each row of ``X`` to its ``k`` nearest rows of ``reference``, shape (n,)."""
    k = min(k, reference.shape[0])
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _DISTANCE_BLOCK):
        d = pairwise_distances(X[start : start + _DISTANCE_BLOCK], reference)
        out[start : start + _DISTANCE_BLOCK] = np.partition(d, k - 1, axis=1)[:, :k].mean(axis=1)
    return out


class ViewsDetector:
    """Per-view nearest-neighbour distances, each calibrated on enrolled normals; any view can flag.

    Parameters
    ----------
    views : sequence of ViewSpec
    n_neighbors : int
        Enrolled windows averaged in a view's distance.
    top_k : int
        Windows averaged in a clip statistic.
    quantile : float
        Wanted share of normal clips under the threshold, for all views together.
    prior_spread, single_recording_spread : float
        Log spreads of the threshold rule (see :func:`~soundsentry.calibration.lognormal_threshold`).
    block_windows : int
        With one enrolled recording, it is cut into blocks of this many windows, each scored
        without itself, in place of other recordings.

    Attributes
    ----------
    reference_ : np.ndarray, shape (n_reference, n_features)
        Enrolled window rows, float32.
    recording_means_ : np.ndarray, shape (n_recordings, n_features)
        Mean row of each enrolled recording (of each block, with one recording): the reference of
        clip views.
    thresholds_ : np.ndarray, shape (n_views,)
    calibration_ : np.ndarray, shape (n_calibration, n_views)
        The leave-one-recording-out clip statistics behind the thresholds.
    centre_ : np.ndarray, shape (n_features,)
        Median enrolled row (what the evidence compares a window's level and bands against).
    n_recordings_ : int
    """

    def __init__(
        self,
        *,
        views: Sequence[ViewSpec],
        n_neighbors: int = 3,
        top_k: int = 2,
        quantile: float = 0.99,
        prior_spread: float = 0.38,
        single_recording_spread: float = 0.26,
        block_windows: int = 2,
        combine: str = "max-then-sum",
    ) -> None:
        if not views:
            raise ValueError("the views detector needs at least one view")
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
        self.combine = combine
        self.views = tuple(views)
        self.n_neighbors = n_neighbors
        self.top_k = top_k
        self.quantile = quantile
        self.prior_spread = prior_spread
        self.single_recording_spread = single_recording_spread
        self.block_windows = block_windows

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, recordings: Sequence[np.ndarray]) -> ViewsDetector:
        """Fit on the window rows of normal recordings, a list of arrays of shape (n_windows_i, n_features)."""
        recordings = [np.asarray(r, dtype=np.float32) for r in recordings if len(r)]
        if not recordings:
            raise ValueError("no windows to fit the views detector on")
        self.n_recordings_ = len(recordings)
        groups = recordings if len(recordings) > 1 else self._blocks(recordings[0])
        calibration = []
        for i, held_out in enumerate(groups):
            rest = [g for j, g in enumerate(groups) if j != i]
            calibration.append(self._statistics(held_out, np.concatenate(rest), np.stack([g.mean(0) for g in rest])))
        self.calibration_ = np.asarray(calibration)
        per_view_quantile = 1.0 - (1.0 - self.quantile) / len(self.views)
        self.thresholds_ = np.asarray(
            [max(self._bound(self.calibration_[:, v], per_view_quantile), view.floor) for v, view in enumerate(self.views)]
        )
        self.combined_threshold_ = 1.0
        if self.combine == "max-then-sum":
            # The same rule as each view's, on the leave-one-out sums of ratios: one test, no split.
            self.combined_threshold_ = self._bound((self.calibration_ / self.thresholds_).sum(axis=1), self.quantile)
        self.reference_ = np.concatenate(recordings)
        self.recording_means_ = np.stack([g.mean(0) for g in groups]).astype(np.float32)
        self.centre_ = np.median(self.reference_, axis=0).astype(np.float32)
        return self

    def _bound(self, scores: np.ndarray, quantile: float) -> float:
        """The log-normal upper bound of leave-one-out statistics, with this detector's spreads."""
        return lognormal_threshold(
            np.maximum(scores, 1e-9),
            quantile=quantile,
            n_recordings=self.n_recordings_,
            prior_spread=self.prior_spread,
            single_recording_spread=self.single_recording_spread,
        )

    def _blocks(self, rows: np.ndarray) -> list[np.ndarray]:
        n = max(2, len(rows) // self.block_windows)
        blocks = [b for b in np.array_split(rows, n) if len(b)]
        if len(blocks) < 2:
            raise ValueError("one recording must give at least two windows to calibrate the views detector")
        return blocks

    def _statistics(self, X: np.ndarray, windows: np.ndarray, means: np.ndarray) -> np.ndarray:
        """Each view's clip statistic of window rows ``X`` against reference windows and recording means."""
        out = np.empty(len(self.views))
        for v, view in enumerate(self.views):
            if view.pool == "clip":
                out[v] = _knn_distance(view.columns(X.mean(0, keepdims=True)), view.columns(means), self.n_neighbors)[0]
            else:
                distances = _knn_distance(view.columns(X), view.columns(windows), self.n_neighbors)
                out[v] = top_k_mean(distances, self.top_k)
        return out

    # -- scoring -------------------------------------------------------------------------------
    def _rows(self, view: ViewSpec) -> np.ndarray:
        """The whole rows a view's windows are compared with: the recordings' means or the enrolled windows."""
        return self.recording_means_ if view.pool == "clip" else self.reference_

    def _reference(self, view: ViewSpec) -> np.ndarray:
        return view.columns(self._rows(view))

    def view_distances(self, X: np.ndarray) -> np.ndarray:
        """Each window's distance to the view's reference (enrolled recordings' means for clip views,
        enrolled windows otherwise), shape (n_windows, n_views)."""
        X = np.asarray(X, dtype=np.float32)
        return np.stack(
            [_knn_distance(view.columns(X), self._reference(view), self.n_neighbors) for view in self.views], axis=1
        )

    def view_ratios(self, X: np.ndarray) -> np.ndarray:
        """Window distance over the view's threshold, shape (n_windows, n_views): the score track's evidence."""
        return self.view_distances(X) / self.thresholds_

    def combined(self, ratios: np.ndarray) -> np.ndarray:
        """One score from view ratios of shape (..., n_views); > 1 (abnormal) exactly when a ratio is.

        ``"max"``: the largest ratio. ``"max-then-sum"``: the largest ratio up to 1; above it,
        ``1 + sum of ratios / combined_threshold_``, so that flagged clips rank by all views' evidence.
        """
        ratios = np.asarray(ratios, dtype=np.float64)
        largest = ratios.max(axis=-1)
        if self.combine == "max":
            return largest
        return np.where(largest > 1.0, 1.0 + ratios.sum(axis=-1) / self.combined_threshold_, largest)

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        """Window scores: the views' ratios of each window combined (:meth:`combined`), shape (n_windows,).

        A single window of a clip view is noisier than the clip's mean, so window scores can pass 1
        while the clip stays normal: the verdict is :meth:`clip_score`'s.
        """
        return self.combined(self.view_ratios(X))

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """scikit-learn convention: higher = more normal."""
        return -self.anomaly_score(X)

    def clip_view_scores(self, X: np.ndarray) -> np.ndarray:
        """Each view's clip statistic over its threshold, shape (n_views,); > 1: the view flags the clip."""
        X = np.asarray(X, dtype=np.float32)
        return self._statistics(X, self.reference_, self.recording_means_) / self.thresholds_

    def clip_score(self, X: np.ndarray) -> float:
        """The clip score: the views' clip ratios combined (:meth:`combined`; > 1: abnormal)."""
        return float(self.combined(self.clip_view_scores(X)))

    def _onnx_combined(self, g, stacked: str, axis: int) -> str:
        """Graph nodes of :meth:`combined` over ``axis`` of the float64 ratios ``stacked``."""
        largest = g.op("ReduceMax", stacked, axes=[axis], keepdims=0)
        if self.combine == "max":
            return largest
        total = g.op("ReduceSum", stacked, g.const([axis], "axis", np.int64), keepdims=0)
        one = g.const(1.0, "one", np.float64)
        flagged = g.op("Add", one, g.op("Div", total, g.const(self.combined_threshold_, "combined_t", np.float64)))
        return g.op("Where", g.op("Greater", largest, one), flagged, largest)

    # -- the single-file ONNX export (soundsentry.export.onnx_pipeline) -------------------------
    def _onnx_view_distances(self, g, x: str, view: ViewSpec, reference: np.ndarray) -> str:
        """Graph nodes of ``_knn_distance(view.columns(x), view.columns(reference), n_neighbors)``;
        ``x`` names float64 rows (n, n_features); returns float64 distances (n,)."""
        columns = g.op(
            "Slice",
            x,
            g.const([view.start], "s", np.int64),
            g.const([view.stop], "e", np.int64),
            g.const([1], "a", np.int64),
        )
        reference = np.ascontiguousarray(view.columns(reference), dtype=np.float64)
        k = min(self.n_neighbors, reference.shape[0])
        nearest, _ = g.op(
            "TopK", _onnx_distances(g, columns, reference), g.const([k], "k", np.int64), outputs=2, axis=1, largest=0
        )
        return g.op("ReduceMean", nearest, axes=[1], keepdims=0)

    def onnx_scores(self, g, latent: str) -> str:
        """:meth:`anomaly_score` as ONNX graph nodes (the single-file export).

        ``g`` is a graph builder (:class:`soundsentry.export.onnx_pipeline.Graph`: ``g.op(type, *inputs,
        **attributes)`` and ``g.const(array, hint, dtype)`` return value names; nothing here imports
        onnx); ``latent`` names the float32 latent rows (n, n_features). Returns the name of the float64
        window scores (n,), equal to :meth:`anomaly_score`'s.
        """
        x = g.op("Cast", latent, to=11)  # float64, as pairwise_distances
        ratios = [
            g.op(
                "Unsqueeze",
                g.op("Div", self._onnx_view_distances(g, x, view, self._rows(view)), g.const(t, "t", np.float64)),
                g.const([1], "ax", np.int64),
            )
            for view, t in zip(self.views, self.thresholds_, strict=True)
        ]
        stacked = g.op("Concat", *ratios, axis=1) if len(ratios) > 1 else ratios[0]
        return self._onnx_combined(g, stacked, 1)

    def onnx_clip_score(self, g, latent: str) -> str:
        """:meth:`clip_score` as ONNX graph nodes: a float64 scalar from the float32 latent rows (n, n_features).

        The clip's mean row is rounded to float32 as the runtime's; with no rows at all the value is
        meaningless (the caller gives NaN there, as for every detector).
        """
        x = g.op("Cast", latent, to=11)
        mean = g.op("ReduceMean", x, axes=[0], keepdims=1)
        mean = g.op("Cast", g.op("Cast", mean, to=1), to=11)  # the runtime's float32 mean row
        n = g.op("Shape", latent, end=1)
        ratios = []
        for view, t in zip(self.views, self.thresholds_, strict=True):
            if view.pool == "clip":
                statistic = g.op("ReduceMean", self._onnx_view_distances(g, mean, view, self._rows(view)), axes=[0])
            else:
                # top_k_mean: the mean of the min(top_k, n) largest window distances.
                distances = self._onnx_view_distances(g, x, view, self._rows(view))
                k = g.op("Min", n, g.const([self.top_k], "k", np.int64))
                largest, _ = g.op("TopK", distances, k, outputs=2, axis=0, largest=1)
                statistic = g.op("ReduceMean", largest, axes=[0])
            ratios.append(g.op("Div", statistic, g.const([t], "t", np.float64)))
        stacked = g.op("Concat", *ratios, axis=0) if len(ratios) > 1 else ratios[0]
        return self._onnx_combined(g, stacked, 0)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        np.savez(
            path,
            reference=self.reference_.astype(np.float32),
            recording_means=self.recording_means_,
            pools=np.array([POOLS.index(v.pool) for v in self.views], dtype=np.int64),
            thresholds=self.thresholds_,
            combine=np.array([COMBINES.index(self.combine)], dtype=np.int64),
            combined_threshold=np.array([self.combined_threshold_], dtype=np.float64),
            calibration=self.calibration_,
            centre=self.centre_,
            views=np.array([[v.start, v.stop] for v in self.views], dtype=np.int64),
            floors=np.array([v.floor for v in self.views]),
            # Numbers only (bundle files are loaded without pickles and checked to hold no strings):
            # names as ASCII codes, pools as indices into POOLS.
            names=np.array([list(v.name.encode("ascii").ljust(_NAME_BYTES, b"\0")) for v in self.views], dtype=np.uint8),
            params=np.array(
                [self.n_neighbors, self.top_k, self.quantile, self.prior_spread, self.single_recording_spread,
                 self.block_windows, self.n_recordings_],
                dtype=np.float64,
            ),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, session_options=None) -> ViewsDetector:
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [bytes(row).rstrip(b"\0").decode("ascii") for row in data["names"].astype(np.uint8)]
                spans = data["views"].astype(int)
                floors = data["floors"].astype(float)
                params = data["params"]
                pools = [POOLS[int(i)] for i in data["pools"]]
                views = [
                    ViewSpec(n, int(a), int(b), float(f), p)
                    for n, (a, b), f, p in zip(names, spans, floors, pools, strict=True)
                ]
                det = cls(
                    views=views,
                    n_neighbors=int(params[0]),
                    top_k=int(params[1]),
                    quantile=float(params[2]),
                    prior_spread=float(params[3]),
                    single_recording_spread=float(params[4]),
                    block_windows=int(params[5]),
                    # Files written before the sum existed combine by the largest ratio.
                    combine=COMBINES[int(data["combine"][0])] if "combine" in data.files else "max",
                )
                det.combined_threshold_ = (
                    float(data["combined_threshold"][0]) if "combined_threshold" in data.files else 1.0
                )
                det.n_recordings_ = int(params[6])
                det.reference_ = np.ascontiguousarray(data["reference"], dtype=np.float32)
                det.recording_means_ = np.ascontiguousarray(data["recording_means"], dtype=np.float32)
                det.thresholds_ = data["thresholds"].astype(np.float64)
                det.calibration_ = data["calibration"].astype(np.float64)
                det.centre_ = data["centre"].astype(np.float32)
        except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelIntegrityError(f"{path}: not a views detector file ({exc})") from exc
        width = det.reference_.shape[1] if det.reference_.ndim == 2 else -1
        if (
            det.reference_.ndim != 2
            or len(det.reference_) == 0
            or det.thresholds_.shape != (len(views),)
            or not np.all(np.isfinite(det.thresholds_))
            or np.any(det.thresholds_ <= 0)
            or not (np.isfinite(det.combined_threshold_) and det.combined_threshold_ > 0)
            or any(not 0 <= v.start < v.stop <= width for v in views)
            or det.centre_.shape != (width,)
            or det.recording_means_.ndim != 2
            or det.recording_means_.shape[1] != width
        ):
            raise ModelIntegrityError(f"{path}: views detector arrays are inconsistent")
        return det

    def __repr__(self) -> str:
        return (
            f"ViewsDetector(views={[v.name for v in self.views]}, n_neighbors={self.n_neighbors}, "
            f"top_k={self.top_k}, combine={self.combine!r})"
        )



# -- the detector registry's hooks (soundsentry.detector_kinds) -----------------------------------

#: The level view never flags a change smaller than this (dB). Measured on normal recordings only: the
#: level of the other 7 microphones of one moment differs from channel 0's by 0.36 dB (median), 1.72 dB
#: (95th percentile), 2.85 dB (99th) and 3.58 dB at most, over 371 microphone pairs of the 8-channel
#: MIMII normal clips in shared/data (``python -m studies.views_choice``): moving a microphone on a
#: healthy machine must not be a fault by itself.
LEVEL_FLOOR_DB = 3.0


def combine_rule(combine: str) -> str:
    """How a views detector's clip score is made (``combine``, see :data:`COMBINES`), in words."""
    if combine == "max":
        return "the largest view's statistic over its own threshold"
    return (
        "abnormal when a view's statistic passes its own threshold; below that the largest view's ratio, "
        "above it 1 + the sum of the views' ratios over its calibrated bound"
    )


def default_views(columns: dict[str, tuple[int, int]], *, level_floor_db: float = LEVEL_FLOOR_DB) -> list[ViewSpec]:
    """The views of an encoder's latent row (``encoder.view_columns()``): what the ``views`` detector judges.

    - ``embedding`` (clip): the pretrained network's texture of the steady sound;
    - ``events`` (windows): the same embedding, its worst windows (an intermittent machine's bad moment);
    - ``shape`` (clip): the mean band spectrum, loudness taken out;
    - ``level`` (clip): the loudness in dB, with a floor of ``level_floor_db``.
    """
    e, s, lv = columns["embedding"], columns["shape"], columns["level"]
    return [
        ViewSpec("embedding", *e, pool="clip"),
        ViewSpec("events", *e, pool="windows"),
        ViewSpec("shape", *s, pool="clip"),
        ViewSpec("level", *lv, floor=level_floor_db, pool="clip"),
    ]


def fit_views(recordings: Sequence[np.ndarray], *, params: dict, columns: dict[str, tuple[int, int]]) -> ViewsDetector:
    """Fit the views detector on the latent rows of each normal recording (a list of (n_windows_i, d) arrays)."""
    views = default_views(columns, level_floor_db=float(params["level_floor_db"]))
    return ViewsDetector(
        views=views,
        n_neighbors=int(params["n_neighbors"]),
        top_k=int(params["top_k"]),
        quantile=float(params["quantile"]),
        combine=str(params.get("combine", "max-then-sum")),
    ).fit(recordings)


def save_views(fitted: ViewsDetector, path, *, latent_dim: int) -> None:
    fitted.save(path)


def views_card(fitted: ViewsDetector, *, params: dict, n_reference: int) -> dict:
    """The card entry's fields (besides file and threshold): the views, their thresholds and calibration."""
    return {
        "n_neighbors": fitted.n_neighbors,
        "top_k": fitted.top_k,
        "quantile": fitted.quantile,
        "combine": fitted.combine,
        "combined_threshold": round(float(fitted.combined_threshold_), 6),
        "n_reference": n_reference,
        "n_recordings": fitted.n_recordings_,
        "views": [
            v.to_dict() | {"threshold": round(float(t), 6)} for v, t in zip(fitted.views, fitted.thresholds_, strict=True)
        ],
        "calibration": (
            "each view's threshold: the "
            f"{1 - (1 - fitted.quantile) / len(fitted.views):.4f} upper prediction bound (the wanted {fitted.quantile:.0%} "
            f"split over {len(fitted.views)} views) of a log-normal fitted to the view's clip statistics of the "
            + (
                f"{fitted.n_recordings_} enrolled recordings, each scored without itself (leave-one-recording-out)"
                if fitted.n_recordings_ > 1
                else f"one recording's blocks of {fitted.block_windows} windows, each scored without itself"
            )
            + f", log spread pooled with a prior of {fitted.prior_spread}; floors: "
            + ", ".join(f"{v.name} {v.floor:g}" for v in fitted.views if v.floor > 0)
            + (
                ""
                if fitted.combine == "max"
                else f"; the sum's bound: the {fitted.quantile:.0%} upper prediction bound of the same rule fitted to "
                f"the recordings' leave-one-out sums of ratios ({fitted.combined_threshold_:.4g})"
            )
            + f". Clip score: {combine_rule(fitted.combine)}."
        ),
        "calibration_statistics": np.round(fitted.calibration_, 6).tolist(),
    }


def check_views(path, fitted: ViewsDetector, reference, queries: np.ndarray) -> float:
    """Relative difference between the saved file's window scores and the fitted detector's."""
    loaded = ViewsDetector.load(path)
    want = fitted.anomaly_score(queries)
    got = loaded.anomaly_score(queries)
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-12))
