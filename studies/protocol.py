"""The evaluation protocol: which clips train, calibrate and test each machine type.

Two splits per machine type, both with anomalies only in the test set:

- ``cross-machine``: every clip of the test machines is held out; the model is trained and
  calibrated on normal clips of *other* machines only, so the test measures a machine it has
  never heard (what a user who scores their own machine gets).
- ``same-machine`` (easier, labelled so): for each machine with normal and abnormal clips, about
  half of its normal files are held out for the test together with all its abnormal clips; the
  other half trains. Test normals are never used in training or calibration.

Clips with no machine id (some original MIMII files) could be any machine, including a test
machine, so the cross-machine split drops them and the same-machine split only trains on them.
"""

from __future__ import annotations

import random
from collections import defaultdict

from soundsentry.train.data import Clip, Split, all_normals_split, shipping_split, validation_split
from soundsentry.train.release import MIN_TEST_CLIPS, too_thin

__all__ = [
    "CROSS_MACHINE_TEST",
    "MIN_TEST_CLIPS",
    "SPLITS",
    "all_normals_split",
    "cross_machine_split",
    "make_split",
    "same_machine_split",
    "shipping_split",
    "too_thin",
]

#: Held-out machines per type: the MIMII/DCASE 2020 ids with the most abnormal clips, so that the
#: training machines still have normal clips (fan id_00 is the 20+20-clip MIMII fan).
CROSS_MACHINE_TEST: dict[str, tuple[str, ...]] = {
    "fan": ("id_00",),
    "pump": ("id_02", "id_04"),
    "slider": ("id_00", "id_06"),
    "valve": ("id_00", "id_02", "id_06"),
}

SPLITS = ("cross-machine", "same-machine")


def cross_machine_split(
    clips: list[Clip],
    *,
    machine_type: str,
    test_machines: tuple[str, ...] | None = None,
    validation_fraction: float = 0.25,
    seed: int = 0,
) -> Split:
    """Train and calibrate on normals of some machines, test on all clips of others."""
    held_out = set(CROSS_MACHINE_TEST[machine_type] if test_machines is None else test_machines)
    mine = [c for c in clips if c.machine_type == machine_type and c.machine_id]
    test = sorted((c for c in mine if c.machine_id in held_out), key=lambda c: str(c.path))
    normals = [c for c in mine if c.machine_id not in held_out and c.is_normal]
    if len(normals) < 2:
        raise ValueError(f"{machine_type}: fewer than two normal clips outside test machines {sorted(held_out)}")
    train, validation = validation_split(normals, validation_fraction, seed)
    heard = sorted({c.machine_id for c in normals})
    return Split(
        train=train,
        validation=validation,
        test=test,
        description=(
            f"{machine_type} cross-machine: train on {len(train)} normal clips and calibrate on {len(validation)} "
            f"held-out normal clips of machines {', '.join(heard)}; test on every clip of unheard machines "
            f"{', '.join(sorted(held_out))}; clips without a machine id are left out"
        ),
        unused_abnormal=[c for c in mine if c.machine_id not in held_out and not c.is_normal],
    )


def same_machine_split(
    clips: list[Clip], *, machine_type: str, validation_fraction: float = 0.25, seed: int = 0
) -> Split:
    """Hold out about half the normal files of each machine that has anomalies, with those anomalies."""
    mine = [c for c in clips if c.machine_type == machine_type]
    by_machine: dict[str, list[Clip]] = defaultdict(list)
    for c in mine:
        by_machine[c.machine_id].append(c)
    rng = random.Random(seed)
    test, rest, unused = [], [], []
    for machine, group in sorted(by_machine.items()):
        normals = sorted((c for c in group if c.is_normal), key=lambda c: str(c.path))
        abnormals = [c for c in group if not c.is_normal]
        # A machine is "heard" only if some of its normals stay in training; unknown ids cannot be matched.
        if machine and abnormals and len(normals) >= 2:
            rng.shuffle(normals)
            n_test = len(normals) // 2
            test += normals[:n_test] + abnormals
            rest += normals[n_test:]
        else:
            rest += normals
            unused += abnormals
    train, validation = validation_split(rest, validation_fraction, seed)
    return Split(
        train=train,
        validation=validation,
        test=sorted(test, key=lambda c: str(c.path)),
        description=(
            f"{machine_type} same-machine (easier): train on {len(train)} and calibrate on {len(validation)} normal "
            f"clips; test on {sum(c.is_normal for c in test)} held-out normal files of the same machines (never used "
            f"in training or calibration) and {sum(not c.is_normal for c in test)} abnormal clips of those machines"
        ),
        unused_abnormal=unused,
    )


def make_split(clips: list[Clip], *, machine_type: str, split: str, seed: int = 0) -> Split:
    """The named split (one of :data:`SPLITS`) for one machine type."""
    if split == "cross-machine":
        return cross_machine_split(clips, machine_type=machine_type, seed=seed)
    if split == "same-machine":
        return same_machine_split(clips, machine_type=machine_type, seed=seed)
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
