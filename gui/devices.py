"""The audio seam of the app; it lives in :mod:`soundsentry.devices` (no Qt), shared with ``soundsentry listen``.

Kept so that ``soundsentry.gui.devices`` imports go on working.
"""

from soundsentry.devices import (  # noqa: F401
    COMMON_RATES,
    AudioBackend,
    CallbackStop,
    ClipBackend,
    ClipInputStream,
    ClockedOutputStream,
    DeviceInfo,
    NoAudioBackend,
    RingBuffer,
    SoundDeviceBackend,
    Stream,
    default_backend,
)

__all__ = [
    "AudioBackend",
    "CallbackStop",
    "ClipBackend",
    "ClipInputStream",
    "ClockedOutputStream",
    "DeviceInfo",
    "NoAudioBackend",
    "RingBuffer",
    "SoundDeviceBackend",
    "default_backend",
]
