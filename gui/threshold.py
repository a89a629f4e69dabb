"""The threshold: slider and spin box, the verdict badge."""

from __future__ import annotations

import logging

import numpy as np
import soundsentry
from soundsentry.quality import SILENCE_DBFS

from .views import ABNORMAL_COLOUR, FLAG_COLOUR, NORMAL_COLOUR

log = logging.getLogger(__name__)

__all__ = ["SLIDER_STEPS", "ThresholdMixin"]


SLIDER_STEPS = 1000


class ThresholdMixin:
    """Moves the threshold and shows the verdict; nothing is rescored."""

    def _set_threshold_range(self, threshold: float) -> None:
        """Slider range around the model's threshold: from 0 (or below the lowest score) to twice it."""
        model_thr = self.model.thresholds[self.detector]
        span = max(abs(model_thr), 0.5)
        self._thr_lo = min(model_thr - span, threshold - span * 0.1)
        self._thr_hi = max(model_thr + span, threshold + span * 0.1)
        self.set_threshold(threshold)

    def _on_slider(self, value: int) -> None:
        if getattr(self, "_syncing", False):
            return
        self.set_threshold(self._thr_lo + (self._thr_hi - self._thr_lo) * value / SLIDER_STEPS)

    def _on_spin(self, value: float) -> None:
        # The spin box shows 3 decimals; its rounded value must not replace the exact threshold.
        if not getattr(self, "_syncing", False):
            self.set_threshold(value)

    def set_threshold(self, value: float) -> None:
        """Move the threshold: verdicts, the threshold line and the table update; nothing is rescored."""
        if self.model is None:
            return
        self.threshold = float(value)
        self._syncing = True
        try:
            self.threshold_spin.setValue(self.threshold)
            pos = (self.threshold - self._thr_lo) / (self._thr_hi - self._thr_lo) * SLIDER_STEPS
            self.threshold_slider.setValue(round(np.clip(pos, 0, SLIDER_STEPS)))
        finally:
            self._syncing = False
        self.view.set_threshold(self.threshold)
        self.table_model.set_threshold(self.threshold)
        self.table_proxy.refilter()
        self.settings.setValue("threshold", self.threshold)
        self._show_verdict()

    def reset_threshold(self) -> None:
        if self.model is not None:
            self.set_threshold(self.model.thresholds[self.detector])

    def current_scores(self) -> np.ndarray | None:
        if self.recorder.recording:
            return np.asarray(self.live_scores)
        return None if self.analysis is None else self.analysis.window_scores

    def current_latents(self) -> np.ndarray | None:
        """Encoder rows of the windows shown: the live recording's so far, or the file's."""
        if self.recorder.recording:
            return np.concatenate(self.live_latents) if self.live_latents else None
        return None if self.analysis is None else self.analysis.latents

    def clip_result(self) -> soundsentry.ScoreResult | None:
        """The shown clip's result with the slider's threshold (the runtime's own aggregation)."""
        scores = self.current_scores()
        if self.model is None or scores is None or scores.size == 0:
            return None
        return self.model.result(
            scores, latents=self.current_latents(), detector=self.detector, threshold=self.threshold, path=self.current_label
        )

    def current_flags(self) -> tuple[str, ...]:
        """Signal flags of what the view shows: the file's, or the live recording's so far."""
        if self.recorder.recording:
            return self.live_stats.flags() if self.live_stats is not None else ()
        return () if self.analysis is None else self.analysis.flags

    def _show_verdict(self) -> None:
        result = self.clip_result()
        flags = self.current_flags()
        self.view.set_flagged("silent" in flags)
        if result is None:
            self.verdict_badge.setText("no verdict yet")
            self.verdict_badge.setToolTip("")
            self.verdict_badge.setStyleSheet(
                "QLabel#verdict { color: #555; border: 2px solid #bbb; padding: 6px; font-size: 16px; }"
            )
            return
        live = " (so far)" if self.recorder.recording else ""
        sign = ">" if result.verdict == "abnormal" else "≤"
        if "silent" in flags:
            # A dead microphone or a cut cable: the score means nothing, and "normal" would be a lie.
            colour = FLAG_COLOUR
            text = f"SILENT INPUT{live}\nno verdict (score {result.score:.3f})"
            tip = (
                f"The input is silent (RMS below {SILENCE_DBFS:g} dBFS): a dead microphone or a cut cable "
                "is not evidence of a healthy machine. Check the input and record again."
            )
        else:
            colour = ABNORMAL_COLOUR if result.verdict == "abnormal" else NORMAL_COLOUR
            text = f"{result.verdict.upper()}{live}\nscore {result.score:.3f} {sign} {result.threshold:.3f}"
            tip = ""
            if result.evidence:
                # A views detector says which view drove the score: the view and its ratio on the badge, the
                # reading (how many dB louder, which band) in the tooltip.
                shown = [e for e in result.evidence if e.flagged] or result.evidence[:1]
                text += " · " + ", ".join(f"{e.view} {e.ratio:.2f}x" for e in shown)
                tip = result.explanation
            if "clipped" in flags:
                # An overdriven input distorts the spectrum: even a normal verdict is not to be trusted.
                colour = ABNORMAL_COLOUR if result.verdict == "abnormal" else FLAG_COLOUR
                text += "\n⚠ CLIPPED INPUT"
                clipped = "The input is clipped (samples pinned at full scale): lower the input gain and record again."
                tip = f"{tip}\n{clipped}" if tip else clipped
        self.verdict_badge.setText(text)
        self.verdict_badge.setToolTip(tip)
        self.verdict_badge.setStyleSheet(
            f"QLabel#verdict {{ background: {colour.name()}; color: white; font-weight: bold; font-size: 16px;"
            " padding: 6px; border-radius: 4px; }"
        )
