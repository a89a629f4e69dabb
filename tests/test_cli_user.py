"""The command line as a user meets it (issue 15): bad signals counted apart, the recordings people
have, output without traps, messages in the user's words. Real clips through the real entry point."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from soundsentry.cli import main
from soundsentry.exit_codes import EXIT_CODES, EXIT_FLAGGED

from .conftest import ABNORMAL_CLIP, EXAMPLES_DIR, MONO_CLIP, REPO_ROOT

SLIDER = REPO_ROOT / "tests" / "data" / "slider_id_00"


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def _silent(path: Path, seconds: float = 4.0, rate: int = 16000) -> Path:
    sf.write(path, np.zeros(int(seconds * rate), np.float32), rate, subtype="PCM_16")
    return path


def _clipped(path: Path, source: Path = MONO_CLIP) -> Path:
    """A real clip overdriven 200x: most samples pinned at full scale, as a too-hot input gives."""
    y, rate = sf.read(source, dtype="float32")
    sf.write(path, np.clip(y * 200, -1, 1), rate, subtype="PCM_16")
    return path


def _to_m4a(source: Path, out: Path) -> Path:
    """Encode a real clip to AAC in MP4 with PyAV (no binary fixture kept)."""
    import av

    y, rate = sf.read(source, dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y[:, :1].T)
    with av.open(str(out), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for start in range(0, y.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, start : start + 1024]), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out


# --- A dead microphone must never look healthy -------------------------------------------------


def test_silent_and_clipped_files_are_counted_apart_with_their_own_exit_status(capsys, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(MONO_CLIP, folder / "a_real.flac")
    _silent(folder / "b_dead_microphone.wav")
    _clipped(folder / "c_too_hot.wav")
    code, out, err = _run(capsys, "score", str(folder), "--model", "fan", "--format", "csv")
    rows = {Path(r["path"]).name: r for r in _csv(out)}
    assert rows["b_dead_microphone.wav"]["flags"] == "silent"
    assert rows["c_too_hot.wav"]["flags"] == "clipped"
    summary = err.strip().splitlines()[-1]
    real = rows["a_real.flac"]["verdict"]
    assert summary.startswith("3 files: ")
    assert f"{1 if real == 'normal' else 0} normal" in summary and "1 silent" in summary and "1 clipped" in summary
    assert code == EXIT_FLAGGED != 0
    assert EXIT_FLAGGED in EXIT_CODES and "silent" in EXIT_CODES[EXIT_FLAGGED]


def test_readme_exit_table_is_the_exit_codes():
    readme = (REPO_ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme, flags=re.M))
    assert {int(k) for k in table} == set(EXIT_CODES)
    assert "silent" in table[str(EXIT_FLAGGED)]


def test_enroll_skips_and_names_silent_or_clipped_recordings_strict_refuses(capsys, tmp_path):
    normal = sorted(SLIDER.glob("normal/*.flac"))[:3]
    dead = _silent(tmp_path / "dead_microphone.wav")
    hot = _clipped(tmp_path / "too_hot.wav", normal[0])
    out = tmp_path / "mine"
    code, _, err = _run(
        capsys, "enroll", "--model", "fan", "--normal", *map(str, normal), str(dead), str(hot), "--out", str(out)
    )
    assert code == 3, err  # written, some recordings skipped
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert any(str(dead) in line and "silent" in line for line in skipped)
    assert any(str(hot) in line and "clipped" in line for line in skipped)
    card = json.loads((out / "model.json").read_text())
    assert card["enrollment"]["n_recordings"] == len(normal)

    strict_out = tmp_path / "strict"
    code, _, err = _run(
        capsys, "enroll", "--model", "fan", "--normal", *map(str, normal), str(dead), "--out", str(strict_out), "--strict"
    )
    assert code == 2 and str(dead) in err and "silent" in err
    assert not strict_out.exists()


def test_enroll_api_refuses_an_all_silent_enrollment(tmp_path):
    from soundsentry.enroll import enroll
    from soundsentry.errors import EnrollmentError

    dead = [_silent(tmp_path / f"dead_{i}.wav", seconds=10) for i in range(3)]
    with pytest.raises(EnrollmentError, match="silent") as info:
        enroll("fan", dead, out=tmp_path / "bundle")
    assert all(str(d) in str(info.value) for d in dead)
    with pytest.raises(EnrollmentError, match="silent"):  # arrays too, whatever the encoder
        enroll("fan", [(np.zeros(160000, np.float32), 16000)], out=tmp_path / "bundle")


@pytest.mark.parametrize("present", ["abnormal", "normal"])
def test_evaluate_without_one_class_says_which_figures_are_missing(capsys, tmp_path, present):
    data = tmp_path / "data"
    shutil.copytree(SLIDER / present, data / present)
    code, _, err = _run(capsys, "evaluate", str(data), "--model", "fan", "--no-plots", "-o", str(tmp_path / "r.md"))
    absent = "normal" if present == "abnormal" else "abnormal"
    assert f"no {absent} clips found" in err
    assert ("false-alarm figures" if absent == "normal" else "detection figures") in err and "missing" in err
    assert "F1" not in err.split("no ")[0]  # no F1 printed as if it meant something
    assert code == 2


# --- The recordings people actually have -------------------------------------------------------


def test_folder_search_takes_every_format_libsndfile_reads_and_counts_the_rest(capsys, tmp_path):
    folder = tmp_path / "recorder"
    folder.mkdir()
    y, rate = sf.read(MONO_CLIP, dtype="float32")
    written = []
    for name, fmt in (("take1.mp3", "MP3"), ("take2.aiff", "AIFF"), ("take3.caf", "CAF"), ("take4.w64", "W64")):
        if fmt in sf.available_formats():
            sf.write(folder / name, y, rate, format=fmt)
            written.append(name)
    (folder / "notes.txt").write_text("fan at bay 3\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff not audio")
    code, out, err = _run(capsys, "score", str(folder), "--model", "fan", "--format", "csv")
    rows = _csv(out)
    assert sorted(Path(r["path"]).name for r in rows) == sorted(written)
    assert all(r["verdict"] in ("normal", "abnormal") for r in rows)
    assert "2 files in the folders skipped as not audio" in err.splitlines()[-1]
    assert code in (0, 1)


def test_m4a_decodes_through_pyav(capsys, tmp_path):
    pytest.importorskip("av")
    m4a = _to_m4a(MONO_CLIP, tmp_path / "phone.m4a")
    code, out, _ = _run(capsys, "score", str(tmp_path), str(MONO_CLIP), "--model", "fan", "--format", "csv")
    rows = _csv(out)
    assert [r["path"] for r in rows] == [str(m4a), str(MONO_CLIP)]
    assert rows[0]["error"] == "", rows[0]["error"]
    # AAC is lossy: the score of the M4A is near the FLAC's, not equal.
    assert float(rows[0]["score"]) == pytest.approx(float(rows[1]["score"]), rel=0.15)
    assert code in (0, 1)


def test_m4a_without_pyav_names_the_extra(tmp_path):
    pytest.importorskip("av")  # to make the file; the run below blocks PyAV
    m4a = _to_m4a(MONO_CLIP, tmp_path / "phone.m4a")
    code = (
        "import sys; sys.modules['av'] = None; from soundsentry.cli import main; "
        f"sys.exit(main(['score', {str(m4a)!r}, '--model', 'fan', '--format', 'csv']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    (row,) = _csv(proc.stdout)
    assert row["verdict"] == "error" and "[m4a]" in row["error"] and 'pip install "soundsentry[m4a]"' in row["error"]
    assert proc.returncode == 3 and "Traceback" not in proc.stderr


# --- Output without traps ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_output_format_from_the_extension(capsys, tmp_path, suffix):
    out = tmp_path / f"scores.{suffix}"
    code, stdout, _ = _run(capsys, "score", str(MONO_CLIP), "--model", "fan", "-o", str(out))
    text = out.read_text()
    if suffix == "csv":
        assert _csv(text)[0]["path"] == str(MONO_CLIP)
    else:
        assert json.loads(text)[0]["path"] == str(MONO_CLIP)
    assert stdout == "" and code in (0, 1)


def test_output_format_contradicting_the_extension_is_refused(capsys, tmp_path):
    out = tmp_path / "scores.csv"
    code, _, err = _run(capsys, "score", str(MONO_CLIP), "--model", "fan", "--format", "table", "-o", str(out))
    assert code == 2 and "--format table" in err and "scores.csv" in err
    assert not out.exists()


def _render(raw: str) -> list[str]:
    """The lines a terminal shows for this output: carriage returns overwrite, escapes dropped."""
    raw = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw)
    shown = []
    for line in raw.split("\n"):
        cells: list[str] = []
        col = 0
        for part in re.split(r"(\r)", line):
            if part == "\r":
                col = 0
                continue
            for ch in part:
                if col < len(cells):
                    cells[col] = ch
                else:
                    cells.append(ch)
                col += 1
        shown.append("".join(cells).rstrip())
    return shown


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_rows_and_progress_bar_never_share_a_line_on_a_terminal():
    import fcntl
    import pty
    import select
    import struct
    import termios

    clips = sorted(str(p) for p in EXAMPLES_DIR.glob("*.flac"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal, 24 x 160 (a new pty has 0 columns: no bar)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
        os.chdir(REPO_ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "soundsentry", "score", *clips, "--model", "fan"])
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    raw = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    assert "%|" in raw or "file/s" in raw or "s/file" in raw, "the progress bar was not drawn on the terminal"
    lines = _render(raw)
    rows = [line for line in lines if any(c in line for c in clips)]
    assert len(rows) == len(clips), lines
    for row in rows:
        assert row.split()[0] in ("normal", "abnormal") and "%|" not in row and "/file" not in row, row
    assert os.waitstatus_to_exitcode(status) in (0, 1)


def test_a_path_that_does_not_exist_is_a_command_line_error(tmp_path):
    missing = tmp_path / "no_such_folder"
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", str(MONO_CLIP), str(missing), "--model", "fan", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 2 and str(missing) in proc.stderr
    assert proc.stdout == ""  # nothing was scored


def test_without_model_one_line_says_which_model(capsys):
    code, _, err = _run(capsys, "score", str(MONO_CLIP))
    said = [line for line in err.splitlines() if "no --model given" in line and "'fan'" in line]
    assert len(said) == 1
    code, _, err = _run(capsys, "score", str(MONO_CLIP), "--model", "fan")
    assert not [line for line in err.splitlines() if "no --model" in line] and code in (0, 1)


def test_shipped_model_as_is_says_how_far_to_trust_it_and_how_to_enroll(capsys, fan_model):
    from soundsentry.cli._common import evidence_summary

    _, _, err = _run(capsys, "score", str(MONO_CLIP), "--model", "fan")
    (line,) = [line for line in err.splitlines() if "shipped model" in line]
    assert evidence_summary(fan_model.card) in line and "soundsentry enroll --model fan" in line


def test_an_enrolled_model_gets_no_shipped_warning(capsys, tmp_path):
    normal = sorted(SLIDER.glob("normal/*.flac"))[:2]
    out = tmp_path / "mine"
    code, _, _ = _run(capsys, "enroll", "--model", "fan", "--normal", *map(str, normal), "--out", str(out))
    assert code == 0
    code, _, err = _run(capsys, "score", str(ABNORMAL_CLIP), "--model", str(out))
    assert "shipped model" not in err and "no --model" not in err
    # enroll --out and train --out agree: a non-empty folder needs --force
    code, _, err = _run(capsys, "enroll", "--model", "fan", "--normal", *map(str, normal), "--out", str(out))
    assert code == 2 and "--force" in err and "overwrite=True" not in err


def test_messages_are_in_the_users_words(capsys, tmp_path):
    fake = tmp_path / "fake.wav"
    fake.write_text("these are not samples\n" * 20)
    code, out, _ = _run(capsys, "score", str(fake), "--model", "fan", "--format", "csv")
    (row,) = _csv(out)
    assert "Format not recognised" in row["error"] and "b'" not in row["error"] and "Error opening" not in row["error"]
    # The hint for a detector that needs the [train] extra does not show Python code.
    code = (
        "import sys; sys.modules['sklearn'] = None; sys.modules['skl2onnx'] = None\n"
        "from soundsentry.detector_kinds import detector_kind, require_extra\n"
        "try:\n    require_extra(detector_kind('ocsvm'))\nexcept Exception as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "[train]" in proc.stdout and "detectors=" not in proc.stdout and "('" not in proc.stdout


def test_models_has_a_header_no_repetition_and_says_worse_than_chance(capsys, fan_model):
    code, out, _ = _run(capsys, "models")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[0] == "model"
    for line in lines[1:]:
        name = line.split()[0]
        assert line.split().count(name) == 1, line
    cross = fan_model.card.get("evidence", {}).get("cross-machine", {})
    auc = (cross.get("ours") or {}).get("auc") if isinstance(cross.get("ours"), dict) else None
    fan = next(line for line in lines if line.split()[0] == "fan")
    if auc is not None and auc < 0.5:
        assert "worse than chance" in fan
    else:
        assert "worse than chance" not in fan


def test_help_texts_are_complete():
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", "--help"], capture_output=True, text=True, timeout=60
    )
    text = " ".join(proc.stdout.split())
    assert re.search(r"--format \{table,csv,json\} \S.*default: from the -o file's extension", text)
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "train", "--help"], capture_output=True, text=True, timeout=60
    )
    text = " ".join(proc.stdout.split())
    for option in ("--patience PATIENCE", "--seed SEED", "--validation-fraction VALIDATION_FRACTION", "--latent-dim LATENT_DIM"):
        assert re.search(re.escape(option) + r" [a-z][^-]+\(default: [0-9.]+\)", text), option


def test_train_out_refuses_a_non_empty_folder_like_enroll(capsys, tmp_path):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "precious.txt").write_text("not a bundle")
    code, _, err = _run(capsys, "train", str(SLIDER), "--machine-type", "slider", "--out", str(out))
    assert code == 2 and "--force" in err
    code, _, err = _run(capsys, "train", str(SLIDER), "--machine-type", "slider", "--out", str(out), "--force")
    assert code == 2 and "no model bundle" in err
    assert (out / "precious.txt").exists()


def test_readme_quick_start_says_which_example_is_which():
    """The quick start's table of the examples agrees with examples/README.md, which holds their provenance."""
    readme = (REPO_ROOT / "README.md").read_text()
    quick = readme[: readme.index("## Python API")]
    said = dict(re.findall(r"^\| `([^`]+\.flac)` \| (normal|abnormal)\b", quick, flags=re.M))
    provenance = (EXAMPLES_DIR / "README.md").read_text()
    truth = {m[0]: m[1] for m in re.findall(r"^\| `([^`]+\.flac)` \|(?:[^|]*\|){3} (normal|abnormal) \|", provenance, flags=re.M)}
    assert said == truth and len(truth) == len(list(EXAMPLES_DIR.glob("*.flac")))
    assert "<!-- QUICKSTART-OUTPUT" in quick and "PortAudio" in quick
