"""The ``soundsentry`` command line: output formats, exit codes and per-file errors."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
from soundsentry.cli import main
from soundsentry.report import FIELDS

from .conftest import EXAMPLES_DIR, LOGMEL_BUNDLE, MONO_CLIP, REPO_ROOT

HEADER = ["path", "score", "verdict", "threshold", "detector", "model", "flags", "error", "explanation"]
EXAMPLES = sorted(str(p) for p in EXAMPLES_DIR.glob("*.flac"))


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _csv_rows(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, r, strict=True)) for r in rows[1:]]


def _expected_code(rows):
    if any(r["verdict"] == "error" for r in rows):
        return 3
    return 1 if any(r["verdict"] == "abnormal" for r in rows) else 0


def test_fields_are_the_documented_columns():
    assert list(FIELDS) == HEADER


def test_score_folder_csv(capsys, fan_model):
    code, out, err = _run(capsys, "score", str(EXAMPLES_DIR), "--model", "fan", "--format", "csv")
    assert out.splitlines()[0] == ",".join(HEADER)
    rows = _csv_rows(out)
    assert sorted(r["path"] for r in rows) == EXAMPLES
    for row in rows:
        result = fan_model.score(row["path"])
        assert float(row["score"]) == pytest.approx(result.score, rel=1e-5)
        assert row["verdict"] == result.verdict
        # The card's default detector scores when --detector is not given.
        assert float(row["threshold"]) == pytest.approx(fan_model.thresholds[fan_model.default_detector], rel=1e-5)
        assert row["detector"] == fan_model.default_detector and row["model"] == "fan" and row["error"] == ""
    assert code == _expected_code(rows)
    assert f"{len(EXAMPLES)} files" in err


def test_score_subprocess_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", "examples/", "--model", "fan", "--format", "csv"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.splitlines()[0] == ",".join(HEADER)
    rows = _csv_rows(proc.stdout)
    assert len(rows) == len(EXAMPLES)
    assert sorted(os.path.basename(r["path"]) for r in rows) == sorted(os.path.basename(p) for p in EXAMPLES)
    assert all(r["verdict"] in ("normal", "abnormal") for r in rows)
    assert proc.returncode == _expected_code(rows), proc.stderr


def test_score_json(capsys):
    code, out, _ = _run(capsys, "score", *EXAMPLES[:2], "--format", "json")
    data = json.loads(out)
    assert [d["path"] for d in data] == EXAMPLES[:2]
    for d in data:
        assert list(d) == HEADER
        assert isinstance(d["score"], float) and d["verdict"] in ("normal", "abnormal") and d["error"] == ""
    assert code == (1 if any(d["verdict"] == "abnormal" for d in data) else 0)


def test_score_table(capsys):
    code, out, _ = _run(capsys, "score", str(MONO_CLIP))
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["verdict", "score", "threshold"]
    assert len(lines) == 2 and str(MONO_CLIP) in lines[1]
    assert code in (0, 1)


@pytest.fixture
def mixed_batch(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    good = [folder / "a_good.flac", folder / "c_good.flac"]
    for g in good:
        shutil.copy(MONO_CLIP, g)
    text = folder / "b_text.wav"
    text.write_text("these are not samples\n" * 20)
    # A file named on the command line that exists but holds nothing (a path that does not exist
    # is a command-line error, exit 2: tests/test_cli_user.py).
    missing = tmp_path / "empty.flac"
    missing.write_bytes(b"")
    return folder, good, text, missing


def test_batch_with_bad_files_reports_them_and_scores_the_rest(capsys, caplog, mixed_batch):
    folder, good, text, missing = mixed_batch
    code, out, err = _run(capsys, "score", str(folder), str(missing), "--format", "csv")
    rows = {r["path"]: r for r in _csv_rows(out)}
    assert list(rows) == [str(good[0]), str(text), str(good[1]), str(missing)]
    for g in good:
        assert rows[str(g)]["verdict"] in ("normal", "abnormal") and rows[str(g)]["error"] == ""
        assert math.isfinite(float(rows[str(g)]["score"]))
    assert rows[str(missing)]["verdict"] == "error" and "empty" in rows[str(missing)]["error"]
    assert rows[str(text)]["verdict"] == "error" and "decode" in rows[str(text)]["error"]
    for bad in (missing, text):
        assert rows[str(bad)]["score"] == ""
    assert code == 3
    assert "2 failed" in err
    assert str(missing) in caplog.text and str(text) in caplog.text  # warnings name the files


def test_batch_with_bad_files_json(capsys, mixed_batch):
    folder, _, _, missing = mixed_batch
    code, out, _ = _run(capsys, "score", str(folder), str(missing), "--format", "json")
    data = json.loads(out)
    errors = [d for d in data if d["verdict"] == "error"]
    assert len(errors) == 2 and all(d["error"] and d["score"] is None for d in errors)
    assert code == 3


def test_threshold_override_sets_exit_code(capsys):
    code, out, _ = _run(capsys, "score", *EXAMPLES, "--threshold", "1e9", "--format", "csv")
    assert code == 0
    assert {r["verdict"] for r in _csv_rows(out)} == {"normal"}
    code, out, _ = _run(capsys, "score", *EXAMPLES, "--threshold=-1e9", "--format", "csv")
    assert code == 1
    assert {r["verdict"] for r in _csv_rows(out)} == {"abnormal"}


def test_detector_option(capsys, logmel_model):
    # The shipped bundles have one detector; the log-mel fixture has four.
    _, out, _ = _run(capsys, "score", str(MONO_CLIP), "--model", str(LOGMEL_BUNDLE), "--detector", "ocsvm", "--format", "json")
    (row,) = json.loads(out)
    assert row["detector"] == "ocsvm" and logmel_model.default_detector != "ocsvm"
    assert row["score"] == pytest.approx(logmel_model.score(MONO_CLIP, detector="ocsvm").score, rel=1e-6)
    code, _, err = _run(capsys, "score", str(MONO_CLIP), "--model", "fan", "--detector", "ocsvm")
    assert code == 4 and "no detector 'ocsvm'" in err


def test_output_file(capsys, tmp_path):
    target = tmp_path / "out" / "scores.csv"
    target.parent.mkdir()
    code, out, _ = _run(capsys, "score", *EXAMPLES, "--format", "csv", "-o", str(target))
    assert out == ""
    rows = _csv_rows(target.read_text(encoding="utf-8"))
    assert len(rows) == len(EXAMPLES)
    assert sorted(p.name for p in target.parent.iterdir()) == ["scores.csv"]  # no .part left behind
    assert code == _expected_code(rows)


def test_jobs_2_gives_the_same_rows(capsys, mixed_batch):
    folder, *_ = mixed_batch
    shutil.copy(EXAMPLES[0], folder / "d_example.flac")
    shutil.copy(EXAMPLES[1], folder / "e_example.flac")
    code1, out1, _ = _run(capsys, "score", str(folder), "--format", "csv", "--jobs", "1")
    code2, out2, _ = _run(capsys, "score", str(folder), "--format", "csv", "--jobs", "2")
    assert len(_csv_rows(out1)) == 5
    assert out2 == out1
    assert code2 == code1 == 3


def test_bad_jobs_is_a_usage_error(capsys):
    code, _, err = _run(capsys, "score", str(MONO_CLIP), "--jobs", "0")
    assert code == 2 and "--jobs" in err
    code, _, err = _run(capsys, "score", str(MONO_CLIP), "--threads", "0")
    assert code == 2 and "--threads" in err


def test_threads_give_the_same_rows_in_the_same_order(capsys, mixed_batch):
    folder, *_ = mixed_batch
    for i, example in enumerate(EXAMPLES):
        shutil.copy(example, folder / f"d{i}_example.flac")
    code1, out1, _ = _run(capsys, "score", str(folder), "--format", "csv", "--threads", "1")
    code3, out3, _ = _run(capsys, "score", str(folder), "--format", "csv", "--threads", "3")
    code_default, out_default, _ = _run(capsys, "score", str(folder), "--format", "csv")
    assert len(_csv_rows(out1)) == 3 + len(EXAMPLES)
    assert out3 == out1 and out_default == out1
    assert code3 == code1 == code_default == 3


def test_models_lists_fan_with_the_evidence_its_card_holds(capsys, fan_model):
    from soundsentry.bundle import list_shipped_models, read_bundle
    from soundsentry.cli._common import evidence_summary

    code, out, _ = _run(capsys, "models")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "fan" in rows
    for name in list_shipped_models():
        assert rows[name].rstrip().endswith(evidence_summary(read_bundle(name, verify=False).card))
    evidence = fan_model.card.get("evidence") or {}
    cross = evidence.get("cross-machine")
    if isinstance(evidence.get("summary"), str):
        assert evidence["summary"] in rows["fan"]  # the study's own words (studies.views_accuracy)
    elif isinstance(cross, dict):
        counts = cross["counts"]
        assert f"({counts['test_normal']} normal / {counts['test_abnormal']} abnormal)" in rows["fan"]
    elif not isinstance(fan_model.card.get("evaluation"), dict):
        assert "no held-out figure" in rows["fan"]  # said, not left blank


def test_info_prints_model_name(capsys, fan_model):
    code, out, _ = _run(capsys, "info", "fan")
    assert code == 0
    assert out.splitlines()[0].split()[:2] == ["model:", "fan"]
    default = [line for line in out.splitlines() if line.endswith("(default)")]
    assert len(default) == 1 and f"{fan_model.default_detector}:" in default[0]
    assert f"encoder:      {fan_model.encoder.kind}" in out.splitlines()
    # the views model says how its clip score is made and lists each view with its calibrated threshold
    det = fan_model.detector()
    from soundsentry.views import combine_rule

    assert f"clip score:   {combine_rule(det.combine)}" in out
    assert "aggregate:" not in out
    for view, threshold in zip(det.views, det.thresholds_, strict=True):
        assert any(line.startswith(f"view:         {view.name} ({view.pool}") and line.endswith(f"{threshold:.4g}")
                   for line in out.splitlines()), view.name
    code, out, _ = _run(capsys, "info", "fan", "--json")
    assert code == 0 and json.loads(out)["name"] == "fan"


@pytest.mark.parametrize("command", [["score", str(MONO_CLIP), "--model", "no_such_model"], ["info", "no_such_model"]])
def test_bad_model_name_exits_4(capsys, command):
    code, out, err = _run(capsys, *command)
    assert code == 4
    assert "no_such_model" in err
    assert "path,score" not in out


def test_no_audio_files_found(capsys, tmp_path):
    code, _, err = _run(capsys, "score", str(tmp_path))
    assert code == 3 and "no audio files" in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["score", str(MONO_CLIP), "--format", "xml"])
    assert info.value.code == 2
    assert main([]) == 2


def test_version(capsys):
    import soundsentry

    code, out, _ = _run(capsys, "--version")
    assert code == 0 and soundsentry.__version__ in out


@pytest.mark.parametrize("name", ["=HYPERLINK(1).wav", "@SUM(1).flac", "+1.wav"])
def test_csv_cells_cannot_become_formulas(capsys, tmp_path, monkeypatch, name):
    shutil.copy(MONO_CLIP, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "score", name, "--format", "csv")
    (row,) = _csv_rows(out)
    assert row["path"][0] in "'\""
    assert row["path"].endswith(name)
    assert row["verdict"] in ("normal", "abnormal")
    assert code in (0, 1)


def test_csv_error_cell_cannot_become_a_formula(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "=cmd.wav").write_text("not audio\n")
    code, out, _ = _run(capsys, "score", "=cmd.wav", "--format", "csv")
    (row,) = _csv_rows(out)
    assert row["path"].startswith("'")
    assert row["verdict"] == "error" and code == 3


def test_csv_negative_numbers_stay_numbers(capsys, logmel_model):
    """Formula protection must not turn a negative score or threshold into text like "'-0.05"."""
    # The One-Class SVM (of the log-mel fixture) gives negative scores on normal clips.
    argv = ["score", str(MONO_CLIP), "--model", str(LOGMEL_BUNDLE), "--detector", "ocsvm", "--threshold=-1e9"]
    code, out, _ = _run(capsys, *argv, "--format", "csv")
    (row,) = _csv_rows(out)
    assert float(row["threshold"]) == -1e9
    assert float(row["score"]) == pytest.approx(logmel_model.score(MONO_CLIP, detector="ocsvm").score, rel=1e-5)
    assert row["verdict"] == "abnormal" and code == 1


def test_output_into_missing_folder_is_a_usage_error_not_an_anomaly(capsys, tmp_path):
    code, _, err = _run(capsys, "score", *EXAMPLES, "-o", str(tmp_path / "no" / "such" / "out.csv"))
    assert code == 2
    assert "out.csv" in err


_BLAS_THREADS = """
import sys
import soundsentry.cli as cli
assert "numpy" not in sys.modules, "importing the CLI imported NumPy"
cli._one_blas_thread()
import numpy
from threadpoolctl import threadpool_info
print(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
"""


@pytest.mark.parametrize("user_setting", [None, "2"])
def test_cli_runs_numpy_with_one_blas_thread_unless_the_user_chose(user_setting):
    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}
    if user_setting is not None:
        env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = user_setting
    out = subprocess.run([sys.executable, "-c", _BLAS_THREADS], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) == int(user_setting or 1)
