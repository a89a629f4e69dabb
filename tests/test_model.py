"""Loading the shipped model (and the older log-mel bundle) and scoring recordings with it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soundsentry
from soundsentry import Model, ScoreResult

from .conftest import ABNORMAL_CLIP, DATA_CLIPS, MONO_CLIP, MULTICHANNEL_CLIP

KINDS = ("edgel3-views", "logmel-conv")


@pytest.fixture(scope="module")
def models(fan_model, logmel_model) -> dict[str, Model]:
    """The shipped fan (EdgeL3 views) and the log-mel fixture bundle, by encoder kind."""
    return {"edgel3-views": fan_model, "logmel-conv": logmel_model}


@pytest.fixture(scope="module")
def mono_result(fan_model) -> ScoreResult:
    return fan_model.score(MONO_CLIP)


def _window_hop_samples(model: Model) -> int:
    g = model.encoder.stream
    return g.window_hop_frames * g.frame_hop


def test_load_model_fan(fan_model):
    assert isinstance(fan_model, Model)
    assert fan_model.name == "fan"
    assert fan_model.card["encoder"]["kind"] == "edgel3-views"
    assert fan_model.detectors == ["views"]
    assert fan_model.default_detector == "views"
    assert fan_model.thresholds == {"views": 1.0}
    assert "fan" in repr(fan_model)


def test_old_logmel_bundle_keeps_its_four_detectors(logmel_model):
    assert logmel_model.encoder.kind == "logmel-conv"
    assert logmel_model.detectors == ["lof", "ocsvm", "knn", "mahalanobis"]
    assert logmel_model.default_detector in logmel_model.detectors


@pytest.mark.parametrize("kind", KINDS)
def test_load_model_by_folder_path(models, kind):
    model = models[kind]
    again = soundsentry.load_model(model.bundle.root)
    np.testing.assert_array_equal(again.score(MONO_CLIP).window_scores, model.score(MONO_CLIP).window_scores)


def _expected_windows(model: Model, n_samples: int) -> int:
    if model.encoder.kind == "logmel-conv":  # centred frames: one per hop; windows of 64 frames every 16
        assert model.window.frames == 64 and model.window.hop_frames == 16
        n_frames = 1 + n_samples // model.feature_params.hop_length
        return 1 + (n_frames - 64) // 16
    # Uncentred 2048-sample frames every 320 samples, windows of 50 frames every 50.
    n_frames = 1 + (n_samples - 2048) // 320
    return 1 + (n_frames - 50) // 50


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", DATA_CLIPS, ids=lambda p: p.name)
def test_score_result_structure(models, kind, path):
    model = models[kind]
    result = model.score(path)
    n_samples = sf.info(path).frames
    n_windows = _expected_windows(model, n_samples)
    assert result.window_scores.shape == (n_windows,)
    assert result.window_starts.shape == (n_windows,)
    assert np.all(np.diff(result.window_starts) > 0)
    assert result.window_starts[0] == 0.0
    assert result.window_starts[-1] + result.window_seconds <= n_samples / 16000 + 1e-9
    assert np.all(np.isfinite(result.window_scores))
    if kind == "logmel-conv":
        assert result.score == pytest.approx(float(np.mean(result.window_scores)), rel=1e-12)
        assert result.evidence == [] and result.explanation == ""
    else:
        # Abnormal when a view passes its own threshold: the score is the most flagged view's clip ratio
        # while none passes, else 1 + the views' summed ratios over their bound; the evidence says which view.
        det = model.detector()
        ratios = [e.ratio for e in result.evidence]
        expected = max(ratios) if max(ratios) <= 1 else 1 + sum(ratios) / det.combined_threshold_
        assert result.score == pytest.approx(expected, rel=1e-9)
        assert result.evidence[0].ratio == max(e.ratio for e in result.evidence)
        assert result.evidence[0].view in result.explanation
    assert result.detector == model.default_detector
    assert result.threshold == model.thresholds[result.detector]
    assert result.verdict == ("abnormal" if result.score > result.threshold else "normal")
    assert result.model == "fan"
    assert result.path == str(path)


@pytest.mark.parametrize("kind", KINDS)
def test_window_starts_are_spaced_by_the_hop(models, kind):
    model = models[kind]
    starts = model.score(MONO_CLIP).window_starts
    np.testing.assert_allclose(np.diff(starts)[1:], _window_hop_samples(model) / model.sample_rate)


def test_views_windows_start_every_second_from_zero(mono_result):
    # Uncentred frames: window k starts at sample k * 50 * 320, exactly k seconds.
    np.testing.assert_allclose(mono_result.window_starts, np.arange(mono_result.window_starts.size) * 1.0)


def test_score_array_equals_score_path(fan_model, mono_result):
    y, rate = sf.read(MONO_CLIP, dtype="float32")
    from_array = fan_model.score(y, sample_rate=rate)
    np.testing.assert_array_equal(from_array.window_scores, mono_result.window_scores)
    assert from_array.score == mono_result.score
    assert from_array.verdict == mono_result.verdict
    assert from_array.path is None
    # float64 input is accepted too.
    np.testing.assert_allclose(fan_model.score(y.astype(np.float64)).window_scores, mono_result.window_scores)


@pytest.mark.parametrize("kind", KINDS)
def test_window_scores_match_the_pipeline_steps(models, kind):
    m = models[kind]
    result = m.score(MONO_CLIP)
    latents = m.embed(m.windows(m.features(m.load(MONO_CLIP))))
    assert latents.shape == (result.window_scores.shape[0], m.encoder.latent_dim)
    if kind == "logmel-conv":
        assert m.encoder.latent_dim == int(m.card["encoder"]["latent_dim"])
    else:  # [EdgeL3 embedding | spectrum shape (64) | level (1)]
        assert m.encoder.latent_dim == int(m.card["encoder"]["embedding_dim"]) + 64 + 1
    window_scores = m.score_latents(latents)
    np.testing.assert_array_equal(window_scores, result.window_scores)
    assert m.clip_score(window_scores, latents=latents) == result.score


def test_views_clip_score_needs_the_latents(fan_model, mono_result):
    with pytest.raises(ValueError, match="latents"):
        fan_model.clip_score(mono_result.window_scores)


@pytest.mark.parametrize("kind", KINDS)
def test_window_scores_do_not_depend_on_the_rest_of_the_clip(models, kind):
    """A window's score depends only on its own samples (absolute dB, per-window normalisation)."""
    model = models[kind]
    y = model.load(MONO_CLIP)
    whole = model.score(y).window_scores
    shifted = model.score(y[4 * _window_hop_samples(model) :]).window_scores
    # Centred framing pads the first window of a clip with zeros: it differs; uncentred framing has no padding.
    skip = 1 if model.encoder.stream.pad_samples else 0
    np.testing.assert_allclose(shifted[skip:], whole[4 + skip :], rtol=1e-5, atol=1e-6)


