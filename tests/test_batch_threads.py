"""Scoring a batch in threads of one process: files overlap, rows keep their order and values."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from soundsentry import batch

from .conftest import DATA_CLIPS


def test_two_files_are_scored_at_once_and_rows_keep_the_input_order(fan_model, monkeypatch):
    # Each of the first two files waits until the other has started: with one file at a time the
    # barrier would time out (BrokenBarrierError) and the batch would fail.
    barrier = threading.Barrier(2, timeout=30)
    real = batch.score_file
    started = []

    def score_file(model, path, **kwargs):
        started.append(path)
        if len(started) <= 2:
            barrier.wait()
        return real(model, path, **kwargs)

    monkeypatch.setattr(batch, "score_file", score_file)
    paths = [str(p) for p in DATA_CLIPS[:4]]
    rows = list(batch.score_files(fan_model, paths, threads=2))
    assert [r.path for r in rows] == paths
    assert not barrier.broken
    monkeypatch.setattr(batch, "score_file", real)
    sequential = list(batch.score_files(fan_model, paths, threads=1))
    assert [(r.path, r.score, r.verdict, r.flags, r.explanation) for r in rows] == [
        (r.path, r.score, r.verdict, r.flags, r.explanation) for r in sequential
    ]


def test_a_bad_file_among_threads_is_an_error_row_and_the_rest_are_scored(fan_model, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_text("not samples\n" * 50)
    paths = [str(DATA_CLIPS[0]), str(bad), str(DATA_CLIPS[1])]
    rows = list(batch.score_files(fan_model, paths, threads=3))
    assert [r.path for r in rows] == paths
    assert rows[1].verdict == "error" and "decode" in rows[1].error
    assert all(r.verdict in ("normal", "abnormal") for r in (rows[0], rows[2]))


def test_closing_the_batch_early_leaves_the_files_not_started(fan_model, monkeypatch):
    real = batch.score_file
    scored = []

    def score_file(model, path, **kwargs):
        scored.append(path)
        return real(model, path, **kwargs)

    monkeypatch.setattr(batch, "score_file", score_file)
    paths = [str(DATA_CLIPS[0])] * 40
    rows = batch.score_files(fan_model, paths, threads=2)
    next(rows)
    rows.close()
    # At most the lookahead (2 per thread) was submitted past the row taken; the rest never ran.
    assert len(scored) <= 1 + 2 * 2
    assert len(scored) < len(paths)


@pytest.mark.parametrize("cpus, expected", [(1, 1), (2, 2), (64, batch.MAX_DEFAULT_THREADS)])
def test_default_threads_follow_the_cpus_up_to_a_cap(monkeypatch, cpus, expected):
    monkeypatch.setattr(batch.os, "cpu_count", lambda: cpus)
    assert batch.default_threads() == expected


def test_closing_the_batch_tells_the_files_in_progress_to_stop(fan_model, monkeypatch):
    """A file being streamed when the batch is closed (Ctrl-C, the app's Cancel) is told to stop, so the
    process does not stay alive scoring an hour-long recording whose row nobody reads."""
    real = batch.score_file
    events = []

    def score_file(model, path, **kwargs):
        events.append(kwargs["cancel"])
        return real(model, path, **kwargs)

    monkeypatch.setattr(batch, "score_file", score_file)
    rows = batch.score_files(fan_model, [str(DATA_CLIPS[0])] * 6, threads=2)
    next(rows)
    assert events and not any(e.is_set() for e in events)
    rows.close()
    assert all(e.is_set() for e in events)


def test_a_streamed_recording_stops_between_blocks_once_told(fan_model, tmp_path):
    import soundfile as sf
    from soundsentry.errors import ScoringCancelled
    from soundsentry.streaming import score_file_streamed

    y, rate = sf.read(DATA_CLIPS[0], dtype="float32", always_2d=True)
    long = tmp_path / "long.flac"
    sf.write(long, np.tile(y[:, 0], 20), rate)  # 200 s: streamed block by block
    told = threading.Event()
    told.set()
    with pytest.raises(ScoringCancelled, match=r"long\.flac: scoring stopped before the end"):
        score_file_streamed(fan_model, long, cancel=told)
    # not told: scored to the end, as without the event
    untold = score_file_streamed(fan_model, long, cancel=threading.Event())
    assert untold.score == pytest.approx(score_file_streamed(fan_model, long).score)
