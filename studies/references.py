"""The two reference points SoundSentry is compared with, trained on exactly our splits (needs TensorFlow).

- :class:`SeedReference`: the seed project's configuration. The whole 10 s clip as one log-mel
  image padded to 320 frames, global min-max scaling to [0, 1], a conv autoencoder with
  16-32-64-64 filters and 2x2 max pooling, the flattened 8x20x64 bottleneck as the clip's
  feature, and LOF with 5 neighbours (scikit-learn, novelty mode) on those features.
- :class:`DcaseBaseline`: the DCASE 2020 Task 2 baseline. A dense autoencoder on 5 consecutive
  128-mel frames (640 values), four Dense(128)+BatchNorm+ReLU layers, an 8-unit bottleneck, four
  more, and a linear 640 output, trained with MSE (Adam, batch 512, 100 epochs, 10 % validation
  split as in the baseline's config); a clip's score is its mean squared reconstruction error.

Both read channel 0 only, as their originals did. Both fit on ``split.train`` and set their
threshold from ``split.validation`` (normal clips only) with the same rule as our bundles, so
F1 compares like with like. Anomalies are only ever scored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from soundsentry.calibration import robust_threshold
from soundsentry.features import FeatureParams
from soundsentry.train.data import Clip
from soundsentry.train.pipeline import clip_spectrograms

__all__ = ["DcaseBaseline", "SeedReference", "dcase_vectors", "seed_image"]

log = logging.getLogger(__name__)

SEED_FRAMES = 320
DCASE_FRAMES = 5


def _spec(clip: Clip, params: FeatureParams, cache: dict | None) -> np.ndarray:
    key = (str(clip.path), params)
    if cache is not None and key in cache:
        return cache[key]
    spec = clip_spectrograms(clip, params, all_channels=False)[0]
    if cache is not None:
        cache[key] = spec
    return spec


def seed_image(logmel: np.ndarray, *, frames: int = SEED_FRAMES) -> np.ndarray:
    """A whole clip's log-mel (n_mels, n) cropped or padded with its minimum to ``frames`` columns."""
    if logmel.shape[1] >= frames:
        return logmel[:, :frames]
    return np.pad(logmel, ((0, 0), (0, frames - logmel.shape[1])), constant_values=float(logmel.min()))


def dcase_vectors(logmel: np.ndarray, *, frames: int = DCASE_FRAMES) -> np.ndarray:
    """Stacks of ``frames`` consecutive frames, shape (n - frames + 1, frames * n_mels), as the baseline builds them."""
    n_mels, n = logmel.shape
    n_vectors = n - frames + 1
    out = np.empty((n_vectors, frames * n_mels), dtype=np.float32)
    for t in range(frames):
        out[:, n_mels * t : n_mels * (t + 1)] = logmel[:, t : t + n_vectors].T
    return out