def test_threshold_override_flips_verdict(fan_model, mono_result):
    below = fan_model.score(MONO_CLIP, threshold=mono_result.score - 1e-3)
    above = fan_model.score(MONO_CLIP, threshold=mono_result.score + 1e-3)
    assert below.verdict == "abnormal" and below.threshold == pytest.approx(mono_result.score - 1e-3)
    assert above.verdict == "normal" and above.threshold == pytest.approx(mono_result.score + 1e-3)
    # The score itself does not depend on the threshold, and a score equal to the threshold is normal.
    assert below.score == above.score == mono_result.score
    assert fan_model.score(MONO_CLIP, threshold=mono_result.score).verdict == "normal"


def test_ocsvm_detector(logmel_model):
    default = logmel_model.score(MONO_CLIP)
    result = logmel_model.score(MONO_CLIP, detector="ocsvm")
    assert result.detector == "ocsvm"
    assert result.threshold == logmel_model.thresholds["ocsvm"]
    lof = logmel_model.score(MONO_CLIP, detector="lof")  # the other detector, whichever the card's default is
    assert result.window_scores.shape == lof.window_scores.shape == default.window_scores.shape
    assert not np.allclose(result.window_scores, lof.window_scores)
    assert result.score == pytest.approx(float(np.mean(result.window_scores)))
    assert result.verdict == ("abnormal" if result.score > result.threshold else "normal")


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_detector_raises_value_error(models, kind):
    with pytest.raises(ValueError, match="iforest"):
        models[kind].score(MONO_CLIP, detector="iforest")


def test_multichannel_file_scores_as_its_channel_0(fan_model):
    samples, rate = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    assert samples.shape[1] == 8
    from_file = fan_model.score(MULTICHANNEL_CLIP)
    channel0 = fan_model.score(np.ascontiguousarray(samples[:, 0]), sample_rate=rate)
    np.testing.assert_array_equal(from_file.window_scores, channel0.window_scores)
    assert from_file.score == channel0.score and from_file.verdict == channel0.verdict
    # A 2-D array follows the same channel policy.
    np.testing.assert_array_equal(fan_model.score(samples, sample_rate=rate).window_scores, channel0.window_scores)
    # Channel 1 is a different microphone and scores differently: the policy matters.
    channel1 = fan_model.score(np.ascontiguousarray(samples[:, 1]), sample_rate=rate)
    assert not np.array_equal(channel1.window_scores, channel0.window_scores)


@pytest.mark.parametrize("kind", KINDS)
def test_shortest_clip_that_scores(models, kind):
    model = models[kind]
    y = model.load(MONO_CLIP)
    n = model.encoder.min_samples
    if kind == "logmel-conv":
        assert n == model.window.min_samples(model.feature_params)
    else:  # 50 frames of 2048 samples every 320
        assert n == 49 * 320 + 2048
    assert model.score(y[:n]).window_scores.shape == (1,)
    with pytest.raises(soundsentry.AudioTooShortError):
        model.score(y[: n - 1])


def test_nan_array_is_refused(fan_model):
    y = fan_model.load(MONO_CLIP).copy()
    y[5] = np.nan
    with pytest.raises(soundsentry.InvalidAudioError):
        fan_model.score(y)


@pytest.mark.parametrize("kind", KINDS)
def test_abnormal_clip_has_higher_score_than_normal_clip_of_same_machine(models, kind):
    """id_06's anomaly clip vs its normal clip (both from the same DCASE source)."""
    normal = models[kind].score(MONO_CLIP)
    abnormal = models[kind].score(ABNORMAL_CLIP)
    assert abnormal.score > normal.score

