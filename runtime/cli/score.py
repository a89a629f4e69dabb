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
    EXIT_FLAGGED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
)
from ._common import (
    DEFAULT_MODEL,
    add_parallel_arguments,
    choose_model,
    connect_dask,
    epilog,
    load_model_with_detector,
    missing_paths,
    parallel_problem,
    trust_note,
)

__all__ = ["FORMATS", "add_parser", "output_format", "run", "summary_category"]

#: Output formats of ``--format``.
FORMATS = ("table", "csv", "json")


def add_parser(sub) -> argparse.ArgumentParser:
    score = sub.add_parser(
        "score",
        help="score audio files and folders",
        description="Score audio files and folders (recursively) and print one row per file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(),
    )
    score.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="audio files or folders (searched recursively for every format the decoder reads: WAV, FLAC, OGG, MP3, "
        "AIFF, CAF, W64, ...; M4A with the [m4a] extra)",
    )
    score.add_argument(
        "-m", "--model", help=f"shipped model name or bundle folder (default: {DEFAULT_MODEL}, said on stderr)"
    )
    score.add_argument("--detector", choices=DETECTOR_NAMES, help="detector (default: the model's)")
    score.add_argument(
        "--threshold",
        type=float,
        help="override the model's threshold for the chosen detector (negative exponents: --threshold=-1e9)",
    )
    score.add_argument(
        "--format",
        choices=FORMATS,
        dest="fmt",
        help="table: aligned columns for reading; csv or json: the fields path, score, verdict, threshold, detector, "
        "model, flags, error for programs (default: from the -o file's extension, .csv or .json, else table)",
    )
    score.add_argument(
        "-o", "--output", type=Path, help="write rows to this file instead of stdout (flushed row by row)"
    )
    score.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows already in the -o file (csv or json) and score only the files it lacks",
    )
    add_parallel_arguments(score, jobs_help="worker processes, each with its own model and its own crash isolation")
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

    from ..batch import score_files, search_audio_files
    from ..quality import FLAGS
    from ..report import RESUMABLE_FORMATS, ReportError, make_writer, open_output

    log = logging.getLogger("soundsentry")
    missing = missing_paths(args.paths)
    if missing:
        print(f"soundsentry score: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args.fmt = output_format(args.fmt, args.output)
    except ValueError as exc:
        print(f"soundsentry score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = parallel_problem(args)
    if problem:
        print(f"soundsentry score: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.resume and (args.output is None or args.fmt not in RESUMABLE_FORMATS):
        print("soundsentry score: --resume needs -o FILE with CSV or JSON rows (FILE.csv, FILE.json, or --format csv or json)", file=sys.stderr)
        return EXIT_USAGE
    model = load_model_with_detector(choose_model(args.model), args.detector)
    if isinstance(model, int):  # the exit status; why was printed
        return model
    trust_note(model)
    paths, n_not_audio = search_audio_files(args.paths)
    not_audio = f"; {_files(n_not_audio)} in the folders skipped as not audio" if n_not_audio else ""
    if not paths:
        print(f"soundsentry score: no audio files found{not_audio}", file=sys.stderr)
        return EXIT_FILES_FAILED
    detector = args.detector or model.default_detector
    threshold = model.thresholds[detector] if args.threshold is None else args.threshold
    client = connect_dask(args, command="score")  # before the -o file is touched
    if isinstance(client, int):
        return client
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
        # Rows and the progress bar share the terminal: each row clears the bar, is written, and the
        # bar is drawn again under it, so no row gets a bar fragment glued into it.
        stream = _BarSafe(stream)
    done = Counter(row.path for row in kept)
    todo = []
    for path in paths:
        if done[path]:
            done[path] -= 1
        else:
            todo.append(path)
    counts = Counter(summary_category(row) for row in kept)
    writer = make_writer(args.fmt, stream, append=append, keep_closed=args.output is not None)
    if client is not None:
        from ..distributed import score_files_dask

        # The same scoring function on the workers: the same rows, in the same order.
        rows = score_files_dask(client, todo, model=model, detector=args.detector, threshold=args.threshold)
    else:
        rows = score_files(
            model, todo, detector=args.detector, threshold=args.threshold, jobs=args.jobs, threads=args.threads
        )
    interrupted, write_error = False, None
    previous_sigterm = _sigterm_as_interrupt()
    try:
        writer.begin()
        for row in tqdm(rows, total=len(todo), unit="file", file=sys.stderr, disable=None, leave=False):
            writer.write(row)
            counts[summary_category(row)] += 1
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
    flagged = "".join(f", {counts[flag]} {flag}" for flag in FLAGS if counts[flag])
    print(
        f"{total} files: {counts['normal']} normal, {counts['abnormal']} abnormal{flagged}, {counts['error']} failed"
        f" (model {model.name}, detector {detector}{resumed}){not_audio}",
        file=sys.stderr,
    )
    if interrupted:
        where = "; finish with the same command and --resume" if args.output else ""
        print(f"soundsentry score: interrupted after {total} of {len(paths)} files{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if counts["error"]:
        return EXIT_FILES_FAILED
    if any(counts[flag] for flag in FLAGS):
        return EXIT_FLAGGED
    return EXIT_ANOMALIES if counts["abnormal"] else EXIT_OK


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def summary_category(row) -> str:
    """What the summary counts a row as: ``error``, its first signal flag (``silent``, ``clipped``), else its verdict.

    A silent or clipped recording gets a score and a verdict, but the verdict means nothing: a dead
    microphone scored "normal" must not be counted as a healthy machine.
    """
    if row.verdict == "error":
        return "error"
    return row.flags[0] if row.flags else row.verdict


def output_format(fmt: str | None, output: Path | None) -> str:
    """``--format`` as given, else from the ``-o`` file's extension (.csv, .json), else ``table``.

    Raises
    ------
    ValueError
        ``--format`` contradicts the extension (``--format table -o x.csv``).
    """
    implied = output.suffix.lower().lstrip(".") if output is not None else ""
    implied = implied if implied in ("csv", "json") else None
    if fmt is None:
        return implied or "table"
    if implied is not None and fmt != implied:
        raise ValueError(f"--format {fmt} contradicts the extension of {output}; give one or the other")
    return fmt


class _BarSafe:
    """A text stream whose writes first clear the progress bars on the terminal, then redraw them."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self._stream):
            n = self._stream.write(text)
            self._stream.flush()
        return n

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


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
