"""Importing TensorFlow safely on the machines we train on.

TensorFlow 2.21's oneDNN kernels segfaulted here while fitting a conv autoencoder with
Conv2DTranspose layers; ``TF_ENABLE_ONEDNN_OPTS=0`` avoids it. The variable only works if
it is set before TensorFlow is first imported, so every import goes through this function.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def import_tensorflow():
    """Return the ``tensorflow`` module with oneDNN optimisations off (unless the user chose)."""
    if "tensorflow" in sys.modules:
        if os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
            log.warning("TensorFlow was imported before SoundSentry could disable oneDNN; training may crash")
    else:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf
