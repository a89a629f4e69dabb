"""``soundsentry listen`` through the same input seam as the app's recording tests: a real clip
replayed as a microphone (:class:`~soundsentry.devices.ClipBackend`), at the clip's rate and at
48 kHz (resampled by the streaming scorer, as a sound card's rate would be)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
import soundsentry
import soxr
from soundsentry.devices import ClipBackend
from soundsentry.exit_codes import EXIT_NO_AUDIO_INPUT
from soundsentry.listen import Listener, choose_device, clip_windows

from .conftest import ABNORMAL_CLIP, LOGMEL_BUNDLE, MULTICHANNEL_CLIP, REPO_ROOT


def _streamed(model, samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Window scores and latents of the streaming scorer fed the clip in uneven chunks, then finished."""
    scorer = model.stream(sample_rate=rate)
    for start in range(0, samples.shape[0], 7777):
        scorer.push(samples[start : start + 7777])
    return scorer.finish().window_scores, scorer.latents


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("bundle", ["fan", LOGMEL_BUNDLE], ids=["views", "logmel"])
def test_listen_window_scores_equal_the_streaming_scorers(tmp_path, bundle, rate):
    fan_model = soundsentry.load_model(bundle)
    y, clip_rate = sf.read(MULTICHANNEL_CLIP, dtype="float32", always_2d=True)
    mono = y[:, 0]  # the fan's channel policy, and what the replayed "microphone" gives
    if rate != clip_rate:
        mono = soxr.resample(mono, clip_rate, rate).astype(np.float32)
    path = tmp_path / f"mic_{rate}.wav"
    sf.write(path, mono, rate, subtype="FLOAT")
    backend = ClipBackend(path, speed=40.0)
    rows = []
    listener = Listener(fan_model, backend, choose_device(backend, None), sample_rate=rate, on_window=rows.append)
    assert listener.run() == "ended"  # the recording ran out
    want, latents = _streamed(fan_model, mono, rate)
    assert [r.window for r in rows] == list(range(len(want)))
    np.testing.assert_allclose([r.score for r in rows], want, rtol=1e-6, atol=1e-9)
    # The running verdict is the clip rule over the last 10 s of windows (the mean of the log-mel detectors'
    # window scores; the views detector's judgement of the windows' latents): at the end, the whole clip's.
    n = clip_windows(fan_model)
    want_clip = fan_model.result(want[-n:], latents=latents[-n:])
    assert rows[-1].running_score == pytest.approx(want_clip.score)
    assert rows[-1].verdict == want_clip.verdict
    if fan_model.detector(None).__class__.__name__ != "ViewsDetector":
        assert rows[-1].running_score == pytest.approx(float(np.mean(want[-n:])))
    want_starts = fan_model.result(want, latents=latents).window_starts
    np.testing.assert_allclose([r.start_s for r in rows], want_starts)


def test_listen_command_saves_rolling_flac_and_alerts_once(tmp_path):
    out, saved, events = tmp_path / "rows.jsonl", tmp_path / "audio", tmp_path / "events.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "soundsentry",
            "listen",
            "--input-clip",
            str(ABNORMAL_CLIP),
            "--input-speed",
            "40",
            "--format",
            "jsonl",
            "-o",
            str(out),
            "--save",
            str(saved),
            "--save-seconds",
            "3",
            "--threshold=-1e9",  # every window abnormal: one long burst
            "--on-abnormal",
            f"cat >> {events}",
            "--alert-after",
            "3",
            "--alert-every",
            "3600",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    clip, rate = sf.read(ABNORMAL_CLIP, dtype="float32")
    assert len(rows) == len(soundsentry.load_model("fan").score(str(ABNORMAL_CLIP)).window_scores)
    # Rolling files of 3 s, together the whole recording (FLAC at 24 bits: within its rounding).
    files = sorted(saved.glob("listen_*.flac"))
    assert [sf.info(f).frames for f in files] == [3 * rate, 3 * rate, 3 * rate, len(clip) - 9 * rate]
    np.testing.assert_allclose(np.concatenate([sf.read(f, dtype="float32")[0] for f in files]), clip, atol=2**-22)
    # Each row names the file holding its window and the offset there.
    last = rows[-1]
    assert last["file"] == str(files[int(last["start_s"] // 3)])
    assert last["file_offset_s"] == pytest.approx(last["start_s"] % 3)
    (event,) = [json.loads(line) for line in events.read_text().splitlines()]
    assert event["source"] == "listen" and event["consecutive"] == 3
    assert event["window_start_s"] == rows[2]["start_s"]


def test_no_portaudio_is_a_clear_message_and_its_own_exit_code(monkeypatch, capsys):
    from soundsentry.cli import main

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails, as without the package
    assert main(["listen"]) == EXIT_NO_AUDIO_INPUT
    assert "no audio input: sounddevice is not installed" in capsys.readouterr().err


def test_a_device_that_stops_delivering_audio_ends_listening_with_an_error(tmp_path, fan_model):
    from soundsentry.listen import AudioInputError

    backend = ClipBackend(ABNORMAL_CLIP, speed=40.0, hang_after=3.0)
    rows = []
    listener = Listener(fan_model, backend, choose_device(backend, None), sample_rate=16000, on_window=rows.append)
    timer = threading.Timer(20, listener.stop)  # never hang the test suite
    timer.start()
    try:
        with pytest.raises(AudioInputError, match="no audio from"):
            listener.run()
    finally:
        timer.cancel()
    assert rows  # what was heard before is scored
