"""Every shipped bundle loads with its checks, is small, and states its evidence honestly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundsentry
from soundsentry.bundle import list_shipped_models

from .conftest import MONO_CLIP

SHIPPED = ("fan", "pump", "slider", "valve", "general")
MAX_BUNDLE_BYTES = 5_000_000


def test_every_machine_type_and_general_is_shipped():
    assert set(SHIPPED) <= set(list_shipped_models())


@pytest.mark.parametrize("name", SHIPPED)
def test_bundle_loads_scores_and_is_small(name):
    model = soundsentry.load_model(name)  # checks format, checksums and ONNX interfaces
    root = model.bundle.root
    size = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
    assert size < MAX_BUNDLE_BYTES, f"{name}: {size} bytes"
    for detector in model.detectors:
        result = model.score(MONO_CLIP, detector=detector)
        assert np.isfinite(result.window_scores).all() and result.verdict in ("normal", "abnormal")


@pytest.mark.parametrize("name", SHIPPED)
def test_card_states_its_evidence_with_counts(name):
    card = soundsentry.load_model(name).card
    checks = card["export_checks"]
    assert checks["encoder_onnx_vs_keras_rel_err"] <= 1e-4 and checks["lof_numpy_vs_sklearn_rel_err"] <= 1e-5
    training = card["training"]
    assert training["train_clips"] and training["validation_clips"] and training["split"]
    if name == "general":
        heard = set(card["evidence"]["types_heard"])
        assert {"fan", "pump", "slider", "valve", "bearing", "gearbox"} <= heard
        assert "evaluation" not in card
        return
    ev = card["evaluation"]
    assert ev["n_normal"] > 0 and ev["n_abnormal"] > 0 and ev["machines"]
    # The test machines were never heard: none of their clips trained or calibrated the model.
    heard = {c["machine_id"] for c in training["train_clips"] + training["validation_clips"]}
    assert not heard & set(ev["machines"])
    for split in ("cross-machine", "same-machine"):
        evidence = card["evidence"][split]
        counts = evidence["counts"]
        assert min(counts.values()) > 0
        thin = min(counts["test_normal"], counts["test_abnormal"]) < 10
        assert evidence["too_thin"] is thin
        # A thin test quotes no figure, only its counts; a solid one quotes AUC, pAUC and F1.
        assert (evidence["ours"] == "too thin for a figure") is thin
        if not thin:
            assert {"auc", "pauc", "f1"} <= set(evidence["ours"])
    if ev.get("too_thin"):
        assert "too thin" in card["notes"]
        assert all("auc" not in ev[d] for d in card["detectors"])
    else:
        assert all("auc" in ev[d] for d in card["detectors"])


def test_shipped_cards_are_valid_json_with_no_anomaly_in_training():
    for name in SHIPPED:
        card = json.loads((soundsentry.load_model(name).bundle.root / "model.json").read_text())
        used = card["training"]["train_clips"] + card["training"]["validation_clips"]
        assert not any("anomaly" in c["file"] or "abnormal" in c["file"] for c in used), name
