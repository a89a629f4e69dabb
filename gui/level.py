"""The input level meter: dBFS, a peak hold and a clip light.

A linear meter shows nothing for real machine audio (10 ms peaks around 0.025 of full scale,
-32 dBFS, fill 2.5 %); a dB scale from -60 to 0 puts the same peak at the middle of the bar.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget
from soundsentry.quality import CLIP_LEVEL

__all__ = ["CLIP_HOLD_SECONDS", "FLOOR_DBFS", "PEAK_HOLD_SECONDS", "LevelMeter", "to_dbfs"]

#: The bottom of the scale: quieter peaks show an empty bar.
FLOOR_DBFS = -60.0
#: How long the peak mark stays at a peak before it follows the level down.
PEAK_HOLD_SECONDS = 1.5
#: How long the clip light stays on after the last block at the converter's limit.
CLIP_HOLD_SECONDS = 2.0

_GREEN, _AMBER, _RED = QColor(46, 160, 67), QColor(191, 135, 0), QColor(207, 34, 46)


def to_dbfs(peak: float) -> float:
    """A linear peak (full scale 1.0) in dB relative to full scale, floored at :data:`FLOOR_DBFS`."""
    return max(FLOOR_DBFS, 20.0 * math.log10(peak)) if peak > 0 else FLOOR_DBFS


class LevelMeter(QWidget):
    """Horizontal meter of the last block's peak in dBFS (-60..0), with peak hold and a clip light.

    Call :meth:`set_peak` with each block's linear peak; :meth:`reset` when a recording starts.
    ``level_db``, ``peak_db`` and ``clipping`` are what is drawn (read by the tests).
    """

    def __init__(self, parent=None, *, clock=time.monotonic) -> None:
        super().__init__(parent)
        self._clock = clock
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.reset()

    def reset(self) -> None:
        self.level_db = FLOOR_DBFS
        self.peak_db = FLOOR_DBFS
        self._peak_at = -math.inf
        self._clip_at = -math.inf
        self._update_tooltip()
        self.update()

    @property
    def clipping(self) -> bool:
        """Whether a block reached the converter's limit in the last :data:`CLIP_HOLD_SECONDS`."""
        return self._clock() - self._clip_at < CLIP_HOLD_SECONDS

    def set_peak(self, peak: float) -> None:
        now = self._clock()
        self.level_db = to_dbfs(float(peak))
        if self.level_db >= self.peak_db or now - self._peak_at > PEAK_HOLD_SECONDS:
            self.peak_db, self._peak_at = self.level_db, now
        if peak >= CLIP_LEVEL:
            self._clip_at = now
        self._update_tooltip()
        self.update()

    def fraction(self, db: float) -> float:
        """Where ``db`` sits on the bar, 0 (the floor) to 1 (full scale)."""
        return min(1.0, max(0.0, (db - FLOOR_DBFS) / -FLOOR_DBFS))

    def _update_tooltip(self) -> None:
        clip = ", CLIPPING" if self.clipping else ""
        self.setToolTip(f"input peak {self.level_db:.0f} dBFS (hold {self.peak_db:.0f} dBFS{clip}); scale -60..0 dBFS")

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("-60 dBFS CLIP") + 50, self.fontMetrics().height() + 6)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        fm = self.fontMetrics()
        clip_w = fm.horizontalAdvance("CLIP") + 8
        bar = QRectF(0.5, 0.5, self.width() - clip_w - 4, self.height() - 1)
        p.fillRect(bar, QColor(235, 235, 235))
        fill = bar.adjusted(0, 0, -(1 - self.fraction(self.level_db)) * bar.width(), 0)
        colour = _RED if self.level_db > -1 else _AMBER if self.level_db > -12 else _GREEN
        p.fillRect(fill, colour)
        x = bar.left() + self.fraction(self.peak_db) * bar.width()
        p.setPen(QColor(40, 40, 40))
        if self.peak_db > FLOOR_DBFS:
            p.drawLine(int(x), int(bar.top()), int(x), int(bar.bottom()))
        p.drawRect(bar)
        p.drawText(bar, Qt.AlignmentFlag.AlignCenter, f"{self.level_db:.0f} dBFS")
        light = QRectF(self.width() - clip_w, 0.5, clip_w - 1, self.height() - 1)
        on = self.clipping
        p.fillRect(light, _RED if on else QColor(235, 235, 235))
        p.setPen(QColor("white") if on else QColor(150, 150, 150))
        p.drawText(light, Qt.AlignmentFlag.AlignCenter, "CLIP")
        p.end()
