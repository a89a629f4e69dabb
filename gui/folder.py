"""The folder table: scoring a folder in the background, its progress, cancel and clicks."""

from __future__ import annotations

import logging

from .workers import FolderTask

log = logging.getLogger(__name__)

__all__ = ["FOLDER_SHARE", "FolderMixin"]


#: Share of the height the folder table gets when it opens (at least a third).
FOLDER_SHARE = 0.4


class FolderMixin:
    """Scores many files into the folder table."""

    def open_folder(self, files: list[str], *, root: str = "") -> None:
        if self.model is None:
            self.show_error("No model is loaded; choose one in the model list.")
            return
        self.cancel_folder()
        if self.current_label and self.current_label != "recording" and self.current_label not in files:
            # The view showed a file of another folder: it goes, and a result still on its way is ignored.
            self._generation += 1
            self.clear_view()
        self.table_model.reset(files, root=root)
        self.table_model.set_threshold(self.threshold)
        self._show_folder_panel()
        self.folder_progress.setRange(0, len(files))
        self.folder_progress.setValue(0)
        self.cancel_button.setEnabled(True)
        task = FolderTask(self.model, files, detector=self.detector)
        self.folder_task = task
        task.signals.row.connect(self._on_folder_row)
        task.signals.progress.connect(self._on_folder_progress)

        def done(n: int) -> None:
            self._on_folder_done(task, n)

        self._run_task(task, done)
        self.show_info(f"scoring {len(files)} files in {root or 'the selection'}…", timeout=0)

    def _from_current_folder_task(self) -> bool:
        # A cancelled task may still deliver a row or two; only the current task's count.
        return self.folder_task is not None and self.sender() is self.folder_task.signals

    def _on_folder_progress(self, done: int, total: int) -> None:
        if self._from_current_folder_task():
            self.folder_progress.setValue(done)

    def _on_folder_row(self, i: int, row) -> None:
        if self._from_current_folder_task():
            self.table_model.set_row(i, row)
            self._update_actions()

    def _on_folder_done(self, task: FolderTask, n: int) -> None:
        if task is not self.folder_task:
            return
        self.folder_task = None
        self.cancel_button.setEnabled(False)
        errors = sum(1 for i in range(n) if self.table_model.verdict(i) == "error")
        abnormal = sum(1 for i in range(n) if self.table_model.verdict(i) == "abnormal")
        what = "cancelled after" if task.cancelled else "scored"
        self.show_info(
            f"{what} {n} of {len(task.paths)} files: {abnormal} abnormal, {errors} could not be scored", timeout=0
        )
        self._update_actions()
        self.folderDone.emit(n)

    def cancel_folder(self) -> None:
        if self.folder_task is not None:
            self.folder_task.cancel()
            self.cancel_button.setEnabled(False)

    def _on_table_clicked(self, index) -> None:
        src = self.table_proxy.mapToSource(index)
        if src.isValid():
            self.open_file(self.table_model.paths[src.row()])

    def _show_folder_panel(self) -> None:
        """Show the table with at least a third of the height (the user may drag the split after)."""
        was_hidden = self.folder_panel.isHidden()
        self.folder_panel.show()
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if total > 0 and (was_hidden or sizes[1] < total / 3):
            table = round(total * FOLDER_SHARE)
            self.splitter.setSizes([total - table, table])
