"""The model card (``model.json``): build, validate, write atomically, read.

Training, enrollment and the release recipe build and write cards here; :func:`read_card`
validates one before any model file is opened, and :class:`~soundsentry.model.Model` gets the
validated :class:`Card`. Sections that belong to the encoder kind (the log-mel ``features``,
``window`` and ``normalization``) are validated by that kind (:mod:`soundsentry.encoder_kinds`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .detector_kinds import DEFAULT_DETECTOR
from .errors import ModelIntegrityError

__all__ = [
    "CARD_NAME",
    "CHANNEL_POLICIES",
    "FORMAT",
    "FORMAT_VERSION",
    "SCORE_DIRECTION",
    "Card",
    "card_header",
    "check_int_ranges",
    "file_sha256",
    "is_number",
    "package_versions",
    "read_card",
    "validate_card",
    "write_card",
]

CARD_NAME = "model.json"
FORMAT = "soundsentry-bundle"
FORMAT_VERSION = 1
SCORE_DIRECTION = "higher is more anomalous; abnormal when the clip score exceeds the threshold"
CHANNEL_POLICIES = ("first", "mean")
# A card is a few hundred kB at most; refuse anything absurd before parsing it.
_MAX_CARD_BYTES = 8 * 1024 * 1024

#: Sections every card has, whatever its encoder kind.
_REQUIRED = ("format", "format_version", "name", "channel", "encoder", "detectors", "files")

#: Packages whose versions a card records (those installed).
_VERSIONED = (
    "soundsentry",
    "numpy",
    "tensorflow",
    "keras",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "scikit-learn",
    "skl2onnx",
)


class Card(dict):
    """A validated card: the JSON object itself, plus typed access to what scoring needs."""

    @property
    def channel(self) -> str:
        return self["channel"]["policy"]

    @property
    def aggregate(self) -> str:
        """How window scores become a clip score for detectors without a clip score of their own.

        A views card says ``"views"``: its ``views`` detector judges the clip itself; a single-score
        detector enrolled on such a bundle (kNN on the EdgeL3 rows, say) takes the mean of its windows.
        """
        rule = self.get("aggregate", "mean")
        return "mean" if rule == "views" else rule

    @property
    def default_detector(self) -> str:
        return self.get("default_detector", DEFAULT_DETECTOR)

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: float(spec["threshold"]) for name, spec in self["detectors"].items()}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int_ranges(card: Mapping[str, Any], ranges: Mapping[tuple[str, str], tuple[int, int]], where) -> None:
    """Each ``card[section][key]`` an integer within its range; :class:`ModelIntegrityError` naming ``where``."""
    for (section, key), (low, high) in ranges.items():
        value = card[section].get(key)
        if type(value) is not int or not low <= value <= high:
            raise ModelIntegrityError(f"{where}: {section}.{key} must be an integer from {low} to {high}, not {value!r}")


def validate_card(data: Any, where: str | os.PathLike[str]) -> Card:
    """Check a parsed card (format, version, sections, thresholds, channel, default detector, the encoder kind's own).

    Raises
    ------
    ModelIntegrityError
        Naming ``where`` (the card's path).
    """
    from .encoder_kinds import card_encoder_kind, encoder_class

    if not isinstance(data, dict):
        raise ModelIntegrityError(f"{where}: card must be a JSON object")
    card = Card(data)
    missing = [key for key in _REQUIRED if key not in card]
    if missing:
        raise ModelIntegrityError(f"{where}: card lacks {', '.join(missing)}")
    if card["format"] != FORMAT:
        raise ModelIntegrityError(f"{where}: unknown bundle format {card['format']!r}")
    if type(card["format_version"]) is not int or card["format_version"] != FORMAT_VERSION:
        raise ModelIntegrityError(
            f"{where}: unsupported format version {card['format_version']!r} (this SoundSentry reads {FORMAT_VERSION})"
        )
    for section in ("channel", "encoder", "detectors"):
        if not isinstance(card[section], dict):
            raise ModelIntegrityError(f"{where}: {section!r} must be a JSON object")
    if not card["detectors"] or not all(isinstance(d, dict) for d in card["detectors"].values()):
        raise ModelIntegrityError(f"{where}: 'detectors' must map detector names to objects")
    try:
        kind = encoder_class(card_encoder_kind(card))
    except KeyError as exc:
        raise ModelIntegrityError(f"{where}: {exc.args[0]}") from None
    kind.validate_card(card, where)
    for name, detector in card["detectors"].items():
        if not is_number(detector.get("threshold")):
            raise ModelIntegrityError(f"{where}: detector {name!r} needs a finite numeric threshold")
    if card["channel"].get("policy") not in CHANNEL_POLICIES:
        raise ModelIntegrityError(f"{where}: unknown channel policy {card['channel'].get('policy')!r}")
    if card.default_detector not in card["detectors"]:
        raise ModelIntegrityError(f"{where}: default detector {card.default_detector!r} is not in the card")
    return card


def read_card(root: str | os.PathLike[str]) -> Card:
    """Parse and validate the card of the bundle folder ``root`` (no file it lists is opened)."""
    card_path = Path(root) / CARD_NAME
    if not card_path.is_file():
        raise ModelIntegrityError(f"{card_path}: the card is not a regular file")
    if card_path.stat().st_size > _MAX_CARD_BYTES:
        raise ModelIntegrityError(f"{card_path}: card is larger than {_MAX_CARD_BYTES} bytes")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"{card_path}: not a valid JSON card ({exc})") from exc
    except RecursionError as exc:  # "[[[[..." a hundred thousand deep
        raise ModelIntegrityError(f"{card_path}: not a valid JSON card (nested too deep)") from exc
    return validate_card(data, card_path)


def write_card(root: str | os.PathLike[str], card: Mapping[str, Any], *, files: Iterable[str]) -> Path:
    """Fill ``card["files"]`` with the sha256 of ``files`` (relative to ``root``) and write ``model.json`` atomically.

    Written last, after every file it lists: a folder whose card exists is a complete bundle.
    """
    root = Path(root)
    data = dict(card)
    data["files"] = {name: file_sha256(root / name) for name in files}
    target = root / CARD_NAME
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".model.", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a bundle is read by everyone
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def card_header(*, name: str, machine_type: str, created: str | None = None) -> dict[str, Any]:
    """The first fields of a new card: format, version, name, machine type, creation time (UTC, seconds)."""
    created = created or dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "machine_type": machine_type,
        "created": created,
    }


def package_versions() -> dict[str, str]:
    """Python's and the installed packages' versions, for a card's ``versions``."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out
