"""Watching folders: score every recording once, as soon as it is complete, for days.

:class:`Watcher` scores the audio files already under its folders (recursively) and every
one that appears later, writing one row per file through a
:class:`~soundsentry.report.RowWriter`, exactly as ``soundsentry score -o`` does.

When is a file complete?
    A recorder still writing a file, or a copy in progress, must not be scored half-written.
    A file is scored once its size and modification time have not changed for
    ``settle_seconds`` *and* it decodes (its header opens and its last frames read). A file
    that stays undecodable for ``give_up_seconds`` after settling is scored anyway, so that it
    gets an ``error`` row naming it instead of being waited for forever.

Restart-safe
    The state is the output file itself: rows are written whole and flushed one at a time, a
    row torn by a kill is cut off on restart (:func:`~soundsentry.report.open_output`), and
    every path with a row is skipped. Started again after a kill at any moment, the same
    command scores each file exactly once.

Renamed, deleted and replaced files (a file is known by its path)
    - deleted before it was scored: forgotten, no row;
    - deleted after: its row stays (the output is a log of what was heard);
    - renamed or moved (inside the watched folders): a new path, scored again under its new
      name once it settles; the old row stays;
    - replaced under the same name after its row was written: not scored again, now or after a
      restart. Recorders that reuse names should write ``name.tmp`` and rename (only audio
      suffixes are watched) or, better, use a new name per recording.

Notifications
    The OS's file-change notifications (inotify, FSEvents, ReadDirectoryChangesW) through
    `watchdog <https://pypi.org/project/watchdog/>`_ when it is installed (the ``[watch]``
    extra), plus a full rescan every ``rescan_seconds`` (default 300) in case a notification was
    lost (an overflowing inotify queue, a network share). Without watchdog, or with
    ``notify=False``, new files are found by rescanning the folders every ``rescan_seconds``
    (default 10: a walk of a large archive is not free).

Memory
    Flat: the paths that have a row (one string each; a recorder making a file a minute adds
    about 100 KB a day) and the files waiting to settle. Rows are not kept.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .batch import AUDIO_SUFFIXES
from .report import Row, RowWriter

__all__ = ["FileSettler", "WatchStats", "Watcher", "decodes", "scan_audio_files"]

log = logging.getLogger(__name__)


def scan_audio_files(roots: Iterable[str]) -> Iterator[str]:
    """Audio files under ``roots`` (recursive, audio suffixes only), in sorted order per folder."""
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                if name.lower().endswith(AUDIO_SUFFIXES):
                    yield os.path.join(folder, name)


def decodes(path: str) -> bool:
    """True when ``path`` opens as audio with at least one frame and its last frames read.

    A FLAC being written has no frame count in its header yet, a WAV being copied ends early:
    both fail here until they are whole.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            if f.frames <= 0:
                return False
            f.seek(max(0, f.frames - 1024))
            tail = f.read(1024, dtype="float32")
            return tail.shape[0] > 0
    except Exception:  # any decoder complaint means "not yet"
        return False


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    changed_at: float  # clock time of the last size/mtime change seen
    settled_at: float | None = None  # clock time it first settled without decoding


class FileSettler:
    """Files waiting to be complete; :meth:`ready` returns those that are.

    Parameters
    ----------
    settle_seconds : float
        How long size and modification time must stay unchanged.
    give_up_seconds : float
        How long a settled file may stay undecodable before it is released anyway (to get its
        error row).
    clock : callable
        Monotonic seconds.
    check : callable
        ``check(path) -> bool``, the "it decodes" test.
    """

    def __init__(
        self,
        *,
        settle_seconds: float = 2.0,
        give_up_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        check: Callable[[str], bool] = decodes,
    ) -> None:
        self.settle_seconds = settle_seconds
        self.give_up_seconds = give_up_seconds
        self._clock = clock
        self._check = check
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: str) -> bool:
        return path in self._pending

    def add(self, path: str) -> None:
        if path not in self._pending:
            # Size -1: the first look in ready() always counts as a change.
            self._pending[path] = _Pending(-1, -1, self._clock())

    def ready(self) -> list[str]:
        """Complete files, sorted, removed from the waiting set; deleted ones are dropped."""
        now = self._clock()
        out = []
        for path, p in list(self._pending.items()):
            try:
                st = os.stat(path)
            except OSError:
                log.info("%s: gone before it was scored", path)
                del self._pending[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (p.size, p.mtime_ns):
                p.size, p.mtime_ns, p.changed_at, p.settled_at = st.st_size, st.st_mtime_ns, now, None
                continue
            if now - p.changed_at < self.settle_seconds:
                continue
            if self._check(path):
                out.append(path)
            else:
                p.settled_at = now if p.settled_at is None else p.settled_at
                if now - p.settled_at < self.give_up_seconds:
                    continue
                log.warning("%s: unchanged for %.0f s but does not decode; scoring it anyway", path, now - p.changed_at)
                out.append(path)
            del self._pending[path]
        return sorted(out)


@dataclass
class WatchStats:
    """What a watcher has done since it started."""

    kept: int = 0  # rows already in the output file at start
    normal: int = 0
    abnormal: int = 0
    failed: int = 0
    last: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def scored(self) -> int:
        return self.normal + self.abnormal + self.failed


class _Notifier:
    """watchdog's observer, feeding created/modified/moved audio paths into a queue."""

    def __init__(self, roots: list[str], sink: queue.SimpleQueue) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):  # runs in watchdog's thread: only enqueue
                if event.is_directory:
                    return
                for p in (getattr(event, "dest_path", None), event.src_path):
                    if p:
                        p = os.fsdecode(p)
                        if p.lower().endswith(AUDIO_SUFFIXES):
                            sink.put(p)

        self._observer = Observer()
        for root in roots:
            self._observer.schedule(Handler(), root, recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)


