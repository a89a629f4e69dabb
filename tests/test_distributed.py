"""Scoring on a Dask cluster (a real LocalCluster of worker processes) gives the CLI's rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA_CLIPS, EXAMPLES_DIR, LOGMEL_BUNDLE, REPO_ROOT, requires

pytestmark = [requires("distributed"), pytest.mark.slow]

EXAMPLES = sorted(str(p) for p in EXAMPLES_DIR.glob("*.flac"))


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    bad = tmp_path_factory.mktemp("bad") / "not_audio.wav"
    bad.write_text("this is not audio")
    # A bad file in the middle: its error row must sit in its place, and the rest go on.
    return [*EXAMPLES, str(bad), *(str(p) for p in DATA_CLIPS)]


def _cli_rows(files, tmp_path, *options):
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", *files, "--format", "json", "-o", str(out), *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 3, proc.stderr  # 3: one file failed, the others were scored
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    ("model", "options"),
    [("fan", ()), (str(LOGMEL_BUNDLE), ("--detector", "ocsvm", "--threshold", "0.5"))],
    ids=["default", "logmel-ocsvm"],  # the shipped views fan; a detector and threshold of the log-mel fixture
)
def test_dask_rows_are_the_cli_rows(client, files, tmp_path, model, options):
    from soundsentry.distributed import score_files_dask

    cli = _cli_rows(files, tmp_path, "--model", model, *options)
    kwargs = dict(zip(("detector", "threshold"), options[1::2], strict=False))
    if "threshold" in kwargs:
        kwargs["threshold"] = float(kwargs["threshold"])
    rows = list(score_files_dask(client, files, model=model, chunksize=3, **kwargs))
    # Identical, not close: the same function on the same files, floats written in full by the JSON writer.
    assert [r.to_dict() for r in rows] == cli
    assert [r["verdict"] for r in cli].count("error") == 1
    # A views bundle's rows say which view drove each score; single-score detectors leave it empty.
    assert all(bool(r["explanation"]) == (model == "fan") for r in cli if r["verdict"] != "error")
    assert cli[len(EXAMPLES)]["error"]


def test_one_model_per_worker(client, files):
    from soundsentry.distributed import score_files_dask

    list(score_files_dask(client, files, model="fan", chunksize=1))

    def loaded():
        from soundsentry.distributed import _MODELS

        return sum(ref == "fan" for ref, _ in _MODELS)  # other tests on this cluster load other bundles

    counts = client.run(loaded)
    assert len(counts) == 2 and set(counts.values()) == {1}


def test_a_bundle_folder_works_from_anywhere(client, fan_model, monkeypatch, tmp_path):
    import shutil

    from soundsentry.distributed import model_reference, score_files_dask

    bundle = tmp_path / "bundles" / "myfan"
    shutil.copytree(fan_model.bundle.root, bundle)
    monkeypatch.chdir(tmp_path)
    assert model_reference("bundles/myfan") == str(bundle)
    (row,) = score_files_dask(client, EXAMPLES[:1], model="bundles/myfan")
    # The same bundle and clip; this process and the worker differ in BLAS threads (dask's nanny sets one) and
    # ONNX Runtime threads, and a flagged clip's score sums every view's nearest-neighbour distances, whose
    # |a|^2 + |b|^2 - 2ab form turns another summation order into ~1e-10 relative (the rows of the CLI, which
    # also runs one BLAS thread, are compared with the workers' in the tests above).
    assert row.error == "" and row.score == pytest.approx(fan_model.score(EXAMPLES[0]).score, rel=1e-9)
    assert row.model == "fan"


def _score_cli(*args, check_code=3):
    proc = subprocess.run(
        [sys.executable, "-m", "soundsentry", "score", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == check_code, proc.stderr
    return proc


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_score_dask_writes_the_file_a_local_run_writes(client, files, tmp_path, fmt):
    local, remote = tmp_path / f"local.{fmt}", tmp_path / f"dask.{fmt}"
    address = client.scheduler.address
    _score_cli(*files, "--format", fmt, "-o", str(local))
    _score_cli(*files, "--format", fmt, "-o", str(remote), "--dask", address)
    assert remote.read_bytes() == local.read_bytes()
    # --resume on the cluster finishes a file cut short into the same bytes.
    half = tmp_path / f"half.{fmt}"
    _score_cli(*files[: len(files) // 2], "--format", fmt, "-o", str(half), check_code=1)
    _score_cli(*files, "--format", fmt, "-o", str(half), "--resume", "--dask", address)
    assert half.read_bytes() == local.read_bytes()


def test_score_dask_without_a_scheduler_or_the_extra_says_so_and_keeps_the_file(tmp_path):
    out = tmp_path / "rows.csv"
    out.write_text("kept\n")
    proc = _score_cli(EXAMPLES[0], "-o", str(out), "--dask", "tcp://127.0.0.1:9", "--dask-timeout", "1", check_code=6)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in proc.stderr
    assert out.read_text() == "kept\n"
    blocked = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None; "
        "from soundsentry.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", blocked, "score", EXAMPLES[0], "--dask", "tcp://127.0.0.1:9"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 6 and 'needs the [dask] extra: pip install "soundsentry[dask]"' in proc.stderr


def test_watch_dask_scores_a_folder_on_the_cluster_as_score_does(client, tmp_path):
    import csv
    import shutil
    import signal
    import time

    folder, out, ref = tmp_path / "in", tmp_path / "watch.csv", tmp_path / "score.csv"
    folder.mkdir()
    for src in EXAMPLES:
        shutil.copy(src, folder / Path(src).name)
    watch = [sys.executable, "-m", "soundsentry", "watch", str(folder), "-o", str(out), "--settle", "0.3"]
    proc = subprocess.Popen(
        [*watch, "--poll", "0.1", "--dask", client.scheduler.address],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < len(EXAMPLES) + 1):
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    paths = sorted(str(folder / Path(p).name) for p in EXAMPLES)
    _score_cli(*paths, "--format", "csv", "-o", str(ref), check_code=1)
    assert sorted(csv.DictReader(out.open()), key=lambda r: r["path"]) == list(csv.DictReader(ref.open()))
