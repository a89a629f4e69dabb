"""The fine-tuning study's training set: normal clips only, never fan id_00 or an example recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mimii" / "clips.csv"

pytestmark = pytest.mark.skipif(not CLIPS.is_file(), reason="shared MIMII clips not present")


def test_training_windows_never_come_from_abnormal_held_out_or_example_clips():
    from soundsentry.train.data import read_clips_csv

    from studies.edgel3_finetune import example_names, training_clips, training_set

    clips = read_clips_csv(CLIPS)
    examples = example_names()
    assert examples, "examples/ recordings not found"
    train = training_clips(clips, examples=examples)
    assert train
    read: list[Path] = []

    def reader(path: Path) -> np.ndarray:
        read.append(path)
        return np.zeros((16000 * 2, 8), dtype=np.float32)

    X, y_type, y_machine, types, machines = training_set(train, reader=reader)
    by_path = {Path(c.path): c for c in clips}
    assert read and len(read) == len(train)
    for path in read:
        clip = by_path[path]
        assert clip.is_normal, path
        assert not path.name.startswith("mohxen_"), path
        assert not (clip.machine_type == "fan" and clip.machine_id == "id_00"), path
        assert path.name not in examples, path
    # Every microphone of every clip gives windows, each with its labels.
    assert X.shape[1:] == (64, 50) and len(X) == len(y_type) == len(y_machine)
    assert len(types) >= 4 and len(machines) > len(types)
    # A list with an abnormal clip is refused by name.
    abnormal = next(c for c in clips if not c.is_normal)
    with pytest.raises(ValueError, match=abnormal.path.name):
        training_set([abnormal], reader=reader)
