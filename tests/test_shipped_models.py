"""Every shipped bundle loads with its checks, is small, states its evidence honestly, and scores
as its steps say: EdgeL3 front end -> 1-s windows -> [embedding | shape | level] rows -> views."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import soundsentry
from soundsentry.bundle import list_shipped_models
from soundsentry.calibration import lognormal_threshold

from .conftest import EXAMPLES_DIR, MONO_CLIP
from .test_light_runtime import BLOCKED, SCRIPT

SHIPPED = ("fan", "pump", "slider", "valve", "general")
MAX_BUNDLE_BYTES = 5_000_000
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.flac"))
VIEW_NAMES = ("embedding", "events", "shape", "level")


@pytest.fixture(scope="module")
def shipped() -> dict[str, soundsentry.Model]:
    return {name: soundsentry.load_model(name) for name in SHIPPED}


def test_every_machine_type_and_general_is_shipped():
    assert set(SHIPPED) <= set(list_shipped_models())


@pytest.mark.parametrize("name", SHIPPED)
def test_bundle_loads_scores_and_is_small(shipped, name):
    model = shipped[name]  # loading checked format, checksums and ONNX interfaces
    root = model.bundle.root
    size = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
    assert size < MAX_BUNDLE_BYTES, f"{name}: {size} bytes"
    for detector in model.detectors:
        result = model.score(MONO_CLIP, detector=detector)
        assert np.isfinite(result.window_scores).all() and result.verdict in ("normal", "abnormal")


def test_every_shipped_bundle_loads_and_scores_with_the_plain_runtime(tmp_path):
    """No TensorFlow, scikit-learn, librosa, SciPy, onnx... (the blocker of test_light_runtime)."""
    prelude = SCRIPT.split("import soundsentry\n")[0].format(blocked=BLOCKED)
    body = (
        "import soundsentry\n"
        f"out = {{}}\nfor name in {list(SHIPPED)!r}:\n"
        "    model = soundsentry.load_model(name)\n"
        f"    result = model.score({str(EXAMPLES[0])!r})\n"
        "    out[name] = [model.encoder.kind, result.detector, result.score, result.explanation]\n"
        "out['loaded'] = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)\n"
        "out['attempts'] = attempts\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + body], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report.pop("loaded") == []
    report.pop("attempts")
    assert set(report) == set(SHIPPED)
    for name, (kind, detector, score, explanation) in report.items():
        assert kind == "edgel3-views" and detector == "views", name
        assert np.isfinite(score) and score > 0 and explanation, name


@pytest.mark.parametrize("name", SHIPPED)
def test_card_names_the_edgel3_views_encoder_and_its_licence(shipped, name):
    model = shipped[name]
    encoder = model.card["encoder"]
    assert encoder["kind"] == "edgel3-views" and model.encoder.kind == "edgel3-views"
    assert encoder["licence_file"] == "EDGEL3_LICENSE.txt"
    assert "EDGEL3_LICENSE.txt" in model.card["files"]  # checksummed, so loading proved it is there and intact
    licence = (model.bundle.root / "EDGEL3_LICENSE.txt").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "Permission is hereby granted" in licence
    assert "EdgeL3" in encoder["network"] and "MIT" in encoder["network"]


@pytest.mark.parametrize("name", SHIPPED)
def test_card_views_and_their_calibration_are_the_detectors(shipped, name):
    """The card's views, thresholds and leave-one-recording-out statistics are those of views.npz, and each
    threshold follows the card's rule from those statistics."""
    model = shipped[name]
    assert model.detectors == ["views"] and model.default_detector == "views"
    assert model.thresholds == {"views": 1.0}
    spec = model.card["detectors"]["views"]
    det = model.detector("views")
    assert tuple(v["name"] for v in spec["views"]) == tuple(v.name for v in det.views) == VIEW_NAMES
    for entry, view in zip(spec["views"], det.views, strict=True):
        assert (entry["start"], entry["stop"], entry["floor"], entry["pool"]) == (
            view.start,
            view.stop,
            view.floor,
            view.pool,
        )
    # Each view reads its own columns of the encoder's row.
    columns = model.encoder.view_columns()
    by_name = {v.name: v for v in det.views}
    for view in ("embedding", "shape", "level"):
        assert (by_name[view].start, by_name[view].stop) == columns[view]
    assert (by_name["events"].start, by_name["events"].stop, by_name["events"].pool) == (*columns["embedding"], "windows")
    # Calibration: one statistic per enrolled recording and view, each recording scored without itself.
    n_rec = spec["n_recordings"]
    assert n_rec == det.n_recordings_ == model.card["training"]["n_recordings"] > 1
    assert det.calibration_.shape == (n_rec, len(VIEW_NAMES))
    np.testing.assert_allclose(spec["calibration_statistics"], det.calibration_, atol=1e-6)
    assert "leave-one-recording-out" in spec["calibration"]
    assert spec["n_reference"] == len(det.reference_) == model.card["training"]["n_windows"]
    per_view = 1.0 - (1.0 - spec["quantile"]) / len(det.views)
    for v, view in enumerate(det.views):
        expected = lognormal_threshold(
            np.maximum(det.calibration_[:, v], 1e-9),
            quantile=per_view,
            n_recordings=n_rec,
            prior_spread=det.prior_spread,
            single_recording_spread=det.single_recording_spread,
        )
        assert det.thresholds_[v] == pytest.approx(max(expected, view.floor), rel=1e-12)
        assert spec["views"][v]["threshold"] == pytest.approx(det.thresholds_[v], abs=1e-6)
    assert by_name["level"].floor == 3.0 and det.thresholds_[VIEW_NAMES.index("level")] >= 3.0


