"""Every shipped bundle loads with its checks, is small, and states its evidence honestly."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundsentry
from soundsentry.bundle import list_shipped_models

from .conftest import EXAMPLES_DIR, MONO_CLIP

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
    # A shipped bundle heard every normal clip of its type: it quotes no figure of its own, only the
    # recipe's held-out figures (the same configuration trained without the test machines / files).
    assert "evaluation" not in card
    assert training["split"].startswith(f"{name} shipped") and "recipe" in card["evidence"]["note"]
    assert set(card["evidence"]["selection"]) >= {"candidate", "detector", "rule"}
    assert card["evidence"]["selection"]["detector"] == card["default_detector"]
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


def test_shipped_bundles_never_heard_the_example_recordings():
    """The README's first command scores examples/: no shipped bundle trained or calibrated on them (by PCM)."""
    from soundsentry.audio import read_audio

    def pcm_sha256(path) -> str:
        samples, _ = read_audio(path)
        return hashlib.sha256(np.round(samples * 32768).astype("<i2").tobytes()).hexdigest()

    examples = {pcm_sha256(path) for path in sorted(EXAMPLES_DIR.glob("*.flac"))}
    assert len(examples) == 4
    # The digest convention is the card's: a fan clip the fan bundle did hear is found by it.
    fan = soundsentry.load_model("fan").card["training"]
    assert pcm_sha256(MONO_CLIP) in {c["pcm_sha256"] for c in fan["train_clips"] + fan["validation_clips"]}
    for name in SHIPPED:
        training = soundsentry.load_model(name).card["training"]
        heard = {c["pcm_sha256"] for c in training["train_clips"] + training["validation_clips"]}
        assert len(heard) == len(training["train_clips"]) + len(training["validation_clips"]), name
        assert not heard & examples, name


def test_shipped_cards_are_valid_json_with_no_anomaly_in_training():
    for name in SHIPPED:
        card = json.loads((soundsentry.load_model(name).bundle.root / "model.json").read_text())
        used = card["training"]["train_clips"] + card["training"]["validation_clips"]
        assert not any("anomaly" in c["file"] or "abnormal" in c["file"] for c in used), name
