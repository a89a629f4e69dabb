"""The analysis view: log-mel spectrogram over the score track, on one time axis.

Axes are in real units: time in seconds, frequency in Hz (ticks placed on the mel scale the
image rows follow), a dB colour bar with fixed levels so two files can be compared by eye.
Live mode scrolls a preallocated image: new columns are shifted in place and the image is
re-uploaded with ``autoLevels=False``; nothing is recomputed for the columns already shown.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor
from soundsentry.features import FeatureParams, hz_to_mel

__all__ = [
    "ABNORMAL_COLOUR",
    "DB_LEVELS",
    "ERROR_BACKGROUND",
    "FLAG_BACKGROUND",
    "FLAG_COLOUR",
    "NORMAL_COLOUR",
    "AnalysisView",
    "clip_levels",
    "frame_offset",
    "mel_axis_ticks",
    "window_centres",
]

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

#: Fixed colour levels in absolute dB (10·log10 power). The example fan clips span about
#: -63 to -1 dB; fixed levels keep colours comparable between files and while recording.
DB_LEVELS = (-70.0, 0.0)
NORMAL_COLOUR = QColor(46, 160, 67)
ABNORMAL_COLOUR = QColor(207, 34, 46)
#: Silent or clipped input: neither healthy nor abnormal, the recording itself is suspect.
FLAG_COLOUR = QColor(154, 103, 0)
#: Backgrounds of table rows: a flagged file, a file that could not be scored.
FLAG_BACKGROUND = QColor(255, 244, 204)
ERROR_BACKGROUND = QColor(255, 224, 224)
AXIS_WIDTH = 64  # both plots get the same left axis width so their time axes line up


def mel_axis_ticks(
    params: FeatureParams, freqs=(0, 250, 500, 1000, 2000, 4000, 8000, 16000)
) -> list[tuple[float, str]]:
    """Positions (in image rows) and labels of Hz ticks for a mel-band image.

    Row ``i`` of the image spans ``[i, i + 1)`` and is centred on mel band ``i``, whose
    centre lies at mel point ``i + 1`` of ``n_mels + 2`` equally spaced mel points.
    """
    fmax = params.fmax if params.fmax is not None else params.sample_rate / 2
    lo, hi = float(hz_to_mel(params.fmin)), float(hz_to_mel(fmax))
    step = (hi - lo) / (params.n_mels + 1)
    ticks = []
    for f in freqs:
        if params.fmin <= f <= fmax:
            pos = (float(hz_to_mel(f)) - (lo + step)) / step + 0.5
            label = f"{f // 1000}k" if f >= 1000 else str(f)
            ticks.append((float(np.clip(pos, 0, params.n_mels)), label))
    return ticks


def clip_levels(logmel: np.ndarray) -> tuple[float, float]:
    """Colour levels spread over one clip's own range: its 1st percentile of dB to its maximum.

    The percentile, not the minimum: the log floor of a few silent frames would take half the
    colours. Used by "auto levels"; the default stays :data:`DB_LEVELS`, comparable across files.
    """
    lo, hi = float(np.percentile(logmel, 1)), float(np.max(logmel))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def frame_offset(model) -> float:
    """Seconds from a recording's start to the centre of its first spectrogram frame.

    Centred framing (log-mel kinds) pads half a frame: frame 0 is centred on 0. Uncentred frames
    (edgel3-views) start at 0, so frame 0 is centred half a frame in.
    """
    g = model.encoder.stream
    return (g.frame_length / 2 - g.pad_samples) / model.sample_rate


def window_centres(window_starts: np.ndarray, window_seconds: float) -> np.ndarray:
    """Where each window's score is drawn on the time axis: the middle of the window."""
    return np.asarray(window_starts, dtype=float) + window_seconds / 2


