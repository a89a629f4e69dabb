"""Result rows of a batch and the writers that stream them (table, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import TextIO

__all__ = ["FIELDS", "Row", "RowWriter", "make_writer"]

#: Field names of a result row, in CSV column order and as JSON keys.
FIELDS = ("path", "score", "verdict", "threshold", "detector", "model", "error")


@dataclass
class Row:
    """One file's outcome. ``verdict`` is ``normal``, ``abnormal`` or ``error``."""

    path: str
    score: float | None
    verdict: str
    threshold: float | None
    detector: str
    model: str
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _number(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.6g}"


def _safe_cell(text: str) -> str:
    # A spreadsheet runs a cell starting with these as a formula; a leading quote keeps it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class RowWriter:
    """Writes rows to a text stream as they come, flushing after each one."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def begin(self) -> None:
        pass

    def write(self, row: Row) -> None:
        raise NotImplementedError

    def end(self) -> None:
        self.stream.flush()


class CsvWriter(RowWriter):
    def begin(self) -> None:
        self._csv = csv.writer(self.stream, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        self._csv.writerow(FIELDS)
        self.stream.flush()

    def write(self, row: Row) -> None:
        d = row.to_dict()
        d["score"], d["threshold"] = _number(row.score), _number(row.threshold)
        # Numbers stay numbers: quoting them would turn a negative score into the text "'-0.05".
        self._csv.writerow([d[f] if f in ("score", "threshold") else _safe_cell(str(d[f])) for f in FIELDS])
        self.stream.flush()


class JsonWriter(RowWriter):
    """A JSON array, one object per line, so a reader can follow it while it grows."""

    def begin(self) -> None:
        self.stream.write("[")
        self._first = True

    def write(self, row: Row) -> None:
        d = row.to_dict()
        for key in ("score", "threshold"):
            if d[key] is not None and math.isnan(d[key]):
                d[key] = None
        self.stream.write(("\n" if self._first else ",\n") + json.dumps(d, ensure_ascii=False))
        self._first = False
        self.stream.flush()

    def end(self) -> None:
        self.stream.write("\n]\n")
        self.stream.flush()


class TableWriter(RowWriter):
    def begin(self) -> None:
        self.stream.write(f"{'verdict':<9} {'score':>10} {'threshold':>10}  path\n")

    def write(self, row: Row) -> None:
        line = f"{row.verdict:<9} {_number(row.score):>10} {_number(row.threshold):>10}  {row.path}"
        if row.error:
            line += f"  ({row.error})"
        self.stream.write(line + "\n")
        self.stream.flush()


def make_writer(fmt: str, stream: TextIO | None = None) -> RowWriter:
    """A writer for ``fmt`` in ``{"table", "csv", "json"}``."""
    stream = stream if stream is not None else io.StringIO()
    writers = {"table": TableWriter, "csv": CsvWriter, "json": JsonWriter}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}")
    return writers[fmt](stream)
