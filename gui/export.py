"""Export: the folder table as CSV, the report panel as PNG."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
)
from soundsentry.report import make_writer

log = logging.getLogger(__name__)

__all__ = ["ExportMixin"]


class ExportMixin:
    """Writes what the window shows to files."""

    def export_csv_dialog(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(self, "Export the table", str(Path(start) / "scores.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> bool:
        """The table as CSV, with the runtime's CSV fields and the verdicts now shown."""
        try:
            with open(path, "w", encoding="utf-8", newline="") as f:
                writer = make_writer("csv", f)
                writer.begin()
                for row in self.table_model.current_rows():
                    writer.write(row)
                writer.end()
        except OSError as exc:
            self.show_error(f"Cannot write {path}: {exc.strerror or exc}")
            return False
        self.show_info(f"table written to {path}")
        return True

    def export_png_dialog(self) -> None:
        start = self.settings.value("last_folder", str(Path.home()))
        stem = Path(self.current_label).stem if self.current_label else "view"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the view", str(Path(start) / f"{stem}-report.png"), "PNG (*.png)"
        )
        if path:
            self.export_png(path)

    def export_png(self, path: str) -> bool:
        """The report panel (file, model, verdict, spectrogram, score track) as a PNG."""
        if not path.lower().endswith(".png"):
            path += ".png"
        if not self.report_panel.grab().save(path, "PNG"):
            self.show_error(f"Cannot write {path}")
            return False
        self.show_info(f"view written to {path}")
        return True
