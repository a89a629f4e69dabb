"""Training builds its windows with the runtime's own window assembly (soundsentry.features.analysis_windows).

If the two ever differed, a bundle's detectors would be fitted on inputs the runtime never produces.
The reference is the runtime's ``Model.windows`` on a real clip, for every normalisation mode a
candidate can use (none, per-window median centring, window levelling), against
``soundsentry.train.pipeline.training_windows`` with the statistics training keeps in float64.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from .conftest import MONO_CLIP


@pytest.mark.parametrize("center", ["none", "window_median"])
@pytest.mark.parametrize("level", [None, -31.5])
def test_training_windows_equal_the_runtime_windows(logmel_model, center, level):
    from soundsentry.train.pipeline import training_windows

    logmel = logmel_model.features(logmel_model.load(MONO_CLIP))
    encoder = copy.copy(logmel_model.encoder)  # the log-mel fixture's encoder with this candidate's centring
    encoder.norm_center = center
    expected = encoder.windows(logmel, level_reference_db=level)

    def train_windows(spec):
        return training_windows(
            [spec, spec],  # training concatenates the windows of every view of every clip
            logmel_model.norm_mean.astype(np.float64),
            logmel_model.norm_std.astype(np.float64),
            frames=logmel_model.window.frames,
            hop=logmel_model.window.hop_frames,
            center=center,
            level=level,
        )

    got = train_windows(logmel)
    assert got.dtype == np.float32 and got.shape == (2 * len(expected), *expected.shape[1:])
    np.testing.assert_allclose(got[: len(expected)], expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[len(expected) :], expected, rtol=0, atol=1e-4)
    if level is not None:  # the level step did something: a louder copy gives the same windows
        np.testing.assert_allclose(train_windows(logmel + 6.0), got, rtol=0, atol=1e-4)
