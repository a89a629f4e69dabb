"""How far apart normal recordings of one machine score: the priors of enrollment's threshold rule.

Run ``python -m studies.threshold_prior --data ../shared/data/mimii/clips.csv --out
docs/enrollment_thresholds.md``. Normal recordings only; no abnormal clip is read.

Enrollment sets a threshold from one to a few normal recordings
(:func:`soundsentry.enroll.enrollment_threshold`, :func:`soundsentry.calibration.lognormal_threshold`):
the centre is the median log calibration score, and the spread is the observed spread of the
log calibration scores pooled with a *prior* spread (one recording: a fixed *single-recording*
spread), because a few scores cannot show how much the next healthy recording, on another day
or in another noise mix, may differ. The priors depend on the detector (LOF ratios, kNN and
Mahalanobis distances spread differently), so they are measured here, per detector:

1. **Trials.** For every shipped type bundle and every machine it did not hear (its card's clip
   lists; the 76 DCASE 2020 ``id_00`` normals of the unrecorded type count as one machine), ``n``
   normal recordings of the machine's largest session are drawn (``n`` in 1, 2, 3, 5, 10, up to
   10 draws) and enrolled exactly as ``soundsentry enroll`` does (window levelling, leave-one-out
   or leave-one-block-out calibration scores). Every other normal recording of the machine, of the
   same session or of another (another release or SNR mix, another DCASE 2023 domain), is scored:
   its log score minus the calibration centre is one *offset*.
2. **Fit.** A pair (prior, single-recording spread) flags an offset when it exceeds the rule's
   bound. Each spread is the smallest on a grid of 0.02 for which the false-alarm rate, averaged
   over (bundle, machine) pairs so that one large machine does not decide alone, is at most
   ``1 - quantile`` (1 %). One-recording trials fit the single-recording spread, the others the
   prior.
3. **Check, leave one machine out.** For every machine the spreads are fitted again without any
   of its trials and its own false-alarm rate is measured with them: what a user's machine,
   unlike any machine the priors were fitted on, gets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import random
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from soundsentry.bundle import list_shipped_models
from soundsentry.calibration import LOG_SPREAD_PRIORS, PRIOR_WEIGHT, robust_threshold
from soundsentry.enroll import calibration_plan, calibration_scores, fit_detector, level_reference
from soundsentry.model import Model, aggregate_scores, load_model
from soundsentry.train.data import Clip, read_clips_csv

from .enrollment_study import LatentCache, draw_subsets, heard_clips, machine_key, session_key

__all__ = ["Trial", "collect_trials", "false_alarm_rate", "fit_spread", "offset_bound", "robust_rule_false_alarm_rate"]

#: What enrollment used before this measurement: LOF's log-normal spreads (measured on an earlier
#: encoder), and the robust-normal rule (no prior) for kNN and Mahalanobis.
PREVIOUS_LOF_SPREADS = (0.6, 0.9)

log = logging.getLogger(__name__)

DETECTORS = ("lof", "knn", "mahalanobis")
SIZES = (1, 2, 3, 5, 10)
GRID = tuple(round(0.02 * i, 2) for i in range(1, 201))  # 0.02 ... 4.00


@dataclass
class Trial:
    """One enrollment draw of one detector and the offsets of the machine's other normal recordings."""

    bundle: str
    machine: str
    detector: str
    n_recordings: int
    n_scores: int
    observed_var: float  # variance of the log calibration scores (0 with one score)
    robust_offset: float  # the training pipeline's robust-normal threshold on the same scores, as an offset
    same: list[float] = field(default_factory=list)  # offsets of held-out recordings of the enrolled session
    other: list[float] = field(default_factory=list)  # offsets of recordings of the machine's other sessions

    @property
    def offsets(self) -> list[float]:
        return self.same + self.other


def offset_bound(trial: Trial, spread: float, *, quantile: float = 0.99, prior_weight: float = PRIOR_WEIGHT) -> float:
    """The largest log-score offset :func:`soundsentry.calibration.lognormal_threshold` accepts for ``trial``.

    ``spread`` is the single-recording spread for one-recording trials, else the prior spread.
    """
    z = statistics.NormalDist().inv_cdf(quantile)
    if trial.n_recordings <= 1:
        return z * spread * math.sqrt(2)
    m = trial.n_scores
    pooled = math.sqrt((prior_weight * spread**2 + (m - 1) * trial.observed_var) / (prior_weight + m - 1))
    return z * pooled * math.sqrt(1 + 1 / m)


