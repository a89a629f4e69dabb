"""Real screenshots of the app for the README: ``python -m studies.screenshots docs/images/``.

Runs the real window offscreen (``QT_QPA_PLATFORM=offscreen`` unless a display is set) on the
example clips with the shipped model, with settings in a throwaway folder, and saves:

- ``gui-normal.png``: a normal example clip,
- ``gui-abnormal.png``: an abnormal example clip,
- ``gui-folder.png``: the examples folder as a table,
- ``gui-threshold.png``: the same with the threshold moved by hand (``--hand-threshold``),
- ``gui-recording.png``: a live recording, fed by replaying an example clip as the microphone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

# A development tool, run from a checkout: the examples are the checkout's, not the installed package's.
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NORMAL = "ronwise_id_00_normal_id_00_00000000.flac"
ABNORMAL = "ronwise_id_00_anomaly_id_00_00000000.flac"
MOVED = "mohxen_id_00_abnormal_00000000.flac"


def wait_for(signal, *, timeout: float = 60.0):
    """Run the event loop until ``signal`` fires (returns its arguments) or fail after ``timeout`` s."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list = []

    def fired(*args):
        got.append(args)
        loop.quit()

    signal.connect(fired)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec()
    signal.disconnect(fired)
    if not got:
        raise TimeoutError(f"no {signal} within {timeout} s")
    return got[0]


def settle(ms: int = 300) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def make_window(backend, *, model: str = "fan"):
    """A main window with settings in a temporary file (the user's settings stay untouched)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from soundsentry.gui.window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    ini = Path(tempfile.mkdtemp(prefix="soundsentry-gui-")) / "settings.ini"
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    settings.setValue("model", model)
    win = MainWindow(backend=backend, settings=settings)
    win.resize(1280, 820)
    win.show()
    if win.model is None:
        wait_for(win.modelChanged)
    return app, win


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the PNGs (e.g. docs/images)")
    p.add_argument("--examples", type=Path, default=EXAMPLES)
    p.add_argument("--model", default="fan")
    p.add_argument(
        "--hand-threshold",
        type=float,
        help="threshold for gui-threshold.png (default: the median of the folder's scores, whatever the model's scale)",
    )
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import Qt
    from soundsentry.gui.devices import ClipBackend

    args.out.mkdir(parents=True, exist_ok=True)
    normal, abnormal = args.examples / NORMAL, args.examples / ABNORMAL
    backend = ClipBackend(normal)
    app, win = make_window(backend, model=args.model)
    win.clear_error()

    for name, clip in (("gui-normal.png", normal), ("gui-abnormal.png", abnormal)):
        win.open_file(str(clip))
        wait_for(win.fileShown)
        settle()
        win.grab().save(str(args.out / name))
        print(f"{args.out / name}: {clip.name}: {win.verdict_badge.text().replace(chr(10), ' ')}")

    win.open_paths([str(args.examples)])
    wait_for(win.folderDone)
    win.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    win.table.selectRow(0)
    win._on_table_clicked(win.table_proxy.index(0, 0))
    wait_for(win.fileShown)
    settle()
    win.grab().save(str(args.out / "gui-folder.png"))
    print(f"{args.out / 'gui-folder.png'}: folder table")

    # The threshold moved by hand (not the model's): verdicts change at once, nothing is rescored.
    if args.hand_threshold is None:
        scores = sorted(r.score for r in win.table_model.rows if r is not None and r.score is not None)
        args.hand_threshold = round(statistics.median(scores), 2)
    win.set_threshold(args.hand_threshold)
    win.open_file(str(args.examples / MOVED))
    wait_for(win.fileShown)
    settle()
    win.grab().save(str(args.out / "gui-threshold.png"))
    flagged = sum(win.table_model.verdict(i) == "abnormal" for i in range(len(win.table_model.rows)))
    print(f"{args.out / 'gui-threshold.png'}: threshold {args.hand_threshold} by hand, {flagged} files flagged")
    win.reset_threshold()

    # A live recording: the normal clip replayed as the microphone, in real time, 6 s in.
    win.folder_panel.hide()
    win.start_recording()
    settle(6000)
    win.grab().save(str(args.out / "gui-recording.png"))
    print(f"{args.out / 'gui-recording.png'}: live recording after 6 s")
    win.recorder.stop()
    wait_for(win.recordingDone)
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
