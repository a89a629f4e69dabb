"""How well enrollment works: AUC against the number of enrolled normal clips, and drift.

Run ``python -m studies.enrollment_study --data shared/data/mimii`` (prints Markdown;
``--out FILE`` writes it). :func:`run_study` returns the same Markdown for
the accuracy document's generator.

Protocol (nothing here touches an abnormal clip before the final scoring):

- For every shipped bundle, the machines it did not hear are those with no clip in its card's
  training or validation lists. A machine is ``(type, id)`` for MIMII and DCASE 2020 clips
  (the DCASE 2020 files are channel 0 of MIMII recordings) and ``(type, section, dataset)``
  for DCASE 2021+ clips; rows without a machine id or of type ``unknown`` are left out.
- A *session* of a machine is its clips of one dataset release, SNR mix and domain. Enrollment
  draws ``n`` normal clips of the largest session, fits the detector and calibrates the
  threshold exactly as ``soundsentry enroll`` does (same functions), and scores the held-out
  normal clips and the abnormal clips of that session. Several random draws per ``n``; the
  tables give the median and the range (min-max) over draws.
- Drift: the same enrolled models score the machine's normal clips from *other* sessions
  (another release / SNR mix of the recording, another DCASE 2023 domain, another microphone
  of the MIMII array). Every flagged one is a false alarm.
- Threshold rules compared on the same calibration scores: the enrollment rule
  (:func:`soundsentry.calibration.lognormal_threshold`) and the training pipeline's robust
  normal rule (:func:`soundsentry.calibration.robust_threshold`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import logging
import math
import random
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from soundsentry.audio import read_audio, resample
from soundsentry.bundle import list_shipped_models
from soundsentry.calibration import robust_threshold
from soundsentry.enroll import (
    calibration_plan,
    calibration_scores,
    enrollment_threshold,
    fit_detector,
    level_reference,
)
from soundsentry.metrics import partial_roc_auc, roc_auc
from soundsentry.model import Model, aggregate_scores, load_model
from soundsentry.train.data import Clip, read_clips_csv

__all__ = ["Machine", "held_out_machines", "machine_key", "run_study", "session_key"]

log = logging.getLogger(__name__)

DEFAULT_SIZES = (1, 2, 3, 5, 10, 15)
DEFAULT_DRAWS = 10
DETECTOR = "lof"


def machine_key(clip: Clip) -> tuple[str, ...] | None:
    """Which physical machine a clip is from, or None when unknown."""
    if not clip.machine_id or clip.machine_type in ("", "unknown"):
        return None
    if clip.machine_id.startswith("id_"):
        return (clip.machine_type, clip.machine_id)
    return (clip.machine_type, clip.machine_id, clip.dataset)


def session_key(clip: Clip) -> str:
    """The recording session: dataset release, SNR mix and domain."""
    parts = [clip.dataset]
    if clip.snr_db:
        parts.append(f"{clip.snr_db} dB")
    if clip.domain:
        parts.append(f"{clip.domain} domain")
    return ", ".join(parts)


@dataclass
class Machine:
    key: tuple[str, ...]
    clips: list[Clip] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(self.key[:2]) + (f" ({self.key[2]})" if len(self.key) > 2 else "")

    def sessions(self) -> dict[str, list[Clip]]:
        out: dict[str, list[Clip]] = defaultdict(list)
        for c in self.clips:
            out[session_key(c)].append(c)
        return dict(out)


def _training_entries(card: dict) -> list[dict]:
    training = card.get("training", {}) or {}
    return list(training.get("train_clips", []) or []) + list(training.get("validation_clips", []) or [])


def heard_clips(card: dict, clips: list[Clip]) -> list[Clip]:
    """The rows of ``clips`` that the card lists as training or validation clips (by PCM sha256, else file name)."""
    entries = _training_entries(card)
    shas = {e.get("pcm_sha256") for e in entries} - {None, ""}
    names = {e.get("file") for e in entries if not e.get("pcm_sha256")} - {None, ""}
    return [c for c in clips if (c.pcm_sha256 and c.pcm_sha256 in shas) or c.path.name in names]


def _heard(card: dict, clips: list[Clip] | None = None) -> set[tuple[str, ...]]:
    """Machines the bundle heard. Card entries carry no machine type, so they are matched to ``clips``
    rows first; entries not found there are read with the card's own machine type."""
    found = heard_clips(card, clips or [])
    keys = {k for k in map(machine_key, found) if k is not None}
    found_shas = {c.pcm_sha256 for c in found}
    for e in _training_entries(card):
        if e.get("pcm_sha256") and e["pcm_sha256"] in found_shas:
            continue
        clip = Clip(
            path=Path(e.get("file", "")),
            machine_type=e.get("machine_type", card.get("machine_type", "")),
            machine_id=e.get("machine_id", ""),
            dataset=e.get("dataset", ""),
        )
        key = machine_key(clip)
        if key is not None:
            keys.add(key)
    return keys


