"""Block-by-block decoding of long recordings: same samples, same scores, same flags as whole-file decoding."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from soundsentry import AudioDecodeError, AudioTooShortError, InvalidAudioError
from soundsentry.audio import AudioBlocks, read_audio, select_channel
from soundsentry.batch import score_file
from soundsentry.quality import SignalStats, signal_flags
from soundsentry.scoring import decode as decode_file
from soundsentry.streaming import STREAM_ABOVE_SECONDS, file_seconds, score_file_streamed

from .conftest import DATA_CLIPS, MONO_CLIP, MULTICHANNEL_CLIP

RATE = 16000


@pytest.mark.parametrize("policy", ["first", "mean"])
@pytest.mark.parametrize("block_frames", [997, 1 << 16, 1 << 20])
def test_blocks_are_the_whole_file_cut_up(policy, block_frames):
    samples, rate = read_audio(MULTICHANNEL_CLIP)
    expected = select_channel(samples, policy=policy)
    with AudioBlocks(MULTICHANNEL_CLIP, block_frames=block_frames, channel=policy) as blocks:
        assert (blocks.sample_rate, blocks.channels) == (rate, samples.shape[1])
        got = list(blocks)
    assert all(0 < b.shape[0] <= block_frames and b.dtype == np.float32 for b in got)
    np.testing.assert_array_equal(np.concatenate(got), expected)


@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
@pytest.mark.parametrize("clip", DATA_CLIPS, ids=lambda p: p.name[:40])
@pytest.mark.parametrize("block_frames", [777, 1 << 16])
def test_streamed_file_scores_equal_whole_file(request, which, clip, block_frames):
    fan_model = request.getfixturevalue(which)  # the shipped views fan and the log-mel fixture
    whole = fan_model.score(clip)
    streamed = score_file_streamed(fan_model, clip, block_frames=block_frames)
    assert [e.view for e in streamed.evidence] == [e.view for e in whole.evidence]
    assert streamed.window_scores.shape == whole.window_scores.shape
    # Float32 rounding of the encoder differs with how windows are batched; OC-SVM scores sit near 0.
    np.testing.assert_allclose(streamed.window_scores, whole.window_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(streamed.window_starts, whole.window_starts)
    assert streamed.score == pytest.approx(whole.score, rel=1e-5, abs=1e-6)
    assert (streamed.verdict, streamed.threshold, streamed.path) == (whole.verdict, whole.threshold, str(clip))
    assert streamed.extra["flags"] == decode_file(fan_model, str(clip))[1]


def test_streamed_file_at_another_rate(fan_model, tmp_path):
    # soxr's streaming resampler gives the one-shot resampler's samples, so scores agree.
    y = fan_model.load(MONO_CLIP)
    import soxr

    path = tmp_path / "clip_44k.wav"
    sf.write(path, soxr.resample(y, RATE, 44100).astype(np.float32), 44100, subtype="FLOAT")
    whole = fan_model.score(path)
    streamed = score_file_streamed(fan_model, path, block_frames=5000)
    np.testing.assert_allclose(streamed.window_scores, whole.window_scores, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory, fan_model):
    """A real recording longer than STREAM_ABOVE_SECONDS: real 10 s clips end to end, 16-bit FLAC."""
    clips = [fan_model.load(p) for p in DATA_CLIPS]
    n = int(np.ceil((STREAM_ABOVE_SECONDS + 10) * RATE / sum(c.shape[0] for c in clips)))
    y = np.concatenate(clips * n)
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, y, RATE, subtype="PCM_16")
    return path


def test_batch_streams_long_recordings_with_whole_file_results(fan_model, long_recording, monkeypatch):
    assert file_seconds(long_recording) > STREAM_ABOVE_SECONDS
    samples, flags = decode_file(fan_model, str(long_recording))
    whole = fan_model.score_samples(samples, path=str(long_recording))
    del samples

    def no_whole_file_decoding(*args, **kwargs):
        raise AssertionError("a long recording was decoded whole")

    monkeypatch.setattr("soundsentry.scoring.decode", no_whole_file_decoding)
    row = score_file(fan_model, str(long_recording), detector=None, threshold=None)
    assert row.error in ("", None)
    assert row.score == pytest.approx(whole.score, rel=1e-5, abs=1e-6)
    assert (row.verdict, tuple(row.flags)) == (whole.verdict, tuple(flags))


def test_short_files_are_still_decoded_whole(fan_model, monkeypatch):
    calls = []
    real = decode_file

    def spy(model, path):
        calls.append(path)
        return real(model, path)

    monkeypatch.setattr("soundsentry.scoring.decode", spy)
    score_file(fan_model, str(MONO_CLIP), detector=None, threshold=None)
    assert calls == [str(MONO_CLIP)]


def test_streamed_errors_name_the_file(fan_model, tmp_path):
    missing = tmp_path / "missing.flac"
    with pytest.raises(AudioDecodeError, match=r"missing\.flac"):
        AudioBlocks(missing)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio at all")
    with pytest.raises(AudioDecodeError, match="cannot decode"):
        score_file_streamed(fan_model, not_audio)
    nan = tmp_path / "nan.wav"
    y = np.zeros(RATE * 3, np.float32)
    y[RATE * 2] = np.nan
    sf.write(nan, y, RATE, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match="NaN") as info:
        score_file_streamed(fan_model, nan, block_frames=RATE)
    assert info.value.path == str(nan)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(RATE, np.float32), RATE)
    with pytest.raises(AudioTooShortError) as info:
        score_file_streamed(fan_model, short)
    assert info.value.path == str(short)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.normal(0, 0.02, 50_000),  # ordinary level
        lambda rng: np.zeros(50_000),  # dead input
        lambda rng: rng.normal(0, 1e-5, 50_000),  # -100 dBFS hiss
        lambda rng: np.clip(rng.normal(0, 0.6, 50_000), -1, 1),  # overdriven
        lambda rng: np.r_[np.ones(3), np.zeros(49_997)],  # a few peaks, not clipping
    ],
    ids=["normal", "zeros", "hiss", "clipped", "peaks"],
)
def test_block_statistics_give_the_whole_recordings_flags(make):
    y = make(np.random.default_rng(0)).astype(np.float32)
    stats = SignalStats()
    for start in range(0, y.size, 4096):
        stats.update(y[start : start + 4096])
    assert stats.flags() == signal_flags(y)


def test_model_score_streams_long_files(fan_model, long_recording, monkeypatch):
    samples, _ = decode_file(fan_model, str(long_recording))
    whole = fan_model.score_samples(samples, path=str(long_recording))
    del samples

    def no_whole_file_decoding(*args, **kwargs):
        raise AssertionError("a long recording was decoded whole")

    monkeypatch.setattr(fan_model, "load", no_whole_file_decoding)
    result = fan_model.score(long_recording)
    np.testing.assert_allclose(result.window_scores, whole.window_scores, rtol=1e-5, atol=1e-6)
    assert (result.verdict, result.path) == (whole.verdict, str(long_recording))
