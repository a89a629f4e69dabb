"""How good the shipped EdgeL3 views bundles are, on the shared MIMII clips: ``docs/accuracy.md``.

    python -m studies.views_accuracy --data ../shared/data/mimii/clips.csv --out docs/accuracy.md --json docs/accuracy.json
    python -m studies.views_accuracy --data ../shared/data/mimii/clips.csv --json docs/accuracy.json --store-evidence models

Everything goes through the product's own path (``soundsentry.enroll.enroll`` with its defaults,
``Model.score``), as a user would with ``soundsentry enroll`` and ``soundsentry score``:

1. **Fan id_00, enrolled** (the ``mohxen_`` set, MIMII 0 dB release, one fan): the 20 normal clips
   sorted by name, fold ``k`` holds out ``normal[k::4]``; the shipped ``fan`` bundle is enrolled on
   the other 15 (channel 0) and scores the 5 held-out normal clips and the 20 abnormal ones. The seed's
   configuration and the DCASE 2020 baseline (:mod:`studies.references`) are trained on the same 15
   clips of each fold and score the same clips.
2. **Other machines** (one normal and one abnormal 8-channel MIMII clip per machine id): enrolled on
   microphones 1-7 of the normal clip, scored on microphone 0 of both clips; and the shipped type
   bundle used as it is (it heard those normal clips: an optimistic figure).
3. **Drift, normal clips only**: other microphones of the held-out fan id_00 clips, the other
   releases of fan id_00 (DCASE 2020 and the -6 dB release), and the DCASE 2023 valve's held-out
   source normals.
4. **How the views were chosen**: synthetic faults added to held-out normal clips (normal clips
   only), and the level floor measured on normal clips.

Anomalous clips are only ever scored. The study takes about ten minutes on two cores (the two
references train TensorFlow models per fold).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soundsentry
from soundsentry.enroll import enroll
from soundsentry.markdown import table
from soundsentry.metrics import partial_roc_auc, roc_auc
from soundsentry.train.data import Clip, read_clips_csv

log = logging.getLogger(__name__)

RATE = 16000


def _file(c: Clip) -> str:
    return Path(c.path).name


def _name(c: Clip) -> str:
    """``label/file``: the mohxen_ normal and abnormal clips share file names."""
    return f"{c.label}/{Path(c.path).name}"


def _mohxen(clips: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    fan = [c for c in clips if _file(c).startswith("mohxen_")]
    normal = sorted((c for c in fan if c.is_normal), key=_name)
    abnormal = sorted((c for c in fan if not c.is_normal), key=_name)
    return normal, abnormal


def _channel(path, ch: int) -> np.ndarray:
    y, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == RATE, path
    return y[:, ch]


def _auc(pos: list[float], neg: list[float]) -> float:
    return float(roc_auc(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))


def _pauc(pos: list[float], neg: list[float]) -> float:
    return float(partial_roc_auc(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos], max_fpr=0.1))


def _view_ratios(result) -> dict[str, float]:
    return {e.view: round(float(e.ratio), 4) for e in result.evidence}


def fan_folds(clips: list[Clip], work: Path, *, references: bool) -> dict[str, Any]:
    """The 4-fold enrolled fan id_00 test: ours, and the two references trained on the same clips."""
    normal, abnormal = _mohxen(clips)
    out: dict[str, Any] = {"n_normal": len(normal), "n_abnormal": len(abnormal), "folds": []}
    parent = soundsentry.load_model("fan")
    for k in range(4):
        test = normal[k::4]
        enrolled = [c for c in normal if c not in test]
        model = enroll(parent, [str(c.path) for c in enrolled], out=work / f"fan-fold{k}")
        scored = {_name(c): model.score(str(c.path)) for c in test + abnormal}
        pos = [scored[_name(c)].score for c in abnormal]
        neg = [scored[_name(c)].score for c in test]
        fold: dict[str, Any] = {
            "enrolled": [_name(c) for c in enrolled],
            "held_out_normal": [_name(c) for c in test],
            "ours": {
                "auc": _auc(pos, neg),
                "pauc": _pauc(pos, neg),
                "abnormal_flagged": sum(s > 1.0 for s in pos),
                "normal_flagged": sum(s > 1.0 for s in neg),
                "per_view_auc": {
                    view: _auc(
                        [_view_ratios(scored[_name(c)])[view] for c in abnormal],
                        [_view_ratios(scored[_name(c)])[view] for c in test],
                    )
                    for view in _view_ratios(scored[_name(test[0])])
                },
                "flagging_views": sorted(
                    {e.view for c in abnormal for e in scored[_name(c)].evidence if e.flagged}
                ),
            },
        }
        if references:
            from studies.references import DcaseBaseline, SeedReference

            for ref in (SeedReference(), DcaseBaseline()):
                t0 = time.time()
                ref.fit(enrolled, enrolled[:3])
                s = list(ref.score(test + abnormal))
                fold[ref.name] = {
                    "auc": _auc(s[len(test) :], s[: len(test)]),
                    "pauc": _pauc(s[len(test) :], s[: len(test)]),
                    "seconds": round(time.time() - t0, 1),
                }
        out["folds"].append(fold)
        log.info("fan fold %d: %s", k, {m: round(v["auc"], 3) for m, v in fold.items() if isinstance(v, dict)})
    return out


def other_machines(clips: list[Clip], work: Path) -> dict[str, Any]:
    """Each MIMII machine id with an 8-channel normal and abnormal clip (not the fan id_00 set)."""
    pairs: dict[tuple, dict[str, list[Clip]]] = {}
    for c in clips:
        if c.machine_type in ("fan", "pump", "slider", "valve") and not _file(c).startswith("mohxen_"):
            if sf.info(str(c.path)).channels == 8:
                key = (c.machine_type, _file(c).split("_")[0], c.machine_id or "?", c.snr_db)
                pairs.setdefault(key, {}).setdefault("normal" if c.is_normal else "abnormal", []).append(c)
    rows = []
    for (mtype, source, mid, snr), d in sorted(pairs.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        if "normal" not in d or "abnormal" not in d:
            continue
        normal_clip = d["normal"][0]
        model = enroll(
            soundsentry.load_model(mtype),
            [(_channel(normal_clip.path, ch), RATE) for ch in range(1, 8)],
            out=work / f"{mtype}-{source}-{mid}-{snr}",
        )
        shipped = soundsentry.load_model(mtype)
        for label in ("normal", "abnormal"):
            for c in d[label]:
                y = _channel(c.path, 0)
                mine, as_is = model.score(y, sample_rate=RATE), shipped.score(y, sample_rate=RATE)
                rows.append({
                    "type": mtype, "source": source, "machine": mid, "snr_db": snr, "label": label, "clip": _name(c),
                    "enrolled_score": mine.score, "enrolled_flagged": mine.verdict == "abnormal",
                    "enrolled_views": [e.view for e in mine.evidence if e.flagged],
                    "shipped_score": as_is.score, "shipped_flagged": as_is.verdict == "abnormal",
                })
    return {"rows": rows, "n_machines": len({(r["type"], r["source"], r["machine"], r["snr_db"]) for r in rows})}


def drift(clips: list[Clip], work: Path) -> dict[str, Any]:
    """Normal clips only: how often the same healthy machine, heard differently, is flagged."""
    normal, _ = _mohxen(clips)
    parent = soundsentry.load_model("fan")
    mics = {"flagged": 0, "n": 0, "views": {}}
    for k in range(4):
        test = normal[k::4]
        model = enroll(parent, [str(c.path) for c in normal if c not in test], out=work / f"drift-fold{k}")
        for c in test:
            for ch in range(1, 8):
                r = model.score(_channel(c.path, ch), sample_rate=RATE)
                mics["n"] += 1
                if r.verdict == "abnormal":
                    mics["flagged"] += 1
                    for e in r.evidence:
                        if e.flagged:
                            mics["views"][e.view] = mics["views"].get(e.view, 0) + 1
    model = enroll(parent, [str(c.path) for c in normal], out=work / "drift-all")
    others = [c for c in clips if c.machine_type == "fan" and c.machine_id == "id_00" and c.is_normal
              and not _file(c).startswith("mohxen_")]
    releases = []
    for c in others:
        r = model.score(_channel(c.path, 0), sample_rate=RATE)
        level = next((e for e in r.evidence if e.view == "level"), None)
        releases.append({
            "clip": _name(c), "snr_db": c.snr_db, "dataset": c.dataset, "score": r.score,
            "flagged": r.verdict == "abnormal", "views": [e.view for e in r.evidence if e.flagged],
            "level_db": None if level is None else round(level.value, 2),
        })
    hub = sorted((c for c in clips if _file(c).startswith("hubtru_")), key=_name)
    valve = {"flagged": 0, "n": len(hub)}
    for k in range(5):
        test = hub[k::5]
        model = enroll(soundsentry.load_model("valve"), [str(c.path) for c in hub if c not in test], out=work / f"hub{k}")
        valve["flagged"] += sum(model.score(str(c.path)).verdict == "abnormal" for c in test)
    return {"other_microphones": mics, "other_releases": releases, "valve_source_held_out": valve}


def level_floor(clips: list[Clip]) -> dict[str, Any]:
    """Level differences between the microphones of one moment (8-channel normal clips), dB."""
    diffs = []
    for c in clips:
        if c.is_normal and sf.info(str(c.path)).channels == 8:
            y, _ = sf.read(str(c.path), dtype="float64", always_2d=True)
            lv = 10 * np.log10(np.mean(y**2, axis=0) + 1e-12)
            diffs += list(np.abs(lv[1:] - lv[0]))
    d = np.asarray(diffs)
    return {"n_pairs": len(d), "median": float(np.median(d)), "p95": float(np.percentile(d, 95)),
            "p99": float(np.percentile(d, 99)), "max": float(d.max())}


def _faults(y: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Synthetic faults on a normal clip: clicks, a tone, +6 dB, one octave +6 dB, a 5 Hz beat."""
    t = np.arange(len(y)) / RATE
    rms = float(np.sqrt(np.mean(y**2)))
    clicks = y.copy()
    for s in rng.choice(len(y) - 160, 6, replace=False):
        clicks[s : s + 80] += rms * 8 * rng.standard_normal(80)
    spectrum = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / RATE)
    spectrum[(f > 1000) & (f < 2000)] *= 2.0
    return {
        "clicks": clicks,
        "tone": y + rms * 0.3 * np.sin(2 * np.pi * (700 + rng.random() * 2000) * t),
        "louder 6 dB": y * 2.0,
        "1-2 kHz +6 dB": np.fft.irfft(spectrum, len(y)),
        "5 Hz beat": y * (1 + 0.3 * np.sin(2 * np.pi * 5 * t)),
    }


