"""``soundsentry evaluate`` on real labelled clips: figures checked against scikit-learn, report, plots."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundsentry
from soundsentry.cli import main
from soundsentry.evaluate import (
    EvaluationError,
    evaluate_scores,
    read_labelled_clips,
    score_clips,
    training_fingerprints,
)
from soundsentry.evaluate_report import write_report

from .conftest import ABNORMAL_CLIP, DATA_DIR, LOGMEL_BUNDLE, MONO_CLIP, requires

SLIDER = DATA_DIR / "slider_id_00"


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """Real clips in the layout users have: <machine>/<normal|abnormal>/*.flac, two machines."""
    root = tmp_path_factory.mktemp("labelled")
    for label in ("normal", "abnormal"):
        (root / "id_00" / label).mkdir(parents=True)
        for p in sorted((SLIDER / label).glob("*.flac")):
            shutil.copy(p, root / "id_00" / label / p.name)
    (root / "id_06" / "normal").mkdir(parents=True)
    (root / "id_06" / "abnormal").mkdir(parents=True)
    shutil.copy(MONO_CLIP, root / "id_06" / "normal" / "fan_normal.flac")
    shutil.copy(ABNORMAL_CLIP, root / "id_06" / "abnormal" / "fan_abnormal.flac")
    return root


@pytest.fixture(scope="module")
def scored(logmel_model, labelled_folder):
    """Every detector's scores: the log-mel fixture's four (LOF, OC-SVM, ...)."""
    return score_clips(logmel_model, read_labelled_clips([labelled_folder]))


def test_folder_labels_and_machines(labelled_folder):
    clips = read_labelled_clips([labelled_folder])
    assert len(clips) == 10
    assert sum(c.label == "abnormal" for c in clips) == 4
    assert {c.machine_id for c in clips} == {"id_00", "id_06"}
    assert all((c.label == "abnormal") == (c.path.parent.name == "abnormal") for c in clips)


def test_clips_csv_is_read_with_its_columns(tmp_path):
    rows = [
        ("normal/a.flac", "normal", "slider", "id_00", "6", "source"),
        ("abnormal/b.flac", "abnormal", "slider", "id_00", "-6", "target"),
    ]
    with open(tmp_path / "clips.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "machine_type", "machine_id", "snr_db", "domain"])
        w.writerows(rows)
    clips = read_labelled_clips([tmp_path])  # a folder with clips.csv reads the CSV
    assert [c.path for c in clips] == [tmp_path / "normal/a.flac", tmp_path / "abnormal/b.flac"]
    assert [(c.label, c.snr_db, c.domain) for c in clips] == [("normal", "6", "source"), ("abnormal", "-6", "target")]
    (tmp_path / "bad.csv").write_text("file,label\nx.flac,broken\n")
    with pytest.raises(EvaluationError, match=r"bad\.csv, line 2"):
        read_labelled_clips([tmp_path / "bad.csv"])


def test_unlabelled_folder_and_missing_path_are_clear_errors(tmp_path):
    shutil.copy(MONO_CLIP, tmp_path / "clip.flac")
    with pytest.raises(EvaluationError, match="no labelled clips"):
        read_labelled_clips([tmp_path])
    with pytest.raises(EvaluationError, match="not found"):
        read_labelled_clips([tmp_path / "nope"])


def test_dcase_file_names_give_label_and_domain(tmp_path):
    for name in ("section_00_source_test_normal_0001.flac", "section_00_target_test_anomaly_0002.flac"):
        shutil.copy(MONO_CLIP, tmp_path / name)
    clips = read_labelled_clips([tmp_path])
    assert [(c.label, c.domain, c.machine_id) for c in clips] == [
        ("normal", "source", "section_00"),
        ("abnormal", "target", "section_00"),
    ]


@requires("sklearn")
def test_figures_match_scikit_learn(logmel_model, scored):
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    threshold = logmel_model.thresholds["lof"]
    rows = evaluate_scores(scored, detector="lof", threshold=threshold)
    y = np.array([s.clip.y for s in scored])
    s = np.array([s.scores["lof"] for s in scored])
    overall = rows[0]
    assert (overall.group, overall.n_normal, overall.n_abnormal) == ("all", 6, 4)
    assert overall.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert overall.pauc == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12)
    pred = (s > threshold).astype(int)
    assert overall.recall == pytest.approx(recall_score(y, pred, zero_division=0))
    assert overall.f1 == pytest.approx(f1_score(y, pred, zero_division=0))
    if pred.any():
        assert overall.precision == pytest.approx(precision_score(y, pred))
    per_machine = {r.value: r for r in rows if r.group == "machine"}
    assert set(per_machine) == {"id_00", "id_06"}
    for machine, r in per_machine.items():
        mask = np.array([c.clip.machine_id == machine for c in scored])
        assert (r.n_normal, r.n_abnormal) == (int((y[mask] == 0).sum()), int(y[mask].sum()))
        assert r.auc == pytest.approx(roc_auc_score(y[mask], s[mask]), abs=1e-12)
        assert r.pauc == pytest.approx(roc_auc_score(y[mask], s[mask], max_fpr=0.1), abs=1e-12)


def test_scores_are_the_models_own(logmel_model, scored):
    for s in scored[:3]:
        assert s.scores["lof"] == pytest.approx(logmel_model.score(s.clip.path, detector="lof").score, rel=1e-6)
        assert s.scores["ocsvm"] == pytest.approx(logmel_model.score(s.clip.path, detector="ocsvm").score, rel=1e-5, abs=1e-6)


def test_one_class_group_reports_counts_not_auc(logmel_model, scored):
    only_normal = [s for s in scored if s.clip.y == 0]
    row = evaluate_scores(only_normal, detector="lof", threshold=logmel_model.thresholds["lof"])[0]
    assert row.n_abnormal == 0 and np.isnan(row.auc) and np.isnan(row.recall)
    assert 0.0 <= row.false_alarm_rate <= 1.0


@requires("matplotlib")
@pytest.mark.parametrize(
    ("model", "detectors"), [("fan", ("views",)), (str(LOGMEL_BUNDLE), ("lof", "ocsvm"))], ids=["views", "logmel"]
)
def test_cli_writes_report_scores_and_plots(labelled_folder, tmp_path, capsys, model, detectors):
    out = tmp_path / "rep" / "slider.md"
    code = main(["evaluate", "--model", model, str(labelled_folder), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    text = out.read_text()
    assert "| all | all | 6 | 4 |" in text and "| machine | id_00 | 5 | 3 |" in text
    for det in detectors:
        png = out.parent / f"slider_roc_{det}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in text
    with open(out.parent / "slider_scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 and all(r[f"score_{detectors[0]}"] and not r["error"] for r in rows)


def test_cli_goes_on_past_a_bad_clip(labelled_folder, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(labelled_folder / "id_00", data)
    (data / "normal" / "broken.wav").write_bytes(b"RIFF....nope")
    out = tmp_path / "r.md"
    code = main(["evaluate", "--model", str(LOGMEL_BUNDLE), str(data), "-o", str(out), "--no-plots", "--detector", "lof"])
    assert code == 3
    text = out.read_text()
    assert "broken.wav" in text and "| all | all | 5 | 3 |" in text
    assert "failed: 1" in text
    assert "1 clips could not be scored" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["fan", str(LOGMEL_BUNDLE)], ids=["views", "logmel"])
def test_clips_the_model_heard_are_left_out(tmp_path, capsys, model):
    """tests/data's id_06 normal clip is one of the clips both fan bundles were fitted on (a views bundle lists
    them as training.clips, a trained one as train_clips/validation_clips)."""
    heard = training_fingerprints(soundsentry.load_model(model).card)
    assert MONO_CLIP.name in heard["names"]
    data = tmp_path / "d"
    (data / "normal").mkdir(parents=True)
    (data / "abnormal").mkdir()
    shutil.copy(MONO_CLIP, data / "normal" / MONO_CLIP.name)
    shutil.copy(SLIDER / "normal" / "yos95_id_00_normal_id_00_00000013_first4s.flac", data / "normal")
    shutil.copy(ABNORMAL_CLIP, data / "abnormal")
    main(["evaluate", "--model", model, str(data), "-o", str(tmp_path / "a.md"), "--no-plots"])
    assert "| all | all | 1 | 1 |" in (tmp_path / "a.md").read_text()
    main(["evaluate", "--model", model, str(data), "-o", str(tmp_path / "b.md"), "--no-plots", "--include-heard"])
    assert "| all | all | 2 | 1 |" in (tmp_path / "b.md").read_text()


NO_MPL_SCRIPT = textwrap.dedent(
    """
    import json, sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("matplotlib", "sklearn", "tensorflow", "scipy"):
                raise ImportError(f"{{name}} is blocked")
            return None

    sys.meta_path.insert(0, Blocker())
    import soundsentry.cli
    code = soundsentry.cli.main(["evaluate", "--model", "fan", {data!r}, "-o", {out!r}])
    print(json.dumps({{"code": code}}))
    """
)


def test_without_matplotlib_the_report_says_plots_were_skipped(labelled_folder, tmp_path):
    out = tmp_path / "r.md"
    script = NO_MPL_SCRIPT.format(data=str(labelled_folder), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["code"] == 0
    assert "ROC plots skipped: matplotlib is not installed" in proc.stderr
    assert "skipped: matplotlib is not installed" in out.read_text()
    assert not list(tmp_path.glob("*.png"))


def test_write_report_without_plots(logmel_model, scored, tmp_path):
    report = write_report(logmel_model, scored, tmp_path / "x.md", plots=False)
    assert report.plots == [] and report.plots_skipped == "plots not requested"
    assert report.metrics["lof"][0].n == 10
