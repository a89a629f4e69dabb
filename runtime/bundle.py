"""Finding model bundles and checking their cards before anything is loaded.

A bundle is a folder with ``model.json`` (the card) and the files it lists. Shipped
bundles live in the ``soundsentry.models`` package and are found with
:mod:`importlib.resources`, so they work from a wheel, an editable install or a zip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .card import CARD_NAME, FORMAT, FORMAT_VERSION, Card, file_sha256, read_card
from .errors import ModelIntegrityError, ModelNotFoundError
from .untrusted import check_npz, check_onnx

__all__ = [
    "CARD_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "Bundle",
    "file_sha256",
    "is_shipped",
    "list_shipped_models",
    "read_bundle",
    "resolve_bundle",
]

def _shipped_root() -> Path:
    return Path(str(resources.files("soundsentry.models")))


def list_shipped_models() -> list[str]:
    """Names of the bundles installed with the package, sorted."""
    root = _shipped_root()
    return sorted(p.parent.name for p in root.glob(f"*/{CARD_NAME}"))


def is_shipped(root: str | os.PathLike[str]) -> bool:
    """Whether the bundle folder ``root`` is one installed with the package (not trained or enrolled by the user)."""
    return Path(root).resolve().parent == _shipped_root().resolve()


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
    card: Card

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


def read_bundle(name_or_path: str | os.PathLike[str], *, verify: bool = True) -> Bundle:
    """Resolve, parse and check a bundle's card.

    Checks, before any model file is opened: the card is valid (:func:`soundsentry.card.read_card`),
    every file it lists exists inside the folder, and (with ``verify``) each file's sha256 matches
    the card; ONNX and NPZ files hold plain data only.

    Raises
    ------
    ModelNotFoundError, ModelIntegrityError
    """
    root = resolve_bundle(name_or_path)
    card_path = root / CARD_NAME
    card = read_card(root)
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
