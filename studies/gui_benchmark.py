"""Frame rate of the live spectrogram: ``python -m studies.gui_benchmark``.

Two measurements, in one run on one machine, offscreen unless a display is set:

1. **Update cost**, median of ``--updates`` updates, each painted before the next (the update,
   then Qt's event processing, which paints what changed): the app's way (shift one new column
   into the preallocated image, ``setImage`` with ``autoLevels=False``, fixed time axis) against
   a baseline that recomputes and redraws everything each frame (log-mel of the last 10 s of
   audio, ``setImage`` with auto levels, the time axis scrolled), as a naive live view does.
2. **Live frame rate**: the real window records for ``--seconds`` from an example clip replayed
   in real time as the microphone (10 ms blocks, the app's recording block), scoring live;
   the frames per second are the paints of the spectrogram counted over that time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# A development tool, run from a checkout: the examples are the checkout's, not the installed package's.
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLIP = EXAMPLES / "ronwise_id_00_normal_id_00_00000000.flac"


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def update_costs(model, *, updates: int) -> tuple[list[float], list[float]]:
    """Seconds per drawn update: (incremental scroll, full redraw baseline)."""
    import numpy as np
    from PySide6.QtCore import QRectF
    from PySide6.QtWidgets import QApplication
    from soundsentry.gui.views import AnalysisView

    app = QApplication.instance()
    y = model.load(CLIP)
    logmel = model.display(model.features(y))  # the rows the app draws
    p = model.feature_params
    view = AnalysisView(p)
    view.resize(1200, 560)
    view.show()
    app.processEvents()

    view.start_live(seconds=10.0)
    app.processEvents()
    fast = []
    for j in range(updates):
        col = logmel[:, j % logmel.shape[1] : j % logmel.shape[1] + 1]
        t0 = time.perf_counter()
        view.push_frames(col)
        app.processEvents()  # paints the changed region, as the event loop does after a timer tick
        fast.append(time.perf_counter() - t0)

    window = 10 * p.sample_rate
    hop_s = p.hop_length / p.sample_rate
    looped = np.concatenate([y, y, y])
    slow = []
    for j in range(updates):
        end = window + j * p.hop_length
        t0 = time.perf_counter()
        full = model.display(model.features(looped[max(0, end - window) : end]))
        view.image.setImage(full, autoLevels=True)
        now = end / p.sample_rate
        view.image.setRect(QRectF(now - full.shape[1] * hop_s, 0, full.shape[1] * hop_s, p.n_mels))
        view.spec_plot.setXRange(now - 10, now, padding=0)
        app.processEvents()
        slow.append(time.perf_counter() - t0)
    view.close()
    return fast, slow


def live_rate(model_name: str, *, seconds: float) -> dict:
    """Paints of the live spectrogram per second while recording and scoring in real time."""
    import tempfile

    from PySide6.QtCore import QEvent, QObject, QSettings
    from PySide6.QtWidgets import QApplication
    from soundsentry.devices import ClipBackend
    from soundsentry.gui.window import MainWindow

    from studies.screenshots import settle, wait_for

    app = QApplication.instance()

    class PaintCounter(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.times.append(time.perf_counter())
            return False

    ini = Path(tempfile.mkdtemp(prefix="soundsentry-bench-")) / "settings.ini"
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    settings.setValue("model", model_name)
    win = MainWindow(backend=ClipBackend(CLIP, loop=True), settings=settings)
    win.resize(1280, 820)
    win.show()
    if win.model is None:
        wait_for(win.modelChanged)
    counter = PaintCounter()
    win.view.viewport().installEventFilter(counter)
    win.start_recording()
    settle(2000)  # past the first window, so scoring runs during the measured part
    start, n0, u0 = time.perf_counter(), len(counter.times), len(win.view.frame_times)
    settle(int(seconds * 1000))
    elapsed = time.perf_counter() - start
    paints = len(counter.times) - n0
    updates = len(win.view.frame_times) - u0
    gaps = [b - a for a, b in zip(counter.times[n0:], counter.times[n0 + 1 :], strict=False)]
    scored = len(win.live_scores)
    win.recorder.stop()
    wait_for(win.recordingDone)
    win.close()
    app.processEvents()
    return {
        "seconds": elapsed,
        "paints_per_s": paints / elapsed,
        "updates_per_s": updates / elapsed,
        "median_gap_ms": _median_ms(gaps) if gaps else float("nan"),
        "windows_scored": scored,
        "dropped": win.recorder.dropped,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.gui_benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="length of the live measurement (default 10)")
    p.add_argument("--updates", type=int, default=300, help="updates per variant in the cost measurement")
    p.add_argument("--model", default="fan")
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import soundsentry
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    model = soundsentry.load_model(args.model)
    fast, slow = update_costs(model, updates=args.updates)
    f, s = _median_ms(fast), _median_ms(slow)
    print(f"platform: {app.platformName()}, Qt {__import__('PySide6').__version__}, {os.cpu_count()} CPUs")
    p = model.feature_params
    shape = f"{p.n_mels} x {round(10 * p.sample_rate / p.hop_length)}"
    print(f"update cost, median of {args.updates} painted updates of a {shape} image (10 s), view 1200 x 560:")
    print(f"  scroll one column into the preallocated image: {f:7.2f} ms  (max {1000 / f:6.0f} frames/s)")
    print(f"  baseline, recompute and redraw the whole image: {s:7.2f} ms  (max {1000 / s:6.0f} frames/s)")
    print(f"  ratio baseline / scroll: {s / f:.1f}x")
    live = live_rate(args.model, seconds=args.seconds)
    print(f"live recording, {live['seconds']:.1f} s real time, replayed clip as microphone, live scoring on:")
    print(
        f"  {live['paints_per_s']:.1f} spectrogram paints/s, {live['updates_per_s']:.1f} image updates/s, "
        f"median gap {live['median_gap_ms']:.1f} ms, {live['windows_scored']} windows scored, "
        f"{live['dropped']} samples dropped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
