"""Recordings with what is known about them, and the one reader of ``clips.csv``.

Evaluation (:mod:`soundsentry.evaluate`) and training (:mod:`soundsentry.train.data`) both read
labelled clips through here.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import SoundSentryError

__all__ = ["ABNORMAL_WORDS", "NORMAL_WORDS", "Clip", "ClipsError", "label_word", "read_clips_csv"]

NORMAL_WORDS = {"normal"}
ABNORMAL_WORDS = {"abnormal", "anomaly", "anomalous"}


class ClipsError(SoundSentryError):
    """Labelled clips cannot be read: no labelled clips found, or an unreadable ``clips.csv``."""


@dataclass(frozen=True)
class Clip:
    """One recording and what is known about it (empty string = unknown).

    Attributes
    ----------
    path : Path
    label : {"normal", "abnormal"}
    machine_type, machine_id, snr_db, domain, source, dataset, pcm_sha256 : str
        ``source`` is where it was found (a repository), ``pcm_sha256`` the digest of its 16-bit PCM samples.
    """

    path: Path
    label: str = "normal"
    machine_type: str = ""
    machine_id: str = ""
    snr_db: str = ""
    domain: str = ""
    source: str = ""
    dataset: str = ""
    pcm_sha256: str = ""

    @property
    def is_normal(self) -> bool:
        return self.label == "normal"

    @property
    def y(self) -> int:
        """1 for abnormal, 0 for normal (the label as metrics take it)."""
        return int(self.label == "abnormal")


def label_word(word: str) -> str | None:
    """``"normal"``, ``"abnormal"`` (also for "anomaly", "anomalous") or None, case-insensitive."""
    word = word.strip().lower()
    if word in NORMAL_WORDS:
        return "normal"
    if word in ABNORMAL_WORDS:
        return "abnormal"
    return None


def read_clips_csv(csv_path: str | os.PathLike[str]) -> list[Clip]:
    """Read a ``clips.csv`` (like ``shared/data/mimii/clips.csv``); ``file`` paths are relative to it.

    Columns ``file`` and ``label`` (normal/abnormal) are required; ``machine_type``, ``machine_id``,
    ``snr_db``, ``domain``, ``source_repo`` (or ``source``), ``dataset`` and ``pcm_sha256`` are read when present.

    Raises
    ------
    ClipsError
        The file cannot be read, lacks a column, or a label is neither normal nor abnormal (naming the line).
    """
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ClipsError(f"{csv_path}: cannot read ({exc})") from exc
    if rows and not {"file", "label"} <= set(rows[0]):
        raise ClipsError(f"{csv_path}: needs the columns 'file' and 'label' (has: {', '.join(rows[0])})")
    clips = []
    for i, row in enumerate(rows, start=2):
        label = label_word(row.get("label", "") or "")
        if label is None:
            raise ClipsError(f"{csv_path}, line {i}: label {row.get('label')!r} is neither normal nor abnormal")
        clips.append(
            Clip(
                path=csv_path.parent / row["file"],
                label=label,
                machine_type=row.get("machine_type", "") or "",
                machine_id=row.get("machine_id", "") or "",
                snr_db=row.get("snr_db", "") or "",
                domain=row.get("domain", "") or "",
                source=row.get("source_repo", "") or row.get("source", "") or "",
                dataset=row.get("dataset", "") or "",
                pcm_sha256=row.get("pcm_sha256", "") or "",
            )
        )
    return clips