class Watcher:
    """Score every audio file under ``roots`` once it is complete, until :meth:`stop`.

    Parameters
    ----------
    roots : list of str
        Folders to watch (recursively).
    score_batch : callable
        ``score_batch(paths) -> iterator of Row``, one row per path in order
        (:func:`soundsentry.batch.score_files` or the Dask one). Closed when stopping.
    writer : RowWriter
        Where rows go; ``begin()`` already called.
    done : set of str
        Paths that already have a row (read back from the output file); updated in place.
    on_row : callable, optional
        Called with each row after it is written (alerts).
    settle_seconds, give_up_seconds : float
        See :class:`FileSettler`.
    poll_seconds : float
        How often waiting files are looked at (a ``stat`` each) and notifications collected.
    rescan_seconds : float, optional
        Period of full rescans of the folders: default 300 s with notifications, 10 s without.
    notify : bool
        Use watchdog's notifications when it is installed.
    batch_max : int
        Most files handed to ``score_batch`` at once, so a stop request waits for little.
    """

    def __init__(
        self,
        roots: list[str],
        *,
        score_batch: Callable[[list[str]], Iterator[Row]],
        writer: RowWriter,
        done: set[str],
        on_row: Callable[[Row], None] | None = None,
        settle_seconds: float = 2.0,
        give_up_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        rescan_seconds: float | None = None,
        notify: bool = True,
        batch_max: int = 64,
    ) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self._score_batch = score_batch
        self._writer = writer
        self._done = done
        self._on_row = on_row
        self._settler = FileSettler(settle_seconds=settle_seconds, give_up_seconds=give_up_seconds)
        self._poll = poll_seconds
        self._rescan = rescan_seconds
        self._notify = notify
        self._batch_max = batch_max
        self._stop = threading.Event()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self.stats = WatchStats(kept=len(done))
        self._rescan_every = rescan_seconds or 0.0
        self.notifications = False

    def stop(self) -> None:
        """Ask :meth:`run` to return after the row being written (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def status_line(self) -> str:
        s = self.stats
        up = time.monotonic() - s.started
        how = "notifications" if self.notifications else f"rescanning every {self._rescan_every:g} s"
        return (
            f"status: up {up / 3600:.1f} h, {s.scored} scored ({s.normal} normal, {s.abnormal} abnormal, "
            f"{s.failed} failed), {s.kept} from before, {len(self._settler)} waiting to settle; {how}; "
            f"last: {s.last or '-'}"
        )

    def _discover(self, paths: Iterable[str]) -> None:
        for path in paths:
            if path not in self._done and path not in self._settler:
                self._settler.add(path)

    def run(self) -> WatchStats:
        """Watch until :meth:`stop`; returns the statistics."""
        notifier = None
        if self._notify:
            try:
                notifier = _Notifier(self.roots, self._events)
                self.notifications = True
            except ImportError:
                log.info("watchdog is not installed: looking for new files by rescanning the folders")
            except OSError as exc:  # inotify watch limit, a folder that cannot be watched
                log.warning("file notifications unavailable (%s): rescanning the folders instead", exc)
        default = 300.0 if notifier is not None else 10.0
        rescan_every = self._rescan_every = self._rescan if self._rescan is not None else default
        next_rescan = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_rescan:
                    self._discover(scan_audio_files(self.roots))
                    next_rescan = now + rescan_every
                self._discover(self._drain_events())
                ready = self._settler.ready()
                for start in range(0, len(ready), self._batch_max):
                    if self._stop.is_set():
                        break
                    self._score(ready[start : start + self._batch_max])
                self._stop.wait(self._poll)
        finally:
            if notifier is not None:
                notifier.stop()
        return self.stats

    def _drain_events(self) -> Iterator[str]:
        while True:
            try:
                yield self._events.get_nowait()
            except queue.Empty:
                return

    def _score(self, paths: list[str]) -> None:
        rows = self._score_batch(paths)
        try:
            for row in rows:
                self._writer.write(row)
                self._done.add(row.path)
                s = self.stats
                s.last = row.path
                if row.verdict == "error":
                    s.failed += 1
                    log.warning("%s: %s", row.path, row.error)
                else:
                    s.normal += row.verdict == "normal"
                    s.abnormal += row.verdict == "abnormal"
                    flags = f" ({', '.join(row.flags)})" if row.flags else ""
                    log.info(
                        "%s %s score %.6g threshold %.6g%s", row.verdict, row.path, row.score, row.threshold, flags
                    )
                if self._on_row is not None:
                    self._on_row(row)
                if self._stop.is_set():
                    break
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()
