"""Enrollment on real normal recordings: the new bundle, its threshold, its card, the CLI, no scikit-learn."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import soundsentry
from soundsentry.bundle import file_sha256, read_bundle
from soundsentry.cli import main
from soundsentry.enroll import calibration_plan, enroll
from soundsentry.errors import AudioError, EnrollmentError

from .conftest import DATA_DIR, LOGMEL_BUNDLE, MONO_CLIP, requires
from .test_light_runtime import BLOCKED

# Five normal and three abnormal clips of one slide rail (DCASE 2020 dev, id_00), 4 s each.
SLIDER = DATA_DIR / "slider_id_00"
SLIDER_NORMAL = sorted((SLIDER / "normal").glob("*.flac"))
SLIDER_ABNORMAL = sorted((SLIDER / "abnormal").glob("*.flac"))


def test_slider_clips_are_there():
    assert len(SLIDER_NORMAL) == 5 and len(SLIDER_ABNORMAL) == 3


def test_held_out_normal_clips_pass_more_often_than_abnormal_ones(logmel_model, tmp_path):
    """Leave each normal clip out in turn, enroll on the other four, score the held-out one and the anomalies.

    The shipped fan encoder never heard a slide rail. At the default quantile (0.99, set for few
    false alarms) no held-out normal clip may be flagged; at quantile 0.9 the abnormal clips must
    be flagged more often than the held-out normal ones (which must still pass).
    """
    normal_pass = {0.99: [], 0.9: []}
    abnormal_pass = {0.99: [], 0.9: []}
    for i, held_out in enumerate(SLIDER_NORMAL):
        enrolled = [p for p in SLIDER_NORMAL if p != held_out]
        for quantile in (0.99, 0.9):
            model = logmel_model.enroll(enrolled, out=tmp_path / f"m{i}_{quantile}", quantile=quantile, detectors=["lof"])
            threshold = model.thresholds["lof"]
            normal_pass[quantile].append(model.score(held_out).score <= threshold)
            abnormal_pass[quantile] += [model.score(p).score <= threshold for p in SLIDER_ABNORMAL]
    assert all(normal_pass[0.99])
    assert np.mean(normal_pass[0.9]) > np.mean(abnormal_pass[0.9])
    assert not all(abnormal_pass[0.9])


def test_bundle_card_describes_the_enrollment(logmel_model, tmp_path):
    out = tmp_path / "my-slider"
    model = enroll(logmel_model, [SLIDER / "normal"], out=out, machine_type="slider", detectors=["lof"])
    assert isinstance(model, soundsentry.Model)
    bundle = read_bundle(out)  # checksums verified
    card = bundle.card
    assert card["name"] == "my-slider" and card["machine_type"] == "slider"
    assert card["default_detector"] == "lof" and list(card["detectors"]) == ["lof"]
    info = card["enrollment"]
    assert info["parent"]["name"] == "fan"
    assert info["parent"]["encoder_sha256"] == file_sha256(logmel_model.bundle.path("encoder.onnx"))
    assert file_sha256(out / "encoder.onnx") == file_sha256(logmel_model.bundle.path("encoder.onnx"))
    assert [r["file"] for r in info["recordings"]] == [p.name for p in SLIDER_NORMAL]
    assert [r["sha256"] for r in info["recordings"]] == [file_sha256(p) for p in SLIDER_NORMAL]
    assert all(abs(r["seconds"] - 4.0) < 1e-6 for r in info["recordings"])
    # Every window of every recording is in the LOF reference set.
    windows = [r["windows"] for r in info["recordings"]]
    assert info["n_windows"] == sum(windows) == card["detectors"]["lof"]["n_reference"]
    assert np.load(out / "lof.npz")["reference"].shape[0] == sum(windows)
    assert info["calibration"]["mode"] == "leave-one-recording-out"
    lof = card["detectors"]["lof"]
    assert len(lof["calibration_scores"]) == len(SLIDER_NORMAL)
    assert "leave-one-out" in lof["threshold_rule"] and "log-normal" in lof["threshold_rule"]
    # The threshold lies above every calibration score: none of the enrolled recordings is flagged.
    assert lof["threshold"] > max(lof["calibration_scores"])
    # Feature settings are the parent's, so the encoder sees what it was trained on.
    for key in ("features", "window", "channel"):
        assert card[key] == logmel_model.card[key]
    norm = dict(card["normalization"])
    level = norm.pop("level_reference_db")
    norm.pop("level")
    assert norm == logmel_model.card["normalization"]
    # The level reference is the enrolled recordings' median window level.
    levels = np.concatenate([logmel_model.window_levels(logmel_model.features(logmel_model.load(p))) for p in SLIDER_NORMAL])
    assert level == pytest.approx(np.median(levels), abs=1e-4)
    assert "evaluation" not in card and "training" not in card


def test_enrolled_model_scores_like_its_parent_pipeline(logmel_model, tmp_path):
    """Same encoder, same features: without levelling the new bundle's latents are the parent's."""
    model = logmel_model.enroll(SLIDER_NORMAL, out=tmp_path / "m", level_normalization=False, detectors=["lof"])
    assert "level_reference_db" not in model.card["normalization"] and model.level_reference_db is None
    y = logmel_model.load(SLIDER_ABNORMAL[0])
    parent_latents = logmel_model.embed(logmel_model.windows(logmel_model.features(y)))
    child_latents = model.embed(model.windows(model.features(y)))
    np.testing.assert_array_equal(parent_latents, child_latents)
    result = model.score(SLIDER_ABNORMAL[0])
    np.testing.assert_allclose(result.window_scores, model.detector("lof").anomaly_score(child_latents))


def test_levelled_model_ignores_a_gain_change_the_parent_does_not(logmel_model, tmp_path):
    """Drift: the same recording 6 dB louder (another gain or microphone distance) keeps its score."""
    model = logmel_model.enroll(SLIDER_NORMAL, out=tmp_path / "m", detectors=["lof"])
    assert model.level_reference_db is not None
    y = logmel_model.load(SLIDER_NORMAL[0])
    quiet, loud = model.score(0.25 * y), model.score(0.5 * y)
    np.testing.assert_allclose(loud.window_scores, quiet.window_scores, rtol=1e-4)
    parent_quiet, parent_loud = logmel_model.score(0.25 * y), logmel_model.score(0.5 * y)
    assert abs(parent_loud.score - parent_quiet.score) > 100 * abs(loud.score - quiet.score)
    # Levelling works window by window, so streaming agrees with whole-file scoring.
    stream = model.stream()
    for start in range(0, len(y), 4000):
        stream.push(y[start : start + 4000])
    np.testing.assert_allclose(stream.finish().window_scores, model.score(y).window_scores, rtol=1e-5)


def test_arrays_with_rates_enroll_like_files(logmel_model, tmp_path):
    from_files = logmel_model.enroll(SLIDER_NORMAL[:3], out=tmp_path / "files", detectors=["lof"])
    arrays = [sf.read(p, dtype="float32") for p in SLIDER_NORMAL[:3]]
    from_arrays = logmel_model.enroll(arrays, out=tmp_path / "arrays", detectors=["lof"])
    assert from_arrays.thresholds["lof"] == pytest.approx(from_files.thresholds["lof"], rel=1e-9)
    assert [r["file"] for r in from_arrays.card["enrollment"]["recordings"]] == ["<array 0>", "<array 1>", "<array 2>"]


def test_one_recording_uses_the_documented_block_fallback(logmel_model, tmp_path):
    model = logmel_model.enroll([MONO_CLIP], out=tmp_path / "one", detectors=["lof"])
    info = model.card["enrollment"]
    assert info["n_recordings"] == 1
    assert info["calibration"]["mode"] == "leave-one-block-out"
    rule = model.card["detectors"]["lof"]["threshold_rule"]
    assert "leave-one-block-out" in rule and "one recording" in rule
    scores = model.card["detectors"]["lof"]["calibration_scores"]
    assert len(scores) >= 2
    assert np.isfinite(model.thresholds["lof"]) and model.thresholds["lof"] > np.median(scores)
    assert model.score(MONO_CLIP).verdict == "normal"


def test_calibration_plan_keeps_overlapping_windows_out_of_a_blocks_reference():
    plan = calibration_plan([16], block_windows=4, guard_windows=3)
    assert plan.mode == "leave-one-block-out"
    for scored, keep in zip(plan.scored, plan.reference, strict=True):
        near = np.arange(max(0, scored[0] - 3), min(16, scored[-1] + 4))
        assert not keep[near].any()
        assert keep.sum() == 16 - near.size


def test_too_little_audio_is_refused(fan_model, tmp_path):
    y = fan_model.load(MONO_CLIP)[: int(2.2 * 16000)]  # two 1-s windows: too little to calibrate on
    with pytest.raises(EnrollmentError, match="too little normal audio"):
        fan_model.enroll([(y, 16000)], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_bad_file_is_skipped_and_named(fan_model, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    model = fan_model.enroll([*SLIDER_NORMAL[:2], bad], out=tmp_path / "m")
    info = model.card["enrollment"]
    assert info["n_recordings"] == 2
    assert [s["name"] for s in info["skipped"]] == [str(bad)]
    with pytest.raises(AudioError) as err:
        fan_model.enroll([*SLIDER_NORMAL[:2], bad], out=tmp_path / "strict", strict=True)
    assert err.value.path == str(bad)
    with pytest.raises(EnrollmentError, match="no usable normal recordings"):
        fan_model.enroll([bad], out=tmp_path / "none")


def test_output_folder_is_protected(fan_model, tmp_path):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(EnrollmentError, match="holds no model bundle"):
        fan_model.enroll(SLIDER_NORMAL[:2], out=other, overwrite=True)
    assert (other / "holiday.jpg").exists()
    fan_model.enroll(SLIDER_NORMAL[:2], out=tmp_path / "b")
    with pytest.raises(EnrollmentError, match="not empty"):
        fan_model.enroll(SLIDER_NORMAL[:3], out=tmp_path / "b")
    replaced = fan_model.enroll(SLIDER_NORMAL[:3], out=tmp_path / "b", overwrite=True)
    assert replaced.card["enrollment"]["n_recordings"] == 3
    with pytest.raises(EnrollmentError, match="parent model's own folder"):
        fan_model.enroll(SLIDER_NORMAL[:2], out=fan_model.bundle.root, overwrite=True)


@requires("sklearn")
@requires("skl2onnx")
def test_ocsvm_enrollment_with_train_extra(logmel_model, tmp_path):
    from sklearn.svm import OneClassSVM

    model = logmel_model.enroll(SLIDER_NORMAL, out=tmp_path / "svm", detectors=("ocsvm", "lof"))
    assert model.default_detector == "ocsvm" and set(model.detectors) == {"ocsvm", "lof"}
    # The exported graph scores like scikit-learn fitted on the same enrolled windows.
    latents = np.concatenate([model.embed(model.windows(model.features(model.load(p)))) for p in SLIDER_NORMAL])
    svm = OneClassSVM(nu=logmel_model.card["detectors"]["ocsvm"]["nu"], gamma="scale").fit(latents.astype(np.float64))
    query = model.embed(model.windows(model.features(model.load(SLIDER_ABNORMAL[0]))))
    np.testing.assert_allclose(
        model.detector("ocsvm").anomaly_score(query), -svm.decision_function(query), rtol=1e-4, atol=1e-5
    )
    assert np.isfinite(model.thresholds["ocsvm"])


def test_cli_enroll_then_score(tmp_path, capsys):
    out = tmp_path / "my-slider"
    code = main(["enroll", "--model", "fan", "--normal", str(SLIDER / "normal"), "--out", str(out), "--machine-type", "slider"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert read_bundle(out).card["machine_type"] == "slider"
    assert "5 recordings" in err and "threshold" in err
    assert main(["score", "--model", str(out), "--format", "csv", *map(str, SLIDER_NORMAL[:1])]) in (0, 1)
    assert main(["info", str(out)]) == 0
    assert "enrolled:     5 recordings" in capsys.readouterr().out
    assert main(["enroll", "--model", "fan", "--normal", str(SLIDER / "normal"), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["enroll", "--model", "no-such-model", "--normal", str(SLIDER), "--out", str(tmp_path / "y")]) == 4


#: A subprocess preamble: the plain install, simulated by refusing to import the [train] packages.
BLOCKING_PREAMBLE = textwrap.dedent(
    """
    import json, sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: the light runtime must not need it")
            return None

    sys.meta_path.insert(0, Blocker())
    import soundsentry
    """
)

LIGHT_SCRIPT = BLOCKING_PREAMBLE + textwrap.dedent(
    """
    from soundsentry.errors import EnrollmentError

    model = soundsentry.load_model({parent!r}).enroll({normal!r}, out={out!r}, detectors=("lof",))
    try:
        soundsentry.load_model({parent!r}).enroll({normal!r}, out={out!r} + "-svm", detectors=("ocsvm",))
        svm_error = ""
    except EnrollmentError as exc:
        svm_error = str(exc)
    print(json.dumps({{
        "threshold": model.thresholds["lof"],
        "score": model.score({clip!r}).score,
        "svm_error": svm_error,
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    }}))
    """
)


def test_lof_enrollment_needs_no_scikit_learn(tmp_path):
    script = LIGHT_SCRIPT.format(
        parent=str(LOGMEL_BUNDLE),  # the log-mel fixture, which has LOF
        blocked=BLOCKED, normal=[str(p) for p in SLIDER_NORMAL], out=str(tmp_path / "light"), clip=str(SLIDER_ABNORMAL[0])
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert np.isfinite(report["threshold"]) and np.isfinite(report["score"])
    assert "[train]" in report["svm_error"] and "sklearn" in report["svm_error"]
    assert not (tmp_path / "light-svm").exists()


NUMPY_DETECTORS_SCRIPT = BLOCKING_PREAMBLE + textwrap.dedent(
    """

    soundsentry.load_model({parent!r}).enroll({normal!r}, out={out!r}, detectors=("knn", "mahalanobis"))
    model = soundsentry.load_model({out!r})  # read back from disk, checks and all
    print(json.dumps({{
        "detectors": model.detectors,
        "default": model.default_detector,
        "thresholds": model.thresholds,
        "scores": {{d: model.score({clip!r}, detector=d).score for d in model.detectors}},
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    }}))
    """
)


def test_knn_and_mahalanobis_enrollment_needs_no_scikit_learn(tmp_path):
    out = tmp_path / "light"
    script = NUMPY_DETECTORS_SCRIPT.format(
        parent=str(LOGMEL_BUNDLE),
        blocked=BLOCKED, normal=[str(p) for p in SLIDER_NORMAL], out=str(out), clip=str(SLIDER_ABNORMAL[0])
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["detectors"] == ["knn", "mahalanobis"] and report["default"] == "knn"
    card = read_bundle(out).card  # checksums verified
    assert set(card["files"]) == {"encoder.onnx", "knn.npz", "mahalanobis.npz"}
    assert card["detectors"]["knn"]["file"] == "knn.npz" and card["detectors"]["mahalanobis"]["file"] == "mahalanobis.npz"
    # The bundle scores the same here, where scikit-learn is importable, as in the plain install.
    model = soundsentry.load_model(out)
    for det in ("knn", "mahalanobis"):
        assert np.isfinite(report["thresholds"][det]) and report["thresholds"][det] > 0
        assert report["scores"][det] == model.score(SLIDER_ABNORMAL[0], detector=det).score


@requires("sklearn")
def test_knn_and_mahalanobis_enrollment_match_sklearn_and_calibrate_leave_one_out(fan_model, tmp_path):
    """The enrolled detectors equal scikit-learn fitted on the enrolled windows; each calibration score equals
    scikit-learn refitted without that recording; the threshold is the log-normal rule with the detector's own
    measured spreads (soundsentry.calibration.LOG_SPREAD_PRIORS), not LOF's."""
    from sklearn.covariance import LedoitWolf
    from sklearn.neighbors import NearestNeighbors
    from soundsentry.calibration import LOG_SPREAD_PRIORS, lognormal_threshold

    model = fan_model.enroll(SLIDER_NORMAL, out=tmp_path / "m", detectors=("mahalanobis", "knn"))
    assert model.default_detector == "mahalanobis" and model.detectors == ["mahalanobis", "knn"]
    card = model.card["detectors"]
    k = card["knn"]["n_neighbors"]
    assert k == 5  # the default: the fan parent has no kNN of its own
    per_rec = [model.embed(model.windows(model.features(model.load(p)))).astype(np.float64) for p in SLIDER_NORMAL]
    latents = np.concatenate(per_rec)
    assert card["knn"]["n_reference"] == card["mahalanobis"]["n_reference"] == len(latents)
    query = model.embed(model.windows(model.features(model.load(SLIDER_ABNORMAL[0])))).astype(np.float64)

    def sk_knn(ref, q):
        return NearestNeighbors(n_neighbors=k).fit(ref).kneighbors(q)[0].mean(axis=1)

    def sk_maha(ref, q):
        return np.sqrt(LedoitWolf().fit(ref).mahalanobis(q))  # scikit-learn returns the squared distance

    expected = {"knn": sk_knn, "mahalanobis": sk_maha}
    for det, sk in expected.items():
        np.testing.assert_allclose(model.detector(det).anomaly_score(query), sk(latents, query), rtol=1e-6)
        loo = [
            float(np.mean(sk(np.concatenate(per_rec[:i] + per_rec[i + 1 :]), rec))) for i, rec in enumerate(per_rec)
        ]
        np.testing.assert_allclose(card[det]["calibration_scores"], loo, rtol=1e-5)
        prior, single = LOG_SPREAD_PRIORS[det]
        assert LOG_SPREAD_PRIORS[det] != LOG_SPREAD_PRIORS["lof"]
        expected_threshold = lognormal_threshold(
            loo, quantile=0.99, n_recordings=len(loo), prior_spread=prior, single_recording_spread=single
        )
        assert card[det]["threshold"] == pytest.approx(expected_threshold, rel=1e-5)
        rule = card[det]["threshold_rule"]
        assert "log-normal" in rule and f"prior of {prior} " in rule and "leave-one-recording-out" in rule
    assert 0.0 < card["mahalanobis"]["shrinkage"] < 1.0


