"""The desktop app on a laptop screen, with the recordings a dead or overdriven microphone gives.

Issue 15: a silent or clipped recording is flagged wherever a verdict is shown, the window is
usable at 1024x640, the level meter reads in dBFS, nothing stale stays on screen, the threshold
label stays inside its plot, the spectrogram offers auto levels, and the open dialog and drag
and drop take every format the decoder reads. Offscreen Qt, real clips, the shipped model;
expected values come from the runtime (``batch.score_file``) or are computed here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6", reason="needs the [gui] extra (PySide6)")
pytest.importorskip("pyqtgraph", reason="needs the [gui] extra (pyqtgraph)")
pytest.importorskip("pytestqt", reason="needs pytest-qt (the [test] extra)")

import soundfile as sf
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QStyle, QStyleOptionComboBox, QToolBar, QToolButton
from soundsentry.batch import score_file
from soundsentry.devices import ClipBackend
from soundsentry.gui.level import LevelMeter
from soundsentry.gui.views import ABNORMAL_COLOUR, DB_LEVELS, ERROR_BACKGROUND, FLAG_COLOUR, NORMAL_COLOUR

from .conftest import DATA_DIR, EXAMPLES_DIR, LOGMEL_BUNDLE
from .test_gui import ABNORMAL, NORMAL, WAIT, make_window, open_file

LAPTOP = (1024, 640)


# The app's settings and Qt's test locations: the fixtures qt_test_paths, settings and logmel_settings of conftest.py.
pytestmark = pytest.mark.usefixtures("qt_test_paths")


@pytest.fixture
def silent_wav(tmp_path, fan_model) -> Path:
    """A dead microphone: 10 s of digital zeros, as long as the example clips."""
    path = tmp_path / "dead-mic.wav"
    sf.write(path, np.zeros(fan_model.load(NORMAL).shape[0], np.float32), 16000, subtype="PCM_16")
    return path


@pytest.fixture
def clipped_wav(tmp_path, fan_model) -> Path:
    """An overdriven input: a real normal clip with its gain turned up until a third of its range clips."""
    y = fan_model.load(NORMAL)
    path = tmp_path / "overdriven.wav"
    sf.write(path, np.clip(y * (3.0 / np.max(np.abs(y))), -1.0, 1.0), 16000, subtype="PCM_16")
    return path


def laptop_window(qtbot, settings, backend=None):
    win = make_window(qtbot, settings, backend)
    win.resize(*LAPTOP)
    qtbot.waitUntil(lambda: win.width() == LAPTOP[0], timeout=WAIT)
    return win


def badge_colour_in(image: QImage, win) -> str:
    """The badge's background as exported: a pixel inside its padding, left of the text."""
    badge = win.verdict_badge
    at = badge.mapTo(win.report_panel, QPoint(6, badge.height() // 2))
    return QColor(image.pixel(at.x(), at.y())).name()


# ------------------------------------------------------------------ a dead microphone never looks healthy
def test_silent_file_is_flagged_not_called_normal(qtbot, settings, fan_model, silent_wav, tmp_path):
    row = score_file(fan_model, str(silent_wav), detector=fan_model.default_detector, threshold=None)
    assert "silent" in row.flags  # the runtime's flag, which the window must show
    win = laptop_window(qtbot, settings)
    open_file(qtbot, win, silent_wav)
    badge = win.verdict_badge.text()
    assert "SILENT" in badge and "NORMAL" not in badge and "ABNORMAL" not in badge
    assert NORMAL_COLOUR.name() not in win.verdict_badge.styleSheet()
    assert FLAG_COLOUR.name() in win.verdict_badge.styleSheet()
    # Its window scores below the threshold are not drawn as healthy green points (those above stay red: the
    # views detector's level view flags silence as far quieter than the enrolled machine).
    points = [b.color().name() for b in win.view.score_curve.opts["symbolBrush"]]
    scores = win.analysis.window_scores
    assert points == [(ABNORMAL_COLOUR if s > win.threshold else FLAG_COLOUR).name() for s in scores]
    assert NORMAL_COLOUR.name() not in points
    # The report PNG carries the flag: the badge is in it, in the flag colour, not green.
    out = tmp_path / "report.png"
    assert win.export_png(str(out))
    img = QImage(str(out))
    assert badge_colour_in(img, win) == FLAG_COLOUR.name()
    # A healthy clip afterwards is green again: the flag belongs to the file, not the window.
    open_file(qtbot, win, NORMAL)
    assert win.verdict_badge.text().startswith("NORMAL") and NORMAL_COLOUR.name() in win.verdict_badge.styleSheet()
    assert win.export_png(str(out))
    assert badge_colour_in(QImage(str(out)), win) == NORMAL_COLOUR.name()


def test_clipped_file_is_flagged_and_not_green(qtbot, settings, fan_model, clipped_wav):
    row = score_file(fan_model, str(clipped_wav), detector=fan_model.default_detector, threshold=None)
    assert "clipped" in row.flags
    win = laptop_window(qtbot, settings)
    open_file(qtbot, win, clipped_wav)
    badge = win.verdict_badge.text()
    assert "CLIPPED" in badge and f"{row.score:.3f}" in badge
    assert NORMAL_COLOUR.name() not in win.verdict_badge.styleSheet()


def test_silent_recording_is_flagged_live_and_after(qtbot, settings, silent_wav):
    win = make_window(qtbot, settings, ClipBackend(silent_wav, speed=4.0))
    badges: list[str] = []

    def seen() -> None:
        if win.recorder.recording and win.live_scores:  # a live verdict is shown
            badges.append(win.verdict_badge.text())

    win._show_verdict = _after(win._show_verdict, seen)
    with qtbot.waitSignal(win.recordingDone, timeout=WAIT):
        win.start_recording()
    assert badges and all("SILENT" in b and "so far" in b for b in badges)
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=WAIT)
    assert win.analysis.flags == ("silent",)
    assert "SILENT" in win.verdict_badge.text() and "NORMAL" not in win.verdict_badge.text()


def _after(fn, then):
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        then()
        return out

    return wrapper


def test_folder_table_shows_flags_and_colours_error_rows(qtbot, settings, fan_model, silent_wav, clipped_wav, tmp_path):
    d = tmp_path / "line-3"
    d.mkdir()
    for p in (NORMAL, ABNORMAL, silent_wav, clipped_wav):
        shutil.copy(p, d / p.name)
    (d / "broken.wav").write_bytes(b"RIFF this is not a wave file")
    win = laptop_window(qtbot, settings)
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.open_paths([str(d)])
    model = win.table_model
    flags_col = 3
    for i, path in enumerate(model.paths):
        expected = score_file(fan_model, path, detector=fan_model.default_detector, threshold=None)
        assert model.index(i, flags_col).data() == ", ".join(expected.flags), path
        shown = model.index(i, 2).data()
        colour = model.index(i, 2).data(Qt.ItemDataRole.ForegroundRole)
        background = model.index(i, 0).data(Qt.ItemDataRole.BackgroundRole)
        if "silent" in expected.flags:
            assert shown == "silent" and colour.color() != NORMAL_COLOUR
        elif "clipped" in expected.flags:
            assert colour.color() != NORMAL_COLOUR
        elif expected.verdict == "error":
            assert shown == "error" and background.color() == ERROR_BACKGROUND
            assert expected.error in model.index(i, 0).data(Qt.ItemDataRole.ToolTipRole)
        else:
            assert background is None and shown == expected.verdict
    names = {Path(p).name for p in model.paths}
    assert {"dead-mic.wav", "overdriven.wav", "broken.wav"} <= names
    # "anomalies only" keeps what needs a look: abnormal files and flagged ones.
    win.set_threshold(1e6)  # nothing is abnormal by score now
    win.anomalies_check.setChecked(True)
    kept = {
        Path(model.paths[win.table_proxy.mapToSource(win.table_proxy.index(r, 0)).row()]).name
        for r in range(win.table_proxy.rowCount())
    }
    assert kept == {"dead-mic.wav", "overdriven.wav"}


# ------------------------------------------------------------------------------- fits a laptop
def test_every_control_is_reachable_at_1024x640(qtbot, settings, tmp_path):
    win = laptop_window(qtbot, settings, ClipBackend(NORMAL))
    qtbot.wait(100)
    for tb in win.findChildren(QToolBar):
        ext = tb.findChild(QToolButton, "qt_toolbar_ext_button")
        assert ext is None or not ext.isVisible(), f"{tb.objectName()} overflows at 1024 px"
        assert tb.geometry().right() <= win.width()
    needed = {
        "Enroll this machine": _widget_of(win, win.enroll_action),
        "Save recording": _widget_of(win, win.save_recording_action),
        "Load model bundle": _widget_of(win, win.load_bundle_action),
        "Record": _widget_of(win, win.record_action),
        "level": win.level_meter,
        "detector": win.detector_combo,
        "threshold": win.threshold_slider,
        "auto levels": win.auto_levels_check,
    }
    for what, w in needed.items():
        assert w is not None and w.isVisible(), what
        top_left = w.mapTo(win, QPoint(0, 0))
        assert 0 <= top_left.x() and top_left.x() + w.width() <= win.width(), what
    # The detector box shows whole names ("mahalanobis", not "mahalan").
    combo = win.detector_combo
    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    names = [combo.itemText(i) for i in range(combo.count())]
    assert names == win.model.detectors
    for name in names:
        assert combo.fontMetrics().horizontalAdvance(name) <= field.width(), name
    # A bundle with the longest detector name (the log-mel fixture's "mahalanobis") fits too, and nothing overflows.
    with qtbot.waitSignal(win.modelChanged, timeout=WAIT):
        win.load_model(str(LOGMEL_BUNDLE))
    qtbot.wait(100)
    combo.initStyleOption(opt)
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    names = [combo.itemText(i) for i in range(combo.count())]
    assert "mahalanobis" in names
    for name in names:
        assert combo.fontMetrics().horizontalAdvance(name) <= field.width(), name
    for what, w in needed.items():
        top_left = w.mapTo(win, QPoint(0, 0))
        assert w.isVisible() and 0 <= top_left.x() and top_left.x() + w.width() <= win.width(), what


def _widget_of(win, action):
    for tb in win.findChildren(QToolBar):
        if action in tb.actions():
            return tb.widgetForAction(action)
    return None


def test_folder_table_gets_a_third_of_the_height_one_line_per_row(qtbot, settings, tmp_path):
    d = tmp_path / "clips"
    d.mkdir()
    long_name = "fan_line_3_north_bearing_housing_microphone_B_" + "x" * 90 + "_normal_00000000.flac"
    shutil.copy(NORMAL, d / long_name)
    for p in EXAMPLES_DIR.glob("*.flac"):
        shutil.copy(p, d / p.name)
    for p in DATA_DIR.glob("*.flac"):
        shutil.copy(p, d / p.name)
    win = laptop_window(qtbot, settings)
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.open_paths([str(d)])
    qtbot.wait(50)
    total = sum(win.splitter.sizes())
    assert win.folder_panel.height() >= total / 3
    line = win.table.fontMetrics().lineSpacing()
    heights = {win.table.rowHeight(r) for r in range(win.table_proxy.rowCount())}
    assert max(heights) < 2 * line  # one line per row, the long name included
    assert win.table.viewport().height() // max(heights) >= 5  # rows visible at once
    assert not win.table.wordWrap() and win.table.textElideMode() == Qt.TextElideMode.ElideMiddle
    proxy = win.table_proxy
    tips = {proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole) for r in range(proxy.rowCount())}
    assert str(d / long_name) in tips
    # The split is the user's to move.
    win.splitter.setSizes([total - 80, 80])
    qtbot.wait(20)
    assert win.folder_panel.height() < total / 3


