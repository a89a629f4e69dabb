"""Loading the shipped model and scoring recordings with it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soundsentry
from soundsentry import Model, ScoreResult

from .conftest import ABNORMAL_CLIP, DATA_CLIPS, MONO_CLIP, MULTICHANNEL_CLIP


@pytest.fixture(scope="module")
def mono_result(fan_model) -> ScoreResult:
    return fan_model.score(MONO_CLIP)


def test_load_model_fan(fan_model):
    assert isinstance(fan_model, Model)
    assert fan_model.name == "fan"
    assert fan_model.detectors == ["lof", "ocsvm", "knn", "mahalanobis"]
    assert fan_model.default_detector in fan_model.detectors
    assert "fan" in repr(fan_model)


def test_load_model_by_folder_path(fan_model):
    model = soundsentry.load_model(fan_model.bundle.root)
    np.testing.assert_array_equal(model.score(MONO_CLIP).window_scores, fan_model.score(MONO_CLIP).window_scores)


@pytest.mark.parametrize("path", DATA_CLIPS, ids=lambda p: p.name)
def test_score_result_structure(fan_model, path):
    result = fan_model.score(path)
    n_samples = sf.info(path).frames
    n_frames = 1 + n_samples // fan_model.feature_params.hop_length
    n_windows = 1 + (n_frames - 64) // 16
    assert fan_model.window.frames == 64 and fan_model.window.hop_frames == 16
    assert result.window_scores.shape == (n_windows,)
    assert result.window_starts.shape == (n_windows,)
    assert np.all(np.diff(result.window_starts) > 0)
    assert result.window_starts[0] == 0.0
    assert result.window_starts[-1] + result.window_seconds <= n_samples / 16000 + 1e-9
    assert np.all(np.isfinite(result.window_scores))
    assert result.score == pytest.approx(float(np.mean(result.window_scores)), rel=1e-12)
    assert result.detector == fan_model.default_detector
    assert result.threshold == fan_model.thresholds[result.detector]
    assert result.verdict == ("abnormal" if result.score > result.threshold else "normal")
    assert result.model == "fan"
    assert result.path == str(path)


def test_window_starts_are_spaced_by_the_hop(fan_model, mono_result):
    hop_s = fan_model.window.hop_frames * fan_model.feature_params.hop_length / fan_model.feature_params.sample_rate
    np.testing.assert_allclose(np.diff(mono_result.window_starts)[1:], hop_s)


def test_score_array_equals_score_path(fan_model, mono_result):
    y, rate = sf.read(MONO_CLIP, dtype="float32")
    from_array = fan_model.score(y, sample_rate=rate)
    np.testing.assert_array_equal(from_array.window_scores, mono_result.window_scores)
    assert from_array.score == mono_result.score
    assert from_array.verdict == mono_result.verdict
    assert from_array.path is None
    # float64 input is accepted too.
    np.testing.assert_allclose(fan_model.score(y.astype(np.float64)).window_scores, mono_result.window_scores)


def test_window_scores_match_the_pipeline_steps(fan_model, mono_result):
    m = fan_model
    latents = m.embed(m.windows(m.features(m.load(MONO_CLIP))))
    assert latents.shape == (mono_result.window_scores.shape[0], int(m.card["encoder"]["latent_dim"]))
    np.testing.assert_array_equal(m.score_latents(latents), mono_result.window_scores)


def test_window_scores_do_not_depend_on_the_rest_of_the_clip(fan_model, mono_result):
    """A window's score depends only on its own samples (absolute dB, per-window normalisation)."""
    y = fan_model.load(MONO_CLIP)
    hop = fan_model.window.hop_frames * fan_model.feature_params.hop_length  # samples between windows
    shifted = fan_model.score(y[4 * hop :])
    np.testing.assert_allclose(shifted.window_scores[1:], mono_result.window_scores[5:], rtol=1e-5, atol=1e-6)


def test_threshold_override_flips_verdict(fan_model, mono_result):
    below = fan_model.score(MONO_CLIP, threshold=mono_result.score - 1e-3)
    above = fan_model.score(MONO_CLIP, threshold=mono_result.score + 1e-3)
    assert below.verdict == "abnormal" and below.threshold == pytest.approx(mono_result.score - 1e-3)
    assert above.verdict == "normal" and above.threshold == pytest.approx(mono_result.score + 1e-3)
    # The score itself does not depend on the threshold, and a score equal to the threshold is normal.
    assert below.score == above.score == mono_result.score
    assert fan_model.score(MONO_CLIP, threshold=mono_result.score).verdict == "normal"


def test_ocsvm_detector(fan_model, mono_result):
    result = fan_model.score(MONO_CLIP, detector="ocsvm")
    assert result.detector == "ocsvm"
    assert result.threshold == fan_model.thresholds["ocsvm"]
    lof = fan_model.score(MONO_CLIP, detector="lof")  # the other detector, whichever the card's default is
    assert result.window_scores.shape == lof.window_scores.shape == mono_result.window_scores.shape
    assert not np.allclose(result.window_scores, lof.window_scores)
    assert result.score == pytest.approx(float(np.mean(result.window_scores)))
    assert result.verdict == ("abnormal" if result.score > result.threshold else "normal")


def test_unknown_detector_raises_value_error(fan_model):
    with pytest.raises(ValueError, match="iforest"):
        fan_model.score(MONO_CLIP, detector="iforest")


def test_multichannel_file_scores_as_its_channel_0(fan_model):
    samples, rate = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    assert samples.shape[1] == 8
    from_file = fan_model.score(MULTICHANNEL_CLIP)
    channel0 = fan_model.score(np.ascontiguousarray(samples[:, 0]), sample_rate=rate)
    np.testing.assert_array_equal(from_file.window_scores, channel0.window_scores)
    assert from_file.verdict == channel0.verdict
    # A 2-D array follows the same channel policy.
    np.testing.assert_array_equal(fan_model.score(samples, sample_rate=rate).window_scores, channel0.window_scores)
    # Channel 1 is a different microphone and scores differently: the policy matters.
    channel1 = fan_model.score(np.ascontiguousarray(samples[:, 1]), sample_rate=rate)
    assert not np.array_equal(channel1.window_scores, channel0.window_scores)


def test_shortest_clip_that_scores(fan_model):
    y = fan_model.load(MONO_CLIP)
    n = fan_model.window.min_samples(fan_model.feature_params)
    assert fan_model.score(y[:n]).window_scores.shape == (1,)
    with pytest.raises(soundsentry.AudioTooShortError):
        fan_model.score(y[: n - 1])


def test_nan_array_is_refused(fan_model):
    y = fan_model.load(MONO_CLIP).copy()
    y[5] = np.nan
    with pytest.raises(soundsentry.InvalidAudioError):
        fan_model.score(y)


def test_abnormal_clip_has_higher_score_than_normal_clip_of_same_machine(fan_model):
    """id_06's anomaly clip vs its normal clip (both from the same DCASE source)."""
    normal = fan_model.score(MONO_CLIP)
    abnormal = fan_model.score(ABNORMAL_CLIP)
    assert abnormal.score > normal.score
