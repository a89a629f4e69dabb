"""The GUI frame-rate benchmark (studies/gui_benchmark.py, run from a checkout) works with both encoder kinds."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6", reason="needs the [gui] extra (PySide6)")
pytest.importorskip("pyqtgraph", reason="needs the [gui] extra (pyqtgraph)")
pytest.importorskip("pytestqt", reason="needs pytest-qt (the [test] extra)")

import soundsentry

from .conftest import LOGMEL_BUNDLE


@pytest.mark.parametrize("model_ref", ["fan", str(LOGMEL_BUNDLE)], ids=["views", "logmel"])
def test_update_costs_times_every_update_of_the_models_display(qapp, model_ref):
    from studies.gui_benchmark import update_costs

    fast, slow = update_costs(soundsentry.load_model(model_ref), updates=3)
    assert len(fast) == len(slow) == 3
    assert all(t > 0 for t in fast + slow)
