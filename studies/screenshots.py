"""Real screenshots of the app for the README: ``python -m studies.screenshots docs/images/``.

Runs the real window offscreen (``QT_QPA_PLATFORM=offscreen`` unless a display is set) on the
example clips with the shipped model, with settings in a throwaway folder, and saves:

- ``gui-normal.png``: a normal example clip,
- ``gui-abnormal.png``: an abnormal example clip,
- ``gui-folder.png``: the examples folder as a table,
- ``gui-threshold.png``: the same with the threshold moved by hand (``--hand-threshold``),
- ``gui-recording.png``: a live recording, fed by replaying an example clip as the microphone,
- ``gui-silent.png``: 10 s of digital silence (a dead microphone), flagged instead of judged.

The window is 1024 x 640 (a laptop screen) unless ``--size`` says otherwise. The clips are
copied to a temporary ``recordings`` folder first and the test input device is called
"Default input", so no development path or test device name appears in the pictures.
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


def make_window(backend, *, model: str = "fan", size: tuple[int, int] = (1024, 640)):
    """A main window with settings in a temporary file (the user's settings stay untouched)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from soundsentry.gui.window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    ini = Path(tempfile.mkdtemp(prefix="soundsentry-gui-")) / "settings.ini"
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    settings.setValue("model", model)
    win = MainWindow(backend=backend, settings=settings)
    win.resize(*size)
    win.show()
    if win.model is None:
        wait_for(win.modelChanged)
    return app, win


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m studies.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the PNGs (e.g. docs/images)")
    p.add_argument("--examples", type=Path, default=EXAMPLES)
    p.add_argument("--model", default="fan")
    p.add_argument("--size", default="1024x640", help="window size, WIDTHxHEIGHT (default 1024x640)")
    p.add_argument(
        "--hand-threshold",
        type=float,
        help="threshold for gui-threshold.png (default: the median of the folder's scores, whatever the model's scale)",
    )
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import shutil

    import numpy as np
    import soundfile as sf
    from PySide6.QtCore import Qt
    from soundsentry.devices import ClipBackend

    args.out.mkdir(parents=True, exist_ok=True)
    # A neutral folder: the title shows the clip's path, which must not be a checkout's.
    clips = Path(tempfile.mkdtemp(prefix="soundsentry-shots-")) / "recordings"
    clips.mkdir()
    for src in args.examples.glob("*.flac"):
        shutil.copy(src, clips / src.name)
    args.examples = clips
    normal, abnormal = clips / NORMAL, clips / ABNORMAL
    backend = ClipBackend(normal, name="Default input")
    width, height = (int(v) for v in args.size.lower().split("x"))
    app, win = make_window(backend, model=args.model, size=(width, height))
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
    settle()

    # A dead microphone: 10 s of zeros, in a folder of its own (the table above stays the examples').
    dead = clips.parent / "dead-mic.wav"
    sf.write(dead, np.zeros(10 * 16000, np.float32), 16000, subtype="PCM_16")
    win.open_file(str(dead))
    wait_for(win.fileShown)
    settle()
    win.grab().save(str(args.out / "gui-silent.png"))
    print(f"{args.out / 'gui-silent.png'}: {dead.name}: {win.verdict_badge.text().replace(chr(10), ' ')}")
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
