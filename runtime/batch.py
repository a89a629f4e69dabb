"""Scoring many files: discovery, one result row per file, optional worker processes.

A file that fails yields an ``error`` row and the batch goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .errors import SoundSentryError
from .report import Row

__all__ = ["AUDIO_SUFFIXES", "find_audio_files", "score_file", "score_files"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")

log = logging.getLogger(__name__)


def find_audio_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand folders (recursively, audio suffixes only, sorted); files are kept as given, even odd ones,
    so that a bad file the user named gets an error row instead of vanishing."""
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = [
                os.path.join(root, name)
                for root, _dirs, names in os.walk(p)
                for name in names
                if name.lower().endswith(AUDIO_SUFFIXES)
            ]
            out.extend(sorted(found))
        else:
            out.append(p)
    return out


def score_file(model, path: str, *, detector: str | None, threshold: float | None) -> Row:
    """Score one file into a :class:`Row`; SoundSentry errors become an ``error`` row."""
    detector = detector or model.default_detector
    try:
        result = model.score(path, detector=detector, threshold=threshold)
    except Exception as exc:  # one bad file must not end the batch
        if isinstance(exc, SoundSentryError):
            problem = getattr(exc, "problem", None) or str(exc)
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
    )


_worker_model = None


def _init_worker(model_ref: str, threads: int) -> None:
    global _worker_model
    from .model import load_model

    _worker_model = load_model(model_ref, threads=threads)


def _score_in_worker(args: tuple[str, str | None, float | None]) -> Row:
    path, detector, threshold = args
    return score_file(_worker_model, path, detector=detector, threshold=threshold)


def score_files(
    model,
    paths: list[str],
    *,
    detector: str | None = None,
    threshold: float | None = None,
    jobs: int = 1,
) -> Iterator[Row]:
    """Yield one row per path, in order. ``jobs > 1`` scores in worker processes, one model each."""
    if jobs <= 1 or len(paths) < 2:
        for path in paths:
            yield score_file(model, path, detector=detector, threshold=threshold)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    model_ref = str(Path(model.bundle.root))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(model_ref, threads)) as pool:
        yield from pool.map(_score_in_worker, [(p, detector, threshold) for p in paths], chunksize=4)
