"""EdgeL3's NumPy front end, its Keras rebuild and ONNX export, against references computed here.

References: a TensorFlow replay of kapre 0.1's maths with the DFT kernels and mel matrix stored in the h5
(``soundsentry.train.edgel3.kapre_reference_log_mel``), the h5's stored mel matrix, ``librosa.filters.mel``,
``np.convolve`` for the decimator, and the Keras model for its ONNX export. Tests that need the pretrained
weights skip where ``shared/weights/edgel3-sea-ust-64`` is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from soundsentry.edgel3_frontend import (
    decimate_16k_to_8k,
    decimator_taps,
    edgel3_front_end,
    edgel3_log_mel,
    edgel3_mel_matrix,
    frame_windows,
)

from .conftest import EXAMPLES_DIR, requires

CLIP = EXAMPLES_DIR / "ronwise_id_00_normal_id_00_00000000.flac"
ABNORMAL = EXAMPLES_DIR / "mohxen_id_00_abnormal_00000000.flac"


def _weights_or_skip():
    from soundsentry.train.edgel3 import edgel3_weights_path

    try:
        return edgel3_weights_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def _clip_windows(path, *, hop=4000) -> np.ndarray:
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == 16000
    return frame_windows(decimate_16k_to_8k(y[:, 0]), hop=hop)


# --- decimator -----------------------------------------------------------------------------------------------


def test_decimator_response():
    # Measured on a 2**16-point FFT of the taps: within 8.6e-5 dB to 3.4 kHz, -100.08 dB at worst from 4.6 kHz.
    taps = decimator_taps()
    freqs = np.fft.rfftfreq(2**16, d=1 / 16000)
    gain_db = 20 * np.log10(np.maximum(np.abs(np.fft.rfft(taps, 2**16)), 1e-300))
    assert np.abs(gain_db[freqs <= 3400]).max() < 0.01
    assert gain_db[freqs >= 4600].max() < -100.0
    np.testing.assert_allclose(taps, taps[::-1])  # linear phase


def test_decimator_keeps_a_1khz_tone_and_removes_a_5khz_one():
    t = np.arange(32000) / 16000
    low = decimate_16k_to_8k(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    high = decimate_16k_to_8k(np.sin(2 * np.pi * 5000 * t).astype(np.float32))
    t8 = np.arange(16000) / 8000
    # Zero phase: the 1 kHz tone comes out on the same time axis, the filter's delay compensated.
    np.testing.assert_allclose(low[200:-200], np.sin(2 * np.pi * 1000 * t8)[200:-200], atol=1e-4)
    assert np.abs(high[200:-200]).max() < 1e-4  # would alias to 3 kHz without the filter


@pytest.mark.parametrize("n", [0, 1, 2, 7, 94, 95, 96, 16001, 160000])
def test_decimator_equals_a_plain_convolution(n):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    want = np.convolve(np.r_[y.astype(np.float64), 0.0], decimator_taps())[47 : 47 + n][::2]  # r_: n may be 0
    got = decimate_16k_to_8k(y)
    assert got.dtype == np.float32 and got.shape == ((n + 1) // 2,)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_decimator_rejects_multichannel_audio():
    with pytest.raises(ValueError, match="mono"):
        decimate_16k_to_8k(np.zeros((2, 100), dtype=np.float32))


# --- windows and log-mel -----------------------------------------------------------------------------------


def test_frame_windows_of_a_10s_clip():
    y8k = np.arange(80000, dtype=np.float32)
    assert frame_windows(y8k).shape == (10, 8000)
    half = frame_windows(y8k, hop=4000)
    assert half.shape == (19, 8000)
    np.testing.assert_array_equal(half[3], y8k[12000:20000])
    assert frame_windows(y8k[:7999]).shape == (0, 8000)


def test_log_mel_shape_range_and_level_blindness():
    windows = _clip_windows(CLIP)
    logmel = edgel3_log_mel(windows)
    assert logmel.shape == (19, 64, 50) and logmel.dtype == np.float32
    y, _ = sf.read(str(CLIP), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(edgel3_front_end(y[:, 0]), logmel)
    assert edgel3_front_end(y[:, 0], hop=8000).shape == (10, 64, 50)
    assert np.all(logmel.max(axis=(1, 2)) == 0.0) and logmel.min() >= -80.0
    # Each window is scaled to its own maximum: EdgeL3 does not hear a gain change (20 dB here).
    np.testing.assert_allclose(edgel3_log_mel(10 * windows), logmel, atol=1e-3)
    assert edgel3_log_mel(np.zeros((0, 8000))).shape == (0, 64, 50)
    with pytest.raises(ValueError, match="8000"):
        edgel3_log_mel(np.zeros((2, 4000)))


@requires("h5py")
def test_mel_matrix_equals_the_stored_one():
    from soundsentry.train.edgel3 import load_edgel3_h5

    _weights_or_skip()
    stored = load_edgel3_h5()["melspectrogram_1"]["Variable"]
    assert stored.shape == (513, 64)
    np.testing.assert_allclose(edgel3_mel_matrix(), stored, rtol=0, atol=1e-7)


@requires("librosa")
def test_mel_matrix_equals_librosa_htk_slaney():
    import librosa

    want = librosa.filters.mel(sr=8000, n_fft=1024, n_mels=64, fmin=0.0, fmax=4000.0, htk=True, norm="slaney")
    np.testing.assert_allclose(edgel3_mel_matrix(), want.T, rtol=0, atol=1e-7)


@pytest.mark.train
@requires("tensorflow")
@requires("h5py")
def test_log_mel_equals_kapre_replayed_in_tensorflow():
    from soundsentry.train.edgel3 import kapre_reference_log_mel

    _weights_or_skip()
    windows = np.concatenate([_clip_windows(CLIP, hop=8000), _clip_windows(ABNORMAL, hop=8000)])
    windows = np.concatenate([windows, np.zeros((1, 8000), np.float32)])  # silence: all 0 dB
    np.testing.assert_allclose(edgel3_log_mel(windows), kapre_reference_log_mel(windows), rtol=0, atol=1e-3)


@pytest.mark.train
@requires("tensorflow")
@requires("h5py")
def test_log_mel_of_a_pure_tone_down_to_the_floor():
    from soundsentry.train.edgel3 import kapre_reference_log_mel

    _weights_or_skip()
    # A tone that stops half way reaches the -80 dB floor (10 log10 of an amplitude: 160 dB of power below the
    # maximum). kapre's float32 DFT-by-convolution rounds cells 50 dB or more below the maximum by up to 0.5 dB
    # (measured), so below -40 dB the reference is float64 NumPy, from the definition.
    t = np.arange(8000) / 8000
    tone = np.where(t < 0.5, np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    got = edgel3_log_mel(tone[None])[0]
    kapre = kapre_reference_log_mel(tone[None])[0]
    loud = kapre > -40
    np.testing.assert_allclose(got[loud], kapre[loud], rtol=0, atol=1e-3)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(tone.astype(np.float64), 432), 1024)[::160]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    amplitude = np.sqrt(np.abs(np.fft.rfft(frames * hann)) ** 2 @ edgel3_mel_matrix().astype(np.float64))
    db = 10 * np.log10(np.maximum(amplitude, 1e-10))
    want = np.maximum(db - db.max(), -80.0).T
    assert (want == -80.0).any()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


# --- Keras rebuild and ONNX ----------------------------------------------------------------------------------


@pytest.mark.train
@requires("tensorflow")
@requires("h5py")
def test_truncated_encoders_are_cuts_of_the_same_network():
    from soundsentry.train.edgel3 import build_edgel3, build_named_encoder

    _weights_or_skip()
    logmel = edgel3_log_mel(_clip_windows(CLIP, hop=8000))
    block4 = np.asarray(build_edgel3(block=4, reduce="none", pooled=False)(logmel))  # (n, 8, 6, 64)
    block3 = np.asarray(build_edgel3(block=3, reduce="none")(logmel))  # (n, 8, 6, 128)
    assert block4.shape == (10, 8, 6, 64) and block3.shape == (10, 8, 6, 128)
    full = np.asarray(build_named_encoder("full64")(logmel))
    np.testing.assert_allclose(full, block4.max(axis=(1, 2)), atol=1e-5)
    flat = np.asarray(build_named_encoder("block3_time_mean_flat")(logmel))
    np.testing.assert_allclose(flat, block3.mean(axis=2).reshape(10, -1), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(build_named_encoder("block3_mean")(logmel)), block3.mean(axis=(1, 2)), atol=1e-5
    )


@pytest.mark.train
@pytest.mark.slow
@requires("tf2onnx")
@requires("h5py")
@pytest.mark.parametrize("name", ["block3_time_mean_flat", "full64"])
def test_onnx_equals_keras_on_a_real_clip(tmp_path, name):
    from soundsentry.export.edgel3 import clip_log_mel, export_edgel3
    from soundsentry.onnx_session import open_session

    _weights_or_skip()
    windows = clip_log_mel(ABNORMAL)
    done = export_edgel3(name, tmp_path / f"{name}.onnx", check_windows=windows)
    session = open_session(done.path, inputs=["logmel"], outputs=["latent"])
    latent = session.run(["latent"], {"logmel": windows})[0]
    assert latent.shape == (19, {"block3_time_mean_flat": 1024, "full64": 64}[name])
    assert done.max_abs_diff < 1e-4


def test_front_end_needs_numpy_only():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from soundsentry.edgel3_frontend import edgel3_front_end\n"
        "assert edgel3_front_end(np.zeros(16000, np.float32)).shape == (1, 64, 50)\n"
        "heavy = {'tensorflow', 'keras', 'sklearn', 'librosa', 'scipy', 'soundsentry.train', 'soundsentry.export'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
