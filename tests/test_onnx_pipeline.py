"""The single-file ONNX pipeline (``soundsentry export-onnx``) run with onnxruntime alone, in a process
where ``import soundsentry`` fails, matches the runtime's window and clip scores on real clips: for the
log-mel fixture bundle with each of its detectors (kNN, LOF, Mahalanobis, One-Class SVM) and for every
shipped views bundle."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import soundsentry

from .conftest import DATA_CLIPS, EXAMPLES_DIR, LOGMEL_BUNDLE, requires

pytestmark = requires("onnx")

#: The log-mel fixture's detectors, each exported on its own.
LOGMEL_DETECTORS = ["lof", "ocsvm", "knn", "mahalanobis"]

# What an integrator's program does: samples in, scores out; no SoundSentry anywhere.
RUNNER = textwrap.dedent(
    """
    import json, sys

    class NoSoundSentry:
        def find_spec(self, name, path=None, target=None):
            if name == "soundsentry" or name.startswith("soundsentry."):
                raise ImportError("soundsentry is blocked in this process")

    sys.meta_path.insert(0, NoSoundSentry())
    import numpy as np
    import onnxruntime as ort
    import soundfile as sf

    jobs = json.loads(sys.stdin.read())
    out = {}
    for onnx_file, clips in jobs.items():
        session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        out[onnx_file] = {"meta": meta, "clips": []}
        for clip in clips:
            y, rate = sf.read(clip, dtype="float32", always_2d=True)
            assert rate == int(meta["soundsentry.sample_rate"])
            windows, score, abnormal = session.run(None, {"samples": np.ascontiguousarray(y[:, 0])})
            out[onnx_file]["clips"].append(
                {"windows": windows.tolist(), "score": None if np.isnan(score) else float(score), "abnormal": bool(abnormal)}
            )
    assert "soundsentry" not in sys.modules
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Real clips (one 8-channel: the runtime's policy takes channel 0, so does the integrator),
    a cut whose length is not a whole number of hops, one exactly one log-mel window long, and one
    shorter than a window."""
    folder = tmp_path_factory.mktemp("onnx_clips")
    y, rate = sf.read(DATA_CLIPS[0], dtype="float32", always_2d=True)
    fan = soundsentry.load_model(LOGMEL_BUNDLE)
    one_window = fan.window.min_samples(fan.feature_params)
    cuts = {"odd.wav": y[: 3 * rate + 321, 0], "one_window.wav": y[:one_window, 0], "short.wav": y[:4000, 0]}
    for name, samples in cuts.items():
        sf.write(folder / name, samples, rate, subtype="FLOAT")  # float32 as is: the same samples both ways
    real = [*map(str, DATA_CLIPS), str(sorted(EXAMPLES_DIR.glob("*.flac"))[0])]
    return [*real, *(str(folder / name) for name in cuts)]


@pytest.mark.slow
def test_single_onnx_file_matches_the_runtime_without_soundsentry(tmp_path, clips):
    from soundsentry.cli import main

    model = soundsentry.load_model(LOGMEL_BUNDLE)
    assert model.encoder.kind == "logmel-conv" and sorted(model.detectors) == sorted(LOGMEL_DETECTORS)
    jobs = {}
    for name in LOGMEL_DETECTORS:
        path = tmp_path / f"{name}.onnx"
        assert main(["export-onnx", "--model", str(LOGMEL_BUNDLE), "--detector", name, str(path)]) == 0
        jobs[str(path)] = clips
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER], input=json.dumps(jobs), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for name in LOGMEL_DETECTORS:
        got = results[str(tmp_path / f"{name}.onnx")]
        assert got["meta"]["soundsentry.detector"] == name
        assert float(got["meta"]["soundsentry.threshold"]) == model.thresholds[name]
        for clip, onnx_result in zip(clips, got["clips"], strict=True):
            if clip.endswith("short.wav"):
                # Shorter than one window: the runtime refuses it, the graph gives no windows and no score.
                with pytest.raises(soundsentry.AudioTooShortError):
                    model.score(clip, detector=name)
                assert onnx_result == {"windows": [], "score": None, "abnormal": False}
                continue
            want = model.score(clip, detector=name)
            np.testing.assert_allclose(
                onnx_result["windows"], want.window_scores, rtol=1e-4, atol=1e-4, err_msg=f"{name} {clip}"
            )
            assert onnx_result["score"] == pytest.approx(want.score, rel=1e-4, abs=1e-4)
            assert onnx_result["abnormal"] == (want.verdict == "abnormal")
            if clip.endswith("one_window.wav"):
                assert len(onnx_result["windows"]) == 1  # the shortest input the 64-frame windows take


@pytest.mark.parametrize(("fft", "precision"), [("matmul", "float64"), ("dft", "float64"), ("dft", "float32")])
def test_every_fft_form_and_precision_gives_the_runtime_scores(fft, precision):
    import onnxruntime as ort
    from soundsentry.export.onnx_pipeline import build_pipeline

    model = soundsentry.load_model(LOGMEL_BUNDLE)  # the log-mel front end, LOF
    session = ort.InferenceSession(
        build_pipeline(model, detector="lof", fft=fft, precision=precision).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    y = sf.read(DATA_CLIPS[-1], dtype="float32", always_2d=True)[0][:, 0]
    windows, score, _ = session.run(None, {"samples": y})
    want = model.score_samples(y, detector="lof")
    np.testing.assert_allclose(windows, want.window_scores, rtol=1e-4, atol=1e-4)
    assert score == pytest.approx(want.score, rel=1e-4)


def test_an_enrolled_bundle_with_window_levelling_matches_too(tmp_path):
    """Enrolled bundles move each window's level to a reference before scoring: the graph does it too."""
    import onnxruntime as ort
    from soundsentry.export.onnx_pipeline import build_pipeline

    normal = sorted((DATA_CLIPS[0].parent / "slider_id_00" / "normal").glob("*.flac"))
    enrolled = soundsentry.load_model(LOGMEL_BUNDLE).enroll(normal, out=tmp_path / "mine", detectors=["knn"])
    assert enrolled.level_reference_db is not None
    session = ort.InferenceSession(build_pipeline(enrolled).SerializeToString(), providers=["CPUExecutionProvider"])
    for clip in DATA_CLIPS[-2:]:
        y = sf.read(clip, dtype="float32", always_2d=True)[0][:, 0]
        windows, score, abnormal = session.run(None, {"samples": y})
        want = enrolled.score_samples(y)
        np.testing.assert_allclose(windows, want.window_scores, rtol=1e-4, atol=1e-4)
        assert score == pytest.approx(want.score, rel=1e-4)
        assert bool(abnormal) == (want.verdict == "abnormal")


def test_a_kind_without_an_onnx_front_end_is_refused_in_one_line_naming_it(monkeypatch, capsys, tmp_path):
    """An encoder kind the exporter has no front end for (here: views, as before it had one) fails before
    anything is built, with one line naming the kind, and writes no file."""
    from soundsentry.cli import main
    from soundsentry.export import onnx_pipeline

    kind = soundsentry.load_model("fan").encoder.kind
    monkeypatch.delitem(onnx_pipeline.FRONT_ENDS, kind)
    monkeypatch.setattr(onnx_pipeline.Graph, "op", lambda *a, **k: pytest.fail("started building"))
    assert main(["export-onnx", "--model", "fan", str(tmp_path / "fan.onnx")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"encoder kind {kind!r}" in line and "logmel-conv" in line  # what it has, too
    assert not (tmp_path / "fan.onnx").exists()


def test_export_onnx_without_the_extra_says_how_to_get_it(monkeypatch, capsys, tmp_path):
    from soundsentry.cli import main

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    assert main(["export-onnx", str(tmp_path / "x.onnx")]) == 2
    assert 'needs the [export] extra: pip install "soundsentry[export]"' in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


# -- the shipped views bundles: encoder kind "edgel3-views", detector "views" ------------------------------
VIEWS_MODELS = ["fan", "pump", "slider", "valve", "general"]


@pytest.fixture(scope="module")
def views_clips(tmp_path_factory):
    """Every real clip of tests/data and examples (an 8-channel one among them: channel 0 both ways), a cut
    whose length is not a whole number of hops, one exactly one EdgeL3 window long (1.108 s) and one a
    sample shorter."""
    folder = tmp_path_factory.mktemp("onnx_views_clips")
    y, rate = sf.read(DATA_CLIPS[0], dtype="float32", always_2d=True)
    one_window = soundsentry.load_model("fan").encoder.min_samples
    cuts = {"odd.wav": y[: 3 * rate + 321, 0], "one_window.wav": y[:one_window, 0], "short.wav": y[: one_window - 1, 0]}
    for name, samples in cuts.items():
        sf.write(folder / name, samples, rate, subtype="FLOAT")
    real = [*map(str, DATA_CLIPS), *map(str, sorted(EXAMPLES_DIR.glob("*.flac")))]
    return [*real, *(str(folder / name) for name in cuts)]


@pytest.mark.slow
def test_views_bundles_single_onnx_file_matches_the_runtime_without_soundsentry(tmp_path, views_clips):
    """The views detector's clip score is its own (each view's clip statistic over its threshold), not an
    aggregate of the window scores: the graph computes it the same way."""
    from soundsentry.cli import main

    models = {name: soundsentry.load_model(name) for name in VIEWS_MODELS}
    jobs = {}
    for name, model in models.items():
        assert model.encoder.kind == "edgel3-views" and model.default_detector == "views", name
        path = tmp_path / f"{name}.onnx"
        assert main(["export-onnx", "--model", name, str(path)]) == 0
        jobs[str(path)] = views_clips
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER], input=json.dumps(jobs), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for name, model in models.items():
        got = results[str(tmp_path / f"{name}.onnx")]
        assert got["meta"]["soundsentry.detector"] == "views"
        assert got["meta"]["soundsentry.clip_score"] == "detector"
        assert float(got["meta"]["soundsentry.threshold"]) == model.thresholds["views"]
        assert int(got["meta"]["soundsentry.min_samples"]) == model.encoder.min_samples
        for clip, onnx_result in zip(views_clips, got["clips"], strict=True):
            where = f"{name} {clip}"
            if clip.endswith("short.wav"):
                with pytest.raises(soundsentry.AudioTooShortError):
                    model.score(clip)
                assert onnx_result == {"windows": [], "score": None, "abnormal": False}, where
                continue
            want = model.score(clip)
            np.testing.assert_allclose(onnx_result["windows"], want.window_scores, rtol=1e-4, atol=1e-4, err_msg=where)
            assert onnx_result["score"] == pytest.approx(want.score, rel=1e-4, abs=1e-4), where
            assert onnx_result["abnormal"] == (want.verdict == "abnormal"), where
            if clip.endswith("one_window.wav"):
                assert len(onnx_result["windows"]) == 1, where


def test_views_graph_with_the_dft_as_a_matrix_product_gives_the_runtime_scores():
    import onnxruntime as ort
    from soundsentry.export.onnx_pipeline import build_pipeline

    model = soundsentry.load_model("valve")
    session = ort.InferenceSession(
        build_pipeline(model, fft="matmul").SerializeToString(), providers=["CPUExecutionProvider"]
    )
    y = sf.read(DATA_CLIPS[-1], dtype="float32", always_2d=True)[0][:, 0]
    windows, score, abnormal = session.run(None, {"samples": y})
    want = model.score_samples(y)
    np.testing.assert_allclose(windows, want.window_scores, rtol=1e-4, atol=1e-4)
    assert score == pytest.approx(want.score, rel=1e-4, abs=1e-4)
    assert bool(abnormal) == (want.verdict == "abnormal")
