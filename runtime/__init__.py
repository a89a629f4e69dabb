"""SoundSentry: flag abnormal machine sounds with a light ONNX runtime.

>>> import soundsentry
>>> model = soundsentry.load_model("fan")
>>> result = model.score("recording.flac")
>>> result.verdict, result.score
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("soundsentry")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

# NumPy and ONNX Runtime are imported on first use, not with the package: the command line
# must be able to parse its arguments and set NumPy's thread count before NumPy loads.
_LAZY = {"Model": ".model", "ScoreResult": ".model", "load_model": ".model", "list_shipped_models": ".bundle"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
