"""Writing a bundle's card: checksums of every file, written atomically last."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from soundsentry.bundle import CARD_NAME, file_sha256

__all__ = ["write_card"]


def write_card(root: str | Path, card: dict[str, Any], *, files: list[str]) -> Path:
    """Fill ``card["files"]`` with the sha256 of ``files`` and write ``model.json`` atomically."""
    root = Path(root)
    card = dict(card)
    card["files"] = {name: file_sha256(root / name) for name in files}
    target = root / CARD_NAME
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".model.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(card, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a bundle is read by everyone
    os.replace(tmp, target)
    return target
