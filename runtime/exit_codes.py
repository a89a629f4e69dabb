"""Exit status of the ``soundsentry`` commands (one home: the CLI and the workflows it runs import them here)."""

from __future__ import annotations

__all__ = [
    "EXIT_ANOMALIES",
    "EXIT_CODES",
    "EXIT_FILES_FAILED",
    "EXIT_FLAGGED",
    "EXIT_INTERRUPTED",
    "EXIT_MODEL_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
]

EXIT_OK = 0
EXIT_ANOMALIES = 1
EXIT_USAGE = 2
EXIT_FILES_FAILED = 3
EXIT_MODEL_ERROR = 4
EXIT_FLAGGED = 5
EXIT_INTERRUPTED = 130

#: Exit status of ``soundsentry score`` (``models``/``info`` use 0, 2 and 4 only).
EXIT_CODES = {
    EXIT_OK: "every file scored, all normal",
    EXIT_ANOMALIES: "every file scored, at least one abnormal",
    EXIT_USAGE: "bad command line",
    EXIT_FILES_FAILED: "at least one file could not be scored (the others were)",
    EXIT_MODEL_ERROR: "the model could not be found or loaded",
    EXIT_FLAGGED: "every file scored, at least one silent or clipped (its verdict means nothing); the others may be "
    "abnormal, the summary counts them",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM); the rows so far are kept, --resume finishes",
}
