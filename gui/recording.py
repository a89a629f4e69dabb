"""Recording: input devices, live scoring, the level meter, saving the recording."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtWidgets import (
    QFileDialog,
)
from soundsentry.devices import DeviceInfo
from soundsentry.quality import SignalStats

from .workers import FileAnalysis, LiveScorer, ModelTask, analyse_samples

log = logging.getLogger(__name__)

__all__ = ["RecordingMixin"]


class RecordingMixin:
    """Records from an input device, scores it live, then shows it as a file."""

    def _on_level(self, value: float) -> None:
        self.level_meter.set_peak(value)

    def toggle_pause(self) -> None:
        self.pause_recording(not self.recorder.paused)

    def _fill_devices(self) -> None:
        self.device_combo.clear()
        if not self.backend.available:
            self.device_combo.addItem("no audio input")
            self.device_combo.setToolTip(self.backend.reason)
            self.show_error(
                f"File-only mode: {self.backend.reason}. Opening and scoring files works; recording and "
                "playback need an audio device."
            )
            return
        try:
            devices = self.backend.input_devices()
        except Exception as exc:
            self.show_error(f"Cannot list audio devices: {exc}")
            devices = []
        for dev in devices:
            self.device_combo.addItem(dev.name, dev)
        if not devices:
            self.show_info("no input device found: recording is off, files work")

    def _fill_rates(self) -> None:
        self.rate_combo.clear()
        dev = self.device_combo.currentData()
        if not isinstance(dev, DeviceInfo):
            return
        try:
            rates = self.backend.supported_rates(dev)
        except Exception as exc:
            self.show_error(f"Cannot query {dev.name}: {exc}")
            rates = []
        for r in rates:
            self.rate_combo.addItem(str(r), r)
        i = self.rate_combo.findData(dev.default_samplerate)
        if i >= 0:
            self.rate_combo.setCurrentIndex(i)

    def start_recording(self) -> None:
        dev = self.device_combo.currentData()
        rate = self.rate_combo.currentData()
        if self.model is None or not isinstance(dev, DeviceInfo) or not rate:
            self.show_error("Choose an input device and a sample rate first.")
            return
        self.player.stop()
        self.cancel_folder()
        self.live_scores = []
        self.live_latents = []
        self.level_meter.reset()
        self.live_stats = SignalStats()
        self.live_result = None
        self.analysis = None
        self.recorded = None
        self.current_label = "recording"
        self.live = LiveScorer(self.model, sample_rate=int(rate), detector=self.detector, parent=self)
        self.live.update.connect(self._on_live_update)
        self.live.failed.connect(self.show_error)
        self.live.finished.connect(self._on_live_finished)
        self.view.start_live(seconds=10.0)
        self.view.set_threshold(self.threshold)
        try:
            self.recorder.start(dev, sample_rate=int(rate))
        except Exception as exc:
            log.warning("cannot start recording: %s", exc)
            self.live.shutdown()
            self.live = None
            self.show_error(f"Cannot record from {dev.name} at {rate} Hz: {exc}")
            self._update_actions()
            return
        self.settings.setValue("device", dev.name)
        self.settings.setValue("rate", int(rate))
        self.clear_error()
        self._show_title()
        self._show_verdict()
        self._update_actions()

    def pause_recording(self, on: bool) -> None:
        self.recorder.pause(on)
        self.show_info("recording paused" if on else "recording")
        self._update_actions()

    def _on_recorded_chunk(self, mono: np.ndarray) -> None:
        if self.live_stats is not None:
            self.live_stats.update(mono)
        if self.live is not None:
            self.live.push(mono)

    def _on_live_update(self, frames: np.ndarray, scores: np.ndarray, first: int, latents: np.ndarray) -> None:
        if frames.shape[1]:
            self.view.push_frames(frames)
        if scores.size:
            self.live_scores.extend(float(s) for s in scores)
            self.live_latents.append(latents)
            res = self.model.result(
                np.asarray(self.live_scores), latents=self.current_latents(), detector=self.detector, threshold=self.threshold
            )
            self.view.push_scores(scores, first, window_starts=res.window_starts, window_seconds=res.window_seconds)
            self._show_verdict()
        self._show_title()

    def _on_recording_stopped(self, problem: str) -> None:
        self.level_meter.reset()  # no input now: a level left standing would be a stale one
        self.recorded = self.recorder.samples
        self.recorded_rate = self.recorder.sample_rate
        secs = self.recorded.shape[0] / max(1, self.recorded_rate)
        if problem:
            self.show_error(
                f"Recording stopped: {problem}. The {secs:.1f} s recorded so far are kept "
                "(Save recording… to keep them on disk)."
            )
        if self.recorder.dropped:
            self.show_error(f"{self.recorder.dropped} samples were lost because the app fell behind the input.")
        if self.live is not None:
            self.live.finish()
        self._update_actions()

    def _on_live_finished(self, result) -> None:
        self.live = None
        if result is not None:
            self.live_result = result
        self._update_actions()
        if result is not None and self.recorded is not None and self.recorded.size:
            self._analyse_recording()  # too short for the stream is too short here too: said once
        self.recordingDone.emit()

    def _analyse_recording(self) -> None:
        """Show the whole recording as a file (static spectrogram, scores, playback)."""
        task = ModelTask(
            "the recording",
            analyse_samples,
            self.model,
            self.recorded,
            sample_rate=self.recorded_rate,
            detector=self.detector,
        )

        def done(a: FileAnalysis) -> None:
            self._show_analysis(a, label="recording")

        def failed(what: str, message: str) -> None:
            self.show_error(f"Cannot score {what}: {message}")

        self._run_task(task, done, failed)

    def save_recording_dialog(self) -> None:
        if self.recorded is None:
            return
        start = self.settings.value("last_folder", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the recording", str(Path(start) / "recording.flac"), "FLAC (*.flac);;WAV (*.wav)"
        )
        if path:
            self.save_recording(path)

    def save_recording(self, path: str) -> bool:
        """Write the recording at the device's rate (FLAC or WAV by suffix, 24-bit PCM)."""
        if self.recorded is None:
            return False
        fmt = "WAV" if path.lower().endswith(".wav") else "FLAC"
        if not path.lower().endswith((".wav", ".flac")):
            path += ".flac"
        try:
            sf.write(path, self.recorded, self.recorded_rate, format=fmt, subtype="PCM_24")
        except Exception as exc:
            self.show_error(f"Cannot save the recording to {path}: {exc}")
            return False
        self.show_info(f"saved {self.recorded.shape[0] / self.recorded_rate:.1f} s to {path}")
        return True
