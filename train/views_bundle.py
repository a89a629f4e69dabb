"""Build an ``edgel3-views`` bundle: the pretrained EdgeL3 encoder (int8) and a views detector of normal clips.

No network weights are trained here: EdgeL3 SEA-UST-64 (MIT) is rebuilt from its published weights
(:mod:`soundsentry.train.edgel3`), cut after block 3, exported to ONNX and quantised to int8 with
activation ranges from normal windows of the clips given. The views detector is then fitted on the
latent rows of every normal recording; each channel of an 8-channel MIMII file counts as a
recording of its own (eight microphones of one moment), so the views' thresholds allow for a
moved microphone. Abnormal clips are never read.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from soundsentry.card import card_header, file_sha256, package_versions, write_card
from soundsentry.detector_kinds import detector_kind
from soundsentry.edgel3_encoder import EdgeL3ViewsEncoder, edgel3_inputs, frame_rows, frame_windows

from .data import Clip
from .edgel3 import edgel3_weights_path

__all__ = ["ENCODER_NETWORK", "LICENCE_FILE", "build_views_bundle", "recording_rows"]

log = logging.getLogger(__name__)

#: The EdgeL3 cut the bundles use (:data:`soundsentry.train.edgel3.ENCODERS`).
ENCODER_NETWORK = "block3_mean"
LICENCE_FILE = "EDGEL3_LICENSE.txt"
#: Normal windows whose activations set the int8 ranges (spread over the clips, deterministic).
_CALIBRATION_WINDOWS = 256


def _bundle_view(root: Path):
    # What an encoder needs of a bundle before the card exists: its folder and paths inside it.
    return types.SimpleNamespace(root=root, path=lambda name: root / name)


def recording_rows(clips: Sequence[Clip]) -> list[tuple[Clip, int, np.ndarray]]:
    """Frame rows windows of every channel of every clip: ``(clip, channel, windows (n, 129, 50))``."""
    out = []
    for clip in clips:
        y, rate = sf.read(str(clip.path), dtype="float32", always_2d=True)
        if rate != EdgeL3ViewsEncoder.sample_rate:
            raise ValueError(f"{clip.path}: expected {EdgeL3ViewsEncoder.sample_rate} Hz, got {rate}")
        for channel in range(y.shape[1]):
            windows = frame_windows(frame_rows(y[:, channel]))
            if len(windows):
                out.append((clip, channel, windows))
    return out


def build_views_bundle(
    clips: Sequence[Clip],
    *,
    dest: Path,
    name: str,
    machine_type: str,
    description: str,
    evidence: dict[str, Any] | None = None,
    weights: Path | None = None,
) -> dict[str, Any]:
    """Write an ``edgel3-views`` bundle fitted on the normal ``clips`` into ``dest`` (replaced); returns its card."""
    from soundsentry.export.edgel3 import export_edgel3, quantize_encoder

    normal = [c for c in clips if c.is_normal]
    if len(normal) != len(clips):
        raise ValueError("a views bundle is fitted on normal clips only")
    rows = recording_rows(normal)
    if len(rows) < 2:
        raise ValueError("a views bundle needs at least two normal recordings")
    all_windows = np.concatenate([w for _, _, w in rows])
    pick = np.linspace(0, len(all_windows) - 1, min(_CALIBRATION_WINDOWS, len(all_windows))).round().astype(int)
    calibration = edgel3_inputs(all_windows[pick])

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_edgel3(ENCODER_NETWORK, Path(tmp) / "float.onnx", check_windows=calibration[:32], weights=weights)
        quantized = quantize_encoder(
            exported.path, dest / "encoder.onnx", calibration_windows=calibration, check_windows=calibration
        )
    shutil.copyfile((weights or edgel3_weights_path()).parent / "LICENSE", dest / LICENCE_FILE)
    encoder_card = {
        "kind": EdgeL3ViewsEncoder.kind,
        "file": "encoder.onnx",
        "embedding_dim": exported.output_dim,
        "licence_file": LICENCE_FILE,
        "network": (
            f"EdgeL3 SEA-UST-64 (MIT, ksangeeta2429/edgel3, pretrained on AudioSet/SONYC-UST, not fine-tuned), blocks 1-3 "
            f"averaged over bands and frames ({exported.output_dim} values per 1-s window); "
            f"ONNX vs Keras max abs diff {exported.max_abs_diff:.1e}"
        ),
        "quantisation": {
            "method": "onnxruntime static int8 (QDQ, per-channel weights, uint8 activations)",
            "calibration_windows": len(calibration),
            "max_abs_diff_vs_float": round(quantized.max_abs_diff, 6),
            "latent_scale": round(quantized.latent_scale, 6),
            "correlation_vs_float": round(quantized.correlation, 6),
        },
        "front_end": (
            "16 kHz; periodic-Hann STFT, 2048 points every 320 samples (20 ms), uncentred; per frame 64 Slaney mel "
            "bands 0-8 kHz in dB (display, shape view), EdgeL3's 64 HTK mel bands 0-4 kHz weighted by the 16->8 kHz "
            "decimator's response (kapre's 10 log10 of the mel amplitude, minus the window's maximum, floor -80 dB), "
            "and the frame power in dBFS (level view); windows of 50 frames every 50 frames (1 s)"
        ),
    }
    tmp_card = card_header(name=name, machine_type=machine_type) | {"encoder": encoder_card}
    encoder = EdgeL3ViewsEncoder(tmp_card, bundle=_bundle_view(dest))
    latents = [encoder.embed(w) for _, _, w in rows]

    kind = detector_kind("views")
    params = kind.resolve_params()
    fitted = kind.fit_recordings(latents, params=params, columns=encoder.view_columns())
    kind.save_fitted(fitted, dest / kind.file, latent_dim=encoder.latent_dim)
    error = kind.check_saved(dest / kind.file, fitted, None, np.concatenate(latents[:3]))
    if error > 1e-6:
        raise RuntimeError(f"{dest / kind.file}: the saved views detector differs from the fitted one ({error:.1e})")
    entry = {"file": kind.file} | kind.card_fields(fitted, params=params, n_reference=len(fitted.reference_))
    entry |= {"threshold": 1.0, "threshold_rule": "each view calibrated on the normal recordings (see calibration)"}

    card = card_header(name=name, machine_type=machine_type) | {
        "description": description,
        "channel": {"policy": "first", "note": "channel 0 is scored, as in MIMII's and DCASE's evaluations"},
        "encoder": encoder_card,
        "detectors": {"views": entry},
        "default_detector": "views",
        # Detectors without a clip score of their own (one enrolled on this encoder) average their windows.
        "aggregate": "mean",
        "score_direction": "higher is more anomalous; abnormal when the clip score exceeds the threshold",
        "training": {
            "what": "no network training; the views detector is fitted on these normal recordings (every channel of "
            "an 8-channel MIMII file is a recording of its own); no abnormal clip was read",
            "n_clips": len(normal),
            "n_recordings": len(rows),
            "n_windows": int(sum(len(x) for x in latents)),
            "clips": [
                {"file": Path(c.path).name, "machine_id": c.machine_id, "pcm_sha256": c.pcm_sha256} for c in normal
            ],
        },
        "versions": package_versions(),
    }
    if evidence:
        card["evidence"] = evidence
    write_card(dest, card, files=["encoder.onnx", LICENCE_FILE, kind.file])
    log.info("%s: %d recordings, %d windows, encoder %s", dest, len(rows), card["training"]["n_windows"], file_sha256(dest / "encoder.onnx")[:12])
    return card
