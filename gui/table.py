"""The folder table: one row per file, sortable, filterable to anomalies, re-verdicted by the slider."""

from __future__ import annotations

import math
import os
from dataclasses import replace

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush
from soundsentry.report import Row

from .views import ABNORMAL_COLOUR, NORMAL_COLOUR

__all__ = ["COLUMNS", "FolderFilter", "FolderTableModel"]

COLUMNS = ("file", "score", "verdict", "problem")
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
            self.dataChanged.emit(self.index(0, 2), self.index(len(self.rows) - 1, 2))

    def verdict(self, i: int) -> str:
        row = self.rows[i]
        if row is None:
            return "pending"
        if row.score is None or math.isnan(row.score):
            return "error"
        return "abnormal" if row.score > self.threshold else "normal"

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
                return self.verdict(i)
            return "" if row is None else row.error
        if role == SORT_ROLE:
            if name == "score":
                # Unscored rows sort after every score.
                return math.inf if row is None or row.score is None else float(row.score)
            return self.data(index, Qt.ItemDataRole.DisplayRole)
        if role == Qt.ItemDataRole.ForegroundRole and name == "verdict":
            v = self.verdict(i)
            if v in ("normal", "abnormal"):
                return QBrush(ABNORMAL_COLOUR if v == "abnormal" else NORMAL_COLOUR)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.paths[i]
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
        if self.anomalies_only and model.verdict(source_row) != "abnormal":
            return False
        return super().filterAcceptsRow(source_row, source_parent)