# -------------------------------------------------------------------------------- level meter
class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_level_meter_reads_dbfs_holds_peaks_and_lights_on_clipping(qapp):
    clock = FakeClock()
    meter = LevelMeter(clock=clock)
    # A real fan clip's 10 ms block peaks, as the recorder reports them.
    y, sr = sf.read(NORMAL, dtype="float32")
    block = sr // 100
    peaks = np.abs(y[: y.size // block * block]).reshape(-1, block).max(axis=1)
    median_peak = float(np.median(peaks))
    meter.set_peak(median_peak)
    expected_db = 20 * np.log10(median_peak)
    assert meter.level_db == pytest.approx(expected_db)
    assert meter.fraction(meter.level_db) == pytest.approx((expected_db + 60) / 60)
    assert meter.fraction(meter.level_db) > 0.25  # visible; a linear bar would fill median_peak of it
    assert median_peak < 0.1
    # Peak hold: a loud block, then quiet ones; the mark stays, then follows down.
    meter.set_peak(0.5)
    clock.t += 0.5
    meter.set_peak(0.01)
    assert meter.level_db == pytest.approx(-40) and meter.peak_db == pytest.approx(20 * np.log10(0.5))
    clock.t += 1.1
    meter.set_peak(0.01)
    assert meter.peak_db == pytest.approx(-40)
    # Below the floor, and digital silence, read -60.
    meter.set_peak(0.0)
    assert meter.level_db == -60 and meter.fraction(meter.level_db) == 0
    # The clip light: on at full scale, off two seconds later.
    assert not meter.clipping
    meter.set_peak(1.0)
    assert meter.clipping
    clock.t += 2.5
    meter.set_peak(0.01)
    assert not meter.clipping


def test_recording_drives_the_meter_in_dbfs(qtbot, settings, clipped_wav):
    win = make_window(qtbot, settings, ClipBackend(clipped_wav, speed=4.0))
    peaks: list[float] = []
    win.recorder.level.connect(peaks.append)
    win.start_recording()
    qtbot.waitUntil(lambda: len(peaks) > 20, timeout=WAIT)
    assert win.level_meter.clipping  # this input is pinned at full scale
    assert win.level_meter.level_db == pytest.approx(max(-60.0, 20 * np.log10(peaks[-1])), abs=1e-6)
    with qtbot.waitSignal(win.recordingDone, timeout=WAIT):
        win.recorder.stop()
    assert win.level_meter.level_db == -60 and not win.level_meter.clipping  # nothing stale once stopped


# -------------------------------------------------------------------------------- stale state
def test_opening_another_folder_clears_the_view(qtbot, logmel_settings, tmp_path):
    settings = logmel_settings  # a bundle with another detector to switch to
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(NORMAL, a / NORMAL.name)
    shutil.copy(ABNORMAL, a / ABNORMAL.name)
    shutil.copy(DATA_DIR / "yos95_id_06_normal_id_06_00000012.flac", b / "other.flac")
    shutil.copy(DATA_DIR / "yos95_id_06_anomaly_id_06_00000002.flac", b / "other-2.flac")
    win = laptop_window(qtbot, settings)
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.open_paths([str(a)])
    with qtbot.waitSignal(win.fileShown, timeout=WAIT):
        win.table.clicked.emit(win.table_proxy.index(0, 0))
    assert win.analysis is not None and "NORMAL" in win.verdict_badge.text().upper()
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.open_paths([str(b)])
    assert win.analysis is None and win.view.image.image is None
    assert win.verdict_badge.text() == "no verdict yet"
    assert str(a) not in win.title_label.text()
    # The same folder rescored (another detector) keeps what is shown.
    with qtbot.waitSignal(win.fileShown, timeout=WAIT):
        win.table.clicked.emit(win.table_proxy.index(0, 0))
    shown = win.analysis.path
    with qtbot.waitSignal(win.folderDone, timeout=WAIT):
        win.set_detector("ocsvm")
    qtbot.waitUntil(lambda: win.analysis is not None and win.analysis.path == shown, timeout=WAIT)


# ---------------------------------------------------------------------------- threshold label
@pytest.mark.parametrize("where", ["below every window", "above every window"])
def test_threshold_label_stays_inside_the_score_plot(qtbot, settings, fan_model, where):
    win = laptop_window(qtbot, settings)
    open_file(qtbot, win, NORMAL)
    scores = fan_model.score(NORMAL).window_scores
    span = float(scores.max() - scores.min())
    win.set_threshold(scores.min() - 0.02 * span if where.startswith("below") else scores.max() + 0.02 * span)
    qtbot.wait(50)
    label = win.view.threshold_line.label
    assert label.isVisible()
    plot_area = win.view.score_plot.vb.sceneBoundingRect()
    text = label.mapRectToScene(label.boundingRect())
    assert plot_area.top() - 0.5 <= text.top() and text.bottom() <= plot_area.bottom() + 0.5, (where, text, plot_area)
    axis = win.view.score_plot.getAxis("bottom").sceneBoundingRect()
    assert not text.intersects(axis)


# -------------------------------------------------------------------------------- auto levels
def test_spectrogram_levels_fixed_by_default_auto_on_request(qtbot, settings, fan_model):
    win = laptop_window(qtbot, settings)
    open_file(qtbot, win, ABNORMAL)
    assert not win.auto_levels_check.isChecked()
    assert tuple(win.view.image.getLevels()) == DB_LEVELS
    assert tuple(win.view.colorbar.levels()) == DB_LEVELS
    win.auto_levels_check.setChecked(True)
    logmel = fan_model.display(fan_model.features(fan_model.load(ABNORMAL)))
    own = (np.percentile(logmel, 1), logmel.max())
    np.testing.assert_allclose(win.view.image.getLevels(), own, rtol=1e-6)
    np.testing.assert_allclose(win.view.colorbar.levels(), own, rtol=1e-6)
    # Another file gets its own levels while the option is on.
    open_file(qtbot, win, NORMAL)
    logmel = fan_model.display(fan_model.features(fan_model.load(NORMAL)))
    np.testing.assert_allclose(win.view.image.getLevels(), (np.percentile(logmel, 1), logmel.max()), rtol=1e-6)
    win.auto_levels_check.setChecked(False)
    assert tuple(win.view.image.getLevels()) == DB_LEVELS


# ------------------------------------------------------------------------ formats: open and drop
def test_open_dialog_and_drop_take_every_decodable_format(qtbot, settings, tmp_path):
    from soundsentry.gui.files import AUDIO_FILTER

    patterns = AUDIO_FILTER.split(";;")[0]
    for suffix in (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".caf", ".w64", ".m4a"):
        assert f"*{suffix}" in patterns.split("(")[1].split(), suffix
    # Every format this libsndfile lists (but header-less RAW) has its suffix in the filter.
    from soundsentry.formats import SNDFILE_SUFFIXES

    for fmt in sf.available_formats():
        if fmt != "RAW":
            assert any(f"*{s}" in patterns for s in SNDFILE_SUFFIXES[fmt]), fmt

    win = make_window(qtbot, settings)
    notes = tmp_path / "notes.txt"
    notes.write_text("line 3 fan, Monday")
    phone = tmp_path / "phone.m4a"
    phone.write_bytes(b"not really")

    def urls(*paths):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        return mime

    text_only = urls(notes)  # the event does not own its mime data: keep it alive
    enter = QDragEnterEvent(
        QPoint(5, 5), Qt.DropAction.CopyAction, text_only, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    win.dragEnterEvent(enter)
    assert not enter.isAccepted()
    mime = urls(phone)
    enter = QDragEnterEvent(
        QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    win.dragEnterEvent(enter)
    assert enter.isAccepted()
    # A clip dropped with a text file: the clip opens, the text file is named as left out.
    messages: list[str] = []
    win.message.connect(messages.append)
    both = urls(NORMAL, notes)
    drop = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        both,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(win.fileShown, timeout=WAIT) as blocker:
        win.dropEvent(drop)
    assert blocker.args == [str(NORMAL)]
    assert any("notes.txt" in m for m in messages)