def test_knn_needs_as_many_windows_as_neighbours(fan_model, tmp_path):
    """20 windows, refits of 16: 30 neighbours cannot be found, and the error says so instead of an IndexError."""
    with pytest.raises(EnrollmentError, match="kNN with 30 neighbours needs at least 30 reference windows"):
        fan_model.enroll(SLIDER_NORMAL, out=tmp_path / "m", detectors=("knn",), n_neighbors=30)
    assert not (tmp_path / "m").exists()


def test_cli_enroll_knn_and_mahalanobis_then_score(tmp_path, capsys):
    out = tmp_path / "slider"
    argv = ["enroll", "--normal", str(SLIDER / "normal"), "--out", str(out), "--detector", "knn", "--detector", "mahalanobis"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "knn: threshold" in err and "mahalanobis: threshold" in err
    model = soundsentry.load_model(out)
    for det in ("knn", "mahalanobis"):
        code = main(["score", "--model", str(out), "--detector", det, "--format", "json", str(SLIDER_ABNORMAL[0])])
        (row,) = json.loads(capsys.readouterr().out)
        assert row["detector"] == det and code == (1 if row["verdict"] == "abnormal" else 0)
        assert row["score"] == pytest.approx(model.score(SLIDER_ABNORMAL[0], detector=det).score, rel=1e-6)
        assert row["threshold"] == pytest.approx(model.thresholds[det])


def test_study_keeps_only_machines_the_bundle_did_not_hear():
    """The enrollment study's held-out machines come from the card's training and validation clip lists."""
    from soundsentry.train.data import Clip

    from studies.enrollment_study import held_out_machines, machine_key

    def clip(mtype, mid, dataset):
        return Clip(path=DATA_DIR / "x.flac", machine_type=mtype, machine_id=mid, dataset=dataset)

    clips = [
        clip("fan", "id_00", "MIMII"),
        clip("fan", "id_00", "DCASE2020 T2 dev (MIMII)"),  # same machine as MIMII id_00
        clip("fan", "id_06", "MIMII"),  # in the fan bundle's training clips
        clip("fan", "section_00", "DCASE2023+/MIMII-DG"),  # idem
        clip("fan", "section_00", "MIMII DUE (DCASE2021 T2 dev)"),  # another machine with the same section name
        clip("fan", "", "MIMII"),  # unknown machine: never studied
    ]
    # A card in the shape the training pipeline writes (pipeline._clip_entry): it heard id_06 and section_00.
    card = {
        "machine_type": "fan",
        "training": {
            "train_clips": [{"file": "a.flac", "machine_id": "id_06", "dataset": "MIMII", "pcm_sha256": "a" * 64}],
            "validation_clips": [
                {"file": "b.flac", "machine_id": "section_00", "dataset": "DCASE2023+/MIMII-DG", "pcm_sha256": "b" * 64}
            ],
        },
    }
    keys = [m.key for m in held_out_machines(clips, card)]
    assert keys == [("fan", "id_00"), ("fan", "section_00", "MIMII DUE (DCASE2021 T2 dev)")]
    assert machine_key(clips[0]) == machine_key(clips[1])
    # A bundle trained on several types (card entries carry no type) is matched to the clip rows by PCM sha256.
    pump = Clip(path=DATA_DIR / "p.flac", machine_type="pump", machine_id="id_04", dataset="MIMII", pcm_sha256="ab" * 32)
    general = {"machine_type": "general", "training": {"train_clips": [{"machine_id": "id_04", "pcm_sha256": "ab" * 32}]}}
    assert [m.key for m in held_out_machines([*clips[:1], pump], general)] == [("fan", "id_00")]


VIEWS_SCRIPT = BLOCKING_PREAMBLE + textwrap.dedent(
    """
    import numpy as np
    from soundsentry.enroll import default_enrollment_detector

    parent = soundsentry.load_model("fan")
    model = parent.enroll({normal!r}, out={out!r})  # default settings
    y = model.load({held_out!r})
    plain, louder = model.score({held_out!r}), model.score_samples(y * 10 ** (8 / 20))
    print(json.dumps({{
        "parent_default": default_enrollment_detector(parent),
        "plain": [plain.score, plain.verdict],
        "louder": [louder.score, louder.verdict, [e.to_dict() for e in louder.evidence], louder.explanation],
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    }}, default=float))
    """
)


def test_views_enrollment_of_the_shipped_fan_from_the_plain_install(tmp_path):
    """Default settings, no [train]: the parent's views detector is fitted per recording (no levelling: loudness is
    a view of its own), a held-out normal recording of the machine passes and an 8 dB louder copy of it is
    flagged, the evidence naming the level view."""
    out = tmp_path / "slider"
    held_out, enrolled = SLIDER_NORMAL[0], SLIDER_NORMAL[1:]
    script = VIEWS_SCRIPT.format(blocked=BLOCKED, normal=[str(p) for p in enrolled], out=str(out), held_out=str(held_out))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    parent = soundsentry.load_model("fan")
    assert report["parent_default"] == parent.default_detector == "views"
    card = read_bundle(out).card  # checksums verified
    assert card["default_detector"] == "views" and list(card["detectors"]) == ["views"]
    assert card["encoder"]["kind"] == parent.encoder.kind == "edgel3-views"
    views = card["detectors"]["views"]
    assert views["threshold"] == 1.0 and views["n_recordings"] == len(enrolled)
    assert "leave-one-recording-out" in views["calibration"] and f"{len(enrolled)} enrolled recordings" in views["calibration"]
    assert [v["name"] for v in views["views"]] == [v["name"] for v in parent.card["detectors"]["views"]["views"]]
    assert "level_reference_db" not in card.get("normalization", {})  # never levelled
    assert [r["file"] for r in card["enrollment"]["recordings"]] == [p.name for p in enrolled]
    # The bundle scores the same here as in the plain install.
    model = soundsentry.load_model(out)
    assert model.level_reference_db is None
    assert report["plain"] == [pytest.approx(model.score(held_out).score, rel=1e-6), "normal"]
    assert report["plain"][0] < 1.0
    score, verdict, evidence, explanation = report["louder"]
    assert verdict == "abnormal" and score > 1.0
    assert evidence[0]["view"] == "level" and evidence[0]["flagged"]
    assert not any(e["flagged"] for e in evidence[1:])  # only loudness changed
    # a flagged clip scores 1 + every view's ratio summed over the bound of the enrolled recordings' sums
    det = model.detector("views")
    assert det.combine == "max-then-sum" and card["detectors"]["views"]["combine"] == "max-then-sum"
    assert score == pytest.approx(1 + sum(e["ratio"] for e in evidence) / det.combined_threshold_)
    assert explanation.startswith("level") and "louder" in explanation


def test_cli_enroll_shipped_fan_gives_views_rows_with_explanations(tmp_path, capsys):
    out = tmp_path / "slider"
    assert main(["enroll", "--normal", *map(str, SLIDER_NORMAL[1:]), "--out", str(out)]) == 0
    capsys.readouterr()
    model = soundsentry.load_model(out)
    assert model.default_detector == "views"
    loud = tmp_path / "loud.wav"
    y, rate = sf.read(SLIDER_NORMAL[0], dtype="float32")
    sf.write(loud, y * 10 ** (8 / 20), rate, subtype="FLOAT")
    clips = [str(SLIDER_NORMAL[0]), str(loud)]
    for fmt in ("csv", "json"):
        main(["score", "--model", str(out), "--format", fmt, *clips])
        text = capsys.readouterr().out
        rows = list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else json.loads(text)
        assert [r["path"] for r in rows] == clips
        for row, clip in zip(rows, clips, strict=True):
            want = model.score(clip)
            assert row["verdict"] == want.verdict and row["explanation"] == want.explanation
        assert rows[1]["verdict"] == "abnormal" and rows[1]["explanation"].startswith("level")
