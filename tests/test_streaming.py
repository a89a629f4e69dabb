"""Streaming scoring reproduces whole-clip scoring whatever the chunk boundaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from soundsentry import AudioTooShortError, InvalidAudioError

from .conftest import ABNORMAL_CLIP, MONO_CLIP, MULTICHANNEL_CLIP

RATE = 16000


def _assert_same_result(got, expected):
    assert got.window_scores.shape == expected.window_scores.shape
    np.testing.assert_allclose(got.window_scores, expected.window_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.window_starts, expected.window_starts)
    assert got.score == pytest.approx(expected.score, rel=1e-5, abs=1e-6)
    assert got.verdict == expected.verdict
    assert got.threshold == expected.threshold
    assert got.detector == expected.detector
    # The views detector's evidence (empty for single-score detectors) follows the same rows.
    assert [e.view for e in got.evidence] == [e.view for e in expected.evidence]
    np.testing.assert_allclose([e.ratio for e in got.evidence], [e.ratio for e in expected.evidence], rtol=1e-5, atol=1e-6)


def _stream(model, y, cuts, **kwargs):
    """Push ``y`` split at ``cuts`` and finish; returns (result, updates)."""
    scorer = model.stream(**kwargs)
    bounds = [0, *cuts, y.shape[0]]
    updates = [scorer.push(y[a:b]) for a, b in itertools.pairwise(bounds)]
    return scorer.finish(), updates, scorer


@pytest.fixture(scope="module")
def clip(fan_model) -> np.ndarray:
    return fan_model.load(MONO_CLIP)


@pytest.fixture(scope="module")
def clip_result(fan_model):
    return fan_model.score(MONO_CLIP)


@pytest.mark.parametrize("chunk", [100, 511, 512, 4096, 16000, None], ids=lambda c: f"chunk{c or 'whole'}")
def test_chunk_size_does_not_change_scores(fan_model, clip, clip_result, chunk):
    chunk = chunk or clip.shape[0]
    result, updates, scorer = _stream(fan_model, clip, list(range(chunk, clip.shape[0], chunk)))
    _assert_same_result(result, clip_result)
    assert scorer.samples_received == clip.shape[0]
    # Windows reported as they complete are the final ones, numbered without gaps.
    pushed = [u for u in updates if u.window_scores.size]
    assert [u.first_window for u in pushed] == list(np.cumsum([0] + [u.window_scores.size for u in pushed])[:-1])
    early = np.concatenate([u.window_scores for u in pushed])
    assert 0 < early.size <= result.window_scores.size
    np.testing.assert_array_equal(early, result.window_scores[: early.size])


def test_one_sample_chunks(fan_model, clip):
    excerpt = clip[: 3 * RATE]
    result, _, _ = _stream(fan_model, excerpt, list(range(1, excerpt.shape[0])))
    _assert_same_result(result, fan_model.score(excerpt))


@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
def test_pushed_frames_are_the_spectrogram(request, which, clip):
    model = request.getfixturevalue(which)
    _, updates, _ = _stream(model, clip, list(range(3000, clip.shape[0], 3000)))
    frames = np.concatenate([u.frames for u in updates], axis=1)
    spectrogram = model.display(model.features(clip))  # what the GUI draws: the display rows
    missing = spectrogram.shape[1] - frames.shape[1]
    if model.encoder.stream.pad_samples:
        # Every frame whose samples have all arrived is reported; the end padding adds the rest on finish().
        assert 0 < missing <= 1 + model.feature_params.n_fft // (2 * model.feature_params.hop_length)
    else:  # uncentred frames (EdgeL3 views): nothing waits for padding
        assert missing == 0
    np.testing.assert_allclose(frames, spectrogram[:, : frames.shape[1]], rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def abnormal_clip(fan_model) -> np.ndarray:
    return fan_model.load(ABNORMAL_CLIP)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_chunk_boundaries(fan_model, abnormal_clip, data):
    shortest = fan_model.encoder.min_samples
    length = data.draw(st.integers(shortest, 4 * RATE), label="length")
    y = abnormal_clip[:length]
    expected = fan_model.score(y)
    cuts = data.draw(st.lists(st.integers(0, y.shape[0]), max_size=40).map(sorted), label="cuts")
    result, _, _ = _stream(fan_model, y, cuts)
    _assert_same_result(result, expected)


@pytest.mark.parametrize("rate", [48000, 44100])
def test_stream_at_other_rate_matches_whole_array(fan_model, clip, rate):
    y = soxr.resample(clip, RATE, rate, quality="VHQ").astype(np.float32)
    expected = fan_model.score(y, sample_rate=rate)
    result, _, scorer = _stream(fan_model, y, list(range(4801, y.shape[0], 4801)), sample_rate=rate)
    assert result.window_scores.shape == expected.window_scores.shape
    assert scorer.samples_received == fan_model.prepare(y, sample_rate=rate).shape[0]
    # soxr's streaming resampler produces the same samples as its one-shot resample (measured: equal to
    # ~1e-15 relative), so the scores agree as tightly as at 16 kHz; a looser bound would hide a real drift.
    np.testing.assert_allclose(result.window_scores, expected.window_scores, rtol=1e-5, atol=1e-6)
    assert result.verdict == expected.verdict


def test_stream_multichannel_chunks_follow_channel_policy(fan_model):
    import soundfile as sf

    samples, _ = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    expected = fan_model.score(MULTICHANNEL_CLIP)
    result, _, _ = _stream(fan_model, samples, list(range(7000, samples.shape[0], 7000)))
    _assert_same_result(result, expected)


@pytest.mark.parametrize(
    ("which", "detector", "threshold"), [("logmel_model", "ocsvm", -123.0), ("fan_model", None, 1e-3)]
)
def test_stream_with_other_detector_and_threshold(request, which, detector, threshold, clip):
    model = request.getfixturevalue(which)
    expected = model.score(clip, detector=detector, threshold=threshold)
    result, _, _ = _stream(model, clip, [5000, 90000], detector=detector, threshold=threshold)
    _assert_same_result(result, expected)
    assert result.verdict == "abnormal"


@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
def test_shortest_scoreable_stream(request, which, clip):
    model = request.getfixturevalue(which)
    n = model.encoder.min_samples
    expected = model.score(clip[:n])
    assert expected.window_scores.shape == (1,)
    result, _, _ = _stream(model, clip[:n], [n // 3])
    _assert_same_result(result, expected)


@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
@pytest.mark.parametrize("length", ["empty", "1000 samples", "one sample short"])
def test_finish_on_too_short_audio_raises(request, which, clip, length):
    model = request.getfixturevalue(which)
    n = {"empty": 0, "1000 samples": 1000, "one sample short": model.encoder.min_samples - 1}[length]
    assert n < model.encoder.min_samples
    scorer = model.stream()
    scorer.push(clip[:n])
    with pytest.raises(AudioTooShortError):
        scorer.finish()
    if n:  # whole-clip scoring agrees (an empty array is refused earlier, as containing no samples)
        with pytest.raises(AudioTooShortError):
            model.score(clip[:n])


def test_push_after_finish_is_refused(fan_model, clip):
    scorer = fan_model.stream()
    scorer.push(clip)
    scorer.finish()
    with pytest.raises(RuntimeError):
        scorer.push(clip[:100])
    with pytest.raises(RuntimeError):
        scorer.finish()


def test_nan_chunk_is_refused(fan_model, clip):
    scorer = fan_model.stream()
    bad = clip[:1000].copy()
    bad[10] = np.nan
    with pytest.raises(InvalidAudioError):
        scorer.push(bad)
