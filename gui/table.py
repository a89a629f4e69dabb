"""The folder table: one row per file, sortable, filterable to anomalies, re-verdicted by the slider."""

from __future__ import annotations

import math
import os
from dataclasses import replace

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush
from soundsentry.report import Row

from .views import ABNORMAL_COLOUR, ERROR_BACKGROUND, FLAG_BACKGROUND, FLAG_COLOUR, NORMAL_COLOUR

__all__ = ["COLUMNS", "FolderFilter", "FolderTableModel"]

COLUMNS = ("file", "score", "verdict", "flags", "problem")
SORT_ROLE = Qt.ItemDataRole.UserRole


class FolderTableModel(QAbstractTableModel):
    """Rows as the folder task delivers them. The verdict is recomputed from the stored
    score and the current threshold, so moving the slider never rescores a file."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[Row | None] = []
        self.paths: list[str] = []
        self.threshold = 0.0
        self.root = ""

    def reset(self, paths: list[str], *, root: str = "") -> None:
        self.beginResetModel()
        self.paths = list(paths)
        self.rows = [None] * len(paths)
        self.root = root
        self.endResetModel()

    def set_row(self, i: int, row: Row) -> None:
        self.rows[i] = row
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(threshold)
        if self.rows:
            self.dataChanged.emit(self.index(0, 2), self.index(len(self.rows) - 1, 3))

    def verdict(self, i: int) -> str:
        row = self.rows[i]
        if row is None:
            return "pending"
        if row.score is None or math.isnan(row.score):
            return "error"
        return "abnormal" if row.score > self.threshold else "normal"

    def row_flags(self, i: int) -> tuple[str, ...]:
        """The row's signal flags (``"silent"``, ``"clipped"``), empty while pending or on error."""
        row = self.rows[i]
        return () if row is None else tuple(row.flags)

    def shown_verdict(self, i: int) -> str:
        """What the verdict column says: a silent file is never called normal (nor abnormal)."""
        v = self.verdict(i)
        return "silent" if v in ("normal", "abnormal") and "silent" in self.row_flags(i) else v

    def needs_a_look(self, i: int) -> bool:
        """Abnormal, or flagged silent or clipped: what "anomalies only" keeps."""
        return self.verdict(i) == "abnormal" or bool(self.row_flags(i))

    def current_rows(self) -> list[Row]:
        """Scored rows with the verdict and threshold now shown (for the CSV export)."""
        return [
            replace(r, verdict=self.verdict(i), threshold=self.threshold if r.score is not None else r.threshold)
            for i, r in enumerate(self.rows)
            if r is not None
        ]

    def display_name(self, i: int) -> str:
        p = self.paths[i]
        return os.path.relpath(p, self.root) if self.root else os.path.basename(p)

    # -- Qt model interface -----------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.paths)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i, col = index.row(), index.column()
        row = self.rows[i]
        name = COLUMNS[col]
        if role == Qt.ItemDataRole.DisplayRole:
            if name == "file":
                return self.display_name(i)
            if name == "score":
                return "" if row is None or row.score is None else f"{row.score:.4g}"
            if name == "verdict":
                return self.shown_verdict(i)
            if name == "flags":
                return ", ".join(self.row_flags(i))
            return "" if row is None else row.error
        if role == SORT_ROLE:
            if name == "score":
                # Unscored rows sort after every score.
                return math.inf if row is None or row.score is None else float(row.score)
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        if role == Qt.ItemDataRole.ForegroundRole and name in ("verdict", "flags"):
            v = self.shown_verdict(i)
            if v == "error":
                return QBrush(ABNORMAL_COLOUR)
            if self.row_flags(i) and v != "abnormal":
                return QBrush(FLAG_COLOUR)  # clipped or silent: not a healthy green
            if v in ("normal", "abnormal"):
                return QBrush(ABNORMAL_COLOUR if v == "abnormal" else NORMAL_COLOUR)
        if role == Qt.ItemDataRole.BackgroundRole:
            if self.verdict(i) == "error":
                return QBrush(ERROR_BACKGROUND)
            if self.row_flags(i):
                return QBrush(FLAG_BACKGROUND)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.paths[i] + (f"\n{row.error}" if row is not None and row.error else "")
        return None


class FolderFilter(QSortFilterProxyModel):
    """Sorts by the numeric score, filters by file-name text and, optionally, to anomalies."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.anomalies_only = False
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(0)

    def set_anomalies_only(self, on: bool) -> None:
        self.refilter(anomalies_only=on)

    def refilter(self, *, anomalies_only: bool | None = None) -> None:
        """Filter the rows again (after the threshold moved, verdicts may have changed)."""
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            if anomalies_only is not None:
                self.anomalies_only = bool(anomalies_only)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            if anomalies_only is not None:
                self.anomalies_only = bool(anomalies_only)
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:
        model: FolderTableModel = self.sourceModel()
        if self.anomalies_only and not model.needs_a_look(source_row):
            return False
        return super().filterAcceptsRow(source_row, source_parent)
