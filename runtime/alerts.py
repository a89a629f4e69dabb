"""Alerts that reach someone: run a command when monitoring sees abnormal sound.

``soundsentry watch`` and ``soundsentry listen`` hand every verdict (a file's row, a live
window's score) to an :class:`AlertPolicy`. It counts consecutive abnormal verdicts and,
when ``after`` of them have come in a row, runs the user's command with one JSON event on its
standard input. ``every`` seconds must pass before the next alert, so a noisy minute is one
alert, not a hundred; the verdicts it held back are counted in the next event.

The command runs through ``/bin/sh`` (so ``mail -s ... ops@plant`` or a pipe works), in a
thread of its own, with a timeout. A command that fails, hangs or cannot start is logged
and monitoring goes on: an alert must never stop the monitor it reports for.

Event (one JSON object, UTF-8, newline-terminated)::

    {"event": "abnormal", "source": "watch", "time": "2026-12-06T11:02:19+00:00",
     "file": "/data/pump/rec_0042.flac", "window_start_s": null,
     "score": 1.83, "threshold": 1.21, "model": "pump", "detector": "knn",
     "consecutive": 3, "suppressed": 0, "flags": [],
     "evidence": [{"file": ..., "window_start_s": ..., "score": ...}, ...]}

``evidence`` holds the abnormal verdicts that raised the alert (the last ``after`` of the run,
at most :data:`EVIDENCE_MAX`), oldest first.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = ["EVIDENCE_MAX", "AlertPolicy", "Verdict", "run_alert_command"]

log = logging.getLogger(__name__)

#: Most verdicts an event carries as evidence, whatever ``after`` is.
EVIDENCE_MAX = 20

#: Alerts waiting for the command thread; more are dropped (and logged) rather than queued without end.
QUEUE_MAX = 100


@dataclass(frozen=True)
class Verdict:
    """One scored thing the monitor saw: a file (``watch``) or a live window (``listen``).

    Attributes
    ----------
    abnormal : bool
    score : float or None
        ``None`` for a file that could not be scored (never abnormal).
    threshold : float or None
    model, detector : str
    file : str, optional
        The scored file (``watch``), or the rolling audio file holding the window (``listen --save``).
    window_start_s : float, optional
        Start of a live window, in seconds since listening began.
    flags : tuple of str
        Signal warnings of the recording (``silent``, ``clipped``).
    time : str
        When it was scored, ISO 8601 UTC.
    """

    abnormal: bool
    score: float | None
    threshold: float | None
    model: str
    detector: str
    file: str | None = None
    window_start_s: float | None = None
    flags: tuple[str, ...] = ()
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def evidence(self) -> dict:
        return {"file": self.file, "window_start_s": self.window_start_s, "score": self.score, "time": self.time}


def run_alert_command(command: str, event: dict, *, timeout: float) -> bool:
    """Run ``command`` through the shell with ``event`` as JSON on stdin; True when it exits 0.

    Never raises: a command that cannot start, fails or outlives ``timeout`` seconds is logged
    (a hung one is killed with its process group) and False is returned.
    """
    payload = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8", errors="surrogateescape")
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills what it started too
        )
    except OSError as exc:
        log.error("alert command could not start: %s", exc)
        return False
    try:
        _, err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        log.error("alert command killed after %.0f s without finishing: %s", timeout, command)
        return False
    except OSError as exc:  # the command closed stdin without reading (BrokenPipe) and more
        proc.kill()
        proc.communicate()
        log.error("alert command failed: %s", exc)
        return False
    if proc.returncode != 0:
        tail = err.decode("utf-8", errors="replace").strip().splitlines()[-3:]
        log.error("alert command exited with status %s%s", proc.returncode, f": {' | '.join(tail)}" if tail else "")
        return False
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


class AlertPolicy:
    """Decides when abnormal verdicts become an alert, and delivers it.

    Parameters
    ----------
    command : str
        Shell command that receives each event as JSON on stdin.
    source : {"watch", "listen"}
        Written into every event.
    after : int
        Consecutive abnormal verdicts needed for an alert (a normal verdict, or a file that
        could not be scored, resets the count).
    every : float
        Seconds after an alert during which no other alert is sent; the abnormal verdicts in
        that time are counted in the next event's ``suppressed``.
    timeout : float
        Seconds the command may run before it is killed.
    clock : callable, optional
        Monotonic seconds (tests pass a fake one).
    deliver : callable, optional
        ``deliver(command, event, timeout=...)``; default :func:`run_alert_command`.

    Attributes
    ----------
    sent : int
        Alerts handed to the command so far.
    failed : int
        Alerts whose command failed, hung or could not start.
    """

    def __init__(
        self,
        command: str,
        *,
        source: str,
        after: int = 1,
        every: float = 0.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        deliver: Callable[..., bool] = run_alert_command,
    ) -> None:
        if after < 1:
            raise ValueError("--alert-after must be at least 1")
        if every < 0 or timeout <= 0:
            raise ValueError("--alert-every must be >= 0 and the alert timeout > 0")
        self.command = command
        self.source = source
        self.after = after
        self.every = every
        self.timeout = timeout
        self._clock = clock
        self._deliver = deliver
        self._run: deque[Verdict] = deque(maxlen=min(after, EVIDENCE_MAX))
        self._consecutive = 0
        self._last_alert: float | None = None
        self._suppressed = 0
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self._thread: threading.Thread | None = None

    def observe(self, verdict: Verdict) -> dict | None:
        """Count one verdict; returns the event when it triggers an alert (already queued)."""
        if not verdict.abnormal:
            self._consecutive = 0
            self._run.clear()
            return None
        self._consecutive += 1
        self._run.append(verdict)
        if self._consecutive < self.after:
            return None
        now = self._clock()
        if self._last_alert is not None and now - self._last_alert < self.every:
            self._suppressed += 1
            return None
        self._last_alert = now
        event = {
            "event": "abnormal",
            "source": self.source,
            "time": verdict.time,
            "file": verdict.file,
            "window_start_s": verdict.window_start_s,
            "score": verdict.score,
            "threshold": verdict.threshold,
            "model": verdict.model,
            "detector": verdict.detector,
            "consecutive": self._consecutive,
            "suppressed": self._suppressed,
            "flags": list(verdict.flags),
            "evidence": [v.evidence() for v in self._run],
        }
        self._suppressed = 0
        self._enqueue(event)
        return event

    def _enqueue(self, event: dict) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="soundsentry-alerts", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.failed += 1
            log.error("alert dropped: %d alerts are already waiting for the command", QUEUE_MAX)

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                self._queue.task_done()
                return
            try:
                ok = self._deliver(self.command, event, timeout=self.timeout)
            except Exception:  # a bug in a custom deliver must not kill the thread either
                log.exception("alert delivery failed")
                ok = False
            self.sent += 1
            self.failed += not ok
            self._queue.task_done()

    def close(self, *, wait: float | None = None) -> None:
        """Let queued alerts finish (up to ``wait`` seconds, default the command timeout + 1 each)."""
        if self._thread is None:
            return
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        limit = wait if wait is not None else (self.timeout + 1) * (self._queue.qsize() + 1)
        self._thread.join(timeout=limit)
        self._thread = None
