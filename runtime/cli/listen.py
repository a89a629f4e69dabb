"""``soundsentry listen``: score a microphone live, without a screen.

The command around :class:`~soundsentry.listen.Listener`. Exit status: see
:data:`~soundsentry.exit_codes.LISTEN_EXIT_CODES` (5: no audio input, as the app's file-only mode).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..detector_kinds import DETECTOR_NAMES
from ..exit_codes import EXIT_NO_AUDIO_INPUT, EXIT_OK, EXIT_USAGE, LISTEN_EXIT_CODES
from ._common import (
    add_alert_arguments,
    epilog,
    install_monitor_signals,
    load_model_with_detector,
    make_alerts,
    restore_signals,
)

__all__ = ["add_parser", "run"]

log = logging.getLogger("soundsentry.listen")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "listen",
        help="score a microphone live, without a screen",
        description="Score an input device window by window (the app's live path, headless): one row per window "
        "with its score, the running score over a 10-s clip's windows and the running verdict.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(LISTEN_EXIT_CODES),
    )
    parser.add_argument("-m", "--model", default="fan", help="shipped model name or bundle folder (default: fan)")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, help="detector (default: the model's)")
    parser.add_argument("--threshold", type=float, help="override the model's threshold for the chosen detector")
    parser.add_argument("--device", metavar="NAME_OR_INDEX", help="input device (default: the first; --list-devices)")
    parser.add_argument("--rate", type=int, metavar="HZ", help="device sample rate (default: the device's own)")
    parser.add_argument("--list-devices", action="store_true", help="print the input devices and exit")
    parser.add_argument(
        "--input-clip", type=Path, metavar="FILE", help="replay a recording as the microphone (no sound card needed)"
    )
    parser.add_argument("--input-speed", type=float, default=1.0, help="replay speed of --input-clip (default 1)")
    parser.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds of audio")
    parser.add_argument(
        "--running",
        type=int,
        metavar="N",
        help="windows in the running verdict (default: as many as a 10-s clip, what the threshold was set on)",
    )
    parser.add_argument("-o", "--output", type=Path, help="append rows to this file instead of stdout")
    parser.add_argument("--format", choices=["table", "csv", "jsonl"], default="table", dest="fmt")
    parser.add_argument("--save", type=Path, metavar="DIR", help="keep the audio in rolling FLAC files in DIR")
    parser.add_argument("--save-seconds", type=float, default=60.0, metavar="S", help="length of each saved file (60)")
    parser.add_argument(
        "--save-keep", type=int, default=0, metavar="N", help="keep only the newest N saved files (default: all)"
    )
    add_alert_arguments(parser)
    return parser


class _Rows:
    """Writes listen rows as a table, CSV or JSON lines, flushed one by one."""

    def __init__(self, stream, fmt: str, *, header: bool) -> None:
        from ..listen import LISTEN_FIELDS

        self.stream, self.fmt, self.fields = stream, fmt, LISTEN_FIELDS
        if header and fmt == "csv":
            self._put(",".join(self.fields))
        elif header and fmt == "table":
            self._put(f"{'time':<29} {'window':>7} {'start_s':>9} {'score':>10} {'running':>10} verdict")

    def _put(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def write(self, row) -> None:
        d = row.to_dict()
        if self.fmt == "jsonl":
            self._put(json.dumps(d, ensure_ascii=False))
        elif self.fmt == "csv":
            from ..report import _csv_cell

            cells = [
                "" if d[f] is None else (f"{d[f]:.6g}" if isinstance(d[f], float) else str(d[f])) for f in self.fields
            ]
            self._put(",".join(_csv_cell(c) for c in cells))
        else:
            where = f"  {d['file']}@{d['file_offset_s']:.2f}s" if d["file"] else ""
            self._put(
                f"{d['time']:<29} {d['window']:>7} {d['start_s']:>9.2f} {d['score']:>10.6g} "
                f"{d['running_score']:>10.6g} {d['verdict']}{where}"
            )


def _fail(message: str, code: int) -> int:
    print(f"soundsentry listen: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from ..alerts import Verdict
    from ..devices import ClipBackend, default_backend
    from ..listen import AudioInputError, Listener, RollingAudio, choose_device

    log.setLevel(logging.INFO)
    if args.input_speed <= 0 or (args.seconds is not None and args.seconds <= 0) or (args.running or 1) < 1:
        return _fail("--input-speed and --seconds must be positive, --running at least 1", EXIT_USAGE)
    try:
        alerts = make_alerts(args, source="listen")
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.input_clip is not None:
        try:
            backend = ClipBackend(args.input_clip, speed=args.input_speed)
        except Exception as exc:
            return _fail(f"--input-clip {args.input_clip}: {exc}", EXIT_USAGE)
    else:
        backend = default_backend()
    try:
        if args.list_devices:
            device = choose_device(backend, None)  # raises when there is no input at all
            for dev in backend.input_devices():
                print(f"{dev.index}: {dev.name} ({dev.max_input_channels} ch, {dev.default_samplerate} Hz)")
            return EXIT_OK
        device = choose_device(backend, args.device)
        rate = args.rate or device.default_samplerate
        supported = backend.supported_rates(device)
        if rate not in supported:
            raise AudioInputError(f"{device.name!r} does not record at {rate} Hz (it offers {supported})")
    except AudioInputError as exc:
        return _fail(str(exc), EXIT_NO_AUDIO_INPUT)


    model = load_model_with_detector(args.model, args.detector)
    if isinstance(model, int):  # the exit status; why was printed
        return model

    if args.output:
        try:
            stream = open(args.output, "a", encoding="utf-8", newline="")
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror}", EXIT_USAGE)
        header = stream.tell() == 0
    else:
        stream, header = sys.stdout, True
    rows = _Rows(stream, args.fmt, header=header)
    save = None
    if args.save:
        try:
            save = RollingAudio(args.save, sample_rate=rate, seconds=args.save_seconds, keep=args.save_keep)
        except (OSError, ValueError) as exc:
            return _fail(f"--save {args.save}: {exc}", EXIT_USAGE)

    listener = None

    def on_window(row) -> None:
        rows.write(row)
        if alerts is not None:
            alerts.observe(
                Verdict(
                    abnormal=row.verdict == "abnormal",
                    score=row.running_score,
                    threshold=row.threshold,
                    model=row.model,
                    detector=row.detector,
                    file=row.file or None,
                    window_start_s=row.start_s,
                )
            )
        if args.seconds is not None and listener.samples >= args.seconds * rate:
            listener.stop()

    listener = Listener(
        model,
        backend,
        device,
        sample_rate=rate,
        on_window=on_window,
        detector=args.detector,
        threshold=args.threshold,
        running_windows=args.running,
        save=save,
    )
    previous = install_monitor_signals(listener)
    log.info(
        "listening to %r at %d Hz with model %s (detector %s, threshold %.6g)",
        device.name,
        rate,
        model.name,
        listener.detector,
        listener.threshold,
    )
    code = EXIT_OK
    try:
        how = listener.run()
        if how == "ended" and args.input_clip is None:
            code = _fail(f"the input device {device.name!r} stopped delivering audio (unplugged?)", EXIT_NO_AUDIO_INPUT)
    except AudioInputError as exc:
        code = _fail(str(exc), EXIT_NO_AUDIO_INPUT)
    except BrokenPipeError:
        code = 141
    finally:
        restore_signals(previous)
        if args.output:
            stream.close()
        if alerts is not None:
            alerts.close()
    print(
        f"soundsentry listen: {listener.windows} windows, {listener.abnormal} with an abnormal running verdict",
        file=sys.stderr,
    )
    return code
