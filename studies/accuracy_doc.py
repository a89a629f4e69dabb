"""Render the results of :mod:`studies.accuracy` as ``docs/accuracy.md``."""

from __future__ import annotations

import re
from typing import Any

from .protocol import CROSS_MACHINE_TEST, MIN_TEST_CLIPS

__all__ = ["render"]

METHODS = ("ours", "seed configuration", "DCASE 2020 baseline")


def _cell(metrics: dict | None, key: str) -> str:
    return "too thin" if metrics is None else f"{metrics[key]:.3f}"


def _table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| type | split | method | AUC | pAUC (FPR≤0.1) | F1 | train normal | calibration normal | test normal | test abnormal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for machine_type, entry in results["types"].items():
        for split_name, s in entry["splits"].items():
            c = s["counts"]
            for method in METHODS:
                m = s["methods"][method]["metrics"]
                lines.append(
                    f"| {machine_type} | {split_name} | {method} | {_cell(m, 'auc')} | {_cell(m, 'pauc')} | "
                    f"{_cell(m, 'f1')} | {c['train_normal']} | {c['calibration_normal']} | {c['test_normal']} | "
                    f"{c['test_abnormal']} |"
                )
    return lines


def _selection(results: dict[str, Any]) -> list[str]:
    from .pseudo_anomalies import FAMILIES

    lines = [
        "| type | candidate | detector | pseudo-anomaly AUC (higher = better) | "
        + " | ".join(FAMILIES)
        + " | criterion (lower = better) | epochs run | best epoch | val loss |",
        "|---|---|---|---|" + "---|" * len(FAMILIES) + "---|---|---|---|",
    ]
    for machine_type, entry in results["types"].items():
        chosen = entry["selection"]["chosen"]
        for row in entry["selection"]["rows"]:
            mark = " **chosen**" if (row["candidate"], row["detector"]) == (chosen["candidate"], chosen["detector"]) else ""
            fit = row["fit"]
            pseudo = row.get("pseudo_auc") or {}
            cells = " | ".join(f"{pseudo[k]:.3f}" if k in pseudo else "-" for k in ("all", *FAMILIES))
            lines.append(
                f"| {machine_type} | {row['candidate']}{mark} | {row['detector']} | {cells} | {row['criterion']:.3f} | "
                f"{fit['epochs_run']} | {fit['best_epoch']} | {fit['val_loss']:.4f} |"
            )
    return lines


def _shipped(results: dict[str, Any]) -> list[str]:
    rows = [(t, e["shipped"]) for t, e in results["types"].items() if "shipped" in e]
    if not rows:
        return []
    return [
        "## What ships",
        "",
        "The tables above measure a *recipe* (configuration and detector) on clips it did not hear. The bundle "
        "in `models/<type>` is the chosen recipe trained once more on every normal clip of its type (more machines "
        "heard, more general on the ones it has not), minus the recordings in `examples/`, so that the README's "
        "first command still scores clips the model never heard. Its card quotes the recipe's figures as evidence "
        "and says so; no figure is claimed for the shipped model on clips it heard.",
        "",
        "| type | shipped bundle's training |",
        "|---|---|",
        *[f"| {t} | {s['description']} |" for t, s in rows],
        "",
    ]


def _epochs(results: dict[str, Any]) -> str:
    found = re.search(r"--epochs (\d+)", results.get("command", ""))
    return found.group(1) if found else "100"


def _level_section(levels: str) -> list[str]:
    return [
        "## Why every method ranks fan id_00 below chance: the test may compare two mixes",
        "",
        "Most of the fan test is 20 normal and 20 abnormal MIMII clips of fan `id_00` from one repository "
        "(Mohxen/sound-anomaly-detection) that did not record which SNR release (6, 0 or -6 dB: the same machine "
        "sound mixed with more or less factory noise) they came from. Their levels, measured by "
        "`python -m studies.level_check --data ../shared/data/mimii/clips.csv --type fan --machine id_00` "
        "(`studies.level_check`):",
        "",
        levels.strip(),
        "",
        "The normal clips sit about 5 dB below the abnormal ones, at the level of the 6 dB release's normal clips; "
        "the abnormal clips sit at the level of the -6 dB release, like every other fan `id_00` clip. If, as the "
        "levels suggest, the normal and the abnormal clips come from different releases, the test scores the "
        "difference between two noise mixes as well as the faults, and AUCs below 0.5 for all three methods are "
        "what one would expect when the normal clips' mix is the less familiar one. This is evidence, not proof: "
        "the source did not record the SNR. Window levelling (enrollment's default) removes the level difference "
        "but not the noise's spectrum, and enrollment on these normal clips still ranks their anomalies below "
        "chance (enrollment study below), so level alone does not explain it. Only 5 fan `id_00` normal clips "
        "sit at the -6 dB level, too few for a figure on a mix-matched test. This was found after the figures "
        "above were computed; the protocol, the candidates and the choice were not changed because of it.",
        "",
    ]


