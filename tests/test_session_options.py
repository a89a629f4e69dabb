"""ONNX Runtime settings chosen for speed leave the encoder's output bit-for-bit unchanged."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from soundsentry.edgel3_encoder import edgel3_inputs
from soundsentry.logmel_encoder import ENCODER_INPUT, ENCODER_OUTPUT
from soundsentry.onnx_session import default_session_options, open_session

from .conftest import DATA_CLIPS


@pytest.mark.parametrize("which", ["fan_model", "logmel_model"])
def test_spinning_is_off_and_latents_are_unchanged(request, which):
    model = request.getfixturevalue(which)  # the shipped (int8 EdgeL3) and the log-mel encoder
    options = default_session_options(threads=2)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    windows = np.concatenate([model.windows(model.features(model.load(p))) for p in DATA_CLIPS])
    if model.encoder.kind == "edgel3-views":
        windows = edgel3_inputs(windows)  # what the EdgeL3 graph takes of a window
    path = str(model.bundle.path(model.card["encoder"]["file"]))
    ours = open_session(path, inputs=[ENCODER_INPUT], outputs=[ENCODER_OUTPUT], options=options)
    # ONNX Runtime's own defaults (spinning threads) as the reference, on the same graph file.
    plain = ort.SessionOptions()
    plain.intra_op_num_threads = 2
    reference = ort.InferenceSession(path, sess_options=plain, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(
        ours.run([ENCODER_OUTPUT], {ENCODER_INPUT: windows})[0],
        reference.run([ENCODER_OUTPUT], {ENCODER_INPUT: windows})[0],
    )