def synthetic_faults(clips: list[Clip], work: Path) -> dict[str, Any]:
    """Normal clips only: held-out normals of one valve and one fan, and faulty copies of them (5 folds)."""
    sets = {
        "valve (DCASE 2023 section_00, source)": sorted((c for c in clips if _file(c).startswith("hubtru_")), key=_name),
        "fan id_00 (0 dB)": _mohxen(clips)[0],
    }
    out = {}
    rng = np.random.default_rng(0)
    for name, members in sets.items():
        parent = soundsentry.load_model("valve" if name.startswith("valve") else "fan")
        res: dict[str, Any] = {"n": len(members), "normal_flagged": 0, "faults": {}}
        for k in range(5):
            test = members[k::5]
            model = enroll(parent, [str(c.path) for c in members if c not in test], out=work / f"synth-{k}-{len(out)}")
            for c in test:
                y = _channel(c.path, 0)
                res["normal_flagged"] += model.score(y, sample_rate=RATE).verdict == "abnormal"
                for fault, z in _faults(y, rng).items():
                    r = model.score(z.astype(np.float32), sample_rate=RATE)
                    entry = res["faults"].setdefault(fault, {"flagged": 0, "views": {}})
                    entry["flagged"] += r.verdict == "abnormal"
                    for e in r.evidence:
                        if e.flagged:
                            entry["views"][e.view] = entry["views"].get(e.view, 0) + 1
        out[name] = res
    return out


