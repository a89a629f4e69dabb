"""The two reference models (seed configuration, DCASE 2020 baseline) are built as published.

Golden values come from the references' own recipes computed here: librosa for the DCASE
baseline's log-mel vectors, Keras layer shapes for the seed's 8x20x64 latent. Short real fits
(1-2 epochs) on the real clips in tests/data check that each trains and scores.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from .conftest import ABNORMAL_CLIP, DATA_CLIPS, MONO_CLIP, requires

# TensorFlow must not be imported with oneDNN on (see soundsentry.export.tf_compat): set the switch
# before any test module imports it, and skip by looking the packages up instead of importing them.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("tensorflow", "sklearn")),
    reason="needs the [train] extra (TensorFlow, scikit-learn)",
)


@requires("librosa")
def test_dcase_vectors_match_the_baselines_recipe_with_librosa():
    import librosa
    import soundfile as sf
    from soundsentry.features import FeatureParams, log_mel_spectrogram

    from studies.references import dcase_vectors

    y, sr = sf.read(MONO_CLIP, dtype="float32")
    # The DCASE 2020 baseline's file_to_vector_array, step by step (common.py of the baseline).
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    log_mel = 20.0 / 2.0 * np.log10(mel + sys.float_info.epsilon)
    n_vectors = log_mel.shape[1] - 5 + 1
    want = np.zeros((n_vectors, 640))
    for t in range(5):
        want[:, 128 * t : 128 * (t + 1)] = log_mel[:, t : t + n_vectors].T
    got = dcase_vectors(log_mel_spectrogram(y, params=FeatureParams()))
    assert got.shape == want.shape == (n_vectors, 640)
    np.testing.assert_allclose(got, want, atol=0.01)


def test_seed_image_is_padded_to_320_frames():
    from studies.references import seed_image

    spec = np.arange(128 * 313, dtype=np.float32).reshape(128, 313)
    img = seed_image(spec)
    assert img.shape == (128, 320)
    np.testing.assert_array_equal(img[:, :313], spec)
    assert (img[:, 313:] == spec.min()).all()
    assert seed_image(np.zeros((128, 400))).shape == (128, 320)


def _clips():
    from soundsentry.train.data import Clip

    normals = [Clip(path=p) for p in DATA_CLIPS if "anomaly" not in p.name]
    return normals[:2], normals[2:], [Clip(path=MONO_CLIP), Clip(path=ABNORMAL_CLIP, label="abnormal")]


def test_seed_reference_has_the_seeds_architecture_and_scores_clips():
    from studies.references import SeedReference

    train, validation, test = _clips()
    ref = SeedReference(epochs=1).fit(train, validation)
    assert ref.latent_shape_ == (8, 20, 64)
    conv = [layer for layer in ref.encoder_.layers if layer.__class__.__name__ == "Conv2D"]
    assert [layer.filters for layer in conv] == [16, 32, 64, 64]
    assert sum(layer.__class__.__name__ == "MaxPooling2D" for layer in ref.encoder_.layers) == 4
    # LOF with 5 neighbours, reduced to n_train - 1 with two training clips.
    assert ref.n_neighbors_ == 1
    scores = ref.score(test)
    assert scores.shape == (2,) and np.isfinite(scores).all() and np.isfinite(ref.threshold_)
    # Global min-max scaling: the extremes of all training images together.
    images = ref._images(train, None)
    assert (ref.min_, ref.max_) == (float(images.min()), float(images.max()))


def test_dcase_baseline_has_the_baselines_architecture_and_scores_clips():
    from studies.references import DcaseBaseline

    train, validation, test = _clips()
    ref = DcaseBaseline(epochs=2).fit(train, validation)
    dense = [layer.units for layer in ref.model_.layers if layer.__class__.__name__ == "Dense"]
    assert dense == [128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    assert sum(layer.__class__.__name__ == "BatchNormalization" for layer in ref.model_.layers) == 9
    scores = ref.score(test)
    assert scores.shape == (2,) and (scores > 0).all() and np.isfinite(ref.threshold_)