def false_alarm_rate(
    trials: Sequence[Trial], spread: float, *, quantile: float = 0.99, which: str = "offsets"
) -> float:
    """Share of offsets above the bound, per (bundle, machine) pair, then averaged over pairs."""
    by_pair: dict[tuple[str, str], list[float]] = {}
    for t in trials:
        values = getattr(t, which)
        if not values:
            continue
        bound = offset_bound(t, spread, quantile=quantile)
        by_pair.setdefault((t.bundle, t.machine), []).extend(float(v > bound) for v in values)
    rates = [statistics.fmean(v) for v in by_pair.values()]
    return statistics.fmean(rates) if rates else math.nan


def robust_rule_false_alarm_rate(trials: Sequence[Trial]) -> float:
    """Share of all offsets (each counted once) above each trial's robust-normal threshold (kNN, Mahalanobis before)."""
    flagged = [float(v > t.robust_offset) for t in trials for v in t.offsets]
    return statistics.fmean(flagged) if flagged else math.nan


def fit_spread(trials: Sequence[Trial], *, quantile: float = 0.99, grid: Iterable[float] = GRID) -> float:
    """Smallest spread on ``grid`` whose pair-averaged false-alarm rate is at most ``1 - quantile``."""
    if not trials:
        raise ValueError("no trials to fit a spread on")
    for s in grid:
        if false_alarm_rate(trials, s, quantile=quantile) <= 1 - quantile + 1e-12:
            return s
    return max(grid)


def _machine(clip: Clip) -> tuple[str, ...] | None:
    key = machine_key(clip)
    if key is None and clip.machine_type == "unknown" and clip.machine_id:
        # One machine of a type the source did not record; the type bundles never trained on it.
        key = ("unknown", clip.machine_id, clip.dataset)
    return key


def _params(model: Model, det: str) -> dict:
    spec = model.card["detectors"].get(det, {})
    if det in ("lof", "knn"):
        return {"n_neighbors": int(spec.get("n_neighbors", 20 if det == "lof" else 5))}
    return {}


def collect_trials(
    clips: list[Clip],
    model: Model,
    *,
    detectors: Sequence[str] = DETECTORS,
    sizes: Sequence[int] = SIZES,
    draws: int = 10,
    seed: int = 0,
) -> list[Trial]:
    """Enrollment trials of ``model`` on every machine in ``clips`` it did not hear (normal clips only)."""
    machines: dict[tuple[str, ...], list[Clip]] = {}
    for c in clips:
        key = _machine(c)
        if key is not None and c.is_normal:
            machines.setdefault(key, []).append(c)
    cache = LatentCache(model)
    trials: list[Trial] = []
    for key, rec in sorted(machines.items()):
        if heard_clips(model.card, rec):
            continue
        sessions: dict[str, list[Clip]] = {}
        for c in sorted(rec, key=lambda c: str(c.path)):
            sessions.setdefault(session_key(c), []).append(c)
        main_name, main = max(sessions.items(), key=lambda kv: len(kv[1]))
        others = [c for name, v in sessions.items() if name != main_name for c in v]
        name = " ".join(key[:2]) + (f" ({key[2]})" if len(key) > 2 and not key[1].startswith("id_") else "")
        rng = random.Random(f"{seed}:{model.name}:{key}")
        for n in sizes:
            if n > len(main) - 1 and not (others and n <= len(main)):
                continue
            for idx in draw_subsets(len(main), n, draws, rng):
                enrolled = [main[i] for i in idx]
                held = [c for i, c in enumerate(main) if i not in idx]
                level = None
                if model.level_reference_db is None:
                    level = round(level_reference(model, [cache.logmel(c) for c in enrolled]), 4)
                latents = [cache.latents(c, 0, level) for c in enrolled]
                X = np.concatenate(latents)
                plan = calibration_plan([len(x) for x in latents])
                n_rec = n if plan.mode == "leave-one-recording-out" else 1
                for det in detectors:
                    params = _params(model, det)
                    scores = calibration_scores(det, X, plan, params=params, aggregate=model.aggregate)
                    logs = [math.log(s) for s in scores]
                    centre = statistics.median(logs)
                    fitted = fit_detector(det, X, params=params)

                    def offset(c: Clip, fitted=fitted, centre=centre, level=level) -> float:
                        s = aggregate_scores(fitted.anomaly_score(cache.latents(c, 0, level)), rule=model.aggregate)
                        return math.log(s) - centre

                    trials.append(
                        Trial(
                            bundle=model.name,
                            machine=name,
                            detector=det,
                            n_recordings=n_rec,
                            n_scores=len(scores),
                            observed_var=statistics.variance(logs) if len(logs) > 1 else 0.0,
                            robust_offset=math.log(max(robust_threshold(scores, quantile=0.99), 1e-300)) - centre,
                            same=[offset(c) for c in held],
                            other=[offset(c) for c in others],
                        )
                    )
        log.info("%s: trials on %s done", model.name, name)
    return trials


