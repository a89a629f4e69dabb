"""Finding model bundles and checking their cards before anything is loaded.

A bundle is a folder with ``model.json`` (the card) and the files it lists. Shipped
bundles live in the ``soundsentry.models`` package and are found with
:mod:`importlib.resources`, so they work from a wheel, an editable install or a zip.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ModelIntegrityError, ModelNotFoundError
from .untrusted import check_npz, check_onnx

__all__ = [
    "CARD_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "Bundle",
    "file_sha256",
    "list_shipped_models",
    "read_bundle",
    "resolve_bundle",
]

CARD_NAME = "model.json"
FORMAT = "soundsentry-bundle"
FORMAT_VERSION = 1
# A card is a few hundred kB at most; refuse anything absurd before parsing it.
_MAX_CARD_BYTES = 8 * 1024 * 1024


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shipped_root() -> Path:
    return Path(str(resources.files("soundsentry.models")))


def list_shipped_models() -> list[str]:
    """Names of the bundles installed with the package, sorted."""
    root = _shipped_root()
    return sorted(p.parent.name for p in root.glob(f"*/{CARD_NAME}"))


def resolve_bundle(name_or_path: str | os.PathLike[str]) -> Path:
    """Turn a shipped model name or a bundle folder path into the bundle folder.

    A name of a shipped model wins over a relative folder of the same name only when no
    such folder exists, so ``--model ./fan`` always means the folder.
    """
    candidate = Path(name_or_path)
    if (candidate / CARD_NAME).is_file():
        return candidate
    if candidate.is_file() and candidate.name == CARD_NAME:
        return candidate.parent
    name = os.fspath(name_or_path)
    if name in list_shipped_models():
        return _shipped_root() / name
    shipped = ", ".join(list_shipped_models()) or "none"
    raise ModelNotFoundError(f"no model {name!r}: not a bundle folder and not a shipped model (shipped: {shipped})")


@dataclass(frozen=True)
class Bundle:
    """A bundle folder whose card parsed and whose files all match their checksums."""

    root: Path
    card: dict[str, Any]

    def path(self, relative: str) -> Path:
        """Path of a file the card names, refused if it would leave the bundle folder."""
        return _inside(self.root, relative)

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.root.name))


def _inside(root: Path, relative: str) -> Path:
    if not isinstance(relative, str) or not relative:
        raise ModelIntegrityError(f"{root}: card names an invalid file path {relative!r}")
    if os.path.isabs(relative):
        raise ModelIntegrityError(f"{root}: card path {relative!r} is absolute and leaves the bundle folder")
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ModelIntegrityError(f"{root}: card path {relative!r} leaves the bundle folder")
    return resolved


_REQUIRED = (
    "format",
    "format_version",
    "name",
    "features",
    "window",
    "channel",
    "normalization",
    "encoder",
    "detectors",
    "files",
)


# Ranges a card's numbers must lie in: beyond them a card could make scoring allocate
# without bound (a huge FFT or window) or never flag anything (a NaN threshold).
_INT_RANGES = {
    ("features", "sample_rate"): (1000, 384_000),
    ("features", "n_fft"): (16, 65_536),
    ("features", "hop_length"): (1, 65_536),
    ("features", "n_mels"): (1, 1024),
    ("window", "frames"): (1, 4096),
    ("window", "hop_frames"): (1, 4096),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(card: dict[str, Any], card_path: Path) -> None:
    for (section, key), (low, high) in _INT_RANGES.items():
        value = card[section].get(key)
        if type(value) is not int or not low <= value <= high:
            raise ModelIntegrityError(f"{card_path}: {section}.{key} must be an integer from {low} to {high}, not {value!r}")
    for name, detector in card["detectors"].items():
        if not _is_number(detector.get("threshold")):
            raise ModelIntegrityError(f"{card_path}: detector {name!r} needs a finite numeric threshold")
    norm = card["normalization"]
    for key in ("mean", "std"):
        values = norm.get(key)
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise ModelIntegrityError(f"{card_path}: normalization.{key} must be a list of finite numbers")
    if not all(v > 0 for v in norm["std"]):
        raise ModelIntegrityError(f"{card_path}: normalization.std must be positive")


def read_bundle(name_or_path: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
    """Resolve, parse and check a bundle's card.

    Checks, before any model file is opened: the card is JSON of the known format and
    version with the required sections, every file it lists exists inside the folder, and
    (with ``verify``) each file's sha256 matches the card.

    Raises
    ------
    ModelNotFoundError, ModelIntegrityError
    """
    root = resolve_bundle(name_or_path)
    card_path = root / CARD_NAME
    if not card_path.is_file():
        raise ModelIntegrityError(f"{card_path}: the card is not a regular file")
    if card_path.stat().st_size > _MAX_CARD_BYTES:
        raise ModelIntegrityError(f"{card_path}: card is larger than {_MAX_CARD_BYTES} bytes")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"{card_path}: not a valid JSON card ({exc})") from exc
    except RecursionError as exc:  # "[[[[..." a hundred thousand deep
        raise ModelIntegrityError(f"{card_path}: not a valid JSON card (nested too deep)") from exc
    if not isinstance(card, dict):
        raise ModelIntegrityError(f"{card_path}: card must be a JSON object")
    missing = [key for key in _REQUIRED if key not in card]
    if missing:
        raise ModelIntegrityError(f"{card_path}: card lacks {', '.join(missing)}")
    if card["format"] != FORMAT:
        raise ModelIntegrityError(f"{card_path}: unknown bundle format {card['format']!r}")
    if type(card["format_version"]) is not int or card["format_version"] != FORMAT_VERSION:
        raise ModelIntegrityError(
            f"{card_path}: unsupported format version {card['format_version']!r} (this SoundSentry reads {FORMAT_VERSION})"
        )
    for section in ("features", "window", "channel", "normalization", "encoder", "detectors"):
        if not isinstance(card[section], dict):
            raise ModelIntegrityError(f"{card_path}: {section!r} must be a JSON object")
    if not card["detectors"] or not all(isinstance(d, dict) for d in card["detectors"].values()):
        raise ModelIntegrityError(f"{card_path}: 'detectors' must map detector names to objects")
    _check_numbers(card, card_path)
    files = card["files"]
    if not isinstance(files, dict) or not files:
        raise ModelIntegrityError(f"{card_path}: 'files' must map file names to sha256 checksums")
    for relative, expected in files.items():
        path = _inside(root, relative)
        if not path.is_file():
            raise ModelIntegrityError(f"{root}: missing file {relative}")
        if not isinstance(expected, str) or len(expected) != 64:
            raise ModelIntegrityError(f"{card_path}: checksum of {relative!r} is not a sha256 hex digest")
        if verify and file_sha256(path) != expected:
            raise ModelIntegrityError(f"{root}: checksum mismatch for {relative}; the file was changed or corrupted")
        # A matching checksum says the file is what the card's author shipped, not that the
        # author is trusted: the file must still be plain data SoundSentry can run safely.
        if relative.endswith(".onnx"):
            check_onnx(path)
        elif relative.endswith(".npz"):
            check_npz(path)
    referenced = [card["encoder"].get("file")] + [d.get("file") for d in card["detectors"].values()]
    for relative in referenced:
        if relative not in files:
            raise ModelIntegrityError(f"{card_path}: {relative!r} is used but has no checksum in 'files'")
    return Bundle(root=root, card=card)
