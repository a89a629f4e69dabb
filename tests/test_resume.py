"""Batches never lose work: rows reach the ``-o`` file as each file is scored, a killed or
interrupted batch leaves a valid file of whole rows, and ``--resume`` finishes it into
exactly what an uninterrupted run writes.

The batches are real: the CLI in a subprocess scoring copies of the real clips, killed
with real signals while it runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf
import soundsentry
from soundsentry.cli import main

from .conftest import DATA_CLIPS, LOGMEL_BUNDLE, REPO_ROOT

#: The log-mel fixture is also named "fan" but scores with its own default detector, not the shipped fan's.
_OTHER_DEFAULT = soundsentry.load_model(LOGMEL_BUNDLE).default_detector

N_FILES = 96


@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory):
    """Short cuts (2.5 s, a few windows each, to keep the runs quick) of the four real clips
    at different offsets, and two broken files, in a fixed sorted order."""
    folder = tmp_path_factory.mktemp("resume_batch")
    clips = [sf.read(path, dtype="float32", always_2d=True) for path in DATA_CLIPS]
    for i in range(N_FILES - 2):
        samples, rate = clips[i % len(clips)]
        start = (i // len(clips)) % 7 * rate
        sf.write(folder / f"clip_{i:03d}.wav", samples[start : start + int(2.5 * rate), 0], rate, subtype="PCM_16")
    (folder / "clip_010_broken.wav").write_bytes(b"RIFF" + bytes(40))
    (folder / "clip_030_text.wav").write_text("not audio\n")
    return folder


def _command(folder, out, fmt, *extra):
    return [sys.executable, "-m", "soundsentry", "score", str(folder), "--format", fmt, "-o", str(out), *extra]


def _run(command):
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def uninterrupted(batch_folder, tmp_path_factory):
    """The output files of runs that were left alone, per format."""
    outputs = {}
    for fmt in ("csv", "json"):
        out = tmp_path_factory.mktemp("reference") / f"rows.{fmt}"
        proc = _run(_command(batch_folder, out, fmt))
        assert proc.returncode == 3, proc.stderr  # two files fail
        outputs[fmt] = out.read_bytes()
    return outputs


def _rows(data: bytes, fmt: str) -> list[dict]:
    text = data.decode("utf-8")
    if fmt == "json":
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


def _start_and_stop(command, out, fmt, sig, *, after_rows=5):
    """Start a batch, wait until some rows have reached the file, then send ``sig`` to the
    whole process group (what a terminal's Ctrl-C or a service manager's kill does)."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    rows_seen = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists():
            try:
                rows_seen = len(_rows(out.read_bytes(), fmt))
            except ValueError:  # a reader can catch the writer between two of its writes
                rows_seen = 0
        if rows_seen >= after_rows:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    os.killpg(proc.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


@pytest.mark.parametrize(("fmt", "jobs"), [("csv", "1"), ("json", "2")])
def test_killed_batch_leaves_valid_rows_and_resume_finishes_it_identically(
    batch_folder, uninterrupted, tmp_path, fmt, jobs
):
    out = tmp_path / f"rows.{fmt}"
    command = _command(batch_folder, out, fmt, "--jobs", jobs)
    code, _ = _start_and_stop(command, out, fmt, signal.SIGKILL)
    assert code == -signal.SIGKILL
    # What the kill left is valid and whole: every row equals the uninterrupted run's row.
    partial = _rows(out.read_bytes(), fmt)
    full = _rows(uninterrupted[fmt], fmt)
    assert 5 <= len(partial) < len(full)
    assert partial == full[: len(partial)]
    proc = _run([*command, "--resume"])
    assert proc.returncode == 3, proc.stderr
    assert f"{len(partial)} kept from" in proc.stderr
    assert out.read_bytes() == uninterrupted[fmt]


def test_ctrl_c_stops_cleanly_and_resume_finishes(batch_folder, uninterrupted, tmp_path):
    out = tmp_path / "rows.csv"
    command = _command(batch_folder, out, "csv", "--jobs", "2")
    code, stderr = _start_and_stop(command, out, "csv", signal.SIGINT)
    assert code == 130
    assert "Traceback" not in stderr  # neither from the batch nor from its workers
    assert "interrupted after" in stderr and "--resume" in stderr
    partial = _rows(out.read_bytes(), "csv")
    assert partial == _rows(uninterrupted["csv"], "csv")[: len(partial)]
    assert _run([*command, "--resume"]).returncode == 3
    assert out.read_bytes() == uninterrupted["csv"]


def test_sigterm_stops_like_ctrl_c(batch_folder, uninterrupted, tmp_path):
    out = tmp_path / "rows.json"
    command = _command(batch_folder, out, "json")
    code, stderr = _start_and_stop(command, out, "json", signal.SIGTERM)
    assert code == 130 and "Traceback" not in stderr
    partial = _rows(out.read_bytes(), "json")  # closed array: valid JSON
    assert partial == _rows(uninterrupted["json"], "json")[: len(partial)]


# -- resume in-process: edge cases -------------------------------------------------------------


def _main(capsys, *argv):
    code = main(list(argv))
    return code, *capsys.readouterr()


def test_resume_cuts_off_a_torn_last_row(batch_folder, uninterrupted, tmp_path, capsys):
    out = tmp_path / "rows.csv"
    data = uninterrupted["csv"]
    cut = data.index(b"\n", len(data) // 2) + 10  # ten bytes into a row
    out.write_bytes(data[:cut])
    code, _, err = _main(capsys, "score", str(batch_folder), "--format", "csv", "-o", str(out), "--resume")
    assert code == 3, err
    assert out.read_bytes() == data


def test_resume_of_a_finished_file_changes_nothing(batch_folder, uninterrupted, tmp_path, capsys):
    for fmt in ("csv", "json"):
        out = tmp_path / f"rows.{fmt}"
        out.write_bytes(uninterrupted[fmt])
        before = out.stat().st_mtime_ns
        code, _, err = _main(capsys, "score", str(batch_folder), "--format", fmt, "-o", str(out), "--resume")
        assert code == 3 and f"{N_FILES} kept from" in err
        assert out.read_bytes() == uninterrupted[fmt]
        assert out.stat().st_size == len(uninterrupted[fmt]) and before <= out.stat().st_mtime_ns


def test_resume_without_a_file_starts_fresh(batch_folder, uninterrupted, tmp_path, capsys):
    out = tmp_path / "new.csv"
    code, _, _ = _main(capsys, "score", str(batch_folder), "--format", "csv", "-o", str(out), "--resume")
    assert code == 3
    assert out.read_bytes() == uninterrupted["csv"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "2.5"], "threshold"),
        # Another bundle of the same name with another detector (the rows were scored with the shipped fan's).
        (["--model", str(LOGMEL_BUNDLE)], f"'{_OTHER_DEFAULT}'"),
    ],
)
def test_resume_refuses_rows_scored_another_way(batch_folder, uninterrupted, tmp_path, capsys, extra, message):
    out = tmp_path / "rows.csv"
    half = uninterrupted["csv"][: uninterrupted["csv"].index(b"\n", len(uninterrupted["csv"]) // 2) + 1]
    out.write_bytes(half)
    code, _, err = _main(capsys, "score", str(batch_folder), "--format", "csv", "-o", str(out), "--resume", *extra)
    assert code == 2 and "cannot resume" in err and message in err
    assert out.read_bytes() == half  # untouched


@pytest.mark.parametrize(
    "content", [b"not,our,header\n1,2,3\n", b"[{\"path\": 1}]\n", b"\x00\x01binary"], ids=["csv", "json", "binary"]
)
def test_resume_refuses_a_file_that_is_not_ours(batch_folder, tmp_path, capsys, content):
    out = tmp_path / "rows.csv"
    out.write_bytes(content)
    code, _, err = _main(capsys, "score", str(batch_folder), "--format", "csv", "-o", str(out), "--resume")
    assert code == 2 and "cannot resume" in err and str(out) in err
    assert out.read_bytes() == content


@pytest.mark.parametrize("argv", [["--resume"], ["--resume", "-o", "x.txt", "--format", "table"]])
def test_resume_needs_a_readable_output_file(capsys, argv):
    code, _, err = _main(capsys, "score", str(DATA_CLIPS[0]), *argv)
    assert code == 2 and "--resume needs -o FILE" in err


def test_a_worker_killed_mid_batch_loses_no_row(batch_folder, fan_model, caplog):
    """A worker process dies (here SIGKILL, as the OOM killer would; a decoder crash looks the
    same): its files are scored again in processes of their own and the batch goes on."""
    psutil = pytest.importorskip("psutil")
    from soundsentry.batch import find_audio_files, score_file, score_files

    paths = find_audio_files([batch_folder])[:24]
    rows = []
    killed = None
    # Only processes the batch started are its workers (other tests may leave children running).
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    for row in score_files(fan_model, paths, jobs=2, chunksize=2):
        rows.append(row)
        if len(rows) == 2:
            workers = [p for p in psutil.Process().children() if p.pid not in before]
            assert workers
            killed = workers[0].pid
            os.kill(killed, signal.SIGKILL)
    assert killed is not None
    assert "a worker process died" in caplog.text  # the recovery ran
    expected = [score_file(fan_model, p, detector=None, threshold=None) for p in paths]
    assert [r.path for r in rows] == paths
    for got, want in zip(rows, expected, strict=True):
        assert (got.verdict, got.error, got.flags) == (want.verdict, want.error, want.flags)
        assert got.score == pytest.approx(want.score, rel=1e-5) if want.score is not None else got.score is None
