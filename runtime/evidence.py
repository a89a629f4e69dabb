"""What raised a flag, in an engineer's units: the evidence of the ``views`` detector.

For each view the clip's ratio to its threshold, and a measured reading where the view has
units: the level view in dB against the enrolled median ("4.7 dB louder than enrolled"), the shape
view as the octave band that moved most against the rest of the spectrum ("1 kHz-2 kHz band +5.2
dB"). A gain change is then visible as a gain change.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from .views import ViewsDetector

__all__ = ["ViewEvidence", "explain", "summary"]

#: Octave edges (Hz) the shape view's bands are grouped into for the evidence.
_OCTAVES = (0, 125, 250, 500, 1000, 2000, 4000, 8000)


@dataclass(frozen=True)
class ViewEvidence:
    """One view's verdict on a clip.

    Attributes
    ----------
    view : str
    ratio : float
        Clip statistic over the view's threshold; > 1 means this view flags the clip.
    flagged : bool
    reading : str
        The measurement in words, e.g. ``"4.7 dB louder than enrolled"``.
    value : float
        The measurement as a number (dB for level and shape; the ratio otherwise).
    """

    view: str
    ratio: float
    flagged: bool
    reading: str
    value: float

    def to_dict(self) -> dict:
        return asdict(self)


def _hz(f: float) -> str:
    return f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"


def _top_windows(ratios: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, len(ratios)))
    return np.argsort(ratios)[::-1][:k]


def explain(detector: ViewsDetector, X: np.ndarray, *, band_edges_hz: np.ndarray | None = None) -> list[ViewEvidence]:
    """Evidence per view for one clip's window rows ``X`` (n_windows, n_features), most flagged first."""
    X = np.asarray(X, dtype=np.float32)
    ratios = detector.view_ratios(X)  # (n_windows, n_views)
    clip = detector.clip_view_scores(X)
    out = []
    for v, view in enumerate(detector.views):
        # a clip view speaks for the whole clip, a windows view for its worst windows
        rows = X if view.pool == "clip" else X[_top_windows(ratios[:, v], detector.top_k)]
        ratio = float(clip[v])
        if view.name == "level":
            value = float(np.mean(view.columns(rows)) - float(np.mean(view.columns(detector.centre_[None]))))
            reading = f"{abs(value):.1f} dB {'louder' if value >= 0 else 'quieter'} than enrolled"
        elif view.name == "shape":
            diff = np.mean(view.columns(rows), axis=0) - view.columns(detector.centre_[None])[0]
            value, reading = _band_reading(diff, band_edges_hz)
        elif view.pool == "windows":
            value = ratio
            reading = "its worst windows sound unlike the enrolled ones"
        else:
            value = ratio
            reading = "the sound's texture is unlike the enrolled recordings'"
        out.append(ViewEvidence(view=view.name, ratio=ratio, flagged=ratio > 1.0, reading=reading, value=value))
    return sorted(out, key=lambda e: -e.ratio)


def _band_reading(diff: np.ndarray, band_edges_hz: np.ndarray | None) -> tuple[float, str]:
    if band_edges_hz is None or len(band_edges_hz) != len(diff):
        b = int(np.argmax(np.abs(diff)))
        return float(diff[b]), f"band {b} {diff[b]:+.1f} dB against the rest of the spectrum"
    centres = band_edges_hz.mean(axis=1)
    best = (0.0, "")
    for lo, hi in itertools.pairwise(_OCTAVES):
        sel = (centres >= lo) & (centres < hi)
        if sel.any():
            change = float(np.mean(diff[sel]))
            if abs(change) > abs(best[0]) or not best[1]:
                best = (change, f"{_hz(lo)}-{_hz(hi)} band {change:+.1f} dB against the rest of the spectrum")
    return best


def summary(evidence: list[ViewEvidence]) -> str:
    """One line: the views that flag (or the strongest one), with their readings."""
    flagged = [e for e in evidence if e.flagged]
    shown = flagged or evidence[:1]
    return "; ".join(f"{e.view} {e.ratio:.2f}x threshold: {e.reading}" for e in shown)
