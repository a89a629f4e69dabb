"""``python -m soundsentry.train.release``: build a shipped bundle from the shared clips (needs [train]).

The shipped recipe is ``edgel3-views`` (:mod:`soundsentry.train.views_bundle`): the pretrained EdgeL3
encoder and a views detector fitted on every normal clip of the type (every microphone), except the
example recordings::

    python -m soundsentry.train.release --data ../shared/data/mimii/clips.csv --type fan --out models/fan
    python -m soundsentry.train.release --data ../shared/data/mimii/clips.csv --general --out models/general

``--recipe logmel-conv`` builds the earlier recipe below instead.

The release recipe: a candidate configuration (:data:`CANDIDATES`, chosen by ``studies.accuracy``
from normal clips only) trained on every normal clip of one machine type except the held-out
example recordings (:func:`~soundsentry.train.data.shipping_split`), with its default detector
set and, when given, the recipe's held-out figures stored as the card's ``evidence``. ``--general``
builds the general bundle (every type's normal clips, for enrolling other machines)::

    python -m soundsentry.train.release --data ../shared/data/mimii/clips.csv --type fan \\
        --candidate centred-64 --detector lof --out models/fan
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from soundsentry.detector_kinds import DEFAULT_DETECTOR, DETECTOR_NAMES

from .data import Clip, Split, all_normals_split, normal_clips, read_clips_csv, shipping_split

__all__ = [
    "CANDIDATES",
    "GENERAL_EVIDENCE",
    "MIN_TEST_CLIPS",
    "finish_bundle",
    "held_out_recordings",
    "main",
    "release_bundle",
    "release_general",
    "release_views",
    "store_evidence",
    "too_thin",
    "train_candidate",
]

log = logging.getLogger(__name__)

#: The candidate configurations of our model (a handful, on purpose: the data is thin and the models are
#: judged on machines we have not heard, so we do not tune finely to these clips).
CANDIDATES: dict[str, dict[str, Any]] = {
    "global-64": {"center": "none", "window_frames": 64, "latent_dim": 64, "lof_neighbors": 20},
    "levelled-64": {"center": "none", "level": True, "window_frames": 64, "latent_dim": 64, "lof_neighbors": 20},
    "centred-64": {"center": "window_median", "window_frames": 64, "latent_dim": 64, "lof_neighbors": 20},
    "centred-32": {
        "center": "window_median",
        "window_frames": 32,
        "window_hop_frames": 8,
        "train_hop_frames": 2,
        "latent_dim": 32,
        "lof_neighbors": 10,
    },
}

#: The general bundle's card evidence: what it is for, and that it claims no accuracy figure.
GENERAL_EVIDENCE = (
    "a starting point for enrolling machines of other kinds (soundsentry enroll --model general); "
    "its encoder heard every machine type in the data. Its own detectors are fitted on all types at once, "
    "so it is not meant to score any one machine before enrollment; no accuracy figure is claimed."
)

#: Fewest normal and fewest abnormal test clips behind a figure a card quotes (one clip moves a smaller AUC by 0.1).
MIN_TEST_CLIPS = 10


def too_thin(n_normal: int, n_abnormal: int) -> bool:
    """True when a test set is too small for a figure worth quoting."""
    return min(n_normal, n_abnormal) < MIN_TEST_CLIPS


def train_candidate(name: str, machine_type: str, overrides: dict[str, Any], split: Split, out: Path, epochs: int):
    """Train one candidate configuration on ``split`` (never on its test clips); returns the card."""
    from .pipeline import TrainConfig, train_bundle

    config = TrainConfig(name=name, machine_type=machine_type, epochs=epochs, **overrides)
    no_test = dataclasses.replace(split, test=[])  # candidates are never scored on the test clips
    return train_bundle(config, no_test, out)


def finish_bundle(bundle: Path, split: Split, detector: str, evidence: dict | None = None) -> dict:
    """Set the default detector, score the test clips once with the runtime, and record it in the card."""
    from soundsentry.card import read_card, write_card

    from .pipeline import evaluate_bundle

    card = dict(read_card(bundle))
    card["default_detector"] = detector
    files = list(card.pop("files"))
    write_card(bundle, card, files=files)  # the evaluation below loads the bundle with its new default
    if split.test:
        ev = evaluate_bundle(bundle, split.test)
        if too_thin(ev["n_normal"], ev["n_abnormal"]):
            for det in card["detectors"]:
                for key in ("auc", "pauc_fpr_0.1", "precision", "recall", "f1", "accuracy"):
                    ev[det].pop(key, None)
            ev["too_thin"] = True
            card["notes"] = (
                f"too thin for a figure: the held-out test has {ev['n_normal']} normal / {ev['n_abnormal']} abnormal "
                "clips (we quote AUC, pAUC and F1 only with at least 10 of each); see docs/accuracy.md"
            )
        card["evaluation"] = ev
    if evidence:
        card["evidence"] = evidence
    write_card(bundle, card, files=files)
    return card


def held_out_recordings(folder: Path | None) -> frozenset[str]:
    """PCM sha256 of every audio file in ``folder`` (the examples), matched to clips.csv's ``pcm_sha256``."""
    from .pipeline import pcm_sha256

    if folder is None or not folder.is_dir():
        return frozenset()
    return frozenset(pcm_sha256(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in {".flac", ".wav", ".ogg"})


def release_bundle(
    clips: list[Clip],
    *,
    machine_type: str,
    candidate: str,
    detector: str,
    dest: Path,
    epochs: int = 100,
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
    evidence: dict | None = None,
) -> Split:
    """Build the shipped bundle of one machine type into ``dest`` (replaced); returns the split it trained on."""
    ship = shipping_split(clips, machine_type=machine_type, exclude=exclude, seed=seed)
    if dest.exists():
        shutil.rmtree(dest)
    train_candidate(machine_type, machine_type, CANDIDATES[candidate], ship, dest, epochs)
    finish_bundle(dest, ship, detector, evidence)
    return ship


def release_general(
    clips: list[Clip],
    *,
    candidate: str,
    dest: Path,
    epochs: int = 100,
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
) -> Split:
    """Build the general bundle (every type's normal clips) into ``dest``; returns the split it trained on."""
    split = all_normals_split(clips, exclude=exclude, seed=seed)
    overrides = dict(CANDIDATES[candidate]) | {"all_channels": False, "train_hop_frames": 8}
    train_candidate("general", "general", overrides, split, dest, epochs)
    finish_bundle(dest, split, DEFAULT_DETECTOR, {
        "purpose": GENERAL_EVIDENCE,
        "types_heard": sorted({c.machine_type for c in split.train + split.validation}),
    })
    return split


#: What the general bundle's card says it is for.
GENERAL_VIEWS_DESCRIPTION = (
    "every machine type's normal clips: a starting point for enrolling a machine of any kind "
    "(soundsentry enroll --model general); no accuracy figure is claimed for scoring before enrollment"
)


def release_views(
    clips: list[Clip],
    *,
    machine_type: str | None,
    dest: Path,
    exclude: frozenset[str] = frozenset(),
    evidence: dict | None = None,
) -> dict:
    """Build an ``edgel3-views`` bundle of one machine type (``None``: the general bundle) into ``dest``."""
    from .views_bundle import build_views_bundle

    types = None if machine_type is None else (machine_type,)
    normals, n_excluded = normal_clips(clips, machine_types=types, exclude=exclude)
    kinds = sorted({c.machine_type for c in normals})
    machines = sorted({f"{c.machine_type} {c.machine_id or 'unknown id'}" for c in normals})
    description = (
        (GENERAL_VIEWS_DESCRIPTION if machine_type is None else f"{machine_type}: every normal {machine_type} clip")
        + f"; {len(normals)} normal clips of {len(machines)} machines ({', '.join(kinds)})"
        + (f"; {n_excluded} example recording(s) held out" if n_excluded else "")
    )
    if machine_type is None:
        evidence = {"purpose": GENERAL_EVIDENCE, "types_heard": kinds} | (evidence or {})
    return build_views_bundle(
        normals,
        dest=dest,
        name=machine_type or "general",
        machine_type=machine_type or "general",
        description=description,
        evidence=evidence,
    )


def store_evidence(bundle: Path, evidence: dict) -> None:
    """Put measured figures (``evidence``, e.g. from ``studies.views_accuracy``) into a built bundle's card.

    Only the card changes; the files it lists, and so every score, stay as they are.
    """
    from soundsentry.card import read_card, write_card

    card = dict(read_card(bundle))
    files = list(card.pop("files"))
    card["evidence"] = dict(card.get("evidence") or {}) | evidence
    write_card(bundle, card, files=files)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m soundsentry.train.release", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="clips.csv of the shared MIMII clips")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write (replaced), e.g. models/fan")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--type", dest="machine_type", help="machine type of the bundle (fan, pump, slider, valve)")
    kind.add_argument("--general", action="store_true", help="the general bundle: every type's normal clips")
    p.add_argument(
        "--recipe",
        default="edgel3-views",
        choices=["edgel3-views", "logmel-conv"],
        help="edgel3-views (shipped): pretrained EdgeL3 + views detector; logmel-conv: the earlier trained autoencoder",
    )
    p.add_argument("--candidate", default="centred-64", choices=list(CANDIDATES), help="logmel-conv configuration")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTOR_NAMES, help="the card's default detector (with --type)")
    p.add_argument("--evidence", type=Path, help="JSON of the recipe's held-out figures to store as the card's evidence")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--hold-out",
        type=Path,
        default=Path("examples"),
        help="folder of recordings kept out of the training, matched by PCM content (default: examples)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clips = read_clips_csv(args.data)
    exclude = held_out_recordings(args.hold_out)
    evidence = json.loads(args.evidence.read_text()) if args.evidence else None
    if args.recipe == "edgel3-views":
        release_views(clips, machine_type=None if args.general else args.machine_type, dest=args.out, exclude=exclude,
                      evidence=evidence)
    elif args.general:
        release_general(clips, candidate=args.candidate, dest=args.out, epochs=args.epochs, seed=args.seed,
                        exclude=exclude)
    else:
        release_bundle(clips, machine_type=args.machine_type, candidate=args.candidate, detector=args.detector,
                       dest=args.out, epochs=args.epochs, seed=args.seed, exclude=exclude, evidence=evidence)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
