"""``soundsentry-gui [FILE_OR_FOLDER...]``: start the desktop app.

Arguments are parsed before Qt is imported, so ``--help`` is instant and a missing
``[gui]`` extra gives a one-line hint instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import traceback
from pathlib import Path

log = logging.getLogger("soundsentry.gui")

ORGANIZATION = "SoundSentry"
APPLICATION = "soundsentry-gui"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="soundsentry-gui",
        description="SoundSentry desktop app: spectrograms and anomaly scores of machine recordings.",
    )
    p.add_argument("paths", nargs="*", metavar="FILE_OR_FOLDER", help="recordings or folders to open at once")
    p.add_argument("--model", metavar="NAME_OR_DIR", help="model to start with (default: the last one used, else fan)")
    p.add_argument(
        "--input-clip",
        metavar="FILE",
        help="use a recording as the input device (replayed in real time), e.g. on a machine without a microphone",
    )
    p.add_argument("--quit-after", type=float, metavar="SECONDS", help=argparse.SUPPRESS)  # launch smoke test
    return p


def log_path() -> Path:
    """The log file, in the user's state/log folder as Qt names it for this platform."""
    from PySide6.QtCore import QStandardPaths

    loc = getattr(
        QStandardPaths.StandardLocation, "StateLocation", QStandardPaths.StandardLocation.AppLocalDataLocation
    )
    base = QStandardPaths.writableLocation(loc) or QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.AppLocalDataLocation
    )
    return Path(base) / "log" / "soundsentry-gui.log"


def setup_logging() -> Path | None:
    path = log_path()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file %s: %s", path, exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


class ErrorReporter:
    """Unhandled exceptions: logged with their traceback, shown once in a dialog, then only in the
    status bar, so a fault in a timer does not become a cascade of dialogs."""

    def __init__(self, log_file: Path | None) -> None:
        self.log_file = log_file
        self.count = 0
        self.window = None
        self._box = None

    def install(self) -> None:
        sys.excepthook = self.hook

        import threading

        threading.excepthook = lambda args: self.hook(args.exc_type, args.exc_value, args.exc_traceback)

    def hook(self, exc_type, exc, tb) -> None:
        self.count += 1
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unhandled error:\n%s", text)
        where = f" Details are in {self.log_file}." if self.log_file else ""
        message = f"Unexpected error: {exc_type.__name__}: {exc}.{where}"
        if self.window is None:
            return
        from PySide6.QtCore import QThread
        from PySide6.QtWidgets import QApplication, QMessageBox

        if QThread.currentThread() is not QApplication.instance().thread():
            return  # logged; widgets may only be touched from the GUI thread
        if self.count == 1:
            self._box = QMessageBox(QMessageBox.Icon.Critical, "SoundSentry", message, parent=self.window)
            self._box.setModal(False)
            self._box.show()  # not exec(): a modal loop here could stack more dialogs
        self.window.statusBar().showMessage(message, 20000)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from PySide6.QtCore import QCoreApplication, QSettings, QTimer
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        print(f"soundsentry-gui needs the [gui] extra: pip install 'soundsentry[gui]' ({exc})", file=sys.stderr)
        return 2

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    log_file = setup_logging()
    reporter = ErrorReporter(log_file)
    reporter.install()

    from soundsentry.devices import ClipBackend, default_backend

    from .window import MainWindow

    if args.input_clip:
        try:
            backend = ClipBackend(args.input_clip, loop=True)
        except Exception as exc:
            print(f"soundsentry-gui: --input-clip {args.input_clip}: {exc}", file=sys.stderr)
            return 2
    else:
        backend = default_backend()
    settings = QSettings()
    if args.model:
        settings.setValue("model", args.model)
        settings.remove("threshold")
    window = MainWindow(backend=backend, settings=settings)
    reporter.window = window
    window.show()
    if args.paths:
        missing = [p for p in args.paths if not os.path.exists(p)]
        for p in missing:
            window.show_error(f"{p}: no such file or folder")
        paths = [p for p in args.paths if p not in missing]
        if paths:
            # Open once the model has loaded (it loads off the GUI thread).
            def open_once(_name: str) -> None:
                window.modelChanged.disconnect(open_once)
                window.open_paths(paths)

            window.modelChanged.connect(open_once)
    if args.quit_after is not None:
        QTimer.singleShot(int(args.quit_after * 1000), app.quit)
    code = app.exec()
    return 1 if reporter.count else code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