def _fit_pair(trials: Sequence[Trial], quantile: float) -> tuple[float, float]:
    multi = [t for t in trials if t.n_recordings > 1]
    single = [t for t in trials if t.n_recordings <= 1]
    return fit_spread(multi, quantile=quantile), fit_spread(single, quantile=quantile)


def _both_rate(one: Sequence[Trial], many: Sequence[Trial], single: float, prior: float, quantile: float) -> float:
    """False-alarm rate over one-recording and several-recording trials together (each offset counts once)."""
    flagged = [float(v > offset_bound(t, single, quantile=quantile)) for t in one for v in t.offsets]
    flagged += [float(v > offset_bound(t, prior, quantile=quantile)) for t in many for v in t.offsets]
    return statistics.fmean(flagged) if flagged else math.nan


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def report(trials: list[Trial], *, quantile: float, command: str) -> tuple[dict[str, tuple[float, float]], str]:
    """The fitted (prior, single-recording) spreads per detector and the Markdown page."""
    fitted: dict[str, tuple[float, float]] = {}
    lines = [
        "# Enrollment thresholds: how far apart normal recordings of one machine score",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')} by `{command}` "
        "(`studies.threshold_prior`; its docstring gives the method). Normal recordings only: no abnormal "
        "clip is read.",
        "",
        "`soundsentry enroll` sets a detector's threshold at the 99 % upper prediction bound of a log-normal fitted to "
        "the enrolled recordings' leave-one-out scores, whose spread is pooled with a **prior** (worth "
        f"{PRIOR_WEIGHT} recordings), or, with a single recording, a fixed **single-recording spread**. Both are "
        "measured below: the smallest spreads (grid 0.02) that flag at most 1 % of the other normal recordings of "
        "the enrolled machine, same session or another (another release or SNR mix, another DCASE 2023 domain), "
        "averaged over (bundle, machine) pairs.",
        "",
        "## Spreads (natural log of the clip score)",
        "",
        "| detector | trials | prior (fitted on all machines) | single-recording spread (fitted) | "
        "used by `soundsentry enroll` | before this page |",
        "|---|---:|---:|---:|---|---|",
    ]
    before = {
        "lof": "0.60, 0.90 (measured on an earlier encoder)",
        "knn": "robust normal rule, no prior",
        "mahalanobis": "robust normal rule, no prior",
    }
    for det in DETECTORS:
        ts = [t for t in trials if t.detector == det]
        if not ts:
            continue
        fitted[det] = _fit_pair(ts, quantile)
        shipped = LOG_SPREAD_PRIORS.get(det)
        lines.append(
            f"| {det} | {len(ts)} | {fitted[det][0]:.2f} | {fitted[det][1]:.2f} | "
            f"{f'{shipped[0]:.2f}, {shipped[1]:.2f}' if shipped else 'robust normal rule'} | {before[det]} |"
        )
    machines = sorted({t.machine for t in trials})
    lines += [
        "",
        "## Check: each machine with spreads fitted without it",
        "",
        "False alarms (share of the machine's other normal recordings flagged, averaged over the bundles that did "
        "not hear it) with the spreads fitted on every *other* machine. `same session`: held-out recordings of the "
        "enrolled session; `other sessions`: the machine's recordings from another release, SNR mix or domain. "
        "Counts are offsets (recording x draw x bundle); few machines have many recordings, so read each row "
        "with its count. `all, this rule`: every offset of the machine counted once; `all, rule before`: the same "
        f"offsets against the rule enrollment used before this page (LOF: spreads {PREVIOUS_LOF_SPREADS[0]}, "
        f"{PREVIOUS_LOF_SPREADS[1]}; kNN and Mahalanobis: the robust-normal rule without a prior). Target: 1 %.",
        "",
        "| machine | detector | spreads without it (prior, single) | enrolled 1: same session | enrolled 1: other sessions "
        "| enrolled 2+: same session | enrolled 2+: other sessions | all, this rule | all, rule before | offsets |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pooled: dict[str, list[float]] = {d: [] for d in fitted}
    pooled_before: dict[str, list[float]] = {d: [] for d in fitted}
    for m in machines:
        for det in fitted:
            rest = [t for t in trials if t.detector == det and t.machine != m]
            own = [t for t in trials if t.detector == det and t.machine == m]
            if not rest or not own:
                continue
            prior, single = _fit_pair(rest, quantile)
            one = [t for t in own if t.n_recordings <= 1]
            many = [t for t in own if t.n_recordings > 1]
            cells = [
                false_alarm_rate(one, single, quantile=quantile, which="same"),
                false_alarm_rate(one, single, quantile=quantile, which="other"),
                false_alarm_rate(many, prior, quantile=quantile, which="same"),
                false_alarm_rate(many, prior, quantile=quantile, which="other"),
            ]
            pooled[det] += [c for c in cells if not math.isnan(c)]
            now = _both_rate(one, many, single, prior, quantile)
            if det == "lof":
                was = _both_rate(one, many, PREVIOUS_LOF_SPREADS[1], PREVIOUS_LOF_SPREADS[0], quantile)
            else:
                was = robust_rule_false_alarm_rate(own)
            pooled_before[det].append(was)
            n_off = sum(len(t.offsets) for t in own)
            lines.append(
                f"| {m} | {det} | {prior:.2f}, {single:.2f} | "
                + " | ".join(map(_pct, cells))
                + f" | {_pct(now)} | {_pct(was)} | {n_off} |"
            )
    lines += [
        "",
        "Mean of the cells above, per detector (each machine and case counts once): "
        + "; ".join(f"{d} {_pct(statistics.fmean(v))}" for d, v in pooled.items() if v)
        + ". The same machines with the rule before (`all, rule before`: LOF with spreads "
        f"{PREVIOUS_LOF_SPREADS[0]}, {PREVIOUS_LOF_SPREADS[1]}; kNN and Mahalanobis with the robust-normal rule): "
        + "; ".join(f"{d} {_pct(statistics.fmean(v))}" for d, v in pooled_before.items() if v)
        + " (each machine counts once).",
        "",
        "The fitted spreads are larger than the spread within one session because the other sessions' recordings, "
        "machines whose recordings differ a lot (fan `id_00`), and single recordings (blocks of one recording "
        "are more alike than two recordings) must all stay below the threshold. The price is sensitivity: a fault "
        "must move a clip's score by more than these spreads allow before it is flagged. The spreads were measured "
        "with the shipped type bundles; the `general` bundle heard every machine here, so none could be measured "
        "for it, and enrollment from it uses the same spreads.",
        "",
    ]
    return fitted, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.threshold_prior", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="clips.csv of the shared MIMII clips")
    p.add_argument("--bundle", action="append", help="bundle(s) (default: the shipped type bundles)")
    p.add_argument("--out", type=Path, help="write the Markdown here")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clips = read_clips_csv(args.data)
    trials: list[Trial] = []
    for name in args.bundle or [n for n in list_shipped_models() if n != "general"]:
        trials += collect_trials(clips, load_model(name), draws=args.draws, seed=args.seed)
    command = "python -m studies.threshold_prior " + " ".join(sys.argv[1:] if argv is None else argv)
    fitted, text = report(trials, quantile=0.99, command=command)
    for det, (prior, single) in fitted.items():
        print(f"{det}: prior spread {prior:.2f}, single-recording spread {single:.2f}")
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
