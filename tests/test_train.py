"""A short real training and export run, end to end, on real clips (needs the [train] extra).

It runs the training CLI in a subprocess, so a TensorFlow crash (the oneDNN segfault seen
with Conv2DTranspose) fails this test with its exit status instead of killing the suite.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
pytest.importorskip("tf2onnx")
pytest.importorskip("skl2onnx")

DATA = Path(__file__).parent / "data"
CLIPS = {
    # file: (machine_id, label)
    "yos95_id_06_normal_id_06_00000012.flac": ("id_06", "normal"),
    "abdul_id_06_normal.flac": ("id_06", "normal"),
    "minchala_section_00_fan_train_section_00_source_train_normal_0040_m-n_X.flac": ("section_00", "normal"),
    "yos95_id_06_anomaly_id_06_00000002.flac": ("id_06", "abnormal"),
}


@pytest.fixture(scope="module")
def trained_bundle(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("train")
    csv_path = root / "clips.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "machine_type", "machine_id", "label", "source_repo"])
        for name, (machine, label) in CLIPS.items():
            writer.writerow([str(DATA / name), "fan", machine, label, "tests"])
    out = root / "bundle"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "soundsentry.train",
            str(csv_path),
            "--machine-type",
            "fan",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--patience",
            "1",
            "--validation-fraction",
            "0.34",
            "--center",
            "window_median",
            "--window-frames",
            "32",
            "--latent-dim",
            "16",
            "--detector",
            "ocsvm",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out, proc


def test_training_run_exits_cleanly(trained_bundle):
    out, proc = trained_bundle
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.json").is_file()


def test_export_checked_itself_against_keras_and_sklearn(trained_bundle):
    out, _ = trained_bundle
    card = json.loads((out / "model.json").read_text())
    checks = card["export_checks"]
    assert checks["encoder_onnx_vs_keras_rel_err"] <= 1e-4
    assert checks["ocsvm_onnx_vs_sklearn_rel_err"] <= 1e-4
    assert checks["lof_numpy_vs_sklearn_rel_err"] <= 1e-5
    assert checks["knn_numpy_vs_sklearn_rel_err"] <= 1e-5
    assert checks["mahalanobis_numpy_vs_sklearn_rel_err"] <= 1e-5


def test_card_records_training_clips_and_no_anomaly(trained_bundle):
    out, _ = trained_bundle
    card = json.loads((out / "model.json").read_text())
    used = {c["file"] for c in card["training"]["train_clips"] + card["training"]["validation_clips"]}
    assert "yos95_id_06_anomaly_id_06_00000002.flac" not in used
    assert used <= set(CLIPS)
    assert all(len(c["pcm_sha256"]) == 64 for c in card["training"]["train_clips"])
    assert card["training"]["config"]["seed"] == 0
    assert set(card["files"]) == {"encoder.onnx", "ocsvm.onnx", "lof.npz", "knn.npz", "mahalanobis.npz"}
    assert card["versions"]["tensorflow"]


def test_trained_bundle_scores_with_the_runtime(trained_bundle):
    import soundsentry

    out, _ = trained_bundle
    model = soundsentry.load_model(out)
    assert model.detectors == ["lof", "ocsvm", "knn", "mahalanobis"]
    for detector in model.detectors:
        result = model.score(DATA / "yos95_id_06_anomaly_id_06_00000002.flac", detector=detector)
        assert np.isfinite(result.window_scores).all()
        assert result.verdict in ("normal", "abnormal")


def test_evaluation_reports_metrics_from_the_runtime(trained_bundle):
    from soundsentry.train.data import Clip
    from soundsentry.train.pipeline import evaluate_bundle

    out, _ = trained_bundle
    clips = [
        Clip(path=DATA / "yos95_id_06_normal_id_06_00000012.flac", machine_id="id_06", label="normal"),
        Clip(path=DATA / "yos95_id_06_anomaly_id_06_00000002.flac", machine_id="id_06", label="abnormal"),
    ]
    report = evaluate_bundle(out, clips)
    assert (report["n_normal"], report["n_abnormal"]) == (1, 1)
    for detector in ("lof", "ocsvm", "knn", "mahalanobis"):
        scores = report[detector]["clip_scores"]
        # With one clip of each label, AUC is 1 exactly when the abnormal clip scores higher.
        assert report[detector]["auc"] == (1.0 if scores[1] > scores[0] else 0.0 if scores[1] < scores[0] else 0.5)


def test_train_cli_parses_arguments_before_importing_tensorflow():
    code = (
        "import sys\n"
        "from soundsentry.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported for --help'\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--machine-type" in proc.stdout


def test_card_records_the_chosen_configuration(trained_bundle):
    out, _ = trained_bundle
    card = json.loads((out / "model.json").read_text())
    assert card["normalization"]["center"] == "window_median"
    assert card["window"]["frames"] == 32 and card["window"]["hop_frames"] == 8
    assert card["encoder"]["latent_dim"] == 16 and card["encoder"]["input_shape"] == [None, 128, 32]
    assert card["default_detector"] == "ocsvm"


def test_runtime_centres_windows_as_training_did(trained_bundle):
    """The runtime's windows of a centred bundle have zero median per band, as the training windows had."""
    import soundsentry

    out, _ = trained_bundle
    model = soundsentry.load_model(out)
    windows = model.windows(model.features(model.load(DATA / "abdul_id_06_normal.flac")))
    assert windows.shape[1:] == (128, 32)
    np.testing.assert_allclose(np.median(windows, axis=2), 0.0, atol=1e-5)
    result = model.score(DATA / "abdul_id_06_normal.flac")
    assert result.detector == "ocsvm" and np.isfinite(result.score)


def test_calibration_scores_are_the_runtime_scores_and_thresholds_follow_the_rule(trained_bundle):
    """Held-out clips' calibration scores equal what the runtime gives them; thresholds come from those scores."""
    import soundsentry
    from soundsentry.calibration import robust_threshold

    out, _ = trained_bundle
    model = soundsentry.load_model(out)
    training = model.card["training"]
    validation = [DATA / c["file"] for c in training["validation_clips"]]
    n_scores = len(validation) + len(training["train_clips"])  # held-out clips, then leave-one-clip-out
    for name, spec in model.card["detectors"].items():
        scores = spec["calibration_scores"]
        assert len(scores) == n_scores
        runtime = [model.score(path, detector=name).score for path in validation]
        np.testing.assert_allclose(scores[: len(validation)], runtime, rtol=1e-4, atol=1e-5)
        # The card rounds scores to 6 decimals; the threshold was computed before rounding.
        assert spec["threshold"] == pytest.approx(robust_threshold(scores, quantile=0.99), rel=1e-5, abs=1e-5)


def test_training_fits_every_window_detector_and_never_the_views_detector():
    """The views detector judges EdgeL3 rows per recording (train.views_bundle); a log-mel training run cannot fit it."""
    from soundsentry.detector_kinds import KINDS as ALL_KINDS
    from soundsentry.train.cli import build_parser
    from soundsentry.train.pipeline import KINDS

    assert [k.name for k in KINDS] == [k.name for k in ALL_KINDS if k.name != "views"]
    (action,) = [a for a in build_parser()._actions if "--detector" in a.option_strings]
    assert "views" not in action.choices and set(action.choices) == {k.name for k in KINDS}
