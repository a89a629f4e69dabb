"""Window centring (card ``normalization.center``): drift cancels, old cards still load, streaming agrees."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundsentry
from soundsentry import ModelIntegrityError
from soundsentry.features import center_windows

from .conftest import LOGMEL_BUNDLE, MONO_CLIP


def _windows(seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(5, 128, 64)).astype(np.float32)


def test_window_median_cancels_a_constant_offset_per_band():
    """A microphone or gain change adds a fixed dB offset per band: centred windows do not see it."""
    w = _windows()
    offset = np.linspace(-12.0, 9.0, 128, dtype=np.float32)[None, :, None]
    np.testing.assert_allclose(
        center_windows(w + offset, mode="window_median"), center_windows(w, mode="window_median"), atol=1e-5
    )
    # Without centring the offset goes straight through.
    assert np.abs(center_windows(w + offset, mode="none") - w).max() > 1.0


def test_window_median_keeps_the_shape_within_a_window():
    w = _windows()
    c = center_windows(w, mode="window_median")
    assert c.shape == w.shape and c.dtype == np.float32
    np.testing.assert_allclose(np.median(c, axis=2), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.diff(c, axis=2), np.diff(w, axis=2), atol=1e-5)


def test_none_returns_the_windows_and_unknown_mode_is_refused():
    w = _windows()
    assert center_windows(w, mode="none") is w
    with pytest.raises(ValueError, match="unknown window centring"):
        center_windows(w, mode="per_clip")


def _copy_with_center(tmp_path, center):
    dest = tmp_path / "bundle"
    shutil.copytree(LOGMEL_BUNDLE, dest)  # centring is a step of the log-mel kind
    card = json.loads((dest / "model.json").read_text(encoding="utf-8"))
    if center is None:
        card["normalization"].pop("center", None)
    else:
        card["normalization"]["center"] = center
    (dest / "model.json").write_text(json.dumps(card), encoding="utf-8")
    return dest


def test_card_without_center_loads_as_uncentred(tmp_path):
    """Cards written before centring existed keep loading and score as they were trained."""
    model = soundsentry.load_model(_copy_with_center(tmp_path, None))
    assert model.norm_center == "none"
    logmel = model.features(model.load(MONO_CLIP))
    want = ((logmel - model.norm_mean) / model.norm_std)[:, : model.window.frames]
    np.testing.assert_allclose(model.windows(logmel)[0], want, rtol=1e-6)


def test_unknown_center_in_card_is_a_model_error(tmp_path):
    with pytest.raises(ModelIntegrityError, match="centring"):
        soundsentry.load_model(_copy_with_center(tmp_path, "per_clip"))


def test_centred_model_streams_exactly_like_whole_file_scoring(tmp_path):
    model = soundsentry.load_model(_copy_with_center(tmp_path, "window_median"))
    y = model.load(MONO_CLIP)
    whole = model.score(y)
    scorer = model.stream()
    for start in range(0, y.shape[0], 3000):
        scorer.push(y[start : start + 3000])
    streamed = scorer.finish()
    np.testing.assert_allclose(streamed.window_scores, whole.window_scores, rtol=1e-5, atol=1e-6)
    # Centring is per window: a window's score does not depend on the rest of the clip.
    hop = model.window.hop_frames * model.feature_params.hop_length
    shifted = model.score(y[4 * hop :])
    np.testing.assert_allclose(shifted.window_scores[1:], whole.window_scores[5:], rtol=1e-5, atol=1e-6)
