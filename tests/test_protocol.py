"""The evaluation protocol (studies.protocol) and the accuracy doc: no leaks, honest counts.

Pure Python on synthetic clip lists: no audio is read, so these run without the [train] extra's
TensorFlow (they only need the train package importable).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from soundsentry.train.data import Clip

from studies.protocol import (
    MIN_TEST_CLIPS,
    all_normals_split,
    cross_machine_split,
    same_machine_split,
    shipping_split,
    too_thin,
)


def _clips() -> list[Clip]:
    out = []
    spec = {  # machine: (normals, abnormals)
        "id_00": (12, 6),
        "id_02": (0, 2),
        "id_04": (5, 3),
        "section_00": (4, 0),
        "": (2, 2),  # no machine id: could be any machine
    }
    for machine, (n, a) in spec.items():
        for i in range(n):
            out.append(Clip(path=Path(f"/d/valve/normal/{machine or 'x'}_{i}.flac"), machine_type="valve", machine_id=machine))
        for i in range(a):
            out.append(
                Clip(
                    path=Path(f"/d/valve/abnormal/{machine or 'x'}_{i}.flac"),
                    machine_type="valve",
                    machine_id=machine,
                    label="abnormal",
                )
            )
    out.append(Clip(path=Path("/d/fan/normal/f.flac"), machine_type="fan", machine_id="id_00"))
    return out


def _paths(clips) -> set[Path]:
    return {c.path for c in clips}


def test_cross_machine_split_never_trains_on_a_test_machine_or_an_anomaly():
    split = cross_machine_split(_clips(), machine_type="valve", test_machines=("id_00", "id_02"))
    fitted = split.train + split.validation
    assert all(c.is_normal for c in fitted)
    assert {c.machine_id for c in fitted} == {"id_04", "section_00"}
    assert {c.machine_id for c in split.test} == {"id_00", "id_02"}
    assert sum(c.is_normal for c in split.test) == 12 and sum(not c.is_normal for c in split.test) == 8
    # Clips with no machine id could be a test machine: left out of both sides.
    assert all(c.machine_id for c in fitted + split.test)
    assert all(c.machine_type == "valve" for c in fitted + split.test)
    assert split.validation and split.train and not _paths(split.train) & _paths(split.validation)


def test_same_machine_split_holds_out_normal_files_of_heard_machines():
    split = same_machine_split(_clips(), machine_type="valve")
    fitted = split.train + split.validation
    assert all(c.is_normal for c in fitted)
    test_normals = [c for c in split.test if c.is_normal]
    assert not _paths(test_normals) & _paths(fitted)
    # Every machine in the test was heard: some of its normal files trained or calibrated.
    assert {c.machine_id for c in split.test} <= {c.machine_id for c in fitted}
    # id_02 has no normal clip at all, so its anomalies cannot be a same-machine test; id_00 gives half its normals.
    assert "id_02" not in {c.machine_id for c in split.test}
    assert sum(c.machine_id == "id_00" and c.is_normal for c in split.test) == 6
    assert sum(not c.is_normal for c in split.test) == 6 + 3
    # Anomalies without a machine id are never tested against a machine they may not belong to.
    assert all(c.machine_id for c in split.test)


def test_splits_are_reproducible_and_depend_on_the_seed():
    a = same_machine_split(_clips(), machine_type="valve", seed=0)
    b = same_machine_split(_clips(), machine_type="valve", seed=0)
    c = same_machine_split(_clips(), machine_type="valve", seed=1)
    assert [x.path for x in a.test] == [x.path for x in b.test]
    assert [x.path for x in a.test] != [x.path for x in c.test]


def test_cross_machine_split_needs_training_normals():
    with pytest.raises(ValueError, match="fewer than two normal clips"):
        cross_machine_split(_clips(), machine_type="valve", test_machines=("id_00", "id_04", "section_00"))


def test_all_normals_split_uses_every_normal_and_no_anomaly():
    split = all_normals_split(_clips())
    used = split.train + split.validation
    assert len(used) == sum(c.is_normal for c in _clips())
    assert all(c.is_normal for c in used) and not split.test
    assert {c.machine_type for c in used} == {"valve", "fan"}


def test_shipping_split_trains_on_every_normal_of_the_type_except_the_examples():
    clips = [dataclasses.replace(c, pcm_sha256=f"h{i}") for i, c in enumerate(_clips())]
    example = next(c for c in clips if c.machine_id == "id_00" and c.is_normal)
    # Another type's clip with the same file name is not the example: matching is by content.
    clips.append(Clip(path=Path("/d/pump/normal") / example.path.name, machine_type="valve", pcm_sha256="other"))
    split = shipping_split(clips, machine_type="valve", exclude=frozenset({example.pcm_sha256}))
    used = split.train + split.validation
    expected = [c for c in clips if c.machine_type == "valve" and c.is_normal and c is not example]
    assert sorted(map(str, _paths(used))) == sorted(str(c.path) for c in expected) and len(used) == len(expected)
    assert not split.test and all(c.is_normal for c in used)
    assert {c.machine_id for c in used} == {"id_00", "id_04", "section_00", ""}  # every machine, ids or not
    assert "1 example recording(s) held out" in split.description
    fan = shipping_split(clips, machine_type="fan", exclude=frozenset({example.pcm_sha256}))
    assert "held out" not in fan.description
    everything = all_normals_split(clips, exclude=frozenset({example.pcm_sha256}))
    assert example not in everything.train + everything.validation
    assert len(everything.train + everything.validation) == sum(c.is_normal for c in clips) - 1
    assert "1 example recording(s) held out" in everything.description


@pytest.mark.parametrize(
    ("n_normal", "n_abnormal", "thin"),
    [(MIN_TEST_CLIPS, MIN_TEST_CLIPS, False), (MIN_TEST_CLIPS - 1, 50, True), (50, MIN_TEST_CLIPS - 1, True)],
)
def test_too_thin(n_normal, n_abnormal, thin):
    assert too_thin(n_normal, n_abnormal) is thin


def test_normal_only_criterion_prefers_a_model_whose_held_out_normals_look_like_its_training_normals():
    from studies.accuracy import normal_only_criterion

    loo = [1.0, 1.1, 0.9, 1.05, 0.95]
    generalises = normal_only_criterion([1.0, 1.02, *loo], 2)
    memorises = normal_only_criterion([3.0, 2.5, *loo], 2)
    assert generalises < memorises
    assert normal_only_criterion([1.0], 1) == float("inf")


def _results(thin: bool) -> dict:
    metrics = None if thin else {"auc": 0.61, "pauc": 0.52, "f1": 0.4, "precision": 0.5, "recall": 0.33}
    methods = {m: {"metrics": metrics} for m in ("ours", "seed configuration", "DCASE 2020 baseline")}
    counts = {"train_normal": 5, "calibration_normal": 2, "test_normal": 4 if thin else 25, "test_abnormal": 21}
    split = {"description": "d", "counts": counts, "too_thin": thin, "methods": methods}
    return {
        "started": "2026-01-01T00:00:00+00:00",
        "seconds": 1,
        "types": {
            "fan": {
                "splits": {"cross-machine": split},
                "selection": {
                    "chosen": {"candidate": "centred-64", "detector": "lof"},
                    "rows": [
                        {
                            "candidate": "centred-64",
                            "detector": "lof",
                            "criterion": 0.1,
                            "fit": {"epochs_run": 3, "best_epoch": 2, "val_loss": 0.5},
                        }
                    ],
                },
            }
        },
    }


def test_doc_quotes_figures_with_their_counts_and_never_for_a_thin_test():
    from studies.accuracy_doc import render

    rows = [line for line in render(_results(thin=False)).splitlines() if line.startswith("| fan | cross-machine")]
    assert len(rows) == 3
    assert rows[0].split("|")[4:11] == [" 0.610 ", " 0.520 ", " 0.400 ", " 5 ", " 2 ", " 25 ", " 21 "]
    thin_rows = [line for line in render(_results(thin=True)).splitlines() if line.startswith("| fan | cross-machine")]
    assert all(line.count("too thin") == 3 and "0.610" not in line and "| 4 | 21 |" in line for line in thin_rows)


def test_doc_includes_the_enrollment_section_when_given():
    from studies.accuracy_doc import render

    assert "AUC vs enrolled clips" in render(_results(thin=False), enrollment="### AUC vs enrolled clips\n")
    assert "Not run here" in render(_results(thin=False))
