"""SoundSentry: flag abnormal machine sounds with a light ONNX runtime.

>>> import soundsentry
>>> model = soundsentry.load_model("fan")
>>> result = model.score("recording.flac")
>>> result.verdict, result.score
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .bundle import list_shipped_models
from .errors import (
    AudioDecodeError,
    AudioError,
    AudioTooLongError,
    AudioTooShortError,
    EnrollmentError,
    InvalidAudioError,
    ModelError,
    ModelIntegrityError,
    ModelNotFoundError,
    SoundSentryError,
)
from .model import Model, ScoreResult, load_model

try:
    __version__ = version("soundsentry")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "AudioDecodeError",
    "AudioError",
    "AudioTooLongError",
    "AudioTooShortError",
    "EnrollmentError",
    "InvalidAudioError",
    "Model",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ScoreResult",
    "SoundSentryError",
    "__version__",
    "list_shipped_models",
    "load_model",
]
