"""Decoding real recordings in every supported container and sample format, and refusing bad input."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import soundfile as sf
import soxr
from soundsentry import AudioDecodeError, AudioTooShortError, InvalidAudioError, SoundSentryError
from soundsentry.audio import load_audio, read_audio, select_channel

from .conftest import DATA_CLIPS, MONO_CLIP, MULTICHANNEL_CLIP

RATE = 16000


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """10 s of a real mono fan recording, float32, as soundfile decodes it."""
    samples, rate = sf.read(MONO_CLIP, dtype="float32")
    assert rate == RATE and samples.ndim == 1
    return samples


@pytest.mark.parametrize("path", DATA_CLIPS, ids=lambda p: p.name)
def test_load_real_flac(path):
    info = sf.info(path)
    expected = sf.read(path, dtype="float32", always_2d=True)[0][:, 0]
    y = load_audio(path, sample_rate=RATE)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.shape == (info.frames,)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(
    ("subtype", "tolerance"),
    [
        ("PCM_16", 0.0),  # the clips are 16-bit: these are lossless
        ("PCM_24", 0.0),
        ("PCM_32", 0.0),
        ("FLOAT", 0.0),
        ("DOUBLE", 0.0),
        ("PCM_U8", 2.0 / 256),  # one 8-bit quantisation step
    ],
)
def test_wav_sample_formats_decode_to_same_samples(tmp_path, clip, subtype, tolerance):
    path = tmp_path / f"clip_{subtype}.wav"
    sf.write(path, clip, RATE, format="WAV", subtype=subtype)
    assert sf.info(path).subtype == subtype
    y = load_audio(path, sample_rate=RATE)
    assert y.shape == clip.shape
    np.testing.assert_allclose(y, clip, rtol=0, atol=tolerance)
    if tolerance:
        # Quantised, yet still the same recording.
        assert np.corrcoef(y, clip)[0, 1] > 0.95


def test_ogg_vorbis_decodes(tmp_path, clip):
    path = tmp_path / "clip.ogg"
    sf.write(path, clip, RATE, format="OGG", subtype="VORBIS")
    y = load_audio(path, sample_rate=RATE)
    assert y.dtype == np.float32
    assert abs(y.shape[0] - clip.shape[0]) <= 1024  # codec framing may change the length slightly
    n = min(y.shape[0], clip.shape[0])
    # Lossy, but the waveform is the same recording.
    assert np.corrcoef(y[:n], clip[:n])[0, 1] > 0.95


@pytest.mark.parametrize("rate", [44100, 48000, 8000, 22050])
def test_other_rates_load_at_model_rate(tmp_path, clip, rate):
    excerpt = clip[: 3 * RATE + 123]  # a length that does not divide evenly
    resampled = soxr.resample(excerpt, RATE, rate, quality="VHQ")
    path = tmp_path / f"clip_{rate}.wav"
    sf.write(path, resampled, rate, subtype="FLOAT")
    y = load_audio(path, sample_rate=RATE)
    assert y.dtype == np.float32
    assert abs(y.shape[0] - resampled.shape[0] * RATE / rate) <= 1
    assert abs(y.shape[0] - excerpt.shape[0]) <= 1
    n = min(y.shape[0], excerpt.shape[0])
    # Down- then up-sampling to 8 kHz loses the 4-8 kHz band; the other rates keep everything.
    assert np.corrcoef(y[:n], excerpt[:n])[0, 1] > (0.99 if rate == 8000 else 0.999)


def test_multichannel_first_policy_is_channel_0():
    samples, rate = read_audio(MULTICHANNEL_CLIP)
    assert samples.shape[1] == 8 and rate == RATE
    y = load_audio(MULTICHANNEL_CLIP, sample_rate=RATE, channel="first")
    np.testing.assert_array_equal(y, samples[:, 0])
    # The channels really differ, so picking the right one matters.
    assert not np.array_equal(samples[:, 0], samples[:, 1])


def test_multichannel_mean_policy_mixes_down():
    samples, _ = read_audio(MULTICHANNEL_CLIP)
    y = load_audio(MULTICHANNEL_CLIP, sample_rate=RATE, channel="mean")
    np.testing.assert_allclose(y, samples.astype(np.float64).mean(axis=1), rtol=0, atol=1e-6)


def test_unknown_channel_policy_is_refused():
    with pytest.raises(ValueError):
        select_channel(np.zeros((10, 2), np.float32), policy="left")


# -- errors ---------------------------------------------------------------------------------


def _missing(tmp_path, clip):
    return tmp_path / "does_not_exist.wav"


def _directory(tmp_path, clip):
    d = tmp_path / "folder.wav"
    d.mkdir()
    return d


def _zero_bytes(tmp_path, clip):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    return p


def _random_bytes(tmp_path, clip):
    p = tmp_path / "noise.wav"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p


def _text_file(tmp_path, clip):
    p = tmp_path / "notes.txt"
    p.write_text("this is not audio\n" * 50)
    return p


def _text_renamed_wav(tmp_path, clip):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n" * 50)
    return p


def _truncated_flac(tmp_path, clip):
    p = tmp_path / "cut.flac"
    p.write_bytes(MONO_CLIP.read_bytes()[:30])
    return p


def _no_frames(tmp_path, clip):
    p = tmp_path / "no_frames.wav"
    sf.write(p, np.zeros(0, np.float32), RATE, subtype="PCM_16")
    return p


def _nan_samples(tmp_path, clip):
    p = tmp_path / "nan.wav"
    y = clip.copy()
    y[1000] = np.nan
    sf.write(p, y, RATE, subtype="FLOAT")
    return p


def _inf_samples(tmp_path, clip):
    p = tmp_path / "inf.wav"
    y = clip.copy()
    y[-1] = np.inf
    sf.write(p, y, RATE, subtype="FLOAT")
    return p


def _too_short(tmp_path, clip):
    p = tmp_path / "short.wav"
    sf.write(p, clip[: RATE // 2], RATE, subtype="PCM_16")
    return p


def _too_short_after_resampling(tmp_path, clip):
    # 1.0 s at 48 kHz is plenty of samples (more than either kind's window holds at 16 kHz) but shorter
    # than one window: 1.108 s for the EdgeL3 views kind, 2.02 s for the log-mel one.
    p = tmp_path / "short48k.wav"
    sf.write(p, soxr.resample(clip[:RATE], RATE, 48000), 48000, subtype="FLOAT")
    return p


ERROR_CASES = [
    (_missing, AudioDecodeError),
    (_directory, AudioDecodeError),
    (_zero_bytes, AudioDecodeError),
    (_random_bytes, AudioDecodeError),
    (_text_file, AudioDecodeError),
    (_text_renamed_wav, AudioDecodeError),
    (_truncated_flac, AudioDecodeError),
    (_no_frames, InvalidAudioError),
    (_nan_samples, InvalidAudioError),
    (_inf_samples, InvalidAudioError),
    (_too_short, AudioTooShortError),
    (_too_short_after_resampling, AudioTooShortError),
]


@pytest.mark.parametrize(("make", "error"), ERROR_CASES, ids=[m.__name__.strip("_") for m, _ in ERROR_CASES])
@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
def test_bad_input_raises_specific_error_naming_the_file(request, tmp_path, clip, which, make, error):
    model = request.getfixturevalue(which)
    path = make(tmp_path, clip)
    with pytest.raises(error) as info:
        model.score(path)
    exc = info.value
    assert type(exc) is error  # the most specific class, not just a parent
    assert isinstance(exc, SoundSentryError)
    assert os.fspath(path) in str(exc)
    assert exc.path == os.fspath(path)
    assert exc.problem  # says what is wrong in words


@pytest.mark.parametrize(
    ("make", "error"),
    [c for c in ERROR_CASES if c[1] is not AudioTooShortError],
    ids=[m.__name__.strip("_") for m, e in ERROR_CASES if e is not AudioTooShortError],
)
def test_load_audio_raises_the_same_errors(tmp_path, clip, make, error):
    path = make(tmp_path, clip)
    with pytest.raises(error, match=re.escape(str(path))):
        load_audio(path, sample_rate=RATE)


def test_error_hierarchy():
    assert issubclass(AudioTooShortError, InvalidAudioError)
    for cls in (AudioDecodeError, InvalidAudioError, AudioTooShortError):
        assert issubclass(cls, SoundSentryError)
