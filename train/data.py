"""Choosing clips for training, validation and test from a ``clips.csv`` or a folder.

The split never lets an abnormal clip near training: abnormal clips only ever land in the
test set. Machines named as test machines are removed from training entirely, so the test
measures a machine the model has not heard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from soundsentry.batch import AUDIO_SUFFIXES
from soundsentry.clips import Clip, read_clips_csv

__all__ = [
    "AUDIO_SUFFIXES",
    "Clip",
    "Split",
    "all_normals_split",
    "normal_clips",
    "read_clips_csv",
    "scan_folder",
    "shipping_split",
    "split_clips",
    "validation_split",
]


@dataclass
class Split:
    """Train, validation and test clips; ``description`` says how they were chosen."""

    train: list[Clip]
    validation: list[Clip]
    test: list[Clip] = field(default_factory=list)
    description: str = ""
    #: Abnormal clips of the training machines: never trained on, and not in the held-out test either.
    unused_abnormal: list[Clip] = field(default_factory=list)


def scan_folder(folder: str | Path, *, machine_type: str = "") -> list[Clip]:
    """Audio files under ``folder``; files under a folder named ``abnormal`` are labelled so."""
    folder = Path(folder)
    clips = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        parts = {part.lower() for part in path.relative_to(folder).parts[:-1]}
        label = "abnormal" if "abnormal" in parts or "anomaly" in parts else "normal"
        clips.append(Clip(path=path, machine_type=machine_type, label=label))
    return clips


def split_clips(
    clips: list[Clip],
    *,
    machine_type: str | None,
    test_machines: tuple[str, ...] = (),
    validation_fraction: float = 0.25,
    seed: int = 0,
) -> Split:
    """Split clips of one machine type.

    - Test: every clip (normal and abnormal) of the machines in ``test_machines``. Abnormal
      clips of the other machines are set aside (``unused_abnormal``): next to normals of an
      unheard machine they would measure "which machine is this", not "is it abnormal".
    - Validation: a seeded ``validation_fraction`` of the remaining normal clips, chosen by
      file, for early stopping and the threshold.
    - Train: the other remaining normal clips.
    """
    if machine_type:
        clips = [c for c in clips if c.machine_type == machine_type]
    if not clips:
        raise ValueError(f"no clips of machine type {machine_type!r}")
    held_out = set(test_machines)
    test = [c for c in clips if c.machine_id in held_out]
    rest = [c for c in clips if c.machine_id not in held_out]
    unused = [c for c in rest if not c.is_normal]
    normals = sorted((c for c in rest if c.is_normal), key=lambda c: str(c.path))
    if len(normals) < 2:
        raise ValueError("need at least two normal clips outside the test machines")
    rng = random.Random(seed)
    shuffled = normals[:]
    rng.shuffle(shuffled)
    n_val = max(1, round(validation_fraction * len(shuffled)))
    validation, train = shuffled[:n_val], shuffled[n_val:]
    description = (
        f"{machine_type or 'all'}: train on {len(train)} normal clips, validate on {len(validation)} held-out normal clips"
        + (f"; test machines {', '.join(sorted(held_out))} never heard in training" if held_out else "")
    )
    return Split(
        train=sorted(train, key=lambda c: str(c.path)),
        validation=validation,
        test=test,
        description=description,
        unused_abnormal=unused,
    )


def validation_split(normals: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """Seeded split of normal clips into (train, validation) by file; at least one of each."""
    ordered = sorted(normals, key=lambda c: str(c.path))
    random.Random(seed).shuffle(ordered)
    n_val = min(max(1, round(fraction * len(ordered))), len(ordered) - 1)
    return sorted(ordered[n_val:], key=lambda c: str(c.path)), ordered[:n_val]


def all_normals_split(
    clips: list[Clip],
    *,
    machine_types: tuple[str, ...] | None = None,
    exclude: frozenset[str] = frozenset(),
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Every normal clip of the given types (default: all), for an encoder that has heard them all; no test.

    ``exclude`` holds PCM sha256 digests (clips.csv's ``pcm_sha256``) of recordings to keep out.
    """
    normals, n_excluded = normal_clips(clips, machine_types=machine_types, exclude=exclude)
    train, validation = validation_split(normals, validation_fraction, seed)
    kinds = sorted({c.machine_type for c in normals})
    return Split(
        train=train,
        validation=validation,
        description=f"all types ({', '.join(kinds)}): train on {len(train)} and calibrate on {len(validation)} "
        "normal clips"
        + (f"; {n_excluded} example recording(s) held out" if n_excluded else "")
        + "; no test set (every other normal clip is used)",
        unused_abnormal=[c for c in clips if not c.is_normal],
    )


def normal_clips(
    clips: list[Clip], *, machine_types: tuple[str, ...] | None, exclude: frozenset[str]
) -> tuple[list[Clip], int]:
    """Normal clips of the given types (None: all) minus the ``exclude``d recordings, and how many were left out."""
    mine = [c for c in clips if c.is_normal and (machine_types is None or c.machine_type in machine_types)]
    # By content, not by name: DCASE file names repeat across machine types and sources.
    normals = [c for c in mine if not (c.pcm_sha256 and c.pcm_sha256 in exclude)]
    return normals, len(mine) - len(normals)


def shipping_split(
    clips: list[Clip],
    *,
    machine_type: str,
    exclude: frozenset[str] = frozenset(),
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Every normal clip of one type except the files named in ``exclude``: what a shipped bundle trains on.

    The splits above measure a *recipe*; the bundle we ship is that recipe trained on every normal
    recording of the type, because each machine it hears makes it more general on machines it
    has not (its cards quote the recipe's held-out figures, not figures of this very model).
    ``exclude`` (PCM sha256 digests, as in clips.csv) keeps the example recordings out, so that
    scoring them still shows clips the model never heard.
    """
    normals, n_excluded = normal_clips(clips, machine_types=(machine_type,), exclude=exclude)
    train, validation = validation_split(normals, validation_fraction, seed)
    machines = sorted({c.machine_id or "unknown id" for c in normals})
    return Split(
        train=train,
        validation=validation,
        description=(
            f"{machine_type} shipped: train on {len(train)} and calibrate on {len(validation)} normal clips of every "
            f"{machine_type} machine in the data ({', '.join(machines)})"
            + (f"; {n_excluded} example recording(s) held out" if n_excluded else "")
            + "; no test set (the recipe's held-out figures are in the card's evidence)"
        ),
        unused_abnormal=[c for c in clips if c.machine_type == machine_type and not c.is_normal],
    )
