"""Output files: CSV quoting and the formula guard, read back exactly; JSON valid after
every row; flags in every format."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from soundsentry.cli import main
from soundsentry.report import FIELDS, Row, make_writer, read_rows

from .conftest import MONO_CLIP, REPO_ROOT

# File names that would break a naive CSV writer or run as spreadsheet formulas.
ODD_NAMES = [
    "comma, in name.wav",
    'quote " in name.wav',
    "line\nbreak.wav",
    "carriage\rreturn.wav",
    "=HYPERLINK(\"x\",\"y\").wav",
    "+cmd.wav",
    "-2+3.wav",
    "@SUM(A1).wav",
    "\ttab.wav",
    "'=already quoted.wav",
    "'plain apostrophe.wav",
    "semi;colon.wav",
]


def _row(path, **kw):
    base = dict(path=path, score=1.25, verdict="normal", threshold=2.0, detector="lof", model="fan")
    base.update(kw)
    return Row(**base)


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_csv_cells_stay_one_cell_and_no_formula(name):
    stream = io.StringIO()
    writer = make_writer("csv", stream)
    writer.begin()
    writer.write(_row(name, error=name))
    writer.end()
    records = list(csv.reader(io.StringIO(stream.getvalue(), newline="")))
    assert len(records) == 2 and all(len(r) == len(FIELDS) for r in records)
    cells = dict(zip(FIELDS, records[1], strict=True))
    for key in ("path", "error"):
        # A spreadsheet would run a cell starting with = + - @ tab or CR; these start with '.
        assert cells[key][:1] not in ("=", "+", "-", "@", "\t", "\r")
        assert cells[key].endswith(name)
    assert float(cells["score"]) == 1.25


def test_csv_round_trips_every_odd_name(tmp_path):
    path = tmp_path / "rows.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = make_writer("csv", fh)
        writer.begin()
        for i, name in enumerate(ODD_NAMES):
            writer.write(_row(name, score=-0.5 * i, flags=("clipped",) if i % 2 else ()))
        writer.end()
    rows, end = read_rows(path, "csv")
    assert [r.path for r in rows] == ODD_NAMES
    assert [r.score for r in rows] == [-0.5 * i for i in range(len(ODD_NAMES))]  # negative numbers stay numbers
    assert [r.flags for r in rows] == [("clipped",) if i % 2 else () for i in range(len(ODD_NAMES))]
    assert end == path.stat().st_size


def test_cli_csv_with_odd_real_file_names(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ODD_NAMES:
        shutil.copy(MONO_CLIP, tmp_path / name)
    code = main(["score", "--format", "csv", "-o", "rows.csv", "--", *ODD_NAMES])
    assert code in (0, 1)
    rows, _ = read_rows(tmp_path / "rows.csv", "csv")
    assert [r.path for r in rows] == ODD_NAMES
    assert len({r.score for r in rows}) == 1  # the same clip under every name


def test_json_file_is_valid_after_every_row(tmp_path):
    path = tmp_path / "rows.json"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = make_writer("json", fh, keep_closed=True)
        writer.begin()
        assert json.loads(path.read_text()) == []
        for i in range(3):
            writer.write(_row(f"{i}.wav", flags=("silent",)))
            data = json.loads(path.read_text())  # what a kill at this moment would leave
            assert [d["path"] for d in data] == [f"{j}.wav" for j in range(i + 1)]
            assert data[-1]["flags"] == ["silent"]
        writer.end()
    assert len(json.loads(path.read_text())) == 3


def test_table_shows_flags(tmp_path, capsys, caplog):
    path = tmp_path / "silence.wav"
    import numpy as np
    import soundfile as sf

    sf.write(path, np.zeros(3 * 16000, np.float32), 16000)
    code = main(["score", str(path)])
    out, _ = capsys.readouterr()
    header, line = out.splitlines()
    assert header.split()[:4] == ["verdict", "score", "threshold", "flags"]
    assert line.split()[3] == "silent" and line.split()[4] == str(path)
    # An abnormal row ends with its explanation (which view raised the score), the CSV/JSON field's text.
    if line.split()[0] == "abnormal":
        import soundsentry

        explanation = soundsentry.load_model("fan").score(path).explanation
        assert explanation and line.endswith(f"({explanation})")
    assert f"{path}: scored, but the recording is silent" in caplog.text  # and a warning says so
    assert code == 5  # a silent file is never "all normal" (exit 0)


def test_full_disk_is_a_clear_error_not_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", str(MONO_CLIP), "--format", "csv", "-o", "/dev/full"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 2
    assert "cannot write /dev/full: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reader_closing_the_pipe_stops_quietly(tmp_path):
    shutil.copy(MONO_CLIP, tmp_path / "0.flac")
    for i in range(1, 100):  # enough work that the batch is still running when the reader leaves
        os.link(tmp_path / "0.flac", tmp_path / f"{i}.flac")
    proc = subprocess.Popen(
        [sys.executable, "-m", "soundsentry", "score", str(tmp_path), "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert proc.stdout.readline().startswith(b"path,")  # like `| head -1`
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "Broken pipe" not in stderr


def test_json_to_a_redirected_stdout_in_append_mode_stays_valid(tmp_path):
    """`>> file` opens stdout with O_APPEND, where seeking back over the bracket cannot work:
    stdout is written straight through, closed at the end."""
    out = tmp_path / "log.json"
    with open(out, "a") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "soundsentry", "score", str(MONO_CLIP), str(MONO_CLIP), "--format", "json"],
            stdout=fh,
            stderr=subprocess.PIPE,
            timeout=120,
            cwd=REPO_ROOT,
        )
    assert proc.returncode in (0, 1)
    assert [d["path"] for d in json.loads(out.read_text())] == [str(MONO_CLIP)] * 2