def render(results: dict[str, Any], *, enrollment: str | None = None, levels: str | None = None) -> str:
    from soundsentry.train.release import CANDIDATES

    out = [
        "# Accuracy: SoundSentry vs the seed's configuration vs the DCASE 2020 baseline",
        "",
        f"Generated by `{results.get('command', 'python -m studies.accuracy')}` "
        f"on {results['started']} ({results['seconds']} s on the build machine, 2 CPU cores). Do not edit by hand."
        + (f" Re-rendered, with the enrollment study, by `{results['rerendered_by']}`." if "rerendered_by" in results else ""),
        "",
        f"Training budget: our model trains for at most {_epochs(results)} epochs with early stopping on the "
        "normal calibration clips' loss (patience 10), capped so that the whole run fits the shared 2-core build "
        "machine; the seed configuration trains for a fixed 50 epochs and the DCASE baseline for its own 100.",
        "",
        "Data: the real MIMII / DCASE clips in `shared/data/mimii` (see its README for sources and licences). "
        "Anomalous clips are only ever scored at the very end: they take no part in training, early stopping, "
        "model selection or thresholds.",
        "",
        "## Protocol",
        "",
        "- **cross-machine**: every clip of the test machines is held out ("
        + "; ".join(f"{t}: {', '.join(m)}" for t, m in CROSS_MACHINE_TEST.items())
        + "). The models train on normal clips of the other machines of the type and are calibrated on held-out "
        "normal files of those machines. This is what a user scoring a machine we never heard gets. Clips without a "
        "machine id are left out (they could be a test machine).",
        "- **same-machine** (easier, labelled so): for every machine with normal and abnormal clips, about half its "
        "normal files are held out for the test with all its abnormal clips; the other half trains. Test normals "
        "never take part in training or calibration.",
        "- Counts in every row: `train normal` clips fit the model, `calibration normal` clips (held out by file) "
        "drive early stopping and the threshold, `test normal` / `test abnormal` are scored once.",
        f"- **too thin**: a figure is quoted only when the test set has at least {MIN_TEST_CLIPS} normal and "
        f"{MIN_TEST_CLIPS} abnormal clips. Below that one clip moves the AUC by 0.1 or more, so the table says "
        "\"too thin\" and gives the counts instead of a number that means nothing.",
        "- AUC and pAUC (FPR up to 0.1, McClish-standardised as in DCASE) use the clip scores; F1 is at each "
        "model's own threshold, set from normal clips only (the 99 % quantile of a normal distribution fitted "
        "robustly to normal clip scores: held-out normal clips plus, where the method allows it, training clips "
        "scored leave-one-clip-out).",
        "",
        "## Comparison",
        "",
        *_table(results),
        "",
        "Methods, all trained on exactly the same clips of each row:",
        "",
        "- **ours**: the SoundSentry recipe (conv autoencoder on log-mel windows, encoder latents, and one "
        "detector: LOF, One-Class SVM, k nearest neighbours or Mahalanobis distance), trained on the row's clips and "
        "scored by the runtime (`soundsentry.load_model(...).score`) exactly as a user would; "
        "configuration and detector chosen per type below.",
        "- **seed configuration**: whole 10 s log-mel padded to 320 frames, global min-max scaling, conv "
        "autoencoder 16-32-64-64 with max pooling, flattened 8x20x64 latent, LOF with 5 neighbours "
        "(`studies.references.SeedReference`; channel 0; 50 epochs, fixed; k is reduced to "
        "n_train - 1 where fewer than 6 clips train).",
        "- **DCASE 2020 baseline**: dense autoencoder on 5 frames x 128 mels (640 values), 128x4 - 8 - 128x4, "
        "score = mean squared reconstruction error per clip (`studies.references.DcaseBaseline`; "
        "channel 0; 100 epochs, batch 512, as the baseline's configuration).",
        "",
        "## How our configuration was chosen (normal clips only)",
        "",
        "Candidates, trained on each type's cross-machine training clips:",
        "",
        *[f"- `{name}`: {', '.join(f'{k}={v}' for k, v in cfg.items())}" for name, cfg in CANDIDATES.items()],
        "",
        "`centred` candidates subtract each window's per-mel-band median (soundsentry.features.center_windows), "
        "which cancels a constant microphone / gain / channel offset per band, and with it any steady change of "
        "the spectrum's shape; `levelled` moves each window's overall level (mean dB) to the training median, "
        "which cancels a gain or distance change but keeps the spectrum's shape (the runtime's "
        "`normalization.level_reference_db` step, also used by enrollment); `global` keeps the absolute "
        "spectrum. Every candidate is scored with each of its four detectors (LOF, One-Class SVM, kNN, "
        "Mahalanobis). Every candidate trains on all 8 microphones of original MIMII files as separate views and "
        "scores channel 0; clip score = mean of window scores.",
        "",
        "Choice (normal clips only, `studies.accuracy._select`), in two steps:",
        "",
        "1. **Pseudo-anomaly AUC**, highest wins (`studies.pseudo_anomalies`). Every microphone of "
        "every held-out normal calibration clip is an unchanged normal view; each view also gets one synthetic "
        "fault of each family (a few harmonics of a tone at -24 dB, a level beating at 1-20 Hz of depth -10 dB, "
        "5 ms broadband bursts at -6 dB, one octave 6 dB louder or quieter), seeded per clip, microphone and "
        "family so that every candidate hears the same samples. The AUC of unchanged views against their "
        "faulty copies asks whether the model hears a change, and, because other microphones of the same "
        "moment count as normal, whether it stays calm under a microphone move (drift). No real anomaly "
        "enters it; synthetic faults are a proxy, and the comparison table above is the real test.",
        "2. **Ties** go to the lower normal-only criterion "
        "(`studies.accuracy.normal_only_criterion`): the median score of the held-out normal "
        "calibration clips minus the median leave-one-clip-out score of the training clips, in robust standard "
        "deviations (1.4826 x MAD) of the latter; whether normal files the model never heard look as normal "
        "to it as its own training files. Used alone (as in the previous version of this document) it rewards "
        "a model that scores everything alike, which is why it now only breaks ties.",
        "",
        "With 1 to 6 calibration clips per type (1 to 8 microphones each) this is a weak signal, and we say so. "
        "The candidate set, the fault families and their strengths were fixed and committed before any test "
        "clip of this run was scored.",
        "",
        *_selection(results),
        "",
        *_shipped(results),
        *(_level_section(levels) if levels else []),
        "## The seed's published figures",
        "",
        "The seed project reported fan accuracy 0.92, F1 0.919 and AUC 0.916. Those figures were chosen with "
        "the anomalies in the loop (thresholds and settings picked on the same labelled clips they were reported "
        "on) and were measured on a split by file, where test clips come from the machines and recordings the "
        "model trained on. They cannot be compared with a protocol in which anomalies are never seen before the "
        "test. The seed-configuration rows above are that configuration re-trained on our splits with a "
        "normal-only threshold; that is what it does on these clips.",
        "",
    ]
    general = results.get("general")
    if general:
        out += [
            "## The general bundle",
            "",
            f"`models/general`: {general['description']}. It is the starting point for enrolling machines of "
            "other kinds; no accuracy figure is claimed for it before enrollment.",
            "",
        ]
    out += ["## Enrollment study", ""]
    if enrollment:
        out += [enrollment.strip(), ""]
    else:
        out += [
            "Not run here: `python -m studies.enrollment_study --bundle DIR` runs it on bundles that did not "
            "hear the machines studied (the full command above runs it on its own cross-machine bundles).",
            "",
        ]
    return "\n".join(out) + "\n"
