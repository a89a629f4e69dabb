"""``soundsentry watch``: real clips dropped into a watched folder while the watcher runs (some
written slowly, in pieces), the watcher killed with SIGKILL mid-way and started again, and the
result compared with ``soundsentry score`` on the same files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from soundsentry.watch import FileSettler, decodes

from .conftest import DATA_DIR, REPO_ROOT

SLIDER = sorted((DATA_DIR / "slider_id_00").rglob("*.flac"))  # 4-s real clips, quick to score
WATCH = [sys.executable, "-m", "soundsentry", "watch"]


def _watch(folder: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*WATCH, str(folder), "-o", str(out), "--settle", "0.6", "--poll", "0.1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _csv_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text()
    # Only whole lines: the watcher may be writing the next one.
    return list(csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1])))


def _wait_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 30) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = _csv_rows(out)
        if len(rows) >= n:
            return rows
        if proc.poll() is not None:
            raise AssertionError(f"watcher exited with {proc.returncode}: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{len(_csv_rows(out))} rows after {timeout} s, expected {n}: {proc.communicate()[1]}")


def _write_slowly(src: Path, dest: Path, *, pieces: int = 5, pause: float = 0.25) -> None:
    """Copy ``src`` as a recorder would write it: in pieces, pausing less than the settle time."""
    data = src.read_bytes()
    step = -(-len(data) // pieces)
    with open(dest, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(pause)


@pytest.mark.slow
@pytest.mark.parametrize("notify", [[], ["--no-notify", "--rescan", "0.2"]], ids=["notifications", "polling"])
def test_watcher_killed_and_restarted_scores_each_file_once_as_score_does(tmp_path, notify):
    folder = tmp_path / "recordings"
    (folder / "line2").mkdir(parents=True)
    out = tmp_path / "rows.csv"
    for src in SLIDER[:3]:  # already there when the watcher starts
        shutil.copy(src, folder / src.name)

    proc = _watch(folder, out, *notify)
    _write_slowly(SLIDER[3], folder / "line2" / SLIDER[3].name)  # a subfolder, written in pieces
    _wait_rows(out, 2, proc)
    proc.send_signal(signal.SIGKILL)  # mid-way: files left, maybe one being scored
    proc.wait()
    for src in SLIDER[4:6]:  # arrive while nobody is watching
        shutil.copy(src, folder / src.name)

    proc = _watch(folder, out, *notify)
    slow = threading.Thread(target=_write_slowly, args=(SLIDER[6], folder / "line2" / SLIDER[6].name))
    slow.start()
    shutil.copy(SLIDER[7], folder / SLIDER[7].name)
    slow.join()
    rows = _wait_rows(out, len(SLIDER), proc)
    proc.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err  # a service stop is not a failure
    assert "status: " in err and "waiting to settle" in err

    rows = _csv_rows(out)
    paths = [row["path"] for row in rows]
    assert sorted(paths) == sorted(str(p) for p in folder.rglob("*.flac"))  # exactly one row per file
    # The same rows `soundsentry score` writes for these files, whole files only.
    ref = tmp_path / "score.csv"
    score = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", *sorted(paths), "--format", "csv", "-o", str(ref)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert score.returncode in (0, 1), score.stderr
    assert sorted(rows, key=lambda r: r["path"]) == sorted(_csv_rows(ref), key=lambda r: r["path"])
    assert all(r["explanation"] for r in rows)  # the shipped views fan says which view drove each score


@pytest.mark.slow
def test_alert_command_gets_one_event_per_burst_and_a_failing_one_never_stops_watching(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    out = tmp_path / "rows.csv"
    events = tmp_path / "events.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import sys\n"
        f"open({str(events)!r}, 'a').write(sys.stdin.read())\n"
        "sys.exit(3)  # a failing command: logged, monitoring goes on\n"
    )
    # Every file abnormal (threshold far below any score): one burst of six.
    proc = _watch(
        folder,
        out,
        "--threshold=-1e9",
        "--on-abnormal",
        f"{sys.executable} {hook}",
        "--alert-after",
        "2",
        "--alert-every",
        "3600",
    )
    for src in SLIDER[:6]:
        shutil.copy(src, folder / src.name)
    rows = _wait_rows(out, 6, proc)
    time.sleep(1.0)  # the alert thread runs the command
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert all(row["verdict"] == "abnormal" for row in rows)
    lines = events.read_text().splitlines()
    assert len(lines) == 1, lines  # one burst, one event: after 2, then rate-limited
    event = json.loads(lines[0])
    assert event["event"] == "abnormal" and event["source"] == "watch"
    assert event["file"] == rows[1]["path"]  # the second consecutive abnormal file raised it
    assert event["consecutive"] == 2 and event["model"] == "fan" and event["threshold"] == -1e9
    assert [e["file"] for e in event["evidence"]] == [rows[0]["path"], rows[1]["path"]]
    assert "alert command exited with status 3" in err
    assert all(f"abnormal {row['path']} score" in err for row in rows)  # a log line per file


def test_settler_waits_for_a_growing_file_and_drops_a_deleted_one(tmp_path):
    now = [0.0]
    settler = FileSettler(settle_seconds=2.0, give_up_seconds=10.0, clock=lambda: now[0], check=lambda p: True)
    growing, gone = tmp_path / "a.wav", tmp_path / "b.wav"
    growing.write_bytes(b"x")
    gone.write_bytes(b"x")
    settler.add(str(growing))
    settler.add(str(gone))
    assert settler.ready() == []  # first look
    for t in (1.0, 2.0, 3.0):
        now[0] = t
        with open(growing, "ab") as fh:
            fh.write(b"more")
        assert str(growing) not in settler.ready()
    gone.unlink()
    now[0] = 4.9
    assert settler.ready() == [] and len(settler) == 1  # deleted: forgotten
    now[0] = 5.1
    assert settler.ready() == [str(growing)]  # unchanged for 2 s


def test_settled_file_that_never_decodes_is_released_for_its_error_row(tmp_path):
    now = [0.0]
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    settler = FileSettler(settle_seconds=1.0, give_up_seconds=5.0, clock=lambda: now[0])
    settler.add(str(bad))
    for t in (0.0, 1.5, 4.0, 6.0):
        now[0] = t
        assert settler.ready() == []
    now[0] = 6.6
    assert settler.ready() == [str(bad)]


def test_decodes_is_false_for_a_truncated_clip_and_true_for_the_whole_one(tmp_path):
    data = SLIDER[0].read_bytes()
    part = tmp_path / "part.flac"
    part.write_bytes(data[: len(data) // 2])
    assert not decodes(str(part))
    assert decodes(str(SLIDER[0]))