class AnalysisView(pg.GraphicsLayoutWidget):
    """Spectrogram (top) and window scores with the threshold line (bottom), X axes linked.

    Signals
    -------
    regionChanged(float, float)
        The user dragged the playback selection (seconds).
    """

    regionChanged = Signal(float, float)

    def __init__(self, params: FeatureParams, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.params = params
        #: Time of frame 0's centre: 0 with centred framing (log-mel kinds); half a frame for uncentred
        #: frames (edgel3-views), so the spectrogram lines up with the window scores (see frame_offset()).
        self.frame_offset = 0.0
        self.threshold = 0.0
        self.scores = np.zeros(0)
        self.centres = np.zeros(0)
        self.live = False
        self.flagged = False  # silent input: points below the threshold are not drawn healthy green
        self.auto_levels = False  # spread the colours over the clip's own range (static files only)
        self._logmel: np.ndarray | None = None
        self.live_now = 0.0  # live mode: seconds of audio received; the x axis is time minus this
        self.frame_times: list[float] = []  # seconds spent in each live update (for the benchmark)

        self.spec_plot = self.addPlot(row=0, col=0)
        self.spec_plot.setLabel("left", "frequency", units="Hz")
        self.spec_plot.getAxis("left").enableAutoSIPrefix(False)
        self.spec_plot.getAxis("left").setWidth(AXIS_WIDTH)
        self.spec_plot.setMouseEnabled(x=True, y=False)
        self.spec_plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLevels(DB_LEVELS)
        self.spec_plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=DB_LEVELS, colorMap=pg.colormap.get("inferno"), interactive=False, label="dB", width=14
        )
        self.colorbar.setImageItem(self.image)
        self.addItem(self.colorbar, row=0, col=1)

        self.score_plot = self.addPlot(row=1, col=0)
        self.score_plot.setLabel("left", "window score")
        self.score_plot.setLabel("bottom", "time", units="s")
        self.score_plot.getAxis("left").setWidth(AXIS_WIDTH)
        self.score_plot.setMouseEnabled(x=True, y=False)
        self.score_plot.hideButtons()
        self.score_plot.setXLink(self.spec_plot)
        # No grid: a grid is painted by the axes across the whole plot, and would make every live
        # frame repaint them (the benchmark measured the axes as most of a frame's cost).
        self.spec_plot.hideAxis("bottom")  # the score track right under it carries the time axis
        self.score_curve = self.score_plot.plot([], [], pen=pg.mkPen((40, 40, 40), width=2), symbol="o", symbolSize=7)
        self.threshold_line = pg.InfiniteLine(
            angle=0,
            movable=False,
            pen=pg.mkPen(ABNORMAL_COLOUR, width=2, style=Qt.PenStyle.DashLine),
            label="threshold {value:.3g}",
            # pyqtgraph takes the first anchor while the line is above the view's middle (label
            # under the line) and the second below it (label above the line): so the label never
            # hangs past the plot's bottom edge onto the time axis.
            labelOpts={"position": 0.02, "color": ABNORMAL_COLOUR, "anchors": [(0, 0), (0, 1)]},
        )
        self.score_plot.addItem(self.threshold_line)
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 2)

        pen = pg.mkPen((30, 120, 255), width=2)
        self.cursors = [pg.InfiniteLine(angle=90, movable=False, pen=pen) for _ in range(2)]
        self.spec_plot.addItem(self.cursors[0])
        self.score_plot.addItem(self.cursors[1])
        self.set_cursor(None)

        self.region = pg.LinearRegionItem(brush=pg.mkBrush(30, 120, 255, 40))
        self.region.setZValue(-10)
        self.region.hide()
        self.region.sigRegionChangeFinished.connect(self._on_region)
        self.score_plot.addItem(self.region)
        self.spec_plot.getAxis("left").setTicks([mel_axis_ticks(params)])
        self.reset_view()

    def _on_region(self, region) -> None:
        a, b = region.getRegion()
        self.regionChanged.emit(float(a), float(b))

    # -- static files -------------------------------------------------------------------------
    def reset_view(self) -> None:
        # Not clear(): GraphicsLayoutWidget binds clear() to its layout's, which removes the plots.
        self.live = False
        self.image.clear()
        self.score_curve.setData([], [])
        self.scores = np.zeros(0)
        self.centres = np.zeros(0)
        self.duration = 0.0
        self._logmel = None
        self._apply_levels()
        self.region.hide()
        self.set_cursor(None)
        self.spec_plot.setYRange(0, self.params.n_mels, padding=0)

    @property
    def frame_seconds(self) -> float:
        """Seconds between spectrogram frames, from the current model's params (set when a model loads)."""
        return self.params.hop_length / self.params.sample_rate

    def show_spectrogram(self, logmel: np.ndarray, *, duration: float) -> None:
        """Show a whole log-mel spectrogram (n_mels, n_frames); frame j is centred on frame_offset + j·hop."""
        self.live = False
        self.duration = duration
        self.score_plot.setLabel("bottom", "time", units="s")
        n = logmel.shape[1]
        self._logmel = logmel
        self.image.setImage(logmel, autoLevels=False, levels=self.levels())
        self._apply_levels()
        left = self.frame_offset - 0.5 * self.frame_seconds
        self.image.setRect(QRectF(left, 0, n * self.frame_seconds, self.params.n_mels))
        self.spec_plot.setXRange(0, max(duration, self.frame_seconds), padding=0)
        self.spec_plot.setYRange(0, self.params.n_mels, padding=0)

    def levels(self) -> tuple[float, float]:
        """The colour levels in dB now used: fixed, or the clip's own with auto levels on."""
        if self.auto_levels and not self.live and self._logmel is not None and self._logmel.size:
            return clip_levels(self._logmel)
        return DB_LEVELS

    def set_auto_levels(self, on: bool) -> None:
        self.auto_levels = bool(on)
        self._apply_levels()

    def _apply_levels(self) -> None:
        levels = self.levels()
        self.colorbar.setLevels(values=levels)
        self.image.setLevels(levels)

    def show_scores(self, window_scores: np.ndarray, window_starts: np.ndarray, window_seconds: float) -> None:
        self.scores = np.asarray(window_scores, dtype=float)
        self.centres = window_centres(window_starts, window_seconds)
        self._redraw_scores()

    def set_threshold(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.threshold_line.setValue(self.threshold)
        self._redraw_scores()

    def _redraw_scores(self) -> None:
        below = FLAG_COLOUR if self.flagged else NORMAL_COLOUR
        brushes = [pg.mkBrush(ABNORMAL_COLOUR if s > self.threshold else below) for s in self.scores]
        x = self.centres - self.live_now if self.live else self.centres
        self.score_curve.setData(x, self.scores, symbolBrush=brushes or None)
        lo = min([self.threshold, *self.scores.tolist()])
        hi = max([self.threshold, *self.scores.tolist()])
        pad = 0.1 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 0.1)
        self.score_plot.setYRange(lo - pad, hi + pad, padding=0)

    def set_flagged(self, on: bool) -> None:
        """Draw the window scores of a silent recording in the flag colour instead of green."""
        if bool(on) != self.flagged:
            self.flagged = bool(on)
            self._redraw_scores()

    def set_cursor(self, seconds: float | None) -> None:
        for line in self.cursors:
            line.setVisible(seconds is not None)
            if seconds is not None:
                line.setValue(seconds)

    def show_region(self, start: float, stop: float) -> None:
        self.region.setRegion((start, stop))
        self.region.show()

    def selected_region(self) -> tuple[float, float] | None:
        if not self.region.isVisible():
            return None
        a, b = self.region.getRegion()
        return (max(0.0, float(a)), min(self.duration, float(b)))

    # -- live recording -------------------------------------------------------------------------
    def start_live(self, *, seconds: float = 10.0) -> None:
        """Prepare a scrolling view holding the last ``seconds`` of spectrogram."""
        self.reset_view()
        self.live = True
        self.live_columns = max(1, round(seconds / self.frame_seconds))
        self.live_image = np.full((self.params.n_mels, self.live_columns), DB_LEVELS[0], dtype=np.float32)
        self.live_frames = 0
        self.live_scores: list[float] = []
        self.frame_times = []
        self.live_now = 0.0
        self.image.setImage(self.live_image, autoLevels=False, levels=DB_LEVELS)
        # A fixed time axis, 0 = now: only the image and the score points change from frame to
        # frame, so the axes are not redrawn while the spectrogram scrolls.
        span = self.live_columns * self.frame_seconds
        self.image.setRect(QRectF(-span, 0, span, self.params.n_mels))
        self.spec_plot.setXRange(-span, 0, padding=0)
        self.score_plot.setLabel("bottom", "time before now", units="s")

    def push_frames(self, frames: np.ndarray) -> None:
        """Scroll ``frames`` (n_mels, k) in at the right edge of the live image."""
        t0 = time.perf_counter()
        k = frames.shape[1]
        if k == 0:
            return
        img = self.live_image
        if k >= img.shape[1]:
            img[:] = frames[:, -img.shape[1] :]
        else:
            img[:, :-k] = img[:, k:]  # an in-place shift (memmove), no new array
            img[:, -k:] = frames
        self.live_frames += k
        self.image.setImage(img, autoLevels=False)
        self.live_now = (self.live_frames - 0.5) * self.frame_seconds  # right edge of the newest column
        self.duration = max(0.0, self.live_now)
        if self.scores.size:
            self.score_curve.setData(self.centres - self.live_now, self.scores)
        self.frame_times.append(time.perf_counter() - t0)

    def push_scores(
        self, scores: np.ndarray, first_window: int, *, window_starts: np.ndarray, window_seconds: float
    ) -> None:
        """Append live window scores (``window_starts`` are the runtime's start times for them)."""
        self.live_scores.extend(float(s) for s in scores)
        self.scores = np.asarray(self.live_scores)
        self.centres = window_centres(window_starts, window_seconds)
        self._redraw_scores()
