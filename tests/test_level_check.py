"""The level check behind docs/accuracy.md's fan id_00 section (studies.level_check)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from .conftest import MONO_CLIP


def test_level_is_the_channel_0_rms_in_dbfs_and_follows_a_gain(tmp_path):
    from studies.level_check import clip_level_db

    samples, rate = sf.read(MONO_CLIP, always_2d=True)
    expected = 20 * np.log10(np.sqrt(np.mean(samples[:, 0] ** 2)))
    assert clip_level_db(MONO_CLIP) == pytest.approx(expected, abs=1e-6)
    quieter = tmp_path / "quieter.wav"
    sf.write(quieter, samples * 0.5, rate, subtype="FLOAT")
    assert clip_level_db(quieter) == pytest.approx(expected - 20 * np.log10(2), abs=1e-4)


def test_level_tables_group_by_source_label_and_recorded_snr(tmp_path):
    from soundsentry.train.data import Clip

    from studies.level_check import level_markdown

    samples, rate = sf.read(MONO_CLIP, always_2d=True)
    clips = []
    for i, (gain, label, snr) in enumerate([(1.0, "normal", ""), (1.0, "normal", ""), (0.1, "abnormal", "6")]):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, samples * gain, rate, subtype="FLOAT")
        clips.append(Clip(path=path, machine_type="fan", machine_id="id_00", label=label, source="me/repo",
                          dataset="MIMII", snr_db=snr))
    text = level_markdown(clips, machine_type="fan", machines=("id_00",))
    normal_row = next(line for line in text.splitlines() if "| me | normal |" in line)
    assert "| not recorded | 2 |" in normal_row
    snr_row = next(line for line in text.splitlines() if line.startswith("| 6 dB | abnormal |"))
    assert "| 1 |" in snr_row
