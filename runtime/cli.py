"""The ``soundsentry`` command line.

Arguments are parsed before NumPy or ONNX Runtime are imported, so ``--help`` and usage
errors are instant. Exit status of ``score``: see :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

__all__ = ["EXIT_CODES", "build_parser", "main"]

EXIT_OK = 0
EXIT_ANOMALIES = 1
EXIT_USAGE = 2
EXIT_FILES_FAILED = 3
EXIT_MODEL_ERROR = 4
EXIT_NO_CLUSTER = 6
EXIT_INTERRUPTED = 130

#: Exit status of ``soundsentry score`` (``models``/``info`` use 0, 2 and 4 only).
EXIT_CODES = {
    EXIT_OK: "every file scored, all normal",
    EXIT_ANOMALIES: "every file scored, at least one abnormal",
    EXIT_USAGE: "bad command line",
    EXIT_FILES_FAILED: "at least one file could not be scored (the others were)",
    EXIT_MODEL_ERROR: "the model could not be found or loaded",
    EXIT_NO_CLUSTER: "--dask: the [dask] extra is missing or the scheduler did not answer",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM); the rows so far are kept, --resume finishes",
}

#: Detector kinds a bundle can hold (kept here, not imported, so arguments parse before NumPy loads).
DETECTOR_CHOICES = ["lof", "ocsvm", "knn", "mahalanobis"]


def _epilog() -> str:
    return "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundsentry",
        description="Flag abnormal sounds of industrial machines.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(),
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    score = sub.add_parser(
        "score",
        help="score audio files and folders",
        description="Score audio files and folders (recursively) and print one row per file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(),
    )
    score.add_argument("paths", nargs="+", metavar="PATH", help="audio files (WAV, FLAC, OGG) or folders")
    score.add_argument("-m", "--model", default="fan", help="shipped model name or bundle folder (default: fan)")
    score.add_argument("--detector", choices=DETECTOR_CHOICES, help="detector (default: the model's)")
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

    _add_evaluate_enroll(sub)
    sub.add_parser("models", help="list shipped models")
    info = sub.add_parser("info", help="print a model's card")
    info.add_argument("model", help="shipped model name or bundle folder")
    info.add_argument("--json", action="store_true", help="print the whole card as JSON")

    from . import listen_command, watch_command

    watch = sub.add_parser(
        "watch",
        help="score the recordings in folders as they arrive, until stopped",
        description="Score every audio file in the folders (recursively) and every one that appears later, once "
        "complete, one row per file in the -o file, which is also the state a restart continues from.",
    )
    watch_command.add_arguments(watch)
    listen = sub.add_parser(
        "listen",
        help="score a microphone live, without a screen",
        description="Score an input device window by window: one row per window with its score and running verdict.",
    )
    listen_command.add_arguments(listen)
    from soundsentry.export import onnx_cli  # argparse only; onnx is imported when it runs

    export_onnx = sub.add_parser("export-onnx", help=onnx_cli.HELP, description=onnx_cli.__doc__.splitlines()[0])
    onnx_cli.add_arguments(export_onnx)

    train = sub.add_parser("train", help="train a model bundle (needs the [train] extra)", add_help=True)
    from soundsentry.train.cli import build_parser as build_train_parser  # argparse only, no TensorFlow

    build_train_parser(train)
    return parser


def _score(args: argparse.Namespace) -> int:
    import logging
    from collections import Counter

    from tqdm import tqdm

    from .batch import find_audio_files, score_files
    from .errors import ModelError
    from .model import load_model
    from .report import RESUMABLE_FORMATS, ReportError, make_writer, open_output

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
        from .distributed import ClusterError, connect

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
        from .distributed import score_files_dask

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


def _models(args: argparse.Namespace) -> int:
    from .bundle import list_shipped_models, read_bundle

    for name in list_shipped_models():
        card = read_bundle(name, verify=False).card
        ev = card.get("evaluation", {})
        auc = ev.get(card.get("default_detector", "lof"), {}).get("auc")
        figure = f"held-out AUC {auc:.3f}" if auc is not None else None
        print(f"{name:<10} {card.get('machine_type', ''):<8} {figure or _evidence_summary(card)}")
    return EXIT_OK


def _evidence_summary(card: dict) -> str:
    """The recipe's cross-machine figure from a shipped card's evidence, or why there is none."""
    cross = (card.get("evidence") or {}).get("cross-machine")
    if not isinstance(cross, dict):
        return "no held-out figure"
    counts = cross.get("counts", {})
    n = f"{counts.get('test_normal', '?')} normal / {counts.get('test_abnormal', '?')} abnormal"
    ours = cross.get("ours")
    if not isinstance(ours, dict):
        return f"recipe on unheard machines: too thin for a figure ({n})"
    return f"recipe on unheard machines: AUC {ours['auc']:.3f}, pAUC {ours['pauc']:.3f} ({n})"


def _info(args: argparse.Namespace) -> int:
    import json

    from .bundle import read_bundle
    from .errors import ModelError

    try:
        bundle = read_bundle(args.model)
    except ModelError as exc:
        print(f"soundsentry: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    card = bundle.card
    if args.json:
        print(json.dumps(card, indent=2))
        return EXIT_OK
    w = card["window"]
    print(f"model:        {card['name']} ({card.get('machine_type', '?')})")
    print(f"folder:       {bundle.root}")
    print(f"window:       {w['frames']} frames ({w.get('seconds', '?')} s), hop {w['hop_frames']} frames")
    print(f"channel:      {card['channel']['policy']}")
    print(f"aggregate:    {card.get('aggregate', 'mean')} of window scores; {card.get('score_direction', '')}")
    default = card.get("default_detector", "lof")
    for name, det in card["detectors"].items():
        print(f"detector:     {name}: threshold {det['threshold']:.6g}" + (" (default)" if name == default else ""))
    print(f"threshold:    {next(iter(card['detectors'].values())).get('threshold_rule', '')}")
    training = card.get("training", {})
    if training:
        print(f"training:     {training.get('split', '')}")
    enrollment = card.get("enrollment")
    if isinstance(enrollment, dict):
        print(
            f"enrolled:     {enrollment.get('n_recordings', '?')} recordings, {enrollment.get('seconds', '?')} s, "
            f"{enrollment.get('n_windows', '?')} windows on {enrollment.get('created', '?')}; "
            f"encoder from {enrollment.get('parent', {}).get('name', '?')!r}"
        )
    ev = card.get("evaluation")
    if ev:
        print(
            f"evaluation:   {ev['n_normal']} normal / {ev['n_abnormal']} abnormal held-out clips ({', '.join(ev['machines'])})"
        )
        for name in card["detectors"]:
            e = ev.get(name, {})
            if "auc" in e:
                print(f"              {name}: AUC {e['auc']:.3f}, pAUC(0.1) {e['pauc_fpr_0.1']:.3f}, F1 {e['f1']:.3f}")
    if not ev and card.get("evidence"):
        print(f"evidence:     {_evidence_summary(card)}; see its card (--json) and docs/accuracy.md")
    if card.get("notes"):
        print(f"notes:        {card['notes']}")
    return EXIT_OK


def _add_evaluate_enroll(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="AUC, pAUC and F1 of a model on labelled clips; Markdown report and ROC plots",
        description="Score labelled clips (folders with normal/ and abnormal/ subfolders, or a clips.csv) and "
        "write a Markdown report with AUC, pAUC (FPR<=0.1), precision/recall/F1 at the model's threshold, "
        "overall and per machine, SNR and domain, plus ROC plots (PNG, needs matplotlib) next to it.",
    )
    evaluate.add_argument("data", nargs="+", metavar="DATA", help="folders with normal/ and abnormal/, or clips.csv files")
    evaluate.add_argument("-m", "--model", default="fan", help="shipped model name or bundle folder (default: fan)")
    evaluate.add_argument("--detector", action="append", choices=DETECTOR_CHOICES, help="detector(s) (default: all)")
    evaluate.add_argument("-o", "--output", type=Path, help="Markdown report (default: evaluation_<model>.md)")
    evaluate.add_argument(
        "--machine-type",
        help="only clips.csv rows of this machine type (default: the model's type when the CSV has it; 'all' for every row)",
    )
    evaluate.add_argument("--machine-id", action="append", help="only clips of this machine id (repeatable)")
    evaluate.add_argument(
        "--include-heard", action="store_true", help="keep clips the model was trained, validated or enrolled on"
    )
    evaluate.add_argument("--no-plots", action="store_true", help="do not write ROC plots")

    enroll = sub.add_parser(
        "enroll",
        help="make a model for your own machine from its normal recordings",
        description="Keep a model's encoder, fit its detector on your machine's normal recordings, calibrate the "
        "threshold from those recordings alone and write a new bundle (usable with --model DIR).",
    )
    enroll.add_argument("-m", "--model", default="fan", help="parent model: shipped name or bundle folder (default: fan)")
    enroll.add_argument("--normal", nargs="+", required=True, metavar="PATH", help="normal recordings: files or folders")
    enroll.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder of the new bundle")
    enroll.add_argument(
        "--detector",
        action="append",
        choices=DETECTOR_CHOICES,
        help="detector(s) to fit, the first is the default (default: lof; ocsvm needs [train])",
    )
    enroll.add_argument("--name", help="model name in the card (default: the folder's name)")
    enroll.add_argument("--machine-type", help="machine type in the card (default: the parent model's)")
    enroll.add_argument("--quantile", type=float, default=0.99, help="threshold quantile of the normal fit (default 0.99)")
    enroll.add_argument(
        "--no-level",
        action="store_true",
        help="keep each window's level (default: level it, so a gain or distance change is not flagged)",
    )
    enroll.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    enroll.add_argument("--strict", action="store_true", help="stop at the first unusable recording instead of skipping it")


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run_cli

    return run_cli(args)


def _enroll(args: argparse.Namespace) -> int:
    from .enroll import run_cli

    return run_cli(args)


def _train(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    # Only look for the packages: TensorFlow must first be imported through tf_compat.
    if any(find_spec(name) is None for name in ("tensorflow", "sklearn", "tf2onnx", "skl2onnx")):
        print('soundsentry train needs the [train] extra: pip install "soundsentry[train]"', file=sys.stderr)
        return EXIT_USAGE
    from soundsentry.train.cli import run

    return run(args)


def _one_blas_thread() -> None:
    """Ask NumPy's BLAS for one thread per process, unless the user chose otherwise.

    Our matrix products are small (the mel filterbank, LOF distances): extra BLAS threads cost
    more than they give and fight with ``--jobs`` workers and ONNX Runtime for the cores. This
    made ``soundsentry score`` 1.8x faster with identical scores (docs/performance.md, "BLAS
    threads"). NumPy reads the variables once, when it is first imported, so this runs before.
    """
    if "numpy" in sys.modules:
        return
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _one_blas_thread()
    if args.version:
        from . import __version__

        print(f"soundsentry {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    import logging

    from soundsentry.export import onnx_cli

    from . import listen_command, watch_command

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    handlers = {
        "score": _score,
        "models": _models,
        "info": _info,
        "train": _train,
        "evaluate": _evaluate,
        "enroll": _enroll,
        "watch": lambda a: watch_command.run(a),
        "listen": lambda a: listen_command.run(a),
        "export-onnx": lambda a: onnx_cli.run(a),
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
