"""Which files are audio: the suffixes folder search takes, and which decoder reads a file.

libsndfile (through soundfile) reads WAV, FLAC, OGG/Opus, MP3, AIFF, CAF, W64 and more: the
suffixes of every format this build of it lists in ``soundfile.available_formats()``. M4A (AAC
in MP4), what phones and handheld recorders write, is decoded through PyAV (FFmpeg's codecs in
its wheel), the ``[m4a]`` extra.
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec

import soundfile as sf

__all__ = ["AV_EXTRA_HINT", "AV_SUFFIXES", "SNDFILE_SUFFIXES", "audio_suffixes", "av_available", "needs_av"]

#: File suffixes of the formats libsndfile reads, by its format names (``soundfile.available_formats()``).
#: RAW is left out: a header-less file cannot be decoded without being told its format.
SNDFILE_SUFFIXES = {
    "AIFF": (".aiff", ".aif", ".aifc"),
    "AU": (".au", ".snd"),
    "AVR": (".avr",),
    "CAF": (".caf",),
    "FLAC": (".flac",),
    "HTK": (".htk",),
    "SVX": (".iff", ".svx", ".8svx"),
    "MAT4": (".mat",),
    "MAT5": (".mat",),
    "MPC2K": (".mpc",),
    "MP3": (".mp3",),
    "OGG": (".ogg", ".oga", ".opus"),
    "PAF": (".paf",),
    "PVF": (".pvf",),
    "RF64": (".rf64", ".wav"),
    "SD2": (".sd2",),
    "SDS": (".sds",),
    "IRCAM": (".sf", ".ircam"),
    "VOC": (".voc",),
    "W64": (".w64",),
    "WAV": (".wav",),
    "NIST": (".nist", ".sph"),
    "WAVEX": (".wav",),
    "WVE": (".wve",),
    "XI": (".xi",),
}

#: Suffixes decoded through PyAV (the ``[m4a]`` extra) instead of libsndfile.
AV_SUFFIXES = (".m4a",)

#: What to install for :data:`AV_SUFFIXES`.
AV_EXTRA_HINT = "M4A/AAC needs the [m4a] extra: pip install \"soundsentry[m4a]\""


def av_available() -> bool:
    """Whether PyAV is installed (looked up, not imported: importing it loads FFmpeg)."""
    if "av" in sys.modules:
        return sys.modules["av"] is not None  # None: imports of it are blocked
    return find_spec("av") is not None


def audio_suffixes() -> tuple[str, ...]:
    """Suffixes folder search takes: every format this libsndfile reads, plus M4A when PyAV is installed.

    Returns
    -------
    tuple of str
        Lower case, with the dot, sorted.
    """
    formats = sf.available_formats()
    found = {s for name, suffixes in SNDFILE_SUFFIXES.items() if name in formats for s in suffixes}
    found |= {".wav", ".flac", ".ogg"}  # libsndfile always reads these
    if av_available():
        found |= set(AV_SUFFIXES)
    return tuple(sorted(found))


def needs_av(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is decoded through PyAV: an M4A suffix, or an MP4 container whatever its name."""
    p = os.fspath(path)
    if p.lower().endswith(AV_SUFFIXES):
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False  # the decoder that runs next reports it
    return head[4:8] == b"ftyp"  # the first box of every MP4/M4A file
