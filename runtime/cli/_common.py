"""What the subcommands share: the exit-status epilog and BLAS threads."""

from __future__ import annotations

import os
import sys

from ..exit_codes import EXIT_CODES

__all__ = ["epilog", "one_blas_thread"]


def epilog() -> str:
    return "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


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
