"""``soundsentry watch``: score the recordings in folders as they arrive, until stopped.

The command around :class:`~soundsentry.watch.Watcher`. Arguments are declared without
importing NumPy, so ``--help`` stays instant. Exit status: see
:data:`~soundsentry.exit_codes.WATCH_EXIT_CODES` (0 after a clean stop: a service stop is not a failure).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..detector_kinds import DETECTOR_NAMES
from ..exit_codes import EXIT_OK, EXIT_USAGE, WATCH_EXIT_CODES
from ._common import (
    add_alert_arguments,
    add_parallel_arguments,
    connect_dask,
    epilog,
    install_monitor_signals,
    load_model_with_detector,
    make_alerts,
    parallel_problem,
    restore_signals,
)

__all__ = ["add_parser", "run"]

log = logging.getLogger("soundsentry.watch")


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "watch",
        help="score the recordings in folders as they arrive, until stopped",
        description="Score every audio file in the folders (recursively) and every one that appears later, once "
        "complete (unchanged for --settle seconds and decodable), one row per file in the -o file, which is also "
        "the state a restart continues from.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(WATCH_EXIT_CODES),
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="folders to watch (recursively)")
    parser.add_argument("-m", "--model", default="fan", help="shipped model name or bundle folder (default: fan)")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, help="detector (default: the model's)")
    parser.add_argument(
        "--threshold", type=float, help="override the model's threshold for the chosen detector (--threshold=-1e9)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="rows go here, one per file; also the watcher's state"
    )
    parser.add_argument("--format", choices=["csv", "json"], default="csv", dest="fmt")
    add_parallel_arguments(parser, jobs_help="worker processes for files that arrive together")
    parser.add_argument(
        "--dask", metavar="ADDRESS", help="score on the Dask cluster of this scheduler (tcp://host:8786)"
    )
    parser.add_argument(
        "--dask-timeout", type=float, default=10.0, metavar="S", help="seconds to wait for the scheduler (default 10)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        metavar="S",
        help="a file is scored once unchanged for S seconds and decodable (default 5)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=1.0,
        metavar="S",
        help="look at files waiting to settle every S seconds (default 1)",
    )
    parser.add_argument(
        "--rescan",
        type=float,
        metavar="S",
        help="walk the folders for new files every S seconds (default: 300 with notifications, 10 without)",
    )
    parser.add_argument(
        "--no-notify", action="store_true", help="find new files by rescanning even when watchdog is installed"
    )
    add_alert_arguments(parser)
    return parser


def _usage(message: str) -> int:
    print(f"soundsentry watch: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    from ..alerts import Verdict
    from ..batch import score_files
    from ..report import ReportError, make_writer, open_output
    from ..watch import Watcher

    # A log line per file is what a service's journal is for: on whatever -v says.
    log.setLevel(logging.INFO)
    problem = parallel_problem(args)
    if problem:
        return _usage(problem)
    if args.settle < 0 or args.poll <= 0 or (args.rescan is not None and args.rescan <= 0):
        return _usage("--settle must be >= 0, --poll and --rescan > 0")
    for d in args.dirs:
        if not Path(d).is_dir():
            return _usage(f"{d}: not a folder")
    try:
        alerts = make_alerts(args, source="watch")
    except ValueError as exc:
        return _usage(str(exc))
    model = load_model_with_detector(args.model, args.detector)
    if isinstance(model, int):  # the exit status; why was printed
        return model
    detector = args.detector or model.default_detector
    threshold = model.thresholds[detector] if args.threshold is None else args.threshold

    client = connect_dask(args, command="watch")
    if isinstance(client, int):
        return client
    if client is not None:
        from ..distributed import score_files_dask

        def score_batch(paths):
            return score_files_dask(client, paths, model=model, detector=args.detector, threshold=args.threshold)
    else:

        def score_batch(paths):
            return score_files(
                model, paths, detector=args.detector, threshold=args.threshold, jobs=args.jobs, threads=args.threads
            )

    try:
        # Always resume: the output file is the watcher's memory of what it has scored.
        stream, append, kept = open_output(
            args.output, args.fmt, resume=True, model=model.name, detector=detector, threshold=threshold
        )
    except ReportError as exc:
        return _usage(f"cannot continue {args.output}: {exc}")
    except OSError as exc:
        return _usage(f"cannot write {args.output}: {exc.strerror}")
    writer = make_writer(args.fmt, stream, append=append, keep_closed=True)
    writer.begin()

    def on_row(row) -> None:
        if alerts is not None:
            alerts.observe(
                Verdict(
                    abnormal=row.verdict == "abnormal",
                    score=row.score,
                    threshold=row.threshold,
                    model=row.model,
                    detector=row.detector,
                    file=row.path,
                    flags=tuple(row.flags),
                )
            )

    watcher = Watcher(
        [str(d) for d in args.dirs],
        score_batch=score_batch,
        writer=writer,
        done={row.path for row in kept},
        on_row=on_row,
        settle_seconds=args.settle,
        give_up_seconds=max(60.0, 10 * args.settle),
        poll_seconds=args.poll,
        rescan_seconds=args.rescan,
        notify=not args.no_notify,
    )
    previous = install_monitor_signals(watcher)
    log.info(
        "watching %s with model %s (detector %s, threshold %.6g); %d files already in %s",
        ", ".join(watcher.roots),
        model.name,
        detector,
        threshold,
        len(kept),
        args.output,
    )
    try:
        stats = watcher.run()
    finally:
        restore_signals(previous)
        writer.end()
        stream.close()
        if alerts is not None:
            alerts.close()
        if client is not None:
            client.close()
    print(
        f"soundsentry watch: stopped; {stats.scored} files scored ({stats.normal} normal, {stats.abnormal} abnormal, "
        f"{stats.failed} failed), {stats.kept} from before",
        file=sys.stderr,
    )
    return EXIT_OK
