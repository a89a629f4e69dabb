"""What the subcommands share: the exit-status epilog and BLAS threads."""

from __future__ import annotations

import os
import sys

from ..exit_codes import EXIT_CODES

__all__ = ["add_alert_arguments", "epilog", "make_alerts", "one_blas_thread"]


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