def render(results: dict[str, Any]) -> str:
    """The Markdown document."""
    fan = results["fan_folds"]
    methods = ["ours"] + [m for m in ("seed configuration", "DCASE 2020 baseline") if m in fan["folds"][0]]
    lines = [
        "# Accuracy on the shared MIMII clips",
        "",
        f"Generated by `{results['command']}` ({results['seconds']:.0f} s on {results['machine']}). Do not edit by hand.",
        "",
        "What the shipped bundles are: the pretrained EdgeL3 network (blocks 1-3, int8) and the `views` detector",
        "(embedding, events, spectrum shape, level), each view calibrated on normal recordings only. Every",
        "figure below comes from the product's own path (`soundsentry.enroll.enroll` with its defaults, then",
        "`Model.score`), the way `soundsentry enroll` and `soundsentry score` work. Anomalous clips are only scored.",
        "",
        "## Fan id_00, enrolled: 4 folds",
        "",
        f"The `mohxen_` fan id_00 clips (MIMII 0 dB release, one fan): {fan['n_normal']} normal and {fan['n_abnormal']}"
        " abnormal clips. Fold k holds out normal clips k, k+4, ... (sorted by name); each method is fitted on the",
        "other 15 normal clips (channel 0) and scores the 5 held-out normal and the 20 abnormal clips. Ours is the",
        "shipped `fan` bundle enrolled with `soundsentry enroll` defaults; the seed configuration and the DCASE",
        "2020 baseline are trained on the same 15 clips (their definitions: `studies/references.py`). All three",
        "read channel 0, the microphone MIMII and DCASE score; the seed project itself mixed the 8 microphones",
        "of these files down to mono (`librosa.load(mono=True)`), a different input. The issue that asked for",
        "this test quotes 0.915 for the seed's configuration on these folds; its front end is not documented",
        "there, and that figure is not reproduced here.",
        "",
    ]
    rows = []
    for m in methods:
        aucs = [f[m]["auc"] for f in fan["folds"]]
        paucs = [f[m]["pauc"] for f in fan["folds"]]
        rows.append([m, f"{np.mean(aucs):.3f}", " ".join(f"{a:.2f}" for a in aucs), f"{np.mean(paucs):.3f}", "15", "5 + 20"])
    lines += table(["method", "AUC (mean of folds)", "AUC per fold", "pAUC (FPR <= 0.1)", "fitted on", "scored (normal + abnormal)"], rows)
    flagged = sum(f["ours"]["abnormal_flagged"] for f in fan["folds"])
    false = sum(f["ours"]["normal_flagged"] for f in fan["folds"])
    views = sorted({v for f in fan["folds"] for v in f["ours"]["flagging_views"]})
    per_view = {v: np.mean([f["ours"]["per_view_auc"][v] for f in fan["folds"]]) for v in fan["folds"][0]["ours"]["per_view_auc"]}
    lines += [
        "",
        f"At its own threshold ours flags {flagged} of {4 * fan['n_abnormal']} abnormal scorings and {false} of "
        f"{4 * 5} held-out normal scorings (4 folds). Views that raised the flags: {', '.join(views) or 'none'}.",
        "Each view alone (its clip ratio as the score), AUC mean of folds: "
        + ", ".join(f"{v} {a:.3f}" for v, a in per_view.items())
        + ". In this release the faulty fan is about 5 dB louder (`shared/data/mimii/README.md`), and the level",
        "view hears it; the embedding and spectrum-shape views rank the faults too, without the level.",
        "",
    ]
    om = results["other_machines"]
    rows_by = {}
    for r in om["rows"]:
        key = r["type"]
        d = rows_by.setdefault(key, {"machines": set(), "abn": 0, "abn_n": 0, "nor": 0, "nor_n": 0, "sabn": 0, "snor": 0})
        d["machines"].add((r["source"], r["machine"], r["snr_db"]))
        if r["label"] == "abnormal":
            d["abn_n"] += 1
            d["abn"] += r["enrolled_flagged"]
            d["sabn"] += r["shipped_flagged"]
        else:
            d["nor_n"] += 1
            d["nor"] += r["enrolled_flagged"]
            d["snor"] += r["shipped_flagged"]
    lines += [
        "## Other machines: one normal and one abnormal clip each",
        "",
        f"{om['n_machines']} MIMII machines (8-channel clips; the `anudeep_`, `alaks_`, `abdul_`, `brmdv_`, `cesar_`,",
        "`drstef_` and `saraghsm_` sets) that have both a normal and an abnormal clip. **Enrolled**: the shipped",
        "bundle of the machine's type enrolled on microphones 1-7 of the normal clip (7 recordings of one",
        "moment), then microphone 0 of each clip scored. **Shipped as is**: the type bundle without enrollment;",
        "it was fitted on those very normal clips among others, so its normal-clip figure is optimistic.",
        "One clip per label per machine is too thin for an AUC per machine; these are counts.",
        "",
    ]
    trows = []
    for t, d in sorted(rows_by.items()):
        trows.append([t, str(len(d["machines"])), f"{d['abn']} of {d['abn_n']}", f"{d['nor']} of {d['nor_n']}",
                      f"{d['sabn']} of {d['abn_n']}", f"{d['snor']} of {d['nor_n']}"])
    lines += table(["type", "machines", "enrolled: abnormal flagged", "enrolled: normal flagged",
                    "shipped as is: abnormal flagged", "shipped as is: normal flagged"], trows)
    dr = results["drift"]
    mic = dr["other_microphones"]
    lines += [
        "",
        "## Drift: the same healthy machine heard differently (normal clips only)",
        "",
        "- **Other microphones of the same moment**: fan id_00 enrolled on channel 0 of 15 normal clips (4 folds);",
        f"  channels 1-7 of the 5 held-out clips flagged {mic['flagged']} of {mic['n']} times"
        + (f" (views: {', '.join(f'{v} {n}' for v, n in mic['views'].items())})" if mic["views"] else "") + ".",
        f"- **Other releases of fan id_00** (enrolled on all 20 `mohxen_` normal clips, 0 dB release): "
        f"{sum(r['flagged'] for r in dr['other_releases'])} of {len(dr['other_releases'])} normal clips of the DCASE 2020"
        " and -6 dB releases flagged:",
        "",
    ]
    lines += table(["clip", "SNR (dB)", "score", "flagged by", "level against enrolled (dB)"],
                   [[r["clip"], str(r["snr_db"] or "?"), f"{r['score']:.2f}", ", ".join(r["views"]) or "-",
                     f"{r['level_db']:+.1f}" if r["level_db"] is not None else "-"] for r in dr["other_releases"]])
    v = dr["valve_source_held_out"]
    lines += [
        "",
        "  These recordings of the same healthy fan are louder than the 0 dB release's normal clips (the last",
        "  column), and the level view says so in dB. A louder fan is also what this fan's fault sounds like in",
        "  the 0 dB release, so the level view cannot tell one from the other: a flag that the evidence explains",
        "  as \"x dB louder\" with no other view raised is the engineer's cue to check the microphone and gain.",
        f"- **DCASE 2023 valve, source domain** (one valve, 5 folds): {v['flagged']} of {v['n']} held-out normal clips flagged.",
        "",
        "## How the views were chosen (normal clips only)",
        "",
    ]
    lf = results["level_floor"]
    lines += [
        f"- **Level floor** ({lf['n_pairs']} microphone pairs of the 8-channel normal clips): the level of microphones",
        f"  1-7 differs from microphone 0's by {lf['median']:.2f} dB (median), {lf['p95']:.2f} dB (95th percentile),",
        f"  {lf['p99']:.2f} dB (99th) and {lf['max']:.2f} dB at most; the level view never flags less than 3 dB",
        "  (`soundsentry.views.LEVEL_FLOOR_DB`).",
        "- **Synthetic faults** on held-out normal clips (5 folds; the faults' definitions: `_faults` in this study):",
        "",
    ]
    srows = []
    for name, res in results["synthetic"].items():
        for fault, e in res["faults"].items():
            srows.append([name, fault, f"{e['flagged']} of {res['n']}", ", ".join(f"{k} {n}" for k, n in e["views"].items()) or "-"])
        srows.append([name, "none (the normal clip)", f"{res['normal_flagged']} of {res['n']}", ""])
    lines += table(["normal clips", "fault", "flagged", "flagging views"], srows)
    lines += [
        "",
        "The views were chosen on these criteria and the drift counts above, in a scratch study before this",
        "document existed: a transient view (loudest frame over the median frame) caught every click but",
        "flagged 11 of 140 other-microphone scorings and was left out; the embedding's worst windows",
        "(`events`) catch some clicks with no drift false alarm and were kept. That exploration also printed",
        "fan id_00 AUCs, so the choice is not blind to that test; the rule (any view over its own threshold,",
        "thresholds from leave-one-recording-out scores) was not tuned on it. A fine-tuned encoder (machine",
        "type and machine heads on normal windows) lost on every normal-only criterion and was not kept:",
        "[docs/finetune.md](finetune.md) (`python -m studies.edgel3_finetune`); the pretrained weights are shipped.",
        "How a flagged clip's score is made (1 + the views' summed ratios over their bound, `max-then-sum`) was",
        "chosen afterwards on normal clips, simulated drifts and synthetic faults alone:",
        "[docs/view_combination.md](view_combination.md); it changes no verdict, only how flagged clips rank.",
        "Other spectrum-shape statistics were tried the same way and not kept: [docs/shape_statistics.md](shape_statistics.md).",
        "",
        "## What this cannot say",
        "",
        "- Pump, slider and valve have one normal and one abnormal clip per machine here: counts, not AUCs.",
        "- Recordings from other days, other domains and machine types not in the shared data (the desk fan a",
        "  year later, DCASE valve target, robot arm) are not available in this workplace, so none of those",
        "  figures is measured here.",
        "",
    ]
    return "\n".join(lines)


