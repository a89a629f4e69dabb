"""The convolutional autoencoder trained on normal log-mel windows."""

from __future__ import annotations

from soundsentry.export.tf_compat import import_tensorflow

__all__ = ["build_autoencoder"]


def build_autoencoder(*, n_mels: int = 128, frames: int = 64, latent_dim: int = 64, filters=(16, 32, 64, 64)):
    """Build ``(autoencoder, encoder)`` Keras models.

    The encoder maps a normalised window ``(batch, n_mels, frames)`` to a dense latent
    ``(batch, latent_dim)``: four stride-2 convolutions then one dense layer. A small dense
    latent (instead of the seed's 10,240-dimensional flattened feature map) keeps nearest
    neighbour search cheap and meaningful.

    Returns
    -------
    autoencoder : keras.Model
        Input window -> reconstruction, trained with mean squared error.
    encoder : keras.Model
        Input window -> latent; shares the autoencoder's layers.
    """
    import_tensorflow()
    import keras
    from keras import layers

    steps = len(filters)
    if n_mels % 2**steps or frames % 2**steps:
        raise ValueError(f"n_mels and frames must be divisible by {2**steps}")
    inputs = keras.Input((n_mels, frames), name="logmel")
    x = layers.Reshape((n_mels, frames, 1))(inputs)
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    shape = (n_mels // 2**steps, frames // 2**steps, filters[-1])
    x = layers.Flatten()(x)
    latent = layers.Dense(latent_dim, name="latent")(x)
    y = layers.Dense(shape[0] * shape[1] * shape[2], activation="relu")(latent)
    y = layers.Reshape(shape)(y)
    for f in reversed(filters[:-1]):
        y = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(y)
    y = layers.Conv2DTranspose(1, 3, strides=2, padding="same")(y)
    outputs = layers.Reshape((n_mels, frames))(y)
    autoencoder = keras.Model(inputs, outputs, name="autoencoder")
    encoder = keras.Model(inputs, latent, name="encoder")
    return autoencoder, encoder
