"""Exit status of the ``soundsentry`` commands (one home: the CLI and the workflows it runs import them here)."""

from __future__ import annotations

__all__ = [
    "EXIT_ANOMALIES",
    "EXIT_CODES",
    "EXIT_FILES_FAILED",
    "EXIT_FLAGGED",
    "EXIT_INTERRUPTED",
    "EXIT_MODEL_ERROR",
    "EXIT_NO_AUDIO_INPUT",
    "EXIT_NO_CLUSTER",
    "EXIT_OK",
    "EXIT_USAGE",
    "LISTEN_EXIT_CODES",
    "WATCH_EXIT_CODES",
]

EXIT_OK = 0
EXIT_ANOMALIES = 1
EXIT_USAGE = 2
EXIT_FILES_FAILED = 3
EXIT_MODEL_ERROR = 4
EXIT_FLAGGED = 5
EXIT_NO_CLUSTER = 6
EXIT_NO_AUDIO_INPUT = 7
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
    EXIT_NO_CLUSTER: "--dask: the [dask] extra is missing or the scheduler did not answer",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM); the rows so far are kept, --resume finishes",
}

#: Exit status of ``soundsentry watch``: it runs until stopped, and a stop is not a failure.
WATCH_EXIT_CODES = {
    EXIT_OK: "stopped (Ctrl-C, SIGTERM); the -o file holds every row, the same command continues",
    EXIT_USAGE: "bad command line, or an -o file that is not this model's rows",
    EXIT_MODEL_ERROR: "the model could not be found or loaded",
    EXIT_NO_CLUSTER: "--dask: the [dask] extra is missing or the scheduler did not answer",
}

#: Exit status of ``soundsentry listen``.
LISTEN_EXIT_CODES = {
    EXIT_OK: "stopped (Ctrl-C, SIGTERM, --seconds, the end of --input-clip)",
    EXIT_USAGE: "bad command line",
    EXIT_MODEL_ERROR: "the model could not be found or loaded",
    EXIT_NO_AUDIO_INPUT: "no audio input (no PortAudio, no such device, a refused rate) or the device went away",
}
