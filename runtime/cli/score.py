"""``soundsentry score``: score audio files and folders, one row per file."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ..detector_kinds import DETECTOR_NAMES
from ..exit_codes import (
    EXIT_ANOMALIES,
    EXIT_FILES_FAILED,
    EXIT_INTERRUPTED,
    EXIT_MODEL_ERROR,
    EXIT_NO_CLUSTER,
    EXIT_OK,
    EXIT_USAGE,
)
from ._common import epilog

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    score = sub.add_parser(
        "score",
        help="score audio files and folders",
        description="Score audio files and folders (recursively) and print one row per file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(),
    )
    score.add_argument("paths", nargs="+", metavar="PATH", help="audio files (WAV, FLAC, OGG) or folders")
    score.add_argument("-m", "--model", default="fan", help="shipped model name or bundle folder (default: fan)")
    score.add_argument("--detector", choices=DETECTOR_NAMES, help="detector (default: the model's)")
    score.add_argument(
        "--threshold",
        type=float,
        help="override the model's threshold for the chosen detector (negative exponents: --threshold=-1e9)",
    )
    score.add_argument("--format", choices=["table", "csv", "json"], default="table", dest="fmt")
    score.add_argument(
        "-o", "--output", type=Path, help="write rows to this file instead of stdout (flushed row by row)"
    )
    score.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows already in the -o file (csv or json) and score only the files it lacks",
    )
    score.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    score.add_argument(
        "--dask", metavar="ADDRESS", help="score on the Dask cluster of this scheduler (tcp://host:8786; needs [dask])"
    )
    score.add_argument(
        "--dask-timeout", type=float, default=10.0, metavar="S", help="seconds to wait for the scheduler (default 10)"
    )

    return score


def run(args: argparse.Namespace) -> int:
    import logging
    from collections import Counter

    from tqdm import tqdm

    from ..batch import find_audio_files, score_files
    from ..errors import ModelError
    from ..model import load_model
    from ..report import RESUMABLE_FORMATS, ReportError, make_writer, open_output

    log = logging.getLogger("soundsentry")
    if args.jobs < 1:
        print("soundsentry score: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.resume and (args.output is None or args.fmt not in RESUMABLE_FORMATS):
        print("soundsentry score: --resume needs -o FILE and --format csv or json", file=sys.stderr)
        return EXIT_USAGE
    try:
        model = load_model(args.model)
        if args.detector and args.detector not in model.detectors:
            raise ModelError(f"model {model.name!r} has no detector {args.detector!r}")
    except ModelError as exc:
        print(f"soundsentry: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    paths = find_audio_files(args.paths)
    if not paths:
        print("soundsentry score: no audio files found", file=sys.stderr)
        return EXIT_FILES_FAILED
    detector = args.detector or model.default_detector
    threshold = model.thresholds[detector] if args.threshold is None else args.threshold
    client = None
    if args.dask:
        # Before the -o file is touched: a missing cluster must not truncate it.
        from ..distributed import ClusterError, connect

        try:
            client = connect(args.dask, timeout=args.dask_timeout)
        except ClusterError as exc:
            print(f"soundsentry score: {exc}", file=sys.stderr)
            return EXIT_NO_CLUSTER
    kept = []
    if args.output:
        # Rows go straight into the file, whole and flushed one by one: a killed batch leaves
        # a valid file of the rows done so far, which --resume continues.
        try:
            stream, append, kept = open_output(
                args.output, args.fmt, resume=args.resume, model=model.name, detector=detector, threshold=threshold
            )
        except ReportError as exc:
            print(f"soundsentry score: cannot resume: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"soundsentry score: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    else:
        stream, append = sys.stdout, False
        if hasattr(stream, "reconfigure"):
            # A file name that is not valid UTF-8 is printed as its bytes, as ls would, not a traceback.
            stream.reconfigure(errors="surrogateescape")
    done = Counter(row.path for row in kept)
    todo = []
    for path in paths:
        if done[path]:
            done[path] -= 1
        else:
            todo.append(path)
    counts = Counter(row.verdict for row in kept)
    writer = make_writer(args.fmt, stream, append=append, keep_closed=args.output is not None)
    if client is not None:
        from ..distributed import score_files_dask

        # The same scoring function on the workers: the same rows, in the same order.
        rows = score_files_dask(client, todo, model=model, detector=args.detector, threshold=args.threshold)
    else:
        rows = score_files(model, todo, detector=args.detector, threshold=args.threshold, jobs=args.jobs)
    interrupted, write_error = False, None
    previous_sigterm = _sigterm_as_interrupt()
    try:
        writer.begin()
        for row in tqdm(rows, total=len(todo), unit="file", file=sys.stderr, disable=None, leave=False):
            writer.write(row)
            counts[row.verdict] += 1
            if row.error:
                log.warning("%s: %s", row.path, row.error)
            elif row.flags:
                log.warning("%s: scored, but the recording is %s", row.path, " and ".join(row.flags))
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        write_error = None
        _discard_stdout()
        return 141
    except OSError as exc:  # a full disk, a removed drive: the rows written so far stay whole
        write_error = exc
    finally:
        rows.close()  # stops the worker processes
        if client is not None:
            client.close()
        try:
            writer.end()
            if args.output:
                stream.close()
        except OSError:
            _discard_stdout()
        _restore_sigterm(previous_sigterm)
    if write_error is not None:
        where = args.output or "stdout"
        print(
            f"soundsentry score: cannot write {where}: {write_error.strerror or write_error}; "
            "the rows before it are kept, finish with --resume",
            file=sys.stderr,
        )
        return EXIT_USAGE
    total = sum(counts.values())
    resumed = f", {len(kept)} kept from {args.output}" if kept else ""
    print(
        f"{total} files: {counts['normal']} normal, {counts['abnormal']} abnormal, {counts['error']} failed"
        f" (model {model.name}, detector {detector}{resumed})",
        file=sys.stderr,
    )
    if interrupted:
        where = "; finish with the same command and --resume" if args.output else ""
        print(f"soundsentry score: interrupted after {total} of {len(paths)} files{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if counts["error"]:
        return EXIT_FILES_FAILED
    return EXIT_ANOMALIES if counts["abnormal"] else EXIT_OK


def _sigterm_as_interrupt():
    """Make SIGTERM (kill, a service stop) end a batch like Ctrl-C: rows so far kept, clean exit."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        return None


def _discard_stdout() -> None:
    # Further writes (and the interpreter's final flush) to a closed pipe would raise again.
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (an embedding application)
        pass


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
