"""Result rows of a batch, the writers that stream them (table, CSV, JSON), and reading
back what an interrupted batch left so that ``--resume`` can finish it.

Every writer hands each row to the stream in one ``write`` call and flushes it, so a batch
that is killed leaves whole rows behind. On a seekable stream (a file given with ``-o``)
the JSON writer keeps the array closed after every row, so the file is valid JSON at any
moment, not only at the end.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from typing import TextIO

from .errors import SoundSentryError

__all__ = [
    "FIELDS",
    "RESUMABLE_FORMATS",
    "ReportError",
    "Row",
    "RowWriter",
    "make_writer",
    "open_output",
    "read_rows",
]

#: Field names of a result row, in CSV column order and as JSON keys.
FIELDS = ("path", "score", "verdict", "threshold", "detector", "model", "flags", "error", "explanation")

#: Formats whose files ``read_rows`` can read back (the table is for people, not programs).
RESUMABLE_FORMATS = ("csv", "json")


class ReportError(SoundSentryError):
    """An existing output file cannot be read back as SoundSentry rows."""


@dataclass
class Row:
    """One file's outcome. ``verdict`` is ``normal``, ``abnormal`` or ``error``.

    ``flags`` holds signal warnings that did not stop scoring (``"silent"``, ``"clipped"``;
    see :mod:`soundsentry.quality`). ``explanation`` says which view of a ``views`` detector raised
    the score and by how much (``"level 1.56x threshold: 4.7 dB louder than enrolled"``), empty
    for single-score detectors and errors.
    """

    path: str
    score: float | None
    verdict: str
    threshold: float | None
    detector: str
    model: str
    flags: tuple[str, ...] = ()
    error: str = ""
    explanation: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flags"] = list(self.flags)
        return d


def _number(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.6g}"


# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(text: str) -> str:
    """Guard a text cell against formula injection, reversibly.

    A leading apostrophe makes a spreadsheet show the rest as text. A cell that already
    starts with one gets a second, so :func:`_unsafe_cell` can always undo the guard and
    ``--resume`` matches file names exactly.
    """
    return "'" + text if text[:1] in (*_FORMULA_START, "'") else text


def _unsafe_cell(text: str) -> str:
    return text[1:] if text[:1] == "'" and text[1:2] in (*_FORMULA_START, "'") else text


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _flags_cell(flags: tuple[str, ...]) -> str:
    return ";".join(flags)


class RowWriter:
    """Writes rows to a text stream as they come, flushing after each one.

    ``append=True`` continues a file that already holds rows (``--resume``): no header.
    ``keep_closed=True`` keeps a JSON file valid after every row (see :class:`JsonWriter`).
    """

    def __init__(self, stream: TextIO, *, append: bool = False, keep_closed: bool = False) -> None:
        self.stream = stream
        self.append = append
        self.keep_closed = keep_closed

    def begin(self) -> None:
        pass

    def write(self, row: Row) -> None:
        raise NotImplementedError

    def end(self) -> None:
        self.stream.flush()

    def _put(self, text: str) -> None:
        # One write per row, then flush: a kill between rows leaves only whole rows.
        self.stream.write(text)
        self.stream.flush()


class CsvWriter(RowWriter):
    def begin(self) -> None:
        if not self.append:
            self._put(self._line(FIELDS))

    @staticmethod
    def _line(cells) -> str:
        # RFC 4180 quoting of any cell holding a comma, quote, CR or LF, so a file name cannot
        # split or add a row. (The csv module's QUOTE_MINIMAL misses a lone CR when the line
        # ends in LF, and a reader then sees a row break there.)
        return ",".join(_csv_cell(str(c)) for c in cells) + "\n"

    def write(self, row: Row) -> None:
        d = row.to_dict()
        d["score"], d["threshold"] = _number(row.score), _number(row.threshold)
        d["flags"] = _flags_cell(row.flags)
        # Numbers stay numbers: guarding them would turn a negative score into the text "'-0.05".
        self._put(self._line([d[f] if f in ("score", "threshold") else _safe_cell(str(d[f])) for f in FIELDS]))


_JSON_CLOSE = "\n]\n"


class JsonWriter(RowWriter):
    """A JSON array, one object per line, so a reader can follow it while it grows.

    With ``keep_closed`` (a file the batch opened itself; it must be seekable and not in
    append mode) the closing bracket is written after every row and overwritten by the next
    one, so the file parses as JSON whenever the batch stops.
    """

    def begin(self) -> None:
        self._seekable = self.keep_closed
        if self.append:
            # The file ends with the closing bracket; the next row goes where it starts.
            self._first = False
            self.stream.seek(0, io.SEEK_END)
            self._close_at = self.stream.tell() - len(_JSON_CLOSE)
            self.stream.seek(self._close_at)
            return
        self._first = True
        self._close_at = None
        if self._seekable:
            self._put("[")
            self._close_at = self.stream.tell()
            self._put(_JSON_CLOSE)
            self.stream.seek(self._close_at)
        else:
            self._put("[")

    def write(self, row: Row) -> None:
        d = row.to_dict()
        for key in ("score", "threshold"):
            if d[key] is not None and math.isnan(d[key]):
                d[key] = None
        text = ("\n" if self._first else ",\n") + json.dumps(d, ensure_ascii=False)
        self._first = False
        if not self._seekable:
            self._put(text)
            return
        self._put(text + _JSON_CLOSE)
        self._close_at = self.stream.tell() - len(_JSON_CLOSE)
        self.stream.seek(self._close_at)

    def end(self) -> None:
        if self._seekable:
            # The bracket is already there; leave the position after it.
            self.stream.seek(0, io.SEEK_END)
            self.stream.flush()
        else:
            self._put(_JSON_CLOSE)


class TableWriter(RowWriter):
    def begin(self) -> None:
        if not self.append:
            self._put(f"{'verdict':<9} {'score':>10} {'threshold':>10} {'flags':<14} path\n")

    def write(self, row: Row) -> None:
        flags = _flags_cell(row.flags) or "-"
        line = f"{row.verdict:<9} {_number(row.score):>10} {_number(row.threshold):>10} {flags:<14} {row.path}"
        if row.error:
            line += f"  ({row.error})"
        elif row.verdict == "abnormal" and row.explanation:
            line += f"  ({row.explanation})"  # what raised the flag, in the engineer's units
        self._put(line + "\n")


def make_writer(
    fmt: str, stream: TextIO | None = None, *, append: bool = False, keep_closed: bool = False
) -> RowWriter:
    """A writer for ``fmt`` in ``{"table", "csv", "json"}``; ``append`` continues a file of rows,
    ``keep_closed`` keeps a JSON file valid after every row (the ``-o`` file)."""
    stream = stream if stream is not None else io.StringIO()
    writers = {"table": TableWriter, "csv": CsvWriter, "json": JsonWriter}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}")
    return writers[fmt](stream, append=append, keep_closed=keep_closed)


# -- reading back -----------------------------------------------------------------------------


def _float_or_none(text: str | float | None) -> float | None:
    if text is None or text == "":
        return None
    return float(text)


def _row_from_cells(cells: dict) -> Row:
    flags = cells.get("flags") or ()
    if isinstance(flags, str):
        flags = tuple(f for f in flags.split(";") if f)
    return Row(
        path=str(cells["path"]),
        score=_float_or_none(cells["score"]),
        verdict=str(cells["verdict"]),
        threshold=_float_or_none(cells["threshold"]),
        detector=str(cells["detector"]),
        model=str(cells["model"]),
        flags=tuple(str(f) for f in flags),
        error=str(cells.get("error") or ""),
        explanation=str(cells.get("explanation") or ""),
    )


def read_rows(path: str | os.PathLike[str], fmt: str) -> tuple[list[Row], int]:
    """Rows in an output file written by a (possibly interrupted) batch.

    Returns
    -------
    rows : list of Row
        In file order.
    end : int
        Byte offset just after the last whole row (CSV) or of the closing bracket (JSON);
        anything after it is a torn row to be cut off before appending.

    Raises
    ------
    ReportError
        The file is not SoundSentry output of this format and version.
    """
    name = os.fspath(path)
    if fmt not in RESUMABLE_FORMATS:
        raise ReportError(f"{name}: --resume reads csv or json output, not {fmt}")
    with open(path, "rb") as fh:
        raw = fh.read()
    text = raw.decode("utf-8", errors="surrogateescape")
    try:
        if fmt == "csv":
            return _read_csv(text, raw)
        return _read_json(text, raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{name}: not a complete SoundSentry {fmt} file ({exc})") from exc


def _read_csv(text: str, raw: bytes) -> tuple[list[Row], int]:
    end = raw.rfind(b"\n") + 1  # a row is whole once its line ends
    records = list(csv.reader(io.StringIO(raw[:end].decode("utf-8", errors="surrogateescape"), newline="")))
    if not records or tuple(records[0]) != FIELDS:
        raise ValueError(f"the header is not {','.join(FIELDS)}")
    rows = []
    for number, cells in enumerate(records[1:], start=2):
        if len(cells) != len(FIELDS):
            raise ValueError(f"record {number} has {len(cells)} fields, not {len(FIELDS)}")
        rows.append(_row_from_cells({f: _unsafe_cell(c) for f, c in zip(FIELDS, cells, strict=True)}))
    return rows, end


def _read_json(text: str, raw: bytes) -> tuple[list[Row], int]:
    if not text.endswith(_JSON_CLOSE):
        raise ValueError("it does not end with the closing bracket")
    data = json.loads(text)
    if not isinstance(data, list) or not all(isinstance(d, dict) and set(d) == set(FIELDS) for d in data):
        raise ValueError(f"expected an array of objects with the keys {', '.join(FIELDS)}")
    return [_row_from_cells(d) for d in data], len(raw)


def open_output(
    path: str | os.PathLike[str], fmt: str, *, resume: bool, model: str, detector: str, threshold: float
) -> tuple[TextIO, bool, list[Row]]:
    """Open the ``-o`` file of a batch.

    A fresh run truncates the file. ``resume`` keeps the rows already in it (after checking
    that they come from the same model, detector and threshold), cuts off a row torn by a
    kill, and positions the stream to append.

    Returns
    -------
    stream : TextIO
        UTF-8 with ``surrogateescape``, so a file name that is not valid UTF-8 is written
        back byte for byte and matches again on ``--resume``.
    append : bool
        True when rows were kept and the writer must continue them.
    rows : list of Row
        The rows kept.

    Raises
    ------
    ReportError
        The file holds something else, or rows of another model, detector or threshold.
    OSError
        The file cannot be opened.
    """
    name = os.fspath(path)
    if resume and os.path.isfile(path) and os.path.getsize(path) > 0:
        rows, end = read_rows(path, fmt)
        for row in rows:
            same = row.model == model and row.detector == detector
            if not same or row.threshold is None or not math.isclose(row.threshold, threshold, rel_tol=1e-5):
                raise ReportError(
                    f"{name}: holds rows of model {row.model!r}, detector {row.detector!r}, threshold "
                    f"{_number(row.threshold)}; this run uses {model!r}, {detector!r}, {_number(threshold)}"
                )
        if rows:
            with open(path, "r+b") as fh:
                fh.truncate(end)
            mode = "a" if fmt == "csv" else "r+"
            return open(path, mode, encoding="utf-8", errors="surrogateescape", newline=""), True, rows
    return open(path, "w", encoding="utf-8", errors="surrogateescape", newline=""), False, []