def _knn(queries: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean Euclidean distance of each query row to its k nearest reference rows (float64, direct)."""
    d = np.sqrt(((queries[:, None, :] - reference[None, :, :]) ** 2).sum(axis=-1))
    return np.sort(d, axis=1)[:, : min(k, reference.shape[0])].mean(axis=1)


def _reference_scores(det, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window scores and per-view clip ratios of window rows, written out from the views rule."""
    rows = rows.astype(np.float64)
    window = np.empty((len(rows), len(det.views)))
    clip = np.empty(len(det.views))
    for v, view in enumerate(det.views):
        cols = slice(view.start, view.stop)
        means = det.recording_means_[:, cols].astype(np.float64)
        windows = det.reference_[:, cols].astype(np.float64)
        window[:, v] = _knn(rows[:, cols], means if view.pool == "clip" else windows, det.n_neighbors)
        if view.pool == "clip":
            clip[v] = _knn(rows[:, cols].mean(axis=0, keepdims=True), means, det.n_neighbors)[0]
        else:
            per_window = _knn(rows[:, cols], windows, det.n_neighbors)
            clip[v] = np.sort(per_window)[::-1][: det.top_k].mean()
    return _combined(det, window / det.thresholds_), clip / det.thresholds_


def _combined(det, ratios: np.ndarray) -> np.ndarray:
    """The shipped bundles' rule ("max-then-sum"), written out: the largest ratio while none passes 1,
    else 1 + the sum of the ratios over the bound fitted to the enrolled recordings' leave-one-out sums."""
    assert det.combine == "max-then-sum"
    largest = ratios.max(axis=-1)
    return np.where(largest > 1.0, 1.0 + ratios.sum(axis=-1) / det.combined_threshold_, largest)


@pytest.mark.parametrize("name", SHIPPED)
def test_scoring_an_example_equals_the_steps(shipped, name):
    model = shipped[name]
    clip = EXAMPLES[2 % len(EXAMPLES)]
    result = model.score(clip)
    y = model.load(clip)
    # Front end: 129 rows per uncentred 2048-sample frame every 320 samples.
    features = model.features(y)
    n_frames = 1 + (y.size - 2048) // 320
    assert features.shape == (129, n_frames)
    # Windows: 50 frames every 50, side by side.
    windows = model.windows(features)
    n_windows = n_frames // 50
    assert windows.shape == (n_windows, 129, 50)
    for i in range(n_windows):
        np.testing.assert_array_equal(windows[i], features[:, 50 * i : 50 * i + 50])
    # Embedding: the bundle's ONNX graph on EdgeL3's input, then the shape and level of the window.
    rows = model.embed(windows)
    session = ort.InferenceSession(str(model.bundle.path("encoder.onnx")), providers=["CPUExecutionProvider"])
    edgel3 = 0.5 * windows[:, 64:128, :]  # dB of the mel amplitude
    edgel3 = np.maximum(edgel3 - edgel3.max(axis=(1, 2), keepdims=True), -80.0).astype(np.float32)
    np.testing.assert_allclose(rows[:, :128], session.run(["latent"], {"logmel": edgel3})[0], rtol=1e-5, atol=1e-5)
    band_db = 10 * np.log10(np.mean(10 ** (windows[:, :64, :].astype(np.float64) / 10), axis=2))
    np.testing.assert_allclose(rows[:, 128:192], band_db - band_db.mean(axis=1, keepdims=True), atol=1e-4)
    level = 10 * np.log10(np.mean(10 ** (windows[:, 128, :].astype(np.float64) / 10), axis=1))
    np.testing.assert_allclose(rows[:, 192], level, atol=1e-4)
    # Views: window scores and the clip score, from the rule written out here.
    window_scores, clip_ratios = _reference_scores(model.detector("views"), rows)
    np.testing.assert_allclose(result.window_scores, window_scores, rtol=1e-4, atol=1e-5)
    assert result.score == pytest.approx(float(_combined(model.detector("views"), clip_ratios)), rel=1e-4)
    # abs: a ratio near 0 (a level within 0.01 dB of the enrolled ones) keeps float32's absolute rounding.
    expected = dict(zip(VIEW_NAMES, clip_ratios, strict=True))
    assert {e.view: e.ratio for e in result.evidence} == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert result.verdict == ("abnormal" if clip_ratios.max() > 1.0 else "normal")
    np.testing.assert_allclose(result.window_starts, np.arange(n_windows) * 1.0)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_recorder_at_another_rate_hears_the_same_views(shipped, rate):
    """The bundles were fitted on 16 kHz recordings; a 44.1 or 48 kHz recording is resampled to 16 kHz, whose
    low-pass takes its top band (7.3-8 kHz) lower than a 16 kHz recorder's does. The same sound through
    another rate must still give the same view ratios, so a different recorder is not a fault."""
    import soxr

    model = shipped["fan"]
    y = model.load(EXAMPLES[2])
    native = {e.view: e.ratio for e in model.score(y, sample_rate=16000).evidence}
    other = {e.view: e.ratio for e in model.score(soxr.resample(y, 16000, rate).astype(np.float32), sample_rate=rate).evidence}
    # 0.015 of a ratio at most here (the shape view); a linear-interpolation resampler moves the views by 0.05
    assert other == pytest.approx(native, abs=0.02)


def test_streaming_a_clip_equals_whole_file_scoring(shipped):
    model = shipped["fan"]
    clip = EXAMPLES[0]
    whole = model.score(clip)
    y = model.load(clip)
    rng = np.random.default_rng(7)
    stream = model.stream()
    pushed = []
    start = 0
    while start < y.size:
        stop = min(y.size, start + int(rng.integers(1, 12000)))
        update = stream.push(y[start:stop])
        pushed.append(update.window_scores)
        start = stop
    streamed = stream.finish()
    np.testing.assert_allclose(streamed.window_scores, whole.window_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.concatenate(pushed), whole.window_scores, rtol=1e-5, atol=1e-6)
    assert streamed.score == pytest.approx(whole.score, rel=1e-5)
    assert streamed.verdict == whole.verdict
    assert [e.view for e in streamed.evidence] == [e.view for e in whole.evidence]
    np.testing.assert_allclose(streamed.window_starts, whole.window_starts)


@pytest.mark.parametrize("name", SHIPPED)
def test_card_states_its_evidence_with_counts(shipped, name):
    card = shipped[name].card
    training = card["training"]
    clips = training["clips"]
    assert training["n_clips"] == len(clips) > 0
    assert len({c["pcm_sha256"] for c in clips}) == len(clips)
    assert all(len(c["pcm_sha256"]) == 64 for c in clips)
    assert "no abnormal clip" in training["what"]
    assert "evaluation" not in card  # a bundle fitted on every normal clip of its type quotes no figure of its own
    if name == "general":
        heard = set(card["evidence"]["types_heard"])
        assert {"fan", "pump", "slider", "valve", "bearing", "gearbox"} <= heard
    else:
        assert card["machine_type"] == name
        assert f"{len(clips)} normal clips" in card["description"]


def _pcm_sha256(path) -> str:
    from soundsentry.audio import read_audio

    samples, _ = read_audio(path)
    return hashlib.sha256(np.round(samples * 32768).astype("<i2").tobytes()).hexdigest()


def test_shipped_bundles_never_heard_the_example_recordings(shipped):
    """The README's first command scores examples/: no shipped bundle was fitted or calibrated on them (by PCM)."""
    examples = {_pcm_sha256(path) for path in EXAMPLES}
    assert len(examples) == 4
    # The digest convention is the card's: a fan clip the fan bundle did hear is found by it.
    assert _pcm_sha256(MONO_CLIP) in {c["pcm_sha256"] for c in shipped["fan"].card["training"]["clips"]}
    for name in SHIPPED:
        heard = {c["pcm_sha256"] for c in shipped[name].card["training"]["clips"]}
        assert not heard & examples, name


def test_shipped_cards_are_valid_json_with_no_anomaly_in_training(shipped):
    for name in SHIPPED:
        card = json.loads((shipped[name].bundle.root / "model.json").read_text())
        used = card["training"]["clips"]
        assert used and not any("anomaly" in c["file"] or "abnormal" in c["file"] for c in used), name