@dataclass
class SeedReference:
    """The seed's whole-clip conv autoencoder + LOF(k=5) configuration."""

    epochs: int = 50
    batch_size: int = 8
    n_neighbors: int = 5
    seed: int = 0
    threshold_quantile: float = 0.99
    params: FeatureParams = field(default_factory=FeatureParams)
    name: str = "seed configuration"

    def _images(self, clips: list[Clip], cache) -> np.ndarray:
        return np.stack([seed_image(_spec(c, self.params, cache)) for c in clips]).astype(np.float32)

    def _scale(self, images: np.ndarray) -> np.ndarray:
        return ((images - self.min_) / (self.max_ - self.min_))[..., None].astype(np.float32)

    def fit(self, train: list[Clip], validation: list[Clip], *, cache: dict | None = None) -> SeedReference:
        from sklearn.neighbors import LocalOutlierFactor
        from soundsentry.export.tf_compat import import_tensorflow

        import_tensorflow()
        import keras
        from keras import layers

        images = self._images(train, cache)
        # Global min-max over the training images, as the seed scaled its inputs.
        self.min_, self.max_ = float(images.min()), float(images.max())
        x = self._scale(images)
        keras.utils.set_random_seed(self.seed)
        inputs = keras.Input(x.shape[1:])
        h = inputs
        for f in (16, 32, 64, 64):
            h = layers.Conv2D(f, 3, padding="same", activation="relu")(h)
            h = layers.MaxPooling2D(2, padding="same")(h)
        latent = h  # (8, 20, 64) for 128 x 320 inputs
        for f in (64, 64, 32, 16):
            h = layers.Conv2D(f, 3, padding="same", activation="relu")(h)
            h = layers.UpSampling2D(2)(h)
        outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(h)
        autoencoder = keras.Model(inputs, outputs)
        self.encoder_ = keras.Model(inputs, layers.Flatten()(latent))
        autoencoder.compile(optimizer="adam", loss="mse")
        history = autoencoder.fit(x, x, epochs=self.epochs, batch_size=self.batch_size, shuffle=True, verbose=0)
        self.train_loss_ = float(history.history["loss"][-1])
        self.latent_shape_ = tuple(int(d) for d in latent.shape[1:])
        train_features = self.encoder_.predict(x, verbose=0)
        k = min(self.n_neighbors, len(train_features) - 1)
        self.n_neighbors_ = k
        self.lof_ = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(train_features)
        # Calibration as for our bundles: held-out normals, plus each training clip scored by a LOF without it.
        calib = list(self.score(validation, cache=cache))
        for i in range(len(train_features) if len(train_features) > 2 else 0):
            rest = np.delete(train_features, i, axis=0)
            loo = LocalOutlierFactor(n_neighbors=min(k, len(rest) - 1), novelty=True).fit(rest)
            calib.append(float(-loo.score_samples(train_features[i : i + 1])[0]))
        self.threshold_ = robust_threshold(calib, quantile=self.threshold_quantile)
        return self

    def score(self, clips: list[Clip], *, cache: dict | None = None) -> np.ndarray:
        """Clip scores, higher = more anomalous (the LOF)."""
        features = self.encoder_.predict(self._scale(self._images(clips, cache)), verbose=0)
        return -self.lof_.score_samples(features)


@dataclass
class DcaseBaseline:
    """The DCASE 2020 Task 2 dense autoencoder baseline."""

    epochs: int = 100
    batch_size: int = 512
    validation_split: float = 0.1
    seed: int = 0
    threshold_quantile: float = 0.99
    params: FeatureParams = field(default_factory=FeatureParams)
    name: str = "DCASE 2020 baseline"

    def fit(self, train: list[Clip], validation: list[Clip], *, cache: dict | None = None) -> DcaseBaseline:
        from soundsentry.export.tf_compat import import_tensorflow

        import_tensorflow()
        import keras
        from keras import layers

        x = np.concatenate([dcase_vectors(_spec(c, self.params, cache)) for c in train])
        keras.utils.set_random_seed(self.seed)
        inputs = keras.Input((x.shape[1],))
        h = inputs
        for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
            h = layers.Dense(units)(h)
            h = layers.BatchNormalization()(h)
            h = layers.Activation("relu")(h)
        outputs = layers.Dense(x.shape[1])(h)
        self.model_ = keras.Model(inputs, outputs)
        self.model_.compile(optimizer="adam", loss="mean_squared_error")
        history = self.model_.fit(
            x,
            x,
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=True,
            validation_split=self.validation_split,
            verbose=0,
        )
        self.train_loss_ = float(history.history["loss"][-1])
        self.threshold_ = robust_threshold(list(self.score(validation, cache=cache)), quantile=self.threshold_quantile)
        return self

    def score(self, clips: list[Clip], *, cache: dict | None = None) -> np.ndarray:
        """Mean squared reconstruction error of each clip's vectors (higher = more anomalous)."""
        out = []
        for c in clips:
            v = dcase_vectors(_spec(c, self.params, cache))
            recon = self.model_.predict(v, verbose=0, batch_size=1024)
            out.append(float(np.mean(np.mean((v - recon) ** 2, axis=1))))
        return np.asarray(out)