def card_evidence(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each shipped card should say about itself (``evidence``), from the study's results."""
    out: dict[str, dict[str, Any]] = {}
    by_type: dict[str, dict[str, int]] = {}
    for r in results["other_machines"]["rows"]:
        d = by_type.setdefault(r["type"], {"machines": 0, "abn": 0, "abn_n": 0, "nor": 0, "nor_n": 0})
        key = "abn" if r["label"] == "abnormal" else "nor"
        d[key] += r["enrolled_flagged"]
        d[key + "_n"] += 1
    for t, d in by_type.items():
        d["machines"] = len({(r["source"], r["machine"], r["snr_db"]) for r in results["other_machines"]["rows"] if r["type"] == t})
        out[t] = {
            "other_machines": d,
            "summary": (
                f"enrolled on one normal moment (7 microphones) of each of {d['machines']} machines of its type: "
                f"{d['abn']} of {d['abn_n']} abnormal and {d['nor']} of {d['nor_n']} normal clips flagged "
                "(too few clips for an AUC)"
            ),
        }
    fan = results["fan_folds"]
    aucs = [f["ours"]["auc"] for f in fan["folds"]]
    out["fan"]["fan_id_00_folds"] = {"auc_per_fold": aucs, "n_enrolled": 15, "n_normal_scored": 5, "n_abnormal_scored": fan["n_abnormal"]}
    out["fan"]["summary"] = (
        f"enrolled on 15 normal clips of one machine (MIMII id_00): AUC {np.mean(aucs):.3f} over 4 folds (5 normal + "
        f"{fan['n_abnormal']} abnormal each); " + out["fan"]["summary"]
    )
    out["general"] = {"summary": "no figure: a starting point for enrolling machines of any kind (soundsentry enroll --model general)"}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.views_accuracy", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="clips.csv of the shared MIMII clips")
    p.add_argument("--out", type=Path, default=Path("docs/accuracy.md"))
    p.add_argument("--json", type=Path, default=Path("docs/accuracy.json"))
    p.add_argument("--from-json", action="store_true", help="only render --out from an existing --json")
    p.add_argument("--skip-references", action="store_true", help="no seed configuration / DCASE baseline (no TensorFlow)")
    p.add_argument("--store-evidence", type=Path, metavar="MODELS", help="write each shipped card's evidence (from --json)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.from_json or args.store_evidence:
        results = json.loads(args.json.read_text())
        if args.store_evidence:
            from soundsentry.train.release import store_evidence

            for name, evidence in card_evidence(results).items():
                store_evidence(args.store_evidence / name, evidence | {"source": "docs/accuracy.md"})
        args.out.write_text(render(results))
        return 0
    import os
    import platform

    clips = read_clips_csv(args.data)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {
            "command": "python -m studies.views_accuracy --data ../shared/data/mimii/clips.csv --out docs/accuracy.md "
            "--json docs/accuracy.json",
            "fan_folds": fan_folds(clips, work, references=not args.skip_references),
            "other_machines": other_machines(clips, work),
            "drift": drift(clips, work),
            "level_floor": level_floor(clips),
            "synthetic": synthetic_faults(clips, work),
        }
    results["seconds"] = time.time() - t0
    results["machine"] = f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    args.out.write_text(render(results))
    print(f"wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
