"""Scoring many files: discovery, one result row per file, threads in one process or worker processes.

A file that fails yields an ``error`` row and the batch goes on.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .errors import SoundSentryError
from .formats import audio_suffixes
from .report import Row
from .scoring import score_path

__all__ = [
    "AUDIO_SUFFIXES",
    "MAX_DEFAULT_THREADS",
    "default_threads",
    "find_audio_files",
    "score_file",
    "score_files",
    "search_audio_files",
]

#: Suffixes folder search takes (:func:`soundsentry.formats.audio_suffixes`): every format the
#: decoders installed here read.
AUDIO_SUFFIXES = audio_suffixes()

log = logging.getLogger(__name__)

#: Files scored at once in one process by default, at most: decoding (libsndfile), the FFT, the
#: matrix products and ONNX Runtime all let go of Python's lock, so a second file's decoding overlaps
#: the first one's scoring; past a few threads, the parts that hold the lock (the views' Python)
#: stop it scaling, and each thread holds one decoded file in memory.
MAX_DEFAULT_THREADS = 4


def default_threads() -> int:
    """Files scored at once in one process when the caller does not say: the CPUs, at most :data:`MAX_DEFAULT_THREADS`."""
    return max(1, min(MAX_DEFAULT_THREADS, os.cpu_count() or 1))


def search_audio_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], int]:
    """Expand folders (recursively, :data:`AUDIO_SUFFIXES` only, sorted); files are kept as given, even odd
    ones, so that a bad file the user named gets an error row instead of vanishing.

    Returns
    -------
    files : list of str
    n_not_audio : int
        Files inside the folders left out because their suffix is not one of :data:`AUDIO_SUFFIXES`.
    """
    out: list[str] = []
    n_not_audio = 0
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = []
            for root, _dirs, names in os.walk(p):
                for name in names:
                    if name.lower().endswith(AUDIO_SUFFIXES):
                        found.append(os.path.join(root, name))
                    else:
                        n_not_audio += 1
            out.extend(sorted(found))
        else:
            out.append(p)
    return out, n_not_audio


def find_audio_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """:func:`search_audio_files` without the count of files left out."""
    return search_audio_files(paths)[0]


def score_file(
    model, path: str, *, detector: str | None, threshold: float | None, cancel: threading.Event | None = None
) -> Row:
    """Score one file into a :class:`Row`; any failure becomes an ``error`` row naming the cause.

    ``cancel`` (set when a threaded batch is closed) stops a long, streamed file between blocks.
    """
    detector = detector or model.default_detector
    try:
        result = score_path(model, path, detector=detector, threshold=threshold, cancel=cancel)
        flags = result.extra["flags"]
    except Exception as exc:  # one bad file must not end the batch
        if isinstance(exc, SoundSentryError):
            problem = getattr(exc, "problem", None) or str(exc)
        elif isinstance(exc, MemoryError):
            problem = "not enough memory to decode and score this file"
        else:
            log.debug("unexpected error scoring %s", path, exc_info=True)
            problem = f"unexpected {type(exc).__name__}: {exc}"
        thr = model.thresholds[detector] if threshold is None else threshold
        return Row(
            path=path, score=None, verdict="error", threshold=thr, detector=detector, model=model.name, error=problem
        )
    return Row(
        path=path,
        score=result.score,
        verdict=result.verdict,
        threshold=result.threshold,
        detector=detector,
        model=model.name,
        flags=flags,
        explanation=result.explanation,
    )


_worker_model = None


def _init_worker(model_ref: str, threads: int) -> None:
    global _worker_model
    # Ctrl-C reaches the whole process group; the parent decides what happens, so workers
    # must not die mid-file printing tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .model import load_model

    _worker_model = load_model(model_ref, threads=threads)


def _score_chunk(paths: list[str], detector: str | None, threshold: float | None) -> list[Row]:
    return [score_file(_worker_model, path, detector=detector, threshold=threshold) for path in paths]


def _score_isolated(
    model_ref: str, path: str, detector: str | None, threshold: float | None, threads: int, model
) -> Row:
    """Score one file in a worker process of its own, so that if it kills the process (a
    decoder crash) only its own row says so."""
    try:
        with ProcessPoolExecutor(max_workers=1, initializer=_init_worker, initargs=(model_ref, threads)) as pool:
            (row,) = pool.submit(_score_chunk, [path], detector, threshold).result()
            return row
    except BrokenProcessPool:
        detector = detector or model.default_detector
        return Row(
            path=path,
            score=None,
            verdict="error",
            threshold=model.thresholds[detector] if threshold is None else threshold,
            detector=detector,
            model=model.name,
            error="the worker process died while scoring this file (a decoder crash, or killed)",
        )


def _score_threaded(
    model, paths: list[str], *, detector: str | None, threshold: float | None, threads: int
) -> Iterator[Row]:
    """:func:`score_file` over ``paths`` in ``threads`` threads sharing ``model``; rows in input order.

    At most ``2 * threads`` files are submitted ahead of the row being yielded, so a long batch
    holds a few rows, never the whole list; closing the generator cancels the files not started
    (those running finish their file: a thread cannot be stopped half-way).
    """
    # Load the detector before the threads share the model (its first use loads it lazily). If it
    # cannot load, every file's row says so, as when scoring one file after the other.
    try:
        model.detector(detector or model.default_detector)
    except Exception:  # reported per file by score_file
        pass
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="soundsentry-score")
    # Set when the batch is closed (Ctrl-C, Cancel): files being streamed stop at their next block, so
    # the process is not kept alive scoring an hour-long recording whose row nobody will read.
    closed = threading.Event()
    pending: deque[Future] = deque()
    todo = iter(paths)
    try:
        while True:
            while len(pending) < 2 * threads:
                path = next(todo, None)
                if path is None:
                    break
                pending.append(
                    pool.submit(score_file, model, path, detector=detector, threshold=threshold, cancel=closed)
                )
            if not pending:
                return
            # score_file turns every failure of a file into its error row, so result() only raises
            # for what is not the file's fault (KeyboardInterrupt and the like reach the caller).
            yield pending.popleft().result()
    finally:
        closed.set()
        pool.shutdown(wait=False, cancel_futures=True)


def score_files(
    model,
    paths: list[str],
    *,
    detector: str | None = None,
    threshold: float | None = None,
    jobs: int = 1,
    threads: int | None = None,
    chunksize: int = 4,
) -> Iterator[Row]:
    """Yield one row per path, in order. ``jobs > 1`` scores in worker processes, one model each;
    with one job, ``threads`` files are scored at once in this process, sharing the model
    (default :func:`default_threads`; 1 scores one file after the other). The rows are the same
    either way.

    At most a few chunks per worker are in flight, so memory stays flat however many files
    the batch holds, and closing the generator (Ctrl-C in the caller) cancels the rest. If a
    worker dies (killed, out of memory, a crash in a decoder), the files it may have been
    scoring are scored again one by one, each in a process of its own, and the batch goes on
    with a new pool.
    """
    if jobs <= 1 or len(paths) < 2:
        threads = default_threads() if threads is None else threads
        if threads <= 1 or len(paths) < 2:
            for path in paths:
                yield score_file(model, path, detector=detector, threshold=threshold)
        else:
            yield from _score_threaded(model, paths, detector=detector, threshold=threshold, threads=threads)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    model_ref = str(Path(model.bundle.root))

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(model_ref, threads))

    pool = new_pool()
    pending: deque = deque()  # (chunk of paths, future of its rows), in input order
    starts = iter(range(0, len(paths), chunksize))
    try:
        while True:
            while len(pending) < 4 * jobs:
                start = next(starts, None)
                if start is None:
                    break
                chunk = paths[start : start + chunksize]
                pending.append((chunk, pool.submit(_score_chunk, chunk, detector, threshold)))
            if not pending:
                return
            chunk, future = pending.popleft()
            try:
                rows = future.result()
            except BrokenProcessPool:
                log.warning("a worker process died; scoring its files again one by one")
                pool.shutdown(wait=True, cancel_futures=True)
                for redo, redo_future in [(chunk, future), *pending]:
                    if redo_future.done() and not redo_future.cancelled() and redo_future.exception() is None:
                        yield from redo_future.result()
                    else:
                        for path in redo:
                            yield _score_isolated(model_ref, path, detector, threshold, threads, model)
                pending.clear()
                pool = new_pool()
                continue
            yield from rows
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
