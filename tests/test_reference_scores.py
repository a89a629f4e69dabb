"""The log-mel fixture bundle scores the real clips exactly as before the refactor (stored by tests/data/make_reference_scores.py)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from .conftest import DATA_DIR

_spec = importlib.util.spec_from_file_location("make_reference_scores", DATA_DIR / "make_reference_scores.py")
make_reference_scores = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reference_scores)


def test_the_logmel_bundle_scores_real_clips_as_stored():
    want = json.loads(make_reference_scores.OUT.read_text())
    got = make_reference_scores.compute()
    assert sorted(got) == sorted(want)
    n = 0
    for bundle, detectors in want.items():
        assert sorted(got[bundle]) == sorted(detectors), bundle
        for detector, clips in detectors.items():
            assert sorted(got[bundle][detector]) == sorted(clips)
            for clip, ref in clips.items():
                new = got[bundle][detector][clip]
                where = f"{bundle}/{detector}/{clip}"
                assert new["score"] == pytest.approx(ref["score"], rel=1e-5), where
                np.testing.assert_allclose(new["window_scores"], ref["window_scores"], rtol=1e-5, err_msg=where)
                n += 1
    assert n >= 4 * 10  # four detectors, the real clips
