"""What the subcommands share: the exit-status epilog, BLAS threads, and what is said about the model used."""

from __future__ import annotations

import os
import sys

from ..exit_codes import EXIT_CODES

__all__ = [
    "DEFAULT_MODEL",
    "add_alert_arguments",
    "add_parallel_arguments",
    "choose_model",
    "connect_dask",
    "epilog",
    "evidence_summary",
    "install_monitor_signals",
    "load_model_with_detector",
    "make_alerts",
    "missing_paths",
    "one_blas_thread",
    "out_in_the_way",
    "parallel_problem",
    "restore_signals",
    "trust_note",
]

#: The shipped model used when ``--model`` is not given.
DEFAULT_MODEL = "fan"


def epilog(codes: dict[int, str] = EXIT_CODES) -> str:
    return "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in codes.items())


def add_alert_arguments(parser) -> None:
    """``--on-abnormal``, ``--alert-after``, ``--alert-every``, ``--alert-timeout`` (watch and listen)."""
    group = parser.add_argument_group("alerts")
    group.add_argument(
        "--on-abnormal",
        metavar="CMD",
        help="shell command run with the event as JSON on stdin when abnormal sound is heard",
    )
    group.add_argument(
        "--alert-after",
        type=int,
        default=1,
        metavar="K",
        help="alert after K consecutive abnormal verdicts (default 1)",
    )
    group.add_argument(
        "--alert-every",
        type=float,
        default=300.0,
        metavar="S",
        help="at most one alert per S seconds; held-back verdicts are counted in the next event (default 300)",
    )
    group.add_argument(
        "--alert-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="kill the alert command after S seconds (default 30)",
    )


