"""The NumPy log-mel front end against librosa, on real recordings."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from soundsentry.features import FeatureParams, frame_count, log_mel_spectrogram, mel_filterbank, sliding_windows

from .conftest import DATA_CLIPS


@pytest.fixture(scope="module")
def librosa():
    return pytest.importorskip("librosa")


PARAMS = FeatureParams()


def _channel0(path) -> np.ndarray:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == PARAMS.sample_rate
    return np.ascontiguousarray(samples[:, 0])


@pytest.mark.parametrize("path", DATA_CLIPS, ids=lambda p: p.name)
def test_log_mel_matches_librosa(librosa, path):
    y = _channel0(path)
    ours = log_mel_spectrogram(y, params=PARAMS)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=512, n_mels=128)
    ref = librosa.power_to_db(mel, ref=1.0, top_db=None)
    assert ours.shape == ref.shape == (128, 1 + y.shape[0] // 512)
    assert ours.dtype == np.float32
    # Far below the clip's peak both sides are dominated by float rounding; compare the audible range.
    audible = ref >= ref.max() - 80.0
    assert audible.mean() > 0.9
    assert np.abs(ours.astype(np.float64) - ref)[audible].max() < 0.01


@pytest.mark.filterwarnings("ignore:n_fft=1024 is too large:UserWarning")
@pytest.mark.parametrize("n", [16000, 16000 * 3 + 1, 511, 512, 513, 1024, 5000])
def test_frame_count_is_centred_framing(librosa, n):
    rng = np.random.default_rng(n)
    y = rng.standard_normal(n).astype(np.float32) * 0.1
    spec = log_mel_spectrogram(y, params=PARAMS)
    assert spec.shape == (PARAMS.n_mels, 1 + n // PARAMS.hop_length)
    assert frame_count(n, hop_length=PARAMS.hop_length) == spec.shape[1]
    ref = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=512, n_mels=128)
    assert ref.shape == spec.shape


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [(16000, 1024, 128, 0.0, None), (16000, 2048, 64, 50.0, 7000.0), (22050, 512, 40, 0.0, None)],
)
def test_mel_filterbank_matches_librosa(librosa, sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64)
    assert ours.shape == ref.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("n_frames", "length", "hop"), [(313, 64, 16), (64, 64, 16), (79, 64, 16), (100, 10, 3)])
def test_sliding_windows_are_spectrogram_slices(n_frames, length, hop):
    rng = np.random.default_rng(0)
    spec = rng.standard_normal((7, n_frames)).astype(np.float32)
    windows = sliding_windows(spec, length=length, hop=hop)
    n = 1 + (n_frames - length) // hop
    assert windows.shape == (n, 7, length)
    for i in range(n):
        np.testing.assert_array_equal(windows[i], spec[:, i * hop : i * hop + length])
    # No window reaches past the spectrogram, and none that fits is dropped.
    assert (n - 1) * hop + length <= n_frames < n * hop + length


def test_sliding_windows_shorter_than_one_window_is_empty():
    spec = np.zeros((5, 63), dtype=np.float32)
    windows = sliding_windows(spec, length=64, hop=16)
    assert windows.shape == (0, 5, 64)


def test_sliding_windows_on_real_clip():
    y = _channel0(DATA_CLIPS[0])
    spec = log_mel_spectrogram(y, params=PARAMS)
    windows = sliding_windows(spec, length=64, hop=16)
    assert windows.shape == (1 + (spec.shape[1] - 64) // 16, 128, 64)
    np.testing.assert_array_equal(windows[-1], spec[:, (len(windows) - 1) * 16 : (len(windows) - 1) * 16 + 64])
