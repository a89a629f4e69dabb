"""EdgeL3 SEA-UST-64 rebuilt in Keras 3 from its kapre-era h5, whole or cut after a mid-level block.

The h5 (Keras 2.0.9, MIT, ``ksangeeta2429/edgel3``) holds a kapre 0.1 ``Melspectrogram`` layer followed by
BN and four conv blocks. kapre does not load in Keras 3, so the rebuilt network starts *after* the front end:
its input is the log-mel of :func:`soundsentry.edgel3_frontend.edgel3_log_mel`, shape (batch, 64, 50).

Blocks (channels_last, (bands, frames, channels)):

==========  =====================================================  ===========
block       layers                                                  output
==========  =====================================================  ===========
input       BN over the single channel                              (64, 50, 1)
1           2 x (conv 3x3 32 + BN + ReLU), max-pool 2x2             (32, 25, 32)
2           2 x (conv 3x3 64 + BN + ReLU), max-pool 2x2             (16, 12, 64)
3           2 x (conv 3x3 128 + BN + ReLU), max-pool 2x2            (8, 6, 128)
4           2 x (conv 3x3 64 + BN + ReLU), max-pool 8x6 -> 64-d     (8, 6, 64) before the pool
==========  =====================================================  ===========

:func:`kapre_reference_log_mel` replays kapre 0.1's maths in TensorFlow with the DFT kernels and mel matrix
*stored in the h5* (a strided conv2d, as kapre did): the reference the NumPy front end is tested against.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from soundsentry.edgel3_frontend import EDGEL3_FRAMES, EDGEL3_N_MELS, EDGEL3_WINDOW
from soundsentry.export.tf_compat import import_tensorflow

log = logging.getLogger(__name__)

__all__ = [
    "ENCODERS",
    "build_edgel3",
    "build_named_encoder",
    "edgel3_weights_path",
    "kapre_reference_log_mel",
    "load_edgel3_h5",
]

WEIGHTS_FILE = "edgel3_sea_ust_audio_emb_64.h5.gz"
_WEIGHTS_DIR = Path("shared") / "weights" / "edgel3-sea-ust-64"

# (conv layer names, BN layer names, filters) per block, as named in the h5.
_BLOCKS = (
    (("conv2d_1", "conv2d_2"), ("batch_normalization_2", "batch_normalization_3"), 32),
    (("conv2d_3", "conv2d_4"), ("batch_normalization_4", "batch_normalization_5"), 64),
    (("conv2d_5", "conv2d_6"), ("batch_normalization_6", "batch_normalization_7"), 128),
    (("conv2d_7", "audio_embedding_layer"), ("batch_normalization_8", "batch_normalization_9"), 64),
)

#: Named encoders: (block, reduction, pooled). See :func:`build_edgel3`.
ENCODERS = {
    "full64": (4, "embedding", True),
    "block3_time_mean_flat": (3, "time_mean_flat", True),
    "block3_mean": (3, "mean", True),
    "block4_time_mean_flat": (4, "time_mean_flat", False),
    "block4_mean": (4, "mean", False),
}


def edgel3_weights_path(path: str | Path | None = None) -> Path:
    """Find ``edgel3_sea_ust_audio_emb_64.h5.gz``.

    Looks at ``path``, then ``$SOUNDSENTRY_EDGEL3_WEIGHTS``, then ``shared/weights/edgel3-sea-ust-64/`` in the
    working directory, the repository and the repository's parent folder.

    Raises
    ------
    FileNotFoundError
        Naming every place looked at.
    """
    candidates = []
    if path is not None:
        candidates.append(Path(path))
    if os.environ.get("SOUNDSENTRY_EDGEL3_WEIGHTS"):
        candidates.append(Path(os.environ["SOUNDSENTRY_EDGEL3_WEIGHTS"]))
    repo = Path(__file__).resolve().parent.parent
    for root in (Path.cwd(), repo, repo.parent):
        candidates.append(root / _WEIGHTS_DIR / WEIGHTS_FILE)
    for candidate in candidates:
        if candidate.is_dir():
            candidate = candidate / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("EdgeL3 weights not found; looked at: " + ", ".join(str(c) for c in candidates))


@lru_cache(maxsize=2)
def load_edgel3_h5(path: str | Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Read every layer's weights from the (optionally gzipped) h5, without kapre or Keras.

    Returns
    -------
    dict
        ``{layer name: {weight name without ':0': array}}``, e.g. ``["conv2d_1"]["kernel"]`` (3, 3, 1, 32),
        ``["melspectrogram_1"]["Variable"]`` the (513, 64) mel matrix, ``["real_kernels"]`` (1024, 1, 1, 513).
    """
    import h5py

    file = edgel3_weights_path(path)
    raw = file.read_bytes()
    if file.suffix == ".gz":
        raw = gzip.decompress(raw)
    weights: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(io.BytesIO(raw), "r") as h5:
        root = h5["model_weights"] if "model_weights" in h5 else h5
        for layer in root.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            group = root[layer]
            arrays = {}
            for name in group.attrs["weight_names"]:
                name = name.decode() if isinstance(name, bytes) else name
                arrays[name.split("/")[-1].split(":")[0]] = np.asarray(group[name])
            if arrays:
                weights[layer] = arrays
    log.info("read %d weighted layers from %s", len(weights), file)
    return weights


def _set_bn(layer, stored: dict[str, np.ndarray]) -> None:
    layer.set_weights([stored["gamma"], stored["beta"], stored["moving_mean"], stored["moving_variance"]])


