"""The package's exception hierarchy.

Every error SoundSentry raises on purpose derives from :class:`SoundSentryError`, so a
caller (the batch CLI, the GUI) can catch one type, report it, and carry on with the
next file. Errors about a file carry its path so the message always names it.
"""

from __future__ import annotations

import os


class SoundSentryError(Exception):
    """Base class of every error raised by SoundSentry on purpose."""


class AudioError(SoundSentryError):
    """An audio input could not be turned into samples the model can score.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file concerned, or None for an in-memory array.
    problem : str
        What is wrong with it, in words a user understands.
    """

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        where = "<array>" if self.path is None else self.path
        super().__init__(f"{where}: {problem}")


class AudioDecodeError(AudioError):
    """The file is missing, unreadable, not audio, or the decoder failed."""


class InvalidAudioError(AudioError):
    """The samples decoded but cannot be scored (empty, NaN or infinite values)."""


class AudioTooShortError(InvalidAudioError):
    """The recording is shorter than one analysis window."""


class AudioTooLongError(InvalidAudioError):
    """The recording decodes to more samples than may be held in memory at once.

    The batch then scores it block by block instead; from :meth:`Model.score` it is an error.
    """


class ScoringCancelled(AudioError):
    """Scoring a recording was stopped before its end (a batch closed while the file was streamed)."""


class ModelError(SoundSentryError):
    """A model bundle could not be found, read or trusted."""


class ModelNotFoundError(ModelError):
    """No shipped model has that name and no bundle folder is at that path."""


class ModelIntegrityError(ModelError):
    """A bundle is malformed: bad card, missing file, checksum or graph mismatch."""


class EnrollmentError(SoundSentryError):
    """Enrollment cannot build a bundle: no usable normal audio, too little of it, a missing extra, or the output folder is in the way."""
