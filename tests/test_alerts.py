"""Alert policy: K consecutive abnormal verdicts make one alert, repeats are rate-limited, and a
command that fails or hangs is logged and never blocks the monitor."""

from __future__ import annotations

import json
import sys
import time

from soundsentry.alerts import AlertPolicy, Verdict, run_alert_command


def _verdict(abnormal: bool, i: int) -> Verdict:
    return Verdict(
        abnormal=abnormal, score=2.0 if abnormal else 0.5, threshold=1.0, model="fan", detector="lof", file=f"f{i}"
    )


def test_one_event_per_burst_then_repeats_after_the_rate_limit():
    now = [0.0]
    delivered = []
    policy = AlertPolicy(
        "unused",
        source="watch",
        after=3,
        every=60.0,
        clock=lambda: now[0],
        deliver=lambda c, e, timeout: delivered.append(e) or True,
    )
    pattern = [1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]  # a pair (too short), a burst of 7, a burst of 3
    events = []
    for i, abnormal in enumerate(pattern):
        now[0] = i * 5.0  # a verdict every 5 s: the second burst starts 55 s after the first alert
        events.append(policy.observe(_verdict(bool(abnormal), i)))
    raised = [i for i, e in enumerate(events) if e is not None]
    # The first burst alerts at its 3rd verdict (i=5, t=25 s); the rest of it (i=6..9) and the
    # second burst's 3rd verdict (i=13, t=65 s) come within 60 s of that alert: held back.
    assert raised == [5]
    assert events[5]["consecutive"] == 3 and [e["file"] for e in events[5]["evidence"]] == ["f3", "f4", "f5"]
    now[0] = 200.0  # much later: a new burst alerts again and reports what was held back
    later = [policy.observe(_verdict(a, 100 + i)) for i, a in enumerate([False, True, True, True, True])]
    assert [e is not None for e in later] == [False, False, False, True, False]
    assert later[3]["suppressed"] == 5 and later[3]["consecutive"] == 3
    policy.close()
    assert len(delivered) == 2


def test_a_failing_or_hanging_command_is_logged_and_returns(tmp_path, caplog):
    start = time.monotonic()
    assert run_alert_command(f"{sys.executable} -c 'import time; time.sleep(30)'", {"x": 1}, timeout=0.5) is False
    assert time.monotonic() - start < 5
    assert run_alert_command("exit 7", {"x": 1}, timeout=5) is False
    assert run_alert_command("/no/such/command", {"x": 1}, timeout=5) is False
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "killed after" in messages and "status 7" in messages
    got = tmp_path / "event.json"
    assert run_alert_command(f"cat > {got}", {"score": 1.5, "file": "a b.wav"}, timeout=5) is True
    assert json.loads(got.read_text()) == {"score": 1.5, "file": "a b.wav"}


def test_observe_never_waits_for_the_command():
    policy = AlertPolicy(f"{sys.executable} -c 'import time; time.sleep(3)'", source="listen", after=1, timeout=0.5)
    start = time.monotonic()
    for i in range(3):
        policy.observe(_verdict(True, i))
    assert time.monotonic() - start < 0.2  # delivered in the background
    policy.close(wait=10)
    assert policy.sent == 3 and policy.failed == 3
