"""Training builds its windows exactly as the runtime scores them (soundsentry.train.pipeline._windows).

If the two ever differ, a bundle's detectors are fitted on inputs the runtime never produces. The
reference here is the runtime's own ``Model.windows`` on a real clip, for every normalisation mode
a candidate can use (none, per-window median centring, window levelling).
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import MONO_CLIP, requires

pytestmark = requires("tensorflow")


@pytest.mark.parametrize("center", ["none", "window_median"])
@pytest.mark.parametrize("level", [None, -31.5])
def test_training_windows_equal_the_runtime_windows(fan_model, center, level):
    from soundsentry.train.pipeline import _windows

    model = fan_model
    logmel = model.features(model.load(MONO_CLIP))
    saved = model.norm_center
    model.norm_center = center
    try:
        expected = model.windows(logmel, level_reference_db=level)
    finally:
        model.norm_center = saved
    def training_windows(spec):
        return _windows(
            [spec],
            model.norm_mean.astype(np.float64),
            model.norm_std.astype(np.float64),
            frames=model.window.frames,
            hop=model.window.hop_frames,
            center=center,
            level=level,
        )

    got = training_windows(logmel)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    if level is not None:  # the level step did something: a louder copy gives the same windows
        np.testing.assert_allclose(training_windows(logmel + 6.0), got, rtol=0, atol=1e-4)
