"""How the views' ratios make one score, chosen on normal clips and synthetic faults: ``docs/view_combination.md``.

    python -m studies.view_combination --data ../shared/data/mimii/clips.csv --out docs/view_combination.md

The shipped fan and valve bundles are enrolled (``soundsentry.enroll.enroll``, defaults) on the
held-out folds' normal clips (fan id_00 ``mohxen_``, channel 0, 4 folds; the DCASE 2023 valve
``hubtru_``, 5 folds). Each held-out normal clip is then *drifted* as another day could hear it
(unchanged; the whole recording 6 dB louder or quieter; a +2 dB/octave tilt above 500 Hz; another
microphone of the same moment; another machine's recording added at -10 dB) and the synthetic *faults*
of ``docs/accuracy.md`` are added to the drifted clip (clicks, a tone, 6 dB louder, 1-2 kHz +6 dB, a
5 Hz beat: ``_faults`` of :mod:`studies.views_accuracy`). For each
way of combining the views' ratios, the AUC of the faulty against the drifted normal clips, and how
many of each are flagged. No anomalous recording takes part: this is how the combination was chosen.

Combinations (each view's ratio is its clip statistic over its own threshold):

- ``max``: the largest ratio; abnormal above 1 (any view out of its normal range);
- ``sum``: the sum of ratios over its own log-normal bound (the views' rule, fitted to the enrolled
  recordings' leave-one-out sums); abnormal above 1;
- ``max-then-sum``: abnormal when any view passes 1, as ``max``; a flagged clip scores
  ``1 + sum / bound``, so that flagged clips rank by all views together.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soundsentry
from soundsentry.enroll import enroll
from soundsentry.markdown import table
from soundsentry.metrics import roc_auc

from studies.views_accuracy import _faults as faults

RATE = 16000
COMBINATIONS = ("max", "sum", "max-then-sum")


def _tilt(y: np.ndarray, db_per_octave: float) -> np.ndarray:
    f = np.fft.rfftfreq(len(y), 1 / RATE)
    gain = np.where(f > 500, (np.maximum(f, 1.0) / 500) ** (db_per_octave / 6.02), 1.0)
    return np.fft.irfft(np.fft.rfft(y) * gain, len(y))


def drifts(channels: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
    """The held-out normal clip as another day could hear it; ``channels`` (n, c), ``other`` another machine."""
    y = channels[:, 0]
    rms = float(np.sqrt(np.mean(y**2)))
    out = {
        "none": y,
        "6 dB louder": y * 2.0,
        "6 dB quieter": y * 0.5,
        "+2 dB/octave tilt": _tilt(y, 2.0),
        "another machine at -10 dB": y + other[: len(y)] * (rms / float(np.sqrt(np.mean(other**2)))) * 10 ** (-10 / 20),
    }
    if channels.shape[1] > 3:
        out["another microphone"] = channels[:, 3]
    return {k: v.astype(np.float32) for k, v in out.items()}


def combine(ratios: np.ndarray, how: str, sum_threshold: float) -> np.ndarray:
    largest = ratios.max(axis=-1)
    total = ratios.sum(axis=-1) / sum_threshold
    if how == "max":
        return largest
    if how == "sum":
        return total
    return np.where(largest > 1.0, 1.0 + total, largest)


def run_set(name: str, normal: list[str], parent_name: str, folds: int, other: np.ndarray, work: Path) -> dict:
    from soundsentry.calibration import lognormal_threshold

    rng = np.random.default_rng(0)
    parent = soundsentry.load_model(parent_name)
    ratios: dict[str, dict[str, list]] = {}
    per_fold_sum_threshold = []
    fold_of: dict[str, list[int]] = {}
    for k in range(folds):
        test = normal[k::folds]
        model = enroll(parent, [p for p in normal if p not in test], out=work / f"{parent_name}-{k}")
        det = model.detector("views")
        loo_sums = (det.calibration_ / det.thresholds_).sum(axis=1)
        per_fold_sum_threshold.append(
            lognormal_threshold(np.maximum(loo_sums, 1e-9), quantile=det.quantile, n_recordings=det.n_recordings_,
                                prior_spread=det.prior_spread, single_recording_spread=det.single_recording_spread)
        )
        for path in test:
            channels = sf.read(path, dtype="float32", always_2d=True)[0]
            for drift, y in drifts(channels, other).items():
                cases = {"normal": y} | faults(y, rng)
                for case, z in cases.items():
                    result = model.score(z.astype(np.float32), sample_rate=RATE)
                    r = np.array([e.ratio for e in result.evidence])
                    ratios.setdefault(drift, {}).setdefault(case, []).append(r)
                    fold_of.setdefault(f"{drift}/{case}", []).append(k)
    out: dict = {"name": name, "n_normal": len(normal), "folds": folds, "drifts": {}}
    for drift, cases in ratios.items():
        entry = out["drifts"].setdefault(drift, {})
        for how in COMBINATIONS:
            scored = {
                case: np.array([
                    combine(r, how, per_fold_sum_threshold[k])
                    for r, k in zip(values, fold_of[f"{drift}/{case}"], strict=True)
                ])
                for case, values in cases.items()
            }
            neg = scored["normal"]
            aucs = {
                case: float(roc_auc(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))
                for case, pos in scored.items() if case != "normal"
            }
            entry[how] = {
                "auc": aucs,
                "mean_auc": float(np.mean(list(aucs.values()))),
                "flagged": {case: int((s > 1).sum()) for case, s in scored.items()},
                "n": {case: len(s) for case, s in scored.items()},
            }
    return out


def render(results: list[dict], *, seconds: float) -> str:
    lines = [
        "# Combining the views into one score (normal clips and synthetic faults only)",
        "",
        "Generated by `python -m studies.view_combination --data ../shared/data/mimii/clips.csv --out "
        f"docs/view_combination.md` ({seconds:.0f} s). Do not edit by hand. What and why: the study's docstring.",
        "",
    ]
    for res in results:
        lines += [f"## {res['name']}: {res['n_normal']} normal clips, {res['folds']} folds", ""]
        lines += ["Mean AUC over the five synthetic faults (faulty against normal clips, both drifted alike):", ""]
        body = []
        for drift, entry in res["drifts"].items():
            body.append([drift, *(f"{entry[h]['mean_auc']:.3f}" for h in COMBINATIONS)])
        lines += [*table(["drift", *COMBINATIONS], body), ""]
        lines += ["Flagged, normal clips and each fault (of the clips scored per row; `max` and `max-then-sum` flag alike):", ""]
        body = []
        for drift, entry in res["drifts"].items():
            for how in ("max", "sum"):
                e = entry[how]
                body.append([drift, how, *(f"{e['flagged'][c]} of {e['n'][c]}" for c in e["flagged"])])
        cases = list(next(iter(res["drifts"].values()))["max"]["flagged"])
        lines += [*table(["drift", "rule", *cases], body), ""]
    means = {h: float(np.mean([e[h]["mean_auc"] for r in results for e in r["drifts"].values()])) for h in COMBINATIONS}
    lines += [
        "## Reading",
        "",
        "- Mean AUC over every drift and both machines: " + ", ".join(f"{h} {v:.3f}" for h, v in means.items()) + ".",
        "- Under a gain change of the whole recording every clip is flagged by the level view, and by the largest",
        "  ratio alone the faults that add sound come out *less* abnormal than the normal clips (their level is",
        "  nearer the enrolled one). Summing the ratios keeps what the other views hear; `max-then-sum` does so",
        "  for flagged clips while flagging exactly as `max` does, so a loudness change alone still flags.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.view_combination", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="clips.csv of the shared MIMII clips")
    p.add_argument("--out", type=Path, default=Path("docs/view_combination.md"))
    args = p.parse_args(argv)
    data = args.data.parent
    rows = list(csv.DictReader(args.data.open()))

    def normals(prefix: str) -> list[str]:
        return sorted(str(data / r["file"]) for r in rows if Path(r["file"]).name.startswith(prefix) and r["label"] == "normal")

    valve, fan = normals("hubtru_"), normals("mohxen_")
    # Another machine's sound to add: a pump's normal recording for the fan, the fan's for the valve.
    pump_clip = sorted(str(data / r["file"]) for r in rows if r["machine_type"] == "pump" and r["label"] == "normal")[0]
    pump = sf.read(pump_clip, dtype="float32", always_2d=True)[0][:, 0]
    fan_other = np.tile(pump, 2)
    valve_other = np.tile(sf.read(fan[0], dtype="float32", always_2d=True)[0][:, 0], 2)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            run_set("fan id_00 (MIMII 0 dB, `mohxen_`)", fan, "fan", 4, fan_other, Path(tmp)),
            run_set("valve (DCASE 2023 section_00, source, `hubtru_`)", valve, "valve", 5, valve_other, Path(tmp)),
        ]
    args.out.write_text(render(results, seconds=time.time() - t0), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
