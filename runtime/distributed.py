"""Scoring a whole archive on a Dask cluster: the batch's own scoring function, mapped over files.

When one machine is not enough, the files are spread over the workers of an existing Dask
cluster (``pip install "soundsentry[dask]"``). Each task scores a chunk of files with
:func:`soundsentry.batch.score_file`, the very function ``soundsentry score`` runs, with a
model loaded once per worker process and kept there, so the rows are the CLI's rows.

Example
-------
>>> from dask.distributed import Client  # doctest: +SKIP
>>> from soundsentry.distributed import score_files_dask
>>> with Client("tcp://scheduler:8786") as client:  # doctest: +SKIP
...     for row in score_files_dask(client, paths, model="fan"):
...         print(row.path, row.verdict)

The paths (and a bundle given as a folder) must be readable by every worker under the same
name, as on a shared file system. Dask is imported only when these functions run; the plain
runtime does not need it.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import SoundSentryError
from .report import Row

__all__ = ["ClusterError", "connect", "model_reference", "score_files_dask", "worker_model"]

# One model per worker process, keyed by (bundle reference, ONNX threads). Dask's worker
# threads share it: ONNX Runtime sessions and the NumPy LOF are safe to call concurrently.
_MODELS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


class ClusterError(SoundSentryError):
    """No Dask cluster to score on: the ``[dask]`` extra is missing or the scheduler cannot be reached."""


def connect(address: str, *, timeout: float = 10.0):
    """A ``dask.distributed.Client`` of the scheduler at ``address`` (``tcp://host:8786``).

    Raises
    ------
    ClusterError
        With the fix in words: install the extra, or check the scheduler's address.
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise ClusterError('--dask needs the [dask] extra: pip install "soundsentry[dask]"') from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({exc})") from None


def model_reference(model) -> str:
    """What workers load: a shipped model's name or a bundle folder, given as a name, path or :class:`Model`."""
    if isinstance(model, (str, os.PathLike)):
        ref = os.fspath(model)
        # A relative folder means nothing on a worker started elsewhere.
        return os.path.abspath(ref) if os.path.isdir(ref) else ref
    return os.fspath(model.bundle.root)


def worker_model(ref: str, *, threads: int = 1):
    """The model ``ref`` of this worker process, loaded (and its card verified) on first use."""
    key = (ref, threads)
    with _LOCK:
        if key not in _MODELS:
            from .model import load_model

            _MODELS[key] = load_model(ref, threads=threads)
        return _MODELS[key]


def _score_chunk(paths: Sequence[str], ref: str, detector: str | None, threshold: float | None, threads: int):
    from .batch import score_file

    model = worker_model(ref, threads=threads)
    return [score_file(model, p, detector=detector, threshold=threshold) for p in paths]


def score_files_dask(
    client,
    paths: Sequence[str | os.PathLike[str]],
    *,
    model="fan",
    detector: str | None = None,
    threshold: float | None = None,
    chunksize: int = 16,
    threads: int = 1,
    max_in_flight: int | None = None,
) -> Iterator[Row]:
    """Score ``paths`` on the workers of a Dask ``client`` and yield one :class:`Row` per path, in order.

    Parameters
    ----------
    client : dask.distributed.Client
    paths : sequence of str or os.PathLike
        Audio files as the workers see them (expand folders first with
        :func:`soundsentry.batch.find_audio_files`).
    model : str, os.PathLike or Model
        A shipped model's name or a bundle folder every worker can read.
    detector, threshold
        As for ``soundsentry score``.
    chunksize : int
        Files per task: enough to hide the scheduler's per-task cost (about a millisecond).
    threads : int
        ONNX Runtime threads per worker model; one suits one worker per core.
    max_in_flight : int, optional
        Chunks submitted ahead of the one being collected (default: 4 per worker thread), so
        the client's memory stays flat for an archive of any size.

    Returns
    -------
    Iterator[Row]
        The rows ``soundsentry score`` writes for the same files: a file that fails gives an
        ``error`` row and the rest go on.
    """
    if chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    ref = model_reference(model)
    names = [os.fspath(p) for p in paths]
    if max_in_flight is None:
        max_in_flight = 4 * max(1, sum(client.nthreads().values()))
    pending: deque = deque()
    try:
        for start in range(0, len(names), chunksize):
            chunk = names[start : start + chunksize]
            # pure=False: the same files may be scored again on purpose (changed on disk).
            pending.append(client.submit(_score_chunk, chunk, ref, detector, threshold, threads, pure=False))
            while len(pending) >= max_in_flight:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
