"""The desktop app, driven offscreen with pytest-qt on real clips and the shipped model.

Every expected value comes from the runtime itself (``Model.score``, ``Model.features``,
``batch.score_file``) computed in the test, never from numbers written here.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6", reason="needs the [gui] extra (PySide6)")
pytest.importorskip("pyqtgraph", reason="needs the [gui] extra (pyqtgraph)")
pytest.importorskip("pytestqt", reason="needs pytest-qt (the [test] extra)")

import soundfile as sf
import soundsentry
from PySide6.QtCore import Qt, QTimer
from soundsentry.batch import score_file
from soundsentry.devices import ClipBackend, NoAudioBackend, RingBuffer
from soundsentry.gui.views import DB_LEVELS, AnalysisView, mel_axis_ticks, window_centres
from soundsentry.gui.window import MainWindow

from .conftest import EXAMPLES_DIR, LOGMEL_BUNDLE, REPO_ROOT, requires

NORMAL = EXAMPLES_DIR / "ronwise_id_00_normal_id_00_00000000.flac"
ABNORMAL = EXAMPLES_DIR / "ronwise_id_00_anomaly_id_00_00000000.flac"
MULTICHANNEL = EXAMPLES_DIR / "mohxen_id_00_abnormal_00000000.flac"
WAIT = 60_000  # ms; scoring a clip takes well under a second, CI machines are shared


# The app's settings and Qt's test locations: the fixtures qt_test_paths, settings and logmel_settings of conftest.py.
pytestmark = pytest.mark.usefixtures("qt_test_paths")


def make_window(qtbot, settings, backend=None) -> MainWindow:
    backend = backend or NoAudioBackend("PortAudio library not found (install libportaudio2)")
    win = MainWindow(backend=backend, settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.model is not None, timeout=WAIT)  # models load off the GUI thread
    return win


def open_file(qtbot, win: MainWindow, path) -> None:
    with qtbot.waitSignal(win.fileShown, timeout=WAIT):
        win.open_file(str(path))


# ---------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("clip", [NORMAL, ABNORMAL, MULTICHANNEL], ids=lambda p: p.name)
def test_open_clip_shows_the_runtimes_own_results(qtbot, settings, fan_model, clip):
    win = make_window(qtbot, settings)
    open_file(qtbot, win, clip)
    expected = fan_model.score(clip)
    logmel = fan_model.display(fan_model.features(fan_model.load(clip)))

    # Spectrogram: the runtime's display rows (mel bands in dB), frame j centred on its samples' middle (j·hop
    # with centred framing; half a frame later for the views encoder's uncentred frames), fixed dB levels.
    shown = win.view.image.image
    np.testing.assert_allclose(shown, logmel, rtol=0, atol=1e-5)
    rect = win.view.image.mapRectToParent(win.view.image.boundingRect())
    hop_s = fan_model.feature_params.hop_length / fan_model.feature_params.sample_rate
    g = fan_model.encoder.stream
    first_centre = (g.frame_length / 2 - g.pad_samples) / fan_model.sample_rate
    assert rect.left() == pytest.approx(first_centre - 0.5 * hop_s)
    # The middle frame of the first window is drawn at the window's centre, where its score point sits.
    middle = g.window_frames // 2
    assert rect.left() + (middle + 0.5) * hop_s == pytest.approx(
        window_centres(expected.window_starts, expected.window_seconds)[0], abs=hop_s
    )
    assert rect.width() == pytest.approx(logmel.shape[1] * hop_s)
    assert tuple(win.view.image.getLevels()) == DB_LEVELS

    # Score track: one point per window at the window's middle, on the same time axis.
    x, y = win.view.score_curve.getData()
    np.testing.assert_allclose(y, expected.window_scores, rtol=1e-6)
    np.testing.assert_allclose(x, window_centres(expected.window_starts, expected.window_seconds))
    assert win.view.threshold_line.value() == pytest.approx(expected.threshold)

    # Verdict badge: the runtime's verdict and score.
    badge = win.verdict_badge.text()
    assert expected.verdict.upper() in badge
    assert f"{expected.score:.3f}" in badge
    # The shipped views model says which view drove the score: on the badge's second line, the reading in its tooltip.
    assert expected.explanation and win.verdict_badge.toolTip() == expected.explanation
    shown = [e for e in expected.evidence if e.flagged] or expected.evidence[:1]
    second = badge.splitlines()[1]
    assert all(f"{e.view} {e.ratio:.2f}x" in second for e in shown)
    assert clip.name in win.title_label.text()


def test_mel_axis_ticks_sit_on_the_bands_that_hold_those_frequencies(fan_model):
    p = fan_model.feature_params
    fb = soundsentry.features.mel_filterbank(sample_rate=p.sample_rate, n_fft=p.n_fft, n_mels=p.n_mels)
    freqs = np.fft.rfftfreq(p.n_fft, 1 / p.sample_rate)
    for pos, label in mel_axis_ticks(p):
        hz = {"0": 0, "250": 250, "500": 500}.get(label, None)
        hz = hz if hz is not None else int(label[:-1]) * 1000
        if 0 < hz < p.sample_rate / 2:
            band = int(pos)  # the image row the tick points into
            peak_hz = freqs[np.argmax(fb[band])]
            # The band whose filter peaks nearest to the tick's frequency.
            nearest = int(np.argmin(np.abs(freqs[np.argmax(fb, axis=1)] - hz)))
            assert abs(band - nearest) <= 1, (label, band, nearest, peak_hz)


def test_threshold_slider_re_verdicts_without_rescoring(qtbot, settings, fan_model, monkeypatch):
    win = make_window(qtbot, settings)
    open_file(qtbot, win, NORMAL)
    expected = fan_model.score(NORMAL)
    assert expected.verdict == "normal"

    calls = []
    monkeypatch.setattr(win.model, "embed", lambda *a, **k: calls.append(1) or pytest.fail("rescored"))
    lowered = expected.score - 0.1 * abs(expected.score)  # below the score whatever its sign (OC-SVM scores can be < 0)
    win.set_threshold(lowered)
    assert win.verdict_badge.text().startswith("ABNORMAL")
    assert win.view.threshold_line.value() == pytest.approx(lowered)
    # Window points above the line turn red, the others stay green.
    brushes = win.view.score_curve.opts["symbolBrush"]
    above = [b.color().name() for b, s in zip(brushes, expected.window_scores, strict=True) if s > lowered]
    assert above and set(above) == {"#cf222e"}

    # The slider maps to the same threshold scale and back.
    win.threshold_slider.setValue(0)
    assert win.threshold == pytest.approx(win._thr_lo)
    assert win.verdict_badge.text().startswith("ABNORMAL")
    win.reset_threshold()
    assert win.threshold == pytest.approx(fan_model.thresholds[fan_model.default_detector])
    assert win.verdict_badge.text().startswith("NORMAL")
    assert calls == []


def test_detector_switch_rescores_with_that_detector(qtbot, logmel_settings, logmel_model):
    win = make_window(qtbot, logmel_settings)
    assert Path(win.model.bundle.root) == LOGMEL_BUNDLE
    open_file(qtbot, win, ABNORMAL)
    win.set_detector("ocsvm")
    expected = logmel_model.score(ABNORMAL, detector="ocsvm")
    _, y = win.view.score_curve.getData()
    np.testing.assert_allclose(y, expected.window_scores, rtol=1e-5, atol=1e-6)
    assert win.threshold == pytest.approx(logmel_model.thresholds["ocsvm"])
    assert expected.verdict.upper() in win.verdict_badge.text()
    assert not expected.explanation and win.verdict_badge.toolTip() == ""  # one score, nothing to explain


# --------------------------------------------------------------------------------------- folder
@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "clips"
    d.mkdir()
    for p in EXAMPLES_DIR.glob("*.flac"):
        shutil.copy(p, d / p.name)
    (d / "broken.wav").write_bytes(b"RIFF this is not a wave file")
    return d


def test_folder_table_scores_sorts_filters_and_exports(qtbot, settings, fan_model, folder, tmp_path):
    win = make_window(qtbot, settings)
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.open_paths([str(folder)])
    model = win.table_model
    files = sorted(str(p) for p in folder.iterdir())
    assert model.paths == files
    for i, path in enumerate(files):
        expected = score_file(fan_model, path, detector=fan_model.default_detector, threshold=None)
        row = model.rows[i]
        if expected.verdict == "error":
            assert row.score is None and "broken.wav" in path and row.error == expected.error
            assert model.verdict(i) == "error"
        else:
            assert row.score == pytest.approx(expected.score, rel=1e-6)
            assert model.verdict(i) == expected.verdict
    assert win.folder_progress.value() == len(files)

    # Sort by score, highest first: the proxy follows the numbers, not their text.
    win.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    proxy = win.table_proxy
    shown = [proxy.index(r, 1).data(Qt.ItemDataRole.UserRole) for r in range(proxy.rowCount())]
    assert shown == sorted(shown, reverse=True) or shown[0] == float("inf")
    scored = [s for s in shown if s != float("inf")]
    assert scored == sorted(scored, reverse=True)

    # A threshold between the scores: anomalies-only shows exactly the files above it.
    scores = sorted(r.score for r in model.rows if r.score is not None)
    thr = (scores[-1] + scores[-2]) / 2
    win.set_threshold(thr)
    win.anomalies_check.setChecked(True)
    assert proxy.rowCount() == 1
    top = proxy.mapToSource(proxy.index(0, 0)).row()
    assert model.rows[top].score == scores[-1]
    win.anomalies_check.setChecked(False)
    win.filter_edit.setText("ronwise")
    assert proxy.rowCount() == 2

    # Clicking a row shows that file.
    with qtbot.waitSignal(win.fileShown, timeout=WAIT) as blocker:
        win.table.clicked.emit(proxy.index(0, 0))
    assert Path(blocker.args[0]).name.startswith("ronwise")

    # CSV export: the runtime's fields, with the verdicts and threshold now shown.
    out = tmp_path / "table.csv"
    assert win.export_csv(str(out))
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == files
    by_path = {r["path"]: r for r in rows}
    for i, path in enumerate(files):
        assert by_path[path]["verdict"] == model.verdict(i)
    assert {r["verdict"] for r in rows} == {"normal", "abnormal", "error"}
    assert "broken.wav" in [Path(r["path"]).name for r in rows if r["error"]]


def test_folder_can_be_cancelled_and_keeps_what_was_scored(qtbot, settings, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(30):
        shutil.copy(NORMAL, d / f"clip_{i:02d}.flac")
    win = make_window(qtbot, settings)
    win.open_paths([str(d)])
    qtbot.waitUntil(lambda: win.table_model.rows[0] is not None, timeout=WAIT)
    with qtbot.waitSignal(win.folderDone, timeout=WAIT) as blocker:
        win.cancel_folder()
    n = blocker.args[0]
    assert 1 <= n < 30
    assert sum(r is not None for r in win.table_model.rows) == n
    assert win.table_model.verdict(29) == "pending"
    assert "cancelled" in win.statusBar().currentMessage()


# ------------------------------------------------------------------------------ errors, no audio
def test_file_only_mode_and_clear_messages(qtbot, settings, tmp_path):
    win = make_window(qtbot, settings, NoAudioBackend("PortAudio library not found (install libportaudio2)"))
    assert "PortAudio" in win.banner.text() and win.banner.isVisible()
    assert not win.record_action.isEnabled()
    open_file(qtbot, win, NORMAL)
    assert not win.play_action.isEnabled()  # no output device either; scoring works
    assert win.verdict_badge.text().startswith("NORMAL")

    bad = tmp_path / "not-audio.flac"
    bad.write_text("hello")
    open_file(qtbot, win, bad)
    assert str(bad) in win.banner.text() and "decode" in win.banner.text()
    # Nothing of the previous file stays on screen under the failed file's name; the app goes on.
    assert win.analysis is None and win.view.image.image is None
    assert win.view.score_curve.getData()[1] is None or len(win.view.score_curve.getData()[1]) == 0
    assert "NORMAL" not in win.verdict_badge.text() and "not-audio.flac" in win.title_label.text()
    assert not win.play_action.isEnabled() and not win.export_png_action.isEnabled()

    with qtbot.waitSignal(win.message, timeout=WAIT, check_params_cb=lambda t: "Cannot load the model" in t):
        win.load_model(str(tmp_path / "no-such-bundle"))
    assert win.model.name == "fan"
    open_file(qtbot, win, ABNORMAL)
    assert win.analysis.path == str(ABNORMAL)


def test_short_file_says_how_long_it_must_be(qtbot, settings, tmp_path, fan_model):
    y = fan_model.load(NORMAL)[:8000]
    short = tmp_path / "short.wav"
    sf.write(short, y, 16000)
    win = make_window(qtbot, settings)
    open_file(qtbot, win, short)
    assert "short.wav" in win.banner.text() and "too short" in win.banner.text()


# ------------------------------------------------------------------------------------ playback
def test_playback_of_a_region_moves_the_cursor_and_plays_those_samples(qtbot, settings, fan_model):
    backend = ClipBackend(NORMAL, speed=4.0)
    win = make_window(qtbot, settings, backend)
    open_file(qtbot, win, ABNORMAL)
    win.play_selection_check.setChecked(True)
    win.view.show_region(2.0, 4.0)
    positions: list[float] = []
    win.player.position.connect(positions.append)
    with qtbot.waitSignal(win.player.stopped, timeout=WAIT):
        win.play()
    out = backend.streams[-1]
    played = np.concatenate(out.played)[:, 0]
    y = fan_model.load(ABNORMAL)
    expected = y[32000:64000]
    np.testing.assert_array_equal(played[: expected.size], expected)
    assert not played[expected.size :].any()  # silence after the region ends
    assert positions and positions == sorted(positions)
    assert 2.0 <= positions[0] <= 4.0 and positions[-1] == pytest.approx(4.0), positions
    cursor = win.view.cursors[0].value()
    assert 2.0 <= cursor <= 4.0 and win.view.cursors[1].value() == cursor


# ----------------------------------------------------------------------------------- recording
def record_until_done(qtbot, win: MainWindow) -> None:
    with qtbot.waitSignal(win.recordingDone, timeout=WAIT):
        win.start_recording()
        assert win.recorder.recording


@pytest.mark.parametrize("rate", [16000, 48000])
def test_live_scores_equal_scoring_the_clip_as_a_file(qtbot, settings, fan_model, tmp_path, rate):
    clip = NORMAL
    if rate != 16000:
        # The same clip as a 48 kHz device would deliver it (resampled by soxr, written as float).
        y, sr = sf.read(NORMAL, dtype="float32")
        clip = tmp_path / "clip48k.wav"
        import soxr

        sf.write(clip, soxr.resample(y, sr, rate), rate, subtype="FLOAT")
    backend = ClipBackend(clip, speed=2.5)  # 1024-sample blocks, as a sound card delivers them
    win = make_window(qtbot, settings, backend)
    assert win.rate_combo.currentData() == rate
    frames_seen = []
    win.view.push_frames = _spy(win.view.push_frames, frames_seen)
    record_until_done(qtbot, win)
    expected = fan_model.score(clip)
    # Scores as each window completed, and the final streamed result.
    np.testing.assert_allclose(win.live_scores, expected.window_scores[: len(win.live_scores)], rtol=1e-5, atol=1e-6)
    assert len(win.live_scores) >= len(expected.window_scores) - 2
    np.testing.assert_allclose(win.live_result.window_scores, expected.window_scores, rtol=1e-5, atol=1e-6)
    assert win.live_result.verdict == expected.verdict
    # The live spectrogram scrolled in many small steps, not once at the end.
    assert len(frames_seen) > 20 and max(frames_seen) < 40
    # The recording kept every sample the device delivered.
    delivered, _ = sf.read(clip, dtype="float32")
    np.testing.assert_array_equal(win.recorded, delivered)
    # The whole recording is then shown like a file, with its own (identical) scores.
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=WAIT)
    np.testing.assert_allclose(win.analysis.window_scores, expected.window_scores, rtol=1e-5, atol=1e-6)


def _spy(fn, sink):
    def wrapper(frames):
        sink.append(frames.shape[1])
        return fn(frames)

    return wrapper


def test_device_lost_mid_recording_keeps_the_audio_and_saves_it(qtbot, settings, tmp_path):
    backend = ClipBackend(NORMAL, speed=4.0, fail_after=4.0)
    win = make_window(qtbot, settings, backend)
    record_until_done(qtbot, win)
    assert "Recording stopped" in win.banner.text() and "kept" in win.banner.text()
    delivered, sr = sf.read(NORMAL, dtype="float32")
    n = win.recorded.shape[0]
    assert 4 * sr <= n < 4 * sr + 2048  # up to the block the device died in
    np.testing.assert_array_equal(win.recorded, delivered[:n])
    open_file(qtbot, win, ABNORMAL)  # opening a file does not throw the unsaved recording away
    assert win.save_recording_action.isEnabled() and win.recorded.shape[0] == n
    for suffix, subtype in ((".flac", "PCM_24"), (".wav", "PCM_24")):
        out = tmp_path / f"saved{suffix}"
        assert win.save_recording(str(out))
        back, back_sr = sf.read(out, dtype="float32")
        info = sf.info(out)
        assert back_sr == sr and info.subtype == subtype and back.shape == (n,)
        np.testing.assert_allclose(back, win.recorded, atol=2**-23)


def test_device_that_goes_silent_is_treated_as_lost(qtbot, settings):
    backend = ClipBackend(NORMAL, speed=4.0, hang_after=3.0)
    win = make_window(qtbot, settings, backend)
    record_until_done(qtbot, win)
    assert "no audio from the input device" in win.banner.text()
    assert win.recorded.shape[0] == pytest.approx(3 * 16000, abs=160)
    assert win.live_result is not None  # 3 s is enough for a score; it is shown
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=WAIT)


def test_pause_and_stop(qtbot, settings):
    backend = ClipBackend(NORMAL, speed=4.0, loop=True)
    win = make_window(qtbot, settings, backend)
    win.start_recording()
    qtbot.waitUntil(lambda: win.recorder.samples.shape[0] > 16000, timeout=WAIT)
    win.pause_recording(True)
    n_paused = win.recorder.samples.shape[0]
    qtbot.wait(400)
    assert win.recorder.samples.shape[0] == n_paused  # nothing recorded while paused
    assert win.pause_action.text().endswith("Resume")
    win.pause_recording(False)
    qtbot.waitUntil(lambda: win.recorder.samples.shape[0] > n_paused + 40000, timeout=WAIT)
    with qtbot.waitSignal(win.recordingDone, timeout=WAIT):
        win.recorder.stop()
    assert win.banner.isHidden()  # a user stop is not an error
    assert win.save_recording_action.isEnabled()
    assert win.live_result is not None and win.live_result.window_scores.size >= 2


def test_too_short_recording_says_so_once(qtbot, settings):
    backend = ClipBackend(NORMAL, speed=4.0, loop=True)
    win = make_window(qtbot, settings, backend)
    messages: list[str] = []
    win.message.connect(messages.append)
    win.start_recording()
    qtbot.waitUntil(lambda: win.recorder.samples.shape[0] > 8000, timeout=WAIT)
    with qtbot.waitSignal(win.recordingDone, timeout=WAIT):
        win.recorder.stop()
    qtbot.wait(200)
    short = [m for m in messages if "too short" in m]
    need = win.model.encoder.min_samples / win.model.sample_rate
    assert len(short) == 1 and "cannot be scored" in short[0] and f"one window needs {need:.2f} s" in short[0]
    assert win.recorded.size > 8000  # still kept, and can be saved
    assert win.save_recording_action.isEnabled()


def test_live_spectrogram_scrolls_a_preallocated_image(qapp, fan_model):
    view = AnalysisView(fan_model.feature_params)
    view.start_live(seconds=2.0)
    buf = view.live_image
    cols = buf.shape[1]
    logmel = fan_model.display(fan_model.features(fan_model.load(NORMAL)))  # what the streaming scorer hands the view
    for start in range(0, 203, 7):
        view.push_frames(logmel[:, start : start + 7])
    assert view.live_frames == 203
    assert view.live_image is buf  # never reallocated
    np.testing.assert_array_equal(view.image.image, logmel[:, 203 - cols : 203])
    # The time axis is fixed (0 = now): the newest column ends at 0, the image never moves.
    rect = view.image.mapRectToParent(view.image.boundingRect())
    hop_s = fan_model.feature_params.hop_length / fan_model.feature_params.sample_rate
    assert rect.right() == pytest.approx(0.0) and rect.width() == pytest.approx(cols * hop_s)
    assert view.live_now == pytest.approx((203 - 0.5) * hop_s)
    # Score points follow: a window centred at t is drawn at t - now.
    view.push_scores(np.array([1.0, 2.0]), 0, window_starts=np.array([0.0, 0.5]), window_seconds=2.0)
    x, _ = view.score_curve.getData()
    np.testing.assert_allclose(x, np.array([1.0, 1.5]) - view.live_now)


def test_default_backend_is_sounddevice_or_says_why_not():
    from soundsentry.devices import SoundDeviceBackend, default_backend

    backend = default_backend()
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as exc:  # no PortAudio here: file-only mode, with the reason
        assert isinstance(backend, NoAudioBackend) and not backend.available
        assert str(exc).split(" (")[0][:20] in backend.reason or "sounddevice" in backend.reason
        return
    assert isinstance(backend, SoundDeviceBackend)
    for dev in backend.input_devices():  # whatever this machine has, listing must work
        assert dev.max_input_channels > 0 and dev.default_samplerate > 0


def test_ring_buffer_keeps_order_and_counts_overflow():
    ring = RingBuffer(capacity=10)
    ring.write(np.arange(6, dtype=np.float32)[:, None])
    np.testing.assert_array_equal(ring.read_all()[:, 0], np.arange(6))
    ring.write(np.arange(6, 14, dtype=np.float32)[:, None])  # wraps around the end
    np.testing.assert_array_equal(ring.read_all()[:, 0], np.arange(6, 14))
    ring.write(np.arange(14, 40, dtype=np.float32)[:, None])  # more than it holds: oldest dropped
    np.testing.assert_array_equal(ring.read_all()[:, 0], np.arange(30, 40))
    assert ring.dropped == 16
    assert ring.read_all().shape == (0, 1)


# ---------------------------------------------------------------------------------- enrollment
def test_enrollment_saves_a_model_and_uses_it_at_once(qtbot, settings, tmp_path, fan_model):
    win = make_window(qtbot, settings)
    open_file(qtbot, win, ABNORMAL)
    out = tmp_path / "my-fan"
    normal = [str(NORMAL), str(EXAMPLES_DIR / "yos95_id_00_normal_id_00_00000030.flac")]
    with qtbot.waitSignal(win.enrolled, timeout=WAIT * 3):
        win.enroll(normal, out=str(out), name="my-fan")
    enrolled = soundsentry.load_model(out)
    assert win.model.bundle.root == enrolled.bundle.root
    assert win.threshold == pytest.approx(enrolled.thresholds[enrolled.default_detector])
    assert win.model_combo.currentData() == str(out)
    # The open file is rescored with the new model.
    qtbot.waitUntil(lambda: win.analysis is not None and win.analysis.path == str(ABNORMAL), timeout=WAIT)
    qtbot.wait(50)
    expected = enrolled.score(ABNORMAL)
    qtbot.waitUntil(lambda: np.allclose(win.analysis.window_scores, expected.window_scores, rtol=1e-5), timeout=WAIT)
    assert expected.verdict.upper() in win.verdict_badge.text()
    assert settings.value("model") == str(out)


def test_enrollment_from_a_recording(qtbot, settings, tmp_path):
    backend = ClipBackend(NORMAL, speed=4.0)
    win = make_window(qtbot, settings, backend)
    record_until_done(qtbot, win)
    out = tmp_path / "from-recording"
    with qtbot.waitSignal(win.enrolled, timeout=WAIT * 3):
        win.enroll([(win.recorded, win.recorded_rate)], out=str(out), name="from-recording")
    assert soundsentry.load_model(out).name


def test_enrollment_problem_is_shown(qtbot, settings, tmp_path):
    win = make_window(qtbot, settings)
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    with qtbot.waitSignal(win.message, timeout=WAIT * 3, check_params_cb=lambda t: "Enrollment failed" in t):
        win.enroll([str(bad)], out=str(tmp_path / "x"))
    assert win.model.name == "fan" and win.enroll_action.isEnabled()


def test_enroll_dialog_offers_the_registry_detectors_with_the_models_default_first_choice(qtbot, settings):
    from soundsentry.detector_kinds import DETECTOR_NAMES, detector_kind
    from soundsentry.gui.enrollment import EnrollDialog

    win = make_window(qtbot, settings)
    dlg = EnrollDialog(win)
    qtbot.addWidget(dlg)
    combo = dlg.detector_combo
    names = [combo.itemData(i) for i in range(combo.count())]
    assert names == list(DETECTOR_NAMES)
    default = win.model.default_detector
    assert dlg.detector() == default and combo.currentText() == detector_kind(default).label
    other = next(n for n in names if n != default)
    combo.setCurrentIndex(names.index(other))
    assert dlg.detector() == other


def test_enroll_dialog_greys_out_ocsvm_without_the_train_extra(qtbot, settings, monkeypatch):
    import importlib.util

    from soundsentry.gui import enrollment as window_module

    real_find_spec = importlib.util.find_spec

    def no_sklearn(name, *args, **kwargs):
        return None if name.split(".")[0] in ("sklearn", "skl2onnx") else real_find_spec(name, *args, **kwargs)

    win = make_window(qtbot, settings)
    monkeypatch.setattr(window_module, "find_spec", no_sklearn)
    dlg = window_module.EnrollDialog(win)
    qtbot.addWidget(dlg)
    combo = dlg.detector_combo
    items = {combo.itemData(i): combo.model().item(i) for i in range(combo.count())}
    assert not items["ocsvm"].isEnabled()
    assert 'pip install "soundsentry[train]"' in items["ocsvm"].toolTip()
    assert all(items[name].isEnabled() for name in ("lof", "knn", "mahalanobis"))


@requires("sklearn")
@requires("skl2onnx")
def test_enroll_dialog_offers_ocsvm_with_the_train_extra(qtbot, settings):
    from soundsentry.gui.enrollment import EnrollDialog

    win = make_window(qtbot, settings)
    dlg = EnrollDialog(win)
    qtbot.addWidget(dlg)
    combo = dlg.detector_combo
    assert combo.model().item(combo.findData("ocsvm")).isEnabled()


def test_enrollment_through_the_dialog_with_the_chosen_detector(qtbot, settings, tmp_path):
    win = make_window(qtbot, settings)
    open_file(qtbot, win, ABNORMAL)
    out = tmp_path / "line-3-fan"
    normal = [str(NORMAL), str(EXAMPLES_DIR / "yos95_id_00_normal_id_00_00000030.flac")]
    messages: list[str] = []
    win.message.connect(messages.append)

    def fill_in_and_accept() -> None:
        # Runs inside the dialog's modal loop: what a user does in the dialog, then OK.
        from PySide6.QtWidgets import QApplication

        dlg = QApplication.activeModalWidget()
        try:
            dlg.list.addItems(normal)
            dlg.name_edit.setText("line-3-fan")
            dlg.out_edit.setText(str(out))
            dlg.detector_combo.setCurrentIndex(dlg.detector_combo.findData("knn"))
        finally:
            dlg.accept()  # never leave a modal loop open in a test

    with qtbot.waitSignal(win.enrolled, timeout=WAIT * 3):
        QTimer.singleShot(0, fill_in_and_accept)
        win.enroll_dialog()
    enrolled = soundsentry.load_model(out)
    assert enrolled.card["default_detector"] == "knn" and enrolled.detectors == ["knn"]
    assert win.detector == "knn" and win.model.bundle.root == enrolled.bundle.root
    assert win.threshold == pytest.approx(enrolled.thresholds["knn"])
    done = [m for m in messages if m.startswith("enrolled")]
    assert len(done) == 1 and "knn" in done[0] and f"{enrolled.thresholds['knn']:.3f}" in done[0]
    # The open file is rescored with the kNN detector of the new bundle.
    expected = enrolled.score(ABNORMAL, detector="knn")
    qtbot.waitUntil(
        lambda: win.analysis is not None
        and win.analysis.detector == "knn"
        and np.allclose(win.analysis.window_scores, expected.window_scores, rtol=1e-5),
        timeout=WAIT,
    )


# ------------------------------------------------------------------------- export and settings
def test_png_export_is_the_report_panel(qtbot, settings, tmp_path):
    win = make_window(qtbot, settings)
    open_file(qtbot, win, ABNORMAL)
    out = tmp_path / "view.png"
    assert win.export_png(str(out))
    from PySide6.QtGui import QImage

    img = QImage(str(out))
    assert img.width() == win.report_panel.width() and img.height() == win.report_panel.height()
    # Not blank: the spectrogram's colours are there.
    colours = {img.pixel(x, y) for x in range(0, img.width(), 23) for y in range(0, img.height(), 23)}
    assert len(colours) > 50


def test_settings_persist_between_runs(qtbot, logmel_settings):
    settings = logmel_settings
    win = make_window(qtbot, settings)
    open_file(qtbot, win, NORMAL)
    win.set_detector("ocsvm")
    win.set_threshold(1.234)
    win.close()
    again = make_window(qtbot, settings)
    assert again.detector == "ocsvm"
    assert again.threshold == pytest.approx(1.234)
    assert Path(again.model.bundle.root) == LOGMEL_BUNDLE
    assert str(NORMAL) in [a.text() for a in again.recent_menu.actions()]
    assert settings.value("last_folder") == str(EXAMPLES_DIR)


# ------------------------------------------------------------------------------- process level
def test_runtime_never_imports_the_gui():
    code = (
        "import sys, soundsentry, soundsentry.cli, soundsentry.batch, soundsentry.streaming;"
        "print(sorted(m for m in sys.modules if m.startswith(('soundsentry.gui', 'PySide6', 'pyqtgraph', 'sounddevice'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_installed_soundsentry_gui_starts_without_a_traceback(tmp_path):
    exe = shutil.which("soundsentry-gui", path=os.path.dirname(sys.executable)) or shutil.which("soundsentry-gui")
    if exe is None:
        pytest.skip("soundsentry-gui is not installed (pip install -e '.[gui]')")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [exe, str(ABNORMAL), "--quit-after", "4"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
    logs = list((tmp_path / "state").rglob("soundsentry-gui.log"))
    assert logs, "no log file under the user's state folder"
    assert "Traceback" not in logs[0].read_text()


def test_gui_help_needs_no_qt(tmp_path):
    # --help is parsed before Qt is imported: instant, and works anywhere.
    code = "import sys; from soundsentry.gui.app import main; main(['--help'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0 and "FILE_OR_FOLDER" in proc.stdout


def test_drop_files_opens_them(qtbot, settings):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    win = make_window(qtbot, settings)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(NORMAL))])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(win.fileShown, timeout=WAIT) as blocker:
        win.dropEvent(event)
    assert blocker.args == [str(NORMAL)]
    # Several dropped files open as a table.
    mime.setUrls([QUrl.fromLocalFile(str(NORMAL)), QUrl.fromLocalFile(str(ABNORMAL))])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.dropEvent(event)
    assert win.table_model.paths == [str(NORMAL), str(ABNORMAL)]


def test_unhandled_errors_are_logged_and_shown_once(qtbot, settings, tmp_path):
    import logging

    from PySide6.QtWidgets import QMessageBox
    from soundsentry.gui.app import ErrorReporter

    win = make_window(qtbot, settings)
    log_file = tmp_path / "gui.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    try:
        reporter = ErrorReporter(log_file)
        reporter.window = win
        for i in range(3):
            try:
                raise RuntimeError(f"boom {i}")
            except RuntimeError as exc:
                reporter.hook(type(exc), exc, exc.__traceback__)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    boxes = [w for w in win.findChildren(QMessageBox) if w.isVisible()]
    assert len(boxes) == 1 and "boom 0" in boxes[0].text() and str(log_file) in boxes[0].text()
    assert "boom 2" in win.statusBar().currentMessage()
    text = log_file.read_text()
    assert text.count("Traceback") == 3 and "boom 1" in text


def test_bundle_folder_from_disk_is_listed_and_remembered(qtbot, settings, fan_model, tmp_path):
    bundle = tmp_path / "fan-copy"
    shutil.copytree(fan_model.bundle.root, bundle)
    win = make_window(qtbot, settings)
    with qtbot.waitSignal(win.modelChanged, timeout=WAIT):
        win.load_model(str(bundle))
    assert Path(win.model.bundle.root) == bundle
    assert win.model_combo.currentData() == str(bundle) and "(folder)" in win.model_combo.currentText()
    assert settings.value("bundles", [], type=list) == [str(bundle)]
    win.close()
    again = make_window(qtbot, settings)
    assert Path(again.model.bundle.root) == bundle  # the last model comes back
    assert again.model_combo.findData(str(bundle)) >= 0


def test_enroll_dialog_collects_files_folders_and_the_recording(qtbot, settings):
    from soundsentry.gui.enrollment import RECORDING_ITEM, EnrollDialog

    backend = ClipBackend(NORMAL, speed=4.0)
    win = make_window(qtbot, settings, backend)
    record_until_done(qtbot, win)
    dlg = EnrollDialog(win)
    qtbot.addWidget(dlg)
    dlg.list.addItems([str(NORMAL), str(EXAMPLES_DIR)])
    dlg._add_recording()
    inputs = dlg.normal_inputs()
    assert inputs[:2] == [str(NORMAL), str(EXAMPLES_DIR)]
    samples, rate = inputs[2]
    assert rate == 16000 and samples is win.recorded
    assert dlg.list.item(2).text() == RECORDING_ITEM
    dlg.name_edit.setText("pump-7")
    assert dlg.out_edit.text().endswith("pump-7")