def add_parallel_arguments(parser, *, jobs_help: str) -> None:
    """``--jobs`` (worker processes) and ``--threads`` (files at once in one process) of the batch commands."""
    parser.add_argument("-j", "--jobs", type=int, default=1, help=f"{jobs_help} (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="with one job: files scored at once in this process, sharing one model (default: the CPUs, "
        "at most 4; 1 scores one file after the other); the rows are the same",
    )


def parallel_problem(args) -> str | None:
    """What is wrong with ``--jobs``/``--threads``, for a usage error; ``None`` when nothing is."""
    if args.jobs < 1:
        return "--jobs must be at least 1"
    if args.threads is not None and args.threads < 1:
        return "--threads must be at least 1"
    return None


def make_alerts(args, *, source: str):
    """The :class:`~soundsentry.alerts.AlertPolicy` of ``--on-abnormal``, or None; ValueError on bad settings."""
    if not args.on_abnormal:
        return None
    from ..alerts import AlertPolicy

    return AlertPolicy(
        args.on_abnormal, source=source, after=args.alert_after, every=args.alert_every, timeout=args.alert_timeout
    )


def one_blas_thread() -> None:
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


def missing_paths(paths: list[str]) -> list[str]:
    """The command-line paths that do not exist (a typo is a command-line error, not a row)."""
    return [p for p in paths if not os.path.lexists(p)]


def out_in_the_way(out: os.PathLike[str] | str, *, force: bool) -> str | None:
    """Why the ``--out`` folder of ``train`` or ``enroll`` cannot be written, or None.

    Both commands take a new or empty folder, and replace a non-empty one only with ``--force``,
    and then only if it holds a bundle.
    """
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        return f"{out} exists and is not a folder"
    if os.path.isdir(out) and os.listdir(out):
        if not force:
            return f"{out} is not empty: choose a new folder, or add --force to replace the bundle in it"
        if not os.path.isfile(os.path.join(out, "model.json")):
            # Never delete a folder that is not a bundle, whatever the flag says.
            return f"{out} is not empty and holds no model bundle: refusing to replace it, choose a new folder"
    return None


def choose_model(model: str | None) -> str:
    """``--model`` as given, or the default model with one line on stderr saying so."""
    if model is not None:
        return model
    print(
        f"soundsentry: no --model given: using the shipped {DEFAULT_MODEL!r} model "
        "(choose with --model NAME_OR_FOLDER; soundsentry models lists the shipped ones)",
        file=sys.stderr,
    )
    return DEFAULT_MODEL


def evidence_summary(card: dict) -> str:
    """How far a shipped model can be trusted, from its card: the held-out evaluation, else the
    recipe's cross-machine figure (the card's evidence), else why there is none."""
    summary = (card.get("evidence") or {}).get("summary")
    if isinstance(summary, str) and summary:
        return summary  # written by the study that measured it (docs/accuracy.md)
    ev = card.get("evaluation")
    if isinstance(ev, dict):
        auc = ev.get(card.get("default_detector", ""), {}).get("auc")
        if isinstance(auc, (int, float)):
            return f"held-out AUC {auc:.3f}{_chance(auc)} ({ev.get('n_normal', '?')} normal / {ev.get('n_abnormal', '?')} abnormal)"
    cross = (card.get("evidence") or {}).get("cross-machine")
    if not isinstance(cross, dict):
        return "no held-out figure"
    counts = cross.get("counts", {})
    n = f"{counts.get('test_normal', '?')} normal / {counts.get('test_abnormal', '?')} abnormal"
    ours = cross.get("ours")
    if not isinstance(ours, dict) or not isinstance(ours.get("auc"), (int, float)):
        return f"recipe on unheard machines: too thin for a figure ({n})"
    pauc = f", pAUC {ours['pauc']:.3f}" if isinstance(ours.get("pauc"), (int, float)) else ""
    return f"recipe on unheard machines: AUC {ours['auc']:.3f}{_chance(ours['auc'])}{pauc} ({n})"


def _chance(auc: float) -> str:
    # 0.5 is what ranking at random gets: below it the model ranks normal clips above abnormal ones.
    return " (worse than chance)" if auc < 0.5 else ""


def trust_note(model) -> None:
    """For a shipped bundle used as is: one line on stderr with its card's evidence and how to enroll."""
    from ..bundle import is_shipped

    if not is_shipped(model.bundle.root) or model.card.get("enrollment"):
        return
    print(
        f"soundsentry: {model.name!r} is a shipped model, not fitted to your machine: {evidence_summary(model.card)}; "
        f"fit it to yours with: soundsentry enroll --model {model.name} --normal NORMAL_RECORDINGS... "
        f"--out my_{model.name}",
        file=sys.stderr,
    )


def install_monitor_signals(monitor) -> dict:
    """Ctrl-C and SIGTERM call ``monitor.stop()``; SIGUSR1 prints ``monitor.status_line()`` (watch and listen).

    Returns the handlers replaced, for :func:`restore_signals`.
    """
    import signal

    def stop(signum, frame):
        monitor.stop()

    def status(signum, frame):
        print(monitor.status_line(), file=sys.stderr, flush=True)

    wanted = {signal.SIGINT: stop, signal.SIGTERM: stop}
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        wanted[signal.SIGUSR1] = status
    previous = {}
    for sig, handler in wanted.items():
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: an embedding application owns the signals
            pass
    return previous


def restore_signals(previous: dict) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


def connect_dask(args, *, command: str):
    """The Dask client of ``--dask`` (None without it), or the exit status when the cluster cannot be had.

    Called before any output file is touched: a missing cluster must not truncate it.
    """
    if not args.dask:
        return None
    from ..distributed import ClusterError, connect
    from ..exit_codes import EXIT_NO_CLUSTER

    try:
        return connect(args.dask, timeout=args.dask_timeout)
    except ClusterError as exc:
        print(f"soundsentry {command}: {exc}", file=sys.stderr)
        return EXIT_NO_CLUSTER


def load_model_with_detector(model_ref, detector: str | None):
    """The model ``model_ref`` with ``detector`` checked to be one of its own, or the exit status (printed why)."""
    from ..errors import ModelError
    from ..exit_codes import EXIT_MODEL_ERROR
    from ..model import load_model

    try:
        model = load_model(model_ref)
        if detector and detector not in model.detectors:
            raise ModelError(f"model {model.name!r} has no detector {detector!r}")
    except ModelError as exc:
        print(f"soundsentry: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    return model