def build_edgel3(
    *,
    block: int = 4,
    reduce: str = "embedding",
    pooled: bool = True,
    weights: str | Path | None = None,
    name: str | None = None,
):
    """EdgeL3 with the h5's weights, from log-mel to the embedding or to a block's activations.

    Parameters
    ----------
    block : {1, 2, 3, 4}
        Last conv block kept.
    reduce : {"embedding", "time_mean_flat", "mean", "none"}
        ``"embedding"`` (block 4 only, ``pooled`` True): EdgeL3's own 64-d output (max-pool 8x6, flatten).
        ``"time_mean_flat"``: mean over frames, then (bands, channels) flattened band-major -> bands * channels.
        ``"mean"``: mean over bands and frames -> channels. ``"none"``: the (bands, frames, channels) activations.
    pooled : bool
        Blocks 1-3: take the block's output after its 2x2 max-pool (True) or before it. Block 4's own pool is
        the embedding's, so block 4 with ``time_mean_flat``/``mean``/``none`` needs ``pooled=False``.
    weights : path, optional
        The h5 (.h5 or .h5.gz); found by :func:`edgel3_weights_path` when omitted.

    Returns
    -------
    keras.Model
        Input ``(batch, 64, 50)`` float32 log-mel dB; output as above (e.g. block 3 pooled, ``time_mean_flat``:
        (batch, 1024); ``mean``: (batch, 128); ``embedding``: (batch, 64)).
    """
    import_tensorflow()
    import keras

    if block not in (1, 2, 3, 4):
        raise ValueError(f"block must be 1-4, got {block}")
    if reduce not in ("embedding", "time_mean_flat", "mean", "none"):
        raise ValueError(f"unknown reduce {reduce!r}")
    if reduce == "embedding" and (block != 4 or not pooled):
        raise ValueError("reduce='embedding' is EdgeL3's own output: block=4, pooled=True")
    if block == 4 and pooled and reduce != "embedding":
        raise ValueError("block 4's pool is the embedding's: use pooled=False to reduce its activations")
    stored = load_edgel3_h5(weights)

    inputs = keras.Input((EDGEL3_N_MELS, EDGEL3_FRAMES), name="logmel")
    x = keras.layers.Reshape((EDGEL3_N_MELS, EDGEL3_FRAMES, 1))(inputs)
    bn0 = keras.layers.BatchNormalization(epsilon=1e-3, name="batch_normalization_1")
    x = bn0(x)
    assigned = [(bn0, "batch_normalization_1")]
    for index, (convs, bns, filters) in enumerate(_BLOCKS[:block], start=1):
        for conv_name, bn_name in zip(convs, bns, strict=True):
            conv = keras.layers.Conv2D(filters, 3, padding="same", name=conv_name)
            bn = keras.layers.BatchNormalization(epsilon=1e-3, name=bn_name)
            x = keras.layers.ReLU()(bn(conv(x)))
            assigned += [(conv, conv_name), (bn, bn_name)]
        if index < 4 and (pooled or index < block):
            x = keras.layers.MaxPooling2D(2, name=f"max_pooling2d_{index}")(x)
    if reduce == "embedding":
        x = keras.layers.Flatten()(keras.layers.MaxPooling2D((8, 6), name="max_pooling2d_4")(x))
    elif reduce == "time_mean_flat":
        x = keras.layers.Flatten()(keras.ops.mean(x, axis=2))
    elif reduce == "mean":
        x = keras.ops.mean(x, axis=(1, 2))
    model = keras.Model(inputs, x, name=name or f"edgel3_block{block}_{reduce}")
    for layer, stored_name in assigned:
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([stored[stored_name]["kernel"], stored[stored_name]["bias"]])
        else:
            _set_bn(layer, stored[stored_name])
    return model


def build_named_encoder(name: str, *, weights: str | Path | None = None):
    """One of :data:`ENCODERS` by name, e.g. ``"block3_time_mean_flat"`` (see :func:`build_edgel3`)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown EdgeL3 encoder {name!r}; choose from {sorted(ENCODERS)}")
    block, reduce, pooled = ENCODERS[name]
    return build_edgel3(block=block, reduce=reduce, pooled=pooled, weights=weights, name=name)


def kapre_reference_log_mel(windows_8k: np.ndarray, *, weights: str | Path | None = None) -> np.ndarray:
    """kapre 0.1's ``Melspectrogram`` of the h5, replayed in TensorFlow with the stored kernels and mel matrix.

    As kapre 0.1 computed it: conv2d of the (batch, 8000, 1, 1) signal with the stored (1024, 1, 1, 513)
    real and imaginary DFT kernels, stride (160, 1), ``'same'`` padding; power = re^2 + im^2; times the
    stored mel matrix; ``sqrt`` (``power_melgram`` 1.0); ``10 log10(max(x, 1e-10))`` minus the maximum over
    each window, floored at -80.

    Parameters
    ----------
    windows_8k : np.ndarray, shape (n, 8000)

    Returns
    -------
    np.ndarray, shape (n, 64, 50), float32
    """
    tf = import_tensorflow()
    stored = load_edgel3_h5(weights)["melspectrogram_1"]
    x = tf.constant(np.asarray(windows_8k, dtype=np.float32).reshape(-1, EDGEL3_WINDOW, 1, 1))
    real = tf.nn.conv2d(x, stored["real_kernels"], strides=(160, 1), padding="SAME")
    imag = tf.nn.conv2d(x, stored["imag_kernels"], strides=(160, 1), padding="SAME")
    power = tf.squeeze(real**2 + imag**2, axis=2)  # (n, 50, 513)
    mel = tf.sqrt(tf.tensordot(power, tf.constant(stored["Variable"]), axes=1))  # (n, 50, 64)
    db = 10.0 * tf.math.log(tf.maximum(mel, 1e-10)) / tf.math.log(10.0)
    db = tf.maximum(db - tf.reduce_max(db, axis=(1, 2), keepdims=True), -80.0)
    return tf.transpose(db, (0, 2, 1)).numpy()