def heard_types(card: dict, clips: list[Clip] | None = None) -> set[str]:
    """Machine types the bundle's encoder heard (from ``clips`` rows matching the card, else the card's type)."""
    found = heard_clips(card, clips or [])
    types = {c.machine_type for c in found}
    if len(found) < len(_training_entries(card)):
        types |= {e.get("machine_type", card.get("machine_type", "")) for e in _training_entries(card)}
    return types - {""}


def held_out_machines(clips: list[Clip], card: dict) -> list[Machine]:
    """Machines with clips in ``clips`` that the bundle's card does not list among its training/validation clips."""
    heard = _heard(card, clips)
    machines: dict[tuple[str, ...], Machine] = {}
    for c in clips:
        key = machine_key(c)
        if key is None or key in heard:
            continue
        machines.setdefault(key, Machine(key)).clips.append(c)
    return [machines[k] for k in sorted(machines)]


class LatentCache:
    """Log-mel spectrograms of (clip, channel) and encoder latents of (clip, channel, level reference), computed once."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._logmel: dict[tuple[str, int], np.ndarray] = {}
        self._latents: dict[tuple[str, int, float | None], np.ndarray] = {}

    def channels(self, clip: Clip) -> int:
        import soundfile

        return int(soundfile.info(str(clip.path)).channels)

    def logmel(self, clip: Clip, channel: int = 0) -> np.ndarray:
        key = (str(clip.path), channel)
        if key not in self._logmel:
            m = self.model
            samples, rate = read_audio(clip.path)
            y = resample(samples[:, channel], orig_sr=rate, target_sr=m.feature_params.sample_rate)
            self._logmel[key] = m.features(y)
        return self._logmel[key]

    def latents(self, clip: Clip, channel: int = 0, level: float | None = None) -> np.ndarray:
        key = (str(clip.path), channel, level)
        if key not in self._latents:
            m = self.model
            windows = m.windows(self.logmel(clip, channel), level_reference_db=level)
            self._latents[key] = m.embed(windows).astype(np.float32).astype(np.float64)
        return self._latents[key]


@dataclass
class Enrolled:
    detector: object
    threshold: float
    old_rule_threshold: float
    aggregate: str

    def score(self, latents: np.ndarray) -> float:
        return aggregate_scores(self.detector.anomaly_score(latents), rule=self.aggregate)


def enroll_latents(model: Model, latents: list[np.ndarray], *, quantile: float = 0.99) -> Enrolled:
    """Enrollment on precomputed latents, with the same steps and defaults as :func:`soundsentry.enroll.enroll`."""
    params = {"n_neighbors": int(model.card["detectors"].get(DETECTOR, {}).get("n_neighbors", 20))}
    X = np.concatenate(latents)
    plan = calibration_plan([len(x) for x in latents])
    scores = calibration_scores(DETECTOR, X, plan, params=params, aggregate=model.aggregate)
    n_rec = len(latents) if plan.mode == "leave-one-recording-out" else 1
    threshold, _ = enrollment_threshold(DETECTOR, scores, quantile=quantile, n_recordings=n_rec)
    return Enrolled(
        detector=fit_detector(DETECTOR, X, params=params),
        threshold=threshold,
        old_rule_threshold=robust_threshold(scores, quantile=quantile),
        aggregate=model.aggregate,
    )


Views = list[tuple[Clip, int]]  # (clip, channel)


def enroll_and_score(model: Model, cache: LatentCache, enrolled: Views, tests: dict[str, Views], *, level: bool):
    """Enroll on ``enrolled`` as ``soundsentry enroll`` does (window levelling on or off) and score every test set."""
    reference = None
    if level and model.level_reference_db is None:
        reference = round(level_reference(model, [cache.logmel(c, ch) for c, ch in enrolled]), 4)
    result = enroll_latents(model, [cache.latents(c, ch, reference) for c, ch in enrolled])
    scores = {name: np.array([result.score(cache.latents(c, ch, reference)) for c, ch in views]) for name, views in tests.items()}
    return result, scores


def draw_subsets(n_items: int, n: int, draws: int, rng: random.Random) -> list[tuple[int, ...]]:
    combos = None
    if math.comb(n_items, n) <= draws:
        combos = list(itertools.combinations(range(n_items), n))
    return combos or [tuple(sorted(rng.sample(range(n_items), n))) for _ in range(draws)]


def _summary(values: list[float]) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return f"{med:.2f}"
    return f"{med:.2f} ({min(values):.2f}-{max(values):.2f})"


def _rate(scores: np.ndarray, threshold: float) -> float:
    return float((scores > threshold).mean()) if len(scores) else math.nan


@dataclass
class StudyRow:
    bundle: str
    machine: str
    type_heard: bool
    session: str
    n: int
    n_normal: int
    n_abnormal: int
    draws: int = 0
    auc: list[float] = field(default_factory=list)
    pauc: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    far: list[float] = field(default_factory=list)
    far_old: list[float] = field(default_factory=list)
    auc_plain: list[float] = field(default_factory=list)
    far_plain: list[float] = field(default_factory=list)


@dataclass
class DriftRow:
    bundle: str
    machine: str
    enrolled: str
    tested: str
    n_enrolled: int
    n_clips: int
    draws: int = 0
    far: list[float] = field(default_factory=list)
    far_old: list[float] = field(default_factory=list)
    far_plain: list[float] = field(default_factory=list)


def _auc(s_norm: np.ndarray, s_abn: np.ndarray) -> tuple[float, float]:
    if not len(s_norm) or not len(s_abn):
        return math.nan, math.nan
    y = np.r_[np.zeros(len(s_norm)), np.ones(len(s_abn))]
    s = np.r_[s_norm, s_abn]
    return roc_auc(y, s), partial_roc_auc(y, s, max_fpr=0.1)


def study_bundle(
    model: Model, clips: list[Clip], *, sizes=DEFAULT_SIZES, draws: int = DEFAULT_DRAWS, seed: int = 0
) -> tuple[list[StudyRow], list[DriftRow]]:
    """AUC-vs-clips rows and drift rows for one bundle on the machines it did not hear."""
    cache = LatentCache(model)
    types = heard_types(model.card, clips)
    rows: list[StudyRow] = []
    drift: list[DriftRow] = []
    for machine in held_out_machines(clips, model.card):
        sessions = machine.sessions()
        # The session with the most normal clips is the one enrolled on.
        main_name, main = max(sessions.items(), key=lambda kv: sum(c.is_normal for c in kv[1]))
        normals = sorted((c for c in main if c.is_normal), key=lambda c: str(c.path))
        abnormals = sorted((c for c in main if not c.is_normal), key=lambda c: str(c.path))
        others = {k: [c for c in v if c.is_normal] for k, v in sessions.items() if k != main_name}
        others = {k: v for k, v in others.items() if v}
        if len(normals) < 2:
            continue
        if abnormals:
            rows.append(_shipped_row(model, cache, machine, main_name, normals, abnormals, machine.key[0] in types))
        rng = random.Random(seed)
        for n in sizes:
            if n > len(normals) - 1:  # at least one held-out normal clip
                continue
            row = StudyRow(model.name, machine.name, machine.key[0] in types, main_name, n, len(normals) - n, len(abnormals))
            drift_rows = {k: DriftRow(model.name, machine.name, main_name, k, n, len(v)) for k, v in others.items()}
            for idx in draw_subsets(len(normals), n, draws, rng):
                tests = {
                    "held": [(c, 0) for i, c in enumerate(normals) if i not in idx],
                    "abnormal": [(c, 0) for c in abnormals],
                } | {f"other:{k}": [(c, 0) for c in v] for k, v in others.items()}
                enrolled = [(normals[i], 0) for i in idx]
                lev, s = enroll_and_score(model, cache, enrolled, tests, level=True)
                plain, sp = enroll_and_score(model, cache, enrolled, tests, level=False)
                row.draws += 1
                row.far.append(_rate(s["held"], lev.threshold))
                row.far_old.append(_rate(s["held"], lev.old_rule_threshold))
                row.far_plain.append(_rate(sp["held"], plain.threshold))
                auc, pauc = _auc(s["held"], s["abnormal"])
                row.auc.append(auc)
                row.pauc.append(pauc)
                row.auc_plain.append(_auc(sp["held"], sp["abnormal"])[0])
                row.recall.append(_rate(s["abnormal"], lev.threshold))
                for k, d in drift_rows.items():
                    d.draws += 1
                    d.far.append(_rate(s[f"other:{k}"], lev.threshold))
                    d.far_old.append(_rate(s[f"other:{k}"], lev.old_rule_threshold))
                    d.far_plain.append(_rate(sp[f"other:{k}"], plain.threshold))
            if row.draws:
                rows.append(row)
                drift.extend(d for d in drift_rows.values() if d.draws)
        drift.extend(_microphone_drift(model, cache, machine.name, main_name, normals, draws=draws, seed=seed))
    return rows, drift


def _shipped_row(model, cache, machine, session, normals, abnormals, type_heard) -> StudyRow:
    """The shipped detector without enrollment, on every normal and abnormal clip of the session."""

    def score(c: Clip) -> float:
        return aggregate_scores(model.score_latents(cache.latents(c), detector=DETECTOR), rule=model.aggregate)

    s_norm = np.array([score(c) for c in normals])
    s_abn = np.array([score(c) for c in abnormals])
    threshold = model.thresholds[DETECTOR]
    auc, pauc = _auc(s_norm, s_abn)
    return StudyRow(
        model.name, machine.name, type_heard, session, 0, len(normals), len(abnormals), draws=1,
        auc=[auc], pauc=[pauc], recall=[_rate(s_abn, threshold)], far=[_rate(s_norm, threshold)],
    )


def _microphone_drift(model, cache, machine, session, normals, *, draws: int, seed: int) -> list[DriftRow]:
    """Enroll on channel 0 of MIMII 8-microphone clips; score channels 1-7 of held-out clips (other mic positions)."""
    multi = [c for c in normals if cache.channels(c) > 1]
    n = 10
    if len(multi) < n + 2:
        return []
    rng = random.Random(seed)
    n_channels = cache.channels(multi[0])
    same = DriftRow(model.name, machine, f"{session}, mic 0", "held-out clips, mic 0", n, len(multi) - n)
    other = DriftRow(
        model.name, machine, f"{session}, mic 0", f"held-out clips, mics 1-{n_channels - 1}", n,
        (len(multi) - n) * (n_channels - 1),
    )
    for idx in draw_subsets(len(multi), n, draws, rng):
        held = [c for i, c in enumerate(multi) if i not in idx]
        tests = {"same": [(c, 0) for c in held], "other": [(c, k) for c in held for k in range(1, n_channels)]}
        enrolled = [(multi[i], 0) for i in idx]
        lev, s = enroll_and_score(model, cache, enrolled, tests, level=True)
        plain, sp = enroll_and_score(model, cache, enrolled, tests, level=False)
        for row, key in ((same, "same"), (other, "other")):
            row.draws += 1
            row.far.append(_rate(s[key], lev.threshold))
            row.far_old.append(_rate(s[key], lev.old_rule_threshold))
            row.far_plain.append(_rate(sp[key], plain.threshold))
    return [same, other]


def _markdown(rows: list[StudyRow], drift: list[DriftRow], *, notes: list[str], command: str) -> str:
    out = [
        "# Enrollment study",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()} by `{command}` "
        "(run from the repository root; `--data` is the shared MIMII folder with its `clips.csv`).",
        "",
        "Enrollment keeps a shipped bundle's encoder, fits the LOF detector on a machine's own normal clips and "
        "calibrates the threshold from those clips alone (`soundsentry enroll`; the study calls the same functions on "
        "cached encoder outputs). Every machine below is one the bundle's encoder did **not** hear in training "
        "(checked against the card's training and validation clip lists). Figures: median over random draws of the "
        "enrolled clips, with the range (min-max) in brackets. Columns:",
        "",
        "- `AUC`, `pAUC`, `recall`, `false alarms`: enrollment as shipped (windows levelled to the enrolled clips' "
        "level, log-normal threshold rule). `false alarms` is the share of held-out normal clips flagged; `recall` "
        "the share of abnormal clips flagged.",
        "- `no levelling`: the same enrollment without window levelling (`soundsentry enroll --no-level`).",
        "- `old rule`: levelled, but the training pipeline's robust-normal threshold rule applied to the same "
        "calibration scores.",
        "",
        "Counts are small: read every figure with its number of clips.",
        "",
    ]
    out += [f"- {n}" for n in notes]
    out += [
        "",
        "## AUC against the number of enrolled normal clips",
        "",
        "Enrolled and tested within one recording session (the machine's largest); test = the session's normal clips "
        "not enrolled + its abnormal clips. Row `0 (shipped detector)`: the bundle's own LOF detector and threshold, "
        "no enrollment, on all of the session's clips.",
        "",
        "| bundle | machine (type heard by encoder?) | session | enrolled clips | draws | test normal / abnormal "
        "| AUC | pAUC (FPR≤0.1) | recall | false alarms | AUC, no levelling | false alarms, no levelling "
        "| false alarms, old rule |",
        "|---|---|---|---:|---:|---|---|---|---|---|---|---|---|",
    ]

    def enrolled(r: StudyRow) -> str:
        return "0 (shipped detector)" if r.n == 0 else str(r.n)

    for r in (r for r in rows if r.n_abnormal):
        out.append(
            f"| {r.bundle} | {r.machine} ({'yes' if r.type_heard else 'no'}) | {r.session} | {enrolled(r)} | {r.draws} | "
            f"{r.n_normal} / {r.n_abnormal} | {_summary(r.auc)} | {_summary(r.pauc)} | {_summary(r.recall)} | "
            f"{_summary(r.far)} | {_summary(r.auc_plain)} | {_summary(r.far_plain)} | {_summary(r.far_old)} |"
        )
    out += [
        "",
        "## False alarms on held-out normal clips of the enrolled session",
        "",
        "Machines whose session has normal clips only (no AUC possible): how often a held-out normal clip of the "
        "same session is flagged.",
        "",
        "| bundle | machine | session | enrolled clips | draws | held-out normal clips | false alarms "
        "| false alarms, no levelling | false alarms, old rule |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in (r for r in rows if not r.n_abnormal):
        out.append(
            f"| {r.bundle} | {r.machine} | {r.session} | {r.n} | {r.draws} | {r.n_normal} | {_summary(r.far)} | "
            f"{_summary(r.far_plain)} | {_summary(r.far_old)} |"
        )
    out += [
        "",
        "## Drift: the same healthy machine, recorded differently",
        "",
        "Models enrolled as above; the clips scored here are normal recordings of the same machine from another "
        "session (another dataset release or SNR mix of the recording, another DCASE 2023 domain) or another "
        "microphone of the MIMII array. Every flagged clip is a false alarm.",
        "",
        "| bundle | machine | enrolled on | scored | enrolled clips | draws | clips scored | false alarms "
        "| false alarms, no levelling | false alarms, old rule |",
        "|---|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for d in drift:
        out.append(
            f"| {d.bundle} | {d.machine} | {d.enrolled} | {d.tested} | {d.n_enrolled} | {d.draws} | {d.n_clips} | "
            f"{_summary(d.far)} | {_summary(d.far_plain)} | {_summary(d.far_old)} |"
        )
    return "\n".join(out) + "\n"


def run_study(
    data: str | Path,
    *,
    bundles: list[str] | None = None,
    sizes=DEFAULT_SIZES,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    command: str = "python -m studies.enrollment_study",
) -> str:
    """Run the study on ``data`` (a folder with ``clips.csv``) and return Markdown."""
    data = Path(data)
    clips = read_clips_csv(data / "clips.csv" if data.is_dir() else data)
    rows: list[StudyRow] = []
    drift: list[DriftRow] = []
    notes = []
    for name in bundles or list_shipped_models():
        try:
            model = load_model(name)
        except Exception as exc:  # a bundle being rebuilt must not end the study
            notes.append(f"bundle `{name}` skipped: {exc}")
            continue
        center = model.card["normalization"].get("center", "none")
        training = model.card.get("training", {}) or {}
        entries = list(training.get("train_clips", []) or []) + list(training.get("validation_clips", []) or [])
        unknown = sum(1 for e in entries if not e.get("machine_id"))
        notes.append(
            f"bundle `{model.name}`: encoder heard {', '.join(sorted(heard_types(model.card, clips))) or '?'}; "
            f"window centring `{center}`; training split: {training.get('split', '?')}"
            + (
                f"; {unknown} of its training/validation clips have no machine id (if one is from a machine "
                "studied here, that machine is not strictly unheard)"
                if unknown
                else ""
            )
        )
        r, d = study_bundle(model, clips, sizes=sizes, draws=draws, seed=seed)
        rows += r
        drift += d
    return _markdown(rows, drift, notes=notes, command=command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.enrollment_study", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="shared/data/mimii", help="folder with clips.csv (default: shared/data/mimii)")
    parser.add_argument("--bundle", action="append", help="shipped bundle(s) to study (default: all)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="enrolled clip counts, comma-separated")
    parser.add_argument("--draws", type=int, default=DEFAULT_DRAWS, help=f"random draws per size (default {DEFAULT_DRAWS})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    command = "python -m studies.enrollment_study " + " ".join(argv if argv is not None else sys.argv[1:])
    text = run_study(
        args.data,
        bundles=args.bundle,
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        draws=args.draws,
        seed=args.seed,
        command=command.strip(),
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
