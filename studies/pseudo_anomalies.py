"""Synthetic faults on held-out *normal* clips: a model-selection signal that needs no anomaly.

Choosing a configuration by how it scores real anomalous recordings would leak the test into
the model (the field's one rule). Choosing only by how normal the held-out normals look rewards
a model that has gone deaf: one that scores everything alike. This module gives the other half
of the question from normal recordings alone: take held-out normal clips, add the kind of change
a machine fault makes, and ask whether the model ranks the changed clips above the unchanged
ones (an AUC). Unchanged views include the other microphones of an original MIMII recording,
so a model that flags a microphone move as a fault is penalised too: that is drift.

The four families follow the faults the MIMII paper names (imbalance, rubbing, clogging,
leakage, damaged parts) in their most generic acoustic form. Their strengths were picked
beforehand and checked once, on normal clips only, not to be trivially easy or impossible for
the previously shipped models (``python -m studies.pseudo_anomalies --bundle DIR
CLIP...`` prints the AUC per family); they were not tuned. Every candidate is judged on the
very same perturbed samples (seeded per clip, channel and family).

Synthetic faults are a proxy. A model that finds them may still miss a real fault that looks
like none of them; the accuracy document reports real anomalies separately, scored once after
the choice.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from soundsentry.audio import read_audio, resample
from soundsentry.metrics import roc_auc
from soundsentry.model import Model, load_model
from soundsentry.scoring import score_mono
from soundsentry.train.data import Clip

__all__ = ["FAMILIES", "PseudoAnomalySet", "make_pseudo_anomaly", "pseudo_anomaly_auc", "pseudo_anomaly_set"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

#: Fault families and their strength in dB relative to the clip's own RMS (see module docstring).
FAMILIES: dict[str, float] = {
    # A new rotating component or a resonance: a few harmonics of one tone.
    "tone": -24.0,
    # Imbalance or a loose part: the level beats at a few Hz.
    "modulation": -10.0,
    # Rubbing, a damaged blade or valve seat: short broadband bursts.
    "clicks": -6.0,
    # Clogging or leakage: one octave of the spectrum louder or quieter.
    "band": 6.0,
}


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) or 1e-9


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def make_pseudo_anomaly(
    y: np.ndarray, *, family: str, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE, strength_db: float | None = None
) -> np.ndarray:
    """A copy of mono samples ``y`` (n,) with one synthetic fault of ``family`` added.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    family : {"tone", "modulation", "clicks", "band"}
    rng : numpy Generator that draws the fault's frequency, rate or band
    strength_db : float, optional
        Overrides :data:`FAMILIES`' strength (dB relative to the clip RMS; for ``band`` the gain).

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown pseudo-anomaly family {family!r} (choose from: {', '.join(FAMILIES)})")
    strength = FAMILIES[family] if strength_db is None else float(strength_db)
    y = np.asarray(y, dtype=np.float64)
    n, rms = y.shape[0], _rms(y)
    t = np.arange(n) / sample_rate
    if family == "tone":
        f0 = _log_uniform(rng, 60.0, 3000.0)
        harmonics = [h for h in (1, 2, 3) if h * f0 < 0.45 * sample_rate]
        tone = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h for h in harmonics)
        out = y + tone * (rms * 10 ** (strength / 20) / _rms(tone))
    elif family == "modulation":
        rate = _log_uniform(rng, 1.0, 20.0)
        depth = 10 ** (strength / 20)  # -10 dB: the level swings by about +-2.6 dB
        out = y * (1.0 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    elif family == "clicks":
        rate = _log_uniform(rng, 2.0, 20.0)
        burst = max(1, int(0.005 * sample_rate))
        period = sample_rate / rate
        starts = np.arange(rng.uniform(0, period), n - burst, period)
        starts = (starts + rng.normal(0, 0.05 * period, starts.shape)).astype(int).clip(0, n - burst)
        clicks = np.zeros(n)
        for s in starts:
            clicks[s : s + burst] += rng.normal(0, 1, burst) * np.hanning(burst)
        # Strength is the burst's level against the clip's: -6 dB bursts are clearly audible.
        peak_rms = _rms(clicks[starts[0] : starts[0] + burst]) if len(starts) else 1.0
        out = y + clicks * (rms * 10 ** (strength / 20) / peak_rms)
    else:  # band
        centre = _log_uniform(rng, 150.0, 5000.0)
        gain_db = strength * (1 if rng.uniform() < 0.5 else -1)
        freqs = np.fft.rfftfreq(n, 1 / sample_rate)
        # Raised-cosine octave on a log-frequency axis: no hard edge to ring.
        distance = np.abs(np.log2(np.maximum(freqs, 1.0) / centre))
        shape = np.where(distance < 0.5, 0.5 * (1 + np.cos(2 * np.pi * distance)), 0.0)
        out = np.fft.irfft(np.fft.rfft(y) * 10 ** (gain_db * shape / 20), n=n)
    return out.astype(np.float32)


@dataclass
class PseudoAnomalySet:
    """Unchanged normal views and their synthetic-fault copies, each tagged with its family."""

    normal: list[np.ndarray]
    perturbed: list[np.ndarray]
    families: list[str]
    names: list[str]


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


def pseudo_anomaly_set(clips: list[Clip], *, seed: int = 0, max_channels: int = 8) -> PseudoAnomalySet:
    """Every channel of every clip as an unchanged normal view, plus one copy per fault family.

    Seeds depend on the clip's file name, channel and family (not on the order or the model), so
    every candidate model is judged on identical samples.
    """
    out = PseudoAnomalySet([], [], [], [])
    for clip in clips:
        samples, rate = read_audio(clip.path)
        for ch in range(min(samples.shape[1], max_channels)):
            view = resample(samples[:, ch], orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
            out.normal.append(view)
            out.names.append(f"{clip.path.name}#{ch}")
            for family in FAMILIES:
                rng = np.random.default_rng(_seed(seed, clip.path.name, ch, family))
                out.perturbed.append(make_pseudo_anomaly(view, family=family, rng=rng))
                out.families.append(family)
    return out


def _clip_scores(model: Model, views: list[np.ndarray], detectors: list[str]) -> dict[str, np.ndarray]:
    scores: dict[str, list[float]] = {d: [] for d in detectors}
    for y in views:
        # The runtime's scoring path: embedded once per view, shared by every detector.
        clip = score_mono(model, y, detectors=detectors).clip_scores(model)
        for d in detectors:
            scores[d].append(clip[d])
    return {d: np.asarray(v) for d, v in scores.items()}


def pseudo_anomaly_auc(model: Model, data: PseudoAnomalySet) -> dict[str, dict[str, float]]:
    """AUC of unchanged normal views against their synthetic-fault copies, per detector.

    Returns ``{detector: {"all": auc, "<family>": auc, ...}}``; 0.5 is a model that cannot tell them
    apart, 1.0 one that ranks every faulty copy above every unchanged view.
    """
    detectors = model.detectors
    normal = _clip_scores(model, data.normal, detectors)
    perturbed = _clip_scores(model, data.perturbed, detectors)
    families = np.asarray(data.families)
    result: dict[str, dict[str, float]] = {}
    for d in detectors:
        entry = {"all": _auc(normal[d], perturbed[d])}
        for family in FAMILIES:
            entry[family] = _auc(normal[d], perturbed[d][families == family])
        result[d] = entry
    return result


def _auc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    return round(float(roc_auc(labels, np.r_[normal, anomalous])), 4)


def main(argv: list[str] | None = None) -> int:
    """Print a bundle's pseudo-anomaly AUCs on the given normal clips (files or a clips.csv filter)."""
    parser = argparse.ArgumentParser(prog="python -m studies.pseudo_anomalies", description=main.__doc__)
    parser.add_argument("--bundle", required=True, help="model bundle (name or folder)")
    parser.add_argument("normal", nargs="+", type=Path, help="normal clips (never abnormal ones)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = load_model(args.bundle)
    data = pseudo_anomaly_set([Clip(path=p) for p in args.normal])
    for detector, entry in pseudo_anomaly_auc(model, data).items():
        print(detector, " ".join(f"{k}={v:.3f}" for k, v in entry.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
