"""Train, export, check and evaluate one model bundle from real normal clips.

Data flow: clips -> log-mel spectrograms (soundsentry.features, the runtime's own code)
-> normalised windows -> autoencoder (Keras) -> encoder latents -> every detector kind of the registry
(soundsentry.detector_kinds) -> ONNX/NPZ bundle -> checks -> evaluation with the runtime.
Abnormal clips are only ever scored in the final evaluation.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from soundsentry.audio import read_audio, resample
from soundsentry.calibration import DEFAULT_QUANTILE, robust_threshold
from soundsentry.card import SCORE_DIRECTION, card_header, package_versions, write_card
from soundsentry.detector_kinds import DEFAULT_DETECTOR, detector_kind
from soundsentry.detector_kinds import KINDS as ALL_KINDS
from soundsentry.features import FeatureParams, analysis_windows, log_mel_spectrogram, window_levels
from soundsentry.metrics import partial_roc_auc, precision_recall_f1, roc_auc

from .data import Clip, Split

#: The detector kinds a log-mel training run fits: those scoring single windows. The ``views`` kind judges
#: EdgeL3 views rows recording by recording; its bundles come from :mod:`soundsentry.train.views_bundle`.
KINDS = tuple(k for k in ALL_KINDS if not k.per_recording)

__all__ = ["TrainConfig", "clip_spectrograms", "evaluate_bundle", "pcm_sha256", "train_bundle", "training_windows"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that decides a trained bundle; stored in its card."""

    name: str = "fan"
    machine_type: str = "fan"
    window_frames: int = 64
    window_hop_frames: int = 16
    # Training windows overlap more than scoring windows: more (correlated) examples for the AE.
    train_hop_frames: int = 4
    latent_dim: int = 64
    epochs: int = 100
    batch_size: int = 64
    patience: int = 10
    learning_rate: float = 1e-3
    seed: int = 0
    lof_neighbors: int = 20
    knn_neighbors: int = 5
    ocsvm_nu: float = 0.05
    threshold_quantile: float = DEFAULT_QUANTILE
    all_channels: bool = True
    channel_policy: str = "first"
    aggregate: str = "mean"
    #: "none" or "window_median" (see soundsentry.features.center_windows).
    center: str = "none"
    #: Move every window's level (mean dB) to the training windows' median level, as enrolled bundles
    #: do: a gain or distance change then leaves the window's spectral shape, and its score, alone.
    level: bool = False
    default_detector: str = DEFAULT_DETECTOR
    features: FeatureParams = field(default_factory=FeatureParams)


def clip_spectrograms(clip: Clip, params: FeatureParams, *, all_channels: bool) -> list[np.ndarray]:
    """Log-mel spectrograms of a clip: channel 0 only, or every channel as a separate view."""
    samples, rate = read_audio(clip.path)
    channels = range(samples.shape[1]) if all_channels else [0]
    return [
        log_mel_spectrogram(resample(samples[:, c], orig_sr=rate, target_sr=params.sample_rate), params=params)
        for c in channels
    ]


def training_windows(
    specs: list[np.ndarray], mean, std, *, frames: int, hop: int, center: str = "none", level: float | None = None
) -> np.ndarray:
    """Encoder input windows of several spectrograms, concatenated: the runtime's own assembly per spectrogram.

    :func:`soundsentry.features.analysis_windows` is what :meth:`soundsentry.Model.windows` calls, so
    the detectors are fitted on exactly the inputs scoring produces.
    """
    parts = [
        analysis_windows(s, mean=mean, std=std, length=frames, hop=hop, center=center, level_reference_db=level)
        for s in specs
    ]
    return np.concatenate(parts).astype(np.float32)


def pcm_sha256(path: Path) -> str:
    """SHA-256 of a recording's 16-bit PCM samples: the same sound gives the same digest whatever its container."""
    samples, _ = read_audio(path)
    return hashlib.sha256(np.round(samples * 32768).astype("<i2").tobytes()).hexdigest()


def _clip_entry(clip: Clip) -> dict[str, str]:
    return {
        "file": clip.path.name,
        "machine_id": clip.machine_id,
        "source": clip.source,
        "dataset": clip.dataset,
        "domain": clip.domain,
        "pcm_sha256": clip.pcm_sha256 or pcm_sha256(clip.path),
    }


def _train_autoencoder(config: TrainConfig, train_x: np.ndarray, val_x: np.ndarray):
    from soundsentry.export.tf_compat import import_tensorflow

    from .autoencoder import build_autoencoder

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(config.seed)
    autoencoder, encoder = build_autoencoder(
        n_mels=config.features.n_mels, frames=config.window_frames, latent_dim=config.latent_dim
    )
    autoencoder.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    history = autoencoder.fit(
        train_x,
        train_x,
        validation_data=(val_x, val_x),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=[stop],
        verbose=2,
    )
    losses = history.history
    best = int(np.argmin(losses["val_loss"]))
    summary = {
        "epochs_run": len(losses["loss"]),
        "best_epoch": best + 1,
        "train_loss": float(losses["loss"][best]),
        "val_loss": float(losses["val_loss"][best]),
    }
    return encoder, summary


def train_bundle(config: TrainConfig, split: Split, out: str | Path) -> dict[str, Any]:
    """Train on ``split.train``, validate on ``split.validation``, write a bundle to ``out``.

    Returns the card that was written.
    """
    from soundsentry.export.encoder import export_encoder
    from soundsentry.export.verify import check_encoder

    params = config.features
    frames, hop, center = config.window_frames, config.window_hop_frames, config.center
    log.info("%s", split.description)
    train_specs = {c.path: clip_spectrograms(c, params, all_channels=config.all_channels) for c in split.train}
    # Validation and calibration use the scoring channel policy (channel 0), like scoring does.
    val_specs = {c.path: clip_spectrograms(c, params, all_channels=False) for c in split.validation}

    all_frames = np.concatenate([s for specs in train_specs.values() for s in specs], axis=1)
    mean = all_frames.mean(axis=1, keepdims=True)
    std = np.maximum(all_frames.std(axis=1, keepdims=True), 1e-3)
    level = None
    if config.level:
        levels = [window_levels(s, length=frames, hop=hop) for specs in train_specs.values() for s in specs]
        level = round(float(np.median(np.concatenate(levels))), 4)

    def windows(specs_by_clip, step):
        return training_windows(
            [s for specs in specs_by_clip.values() for s in specs],
            mean,
            std,
            frames=frames,
            hop=step,
            center=center,
            level=level,
        )

    train_x = windows(train_specs, config.train_hop_frames)
    val_x = windows(val_specs, hop)
    log.info("training windows: %d, validation windows: %d", len(train_x), len(val_x))
    encoder, fit_summary = _train_autoencoder(config, train_x, val_x)

    # Detectors are fitted on scoring-hop windows of the training clips, each window tagged with its clip.
    ref_parts, ref_owner = [], []
    for i, specs in enumerate(train_specs.values()):
        w = training_windows(specs, mean, std, frames=frames, hop=hop, center=center, level=level)
        ref_parts.append(encoder.predict(w, verbose=0))
        ref_owner.append(np.full(len(w), i))
    reference = np.concatenate(ref_parts).astype(np.float32).astype(np.float64)
    owner = np.concatenate(ref_owner)
    # The same fitting code as enrollment (the registry's fit hooks), for every detector kind.
    detector_params: dict[str, dict[str, Any]] = {
        k.name: k.resolve_params(**{p: getattr(config, f) for p, f in k.config_fields.items()}) for k in KINDS
    }
    fitted = {k.name: k.fit_latents(reference, params=detector_params[k.name]) for k in KINDS}

    # Threshold calibration from normal clips only: held-out validation clips, plus each training
    # clip scored by detectors refitted without it (leave-one-clip-out).
    val_latents = [
        encoder.predict(training_windows(specs, mean, std, frames=frames, hop=hop, center=center, level=level), verbose=0)
        for specs in val_specs.values()
    ]
    calib = {name: [float(np.mean(d.anomaly_score(lat))) for lat in val_latents] for name, d in fitted.items()}
    for i, specs in enumerate(train_specs.values() if len(train_specs) > 1 else []):
        rest = reference[owner != i]
        scoring_view = training_windows(specs[:1], mean, std, frames=frames, hop=hop, center=center, level=level)
        lat = encoder.predict(scoring_view, verbose=0)
        for name, p in detector_params.items():
            calib[name].append(float(np.mean(detector_kind(name).fit_latents(rest, params=p).anomaly_score(lat))))
    thresholds = {k: robust_threshold(v, quantile=config.threshold_quantile) for k, v in calib.items()}

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    export_encoder(encoder, out / "encoder.onnx", n_mels=params.n_mels, frames=frames)
    for k in KINDS:
        k.save_fitted(fitted[k.name], out / k.file, latent_dim=config.latent_dim)

    # Check every exported part against its reference before the card makes the bundle usable.
    check_windows = np.concatenate([val_x, train_x[:: max(1, len(train_x) // 256)]])
    check_latents = np.concatenate(val_latents).astype(np.float64)
    checks = {
        "encoder_onnx_vs_keras_rel_err": check_encoder(out / "encoder.onnx", encoder, check_windows),
    }
    for k in KINDS:
        # Keys as before the registry: "<name>_onnx_vs_sklearn_rel_err" for ONNX files, "_numpy_" for NumPy ones.
        impl = "onnx" if k.file.endswith(".onnx") else "numpy"
        checks[f"{k.name}_{impl}_vs_sklearn_rel_err"] = k.check_saved(out / k.file, fitted[k.name], reference, check_latents)
    threshold_rule = (
        f"{config.threshold_quantile:.0%} quantile of a normal distribution fitted robustly (median, MAD) to the clip scores of "
        f"{len(split.validation)} held-out normal clips and {len(split.train)} training clips scored leave-one-clip-out"
    )
    card: dict[str, Any] = card_header(name=config.name, machine_type=config.machine_type) | {
        "score_direction": SCORE_DIRECTION,
        "features": params.to_dict() | {"kind": "log-mel power in dB (10*log10, ref 1.0), centred frames, Slaney mel"},
        "window": {
            "frames": frames,
            "hop_frames": hop,
            "seconds": round(((frames - 1) * params.hop_length + params.n_fft) / params.sample_rate, 4),
            "hop_seconds": round(hop * params.hop_length / params.sample_rate, 4),
            "why": "several revolutions of a fan or pump and most of a valve actuation, short enough to score "
            "short clips; chosen among a few lengths by normal-only validation (docs/accuracy.md)",
        },
        "channel": {
            "policy": config.channel_policy,
            "training": "every channel of a multichannel file as a separate mono view"
            if config.all_channels
            else "channel 0",
        },
        "normalization": {
            "kind": "per-mel-band standardisation with the training frames' mean and std"
            + ("; then each window's per-band median over its frames subtracted" if center == "window_median" else "")
            + ("; each window's level (mean dB) first moved to level_reference_db" if level is not None else ""),
            "center": center,
            **({"level_reference_db": level} if level is not None else {}),
            "mean": [round(float(v), 5) for v in mean.ravel()],
            "std": [round(float(v), 5) for v in std.ravel()],
        },
        "encoder": {
            "file": "encoder.onnx",
            "input": "logmel",
            "output": "latent",
            "latent_dim": config.latent_dim,
            "input_shape": [None, params.n_mels, frames],
        },
        "detectors": {
            k.name: {"file": k.file}
            | k.card_fields(fitted[k.name], params=detector_params[k.name], n_reference=len(reference))
            | {
                "threshold": thresholds[k.name],
                "threshold_rule": threshold_rule,
                "calibration_scores": [round(s, 6) for s in calib[k.name]],
            }
            for k in KINDS
        },
        "default_detector": config.default_detector,
        "aggregate": config.aggregate,
        "training": {
            "split": split.description,
            "config": {k: v for k, v in asdict(config).items() if k != "features"},
            "fit": fit_summary,
            "n_train_windows": len(train_x),
            "train_clips": [_clip_entry(c) for c in split.train],
            "validation_clips": [_clip_entry(c) for c in split.validation],
        },
        "export_checks": checks,
        "versions": package_versions(),
    }
    files = ["encoder.onnx", *(k.file for k in KINDS)]
    write_card(out, card, files=files)
    if split.test:
        card["evaluation"] = evaluate_bundle(out, split.test)
        write_card(out, card, files=files)
    return card


def evaluate_bundle(bundle: str | Path, clips: list[Clip]) -> dict[str, Any]:
    """Score labelled clips with the runtime (as a user would) and report AUC, pAUC and F1 per detector."""
    from soundsentry import load_model

    model = load_model(bundle)
    labels = np.array([0 if c.is_normal else 1 for c in clips])
    result: dict[str, Any] = {
        "n_normal": int((labels == 0).sum()),
        "n_abnormal": int((labels == 1).sum()),
        "machines": sorted({c.machine_id or "?" for c in clips}),
        "sources": sorted({c.source for c in clips}),
        "scored_channel": model.channel,
    }
    for name in model.detectors:
        scores = np.array([model.score(c.path, detector=name).score for c in clips])
        entry: dict[str, Any] = {"clip_scores": [round(float(s), 6) for s in scores]}
        if 0 < labels.sum() < len(labels):
            entry |= {
                "auc": round(roc_auc(labels, scores), 4),
                "pauc_fpr_0.1": round(partial_roc_auc(labels, scores, max_fpr=0.1), 4),
            }
            entry |= {
                k: round(v, 4) for k, v in precision_recall_f1(labels, scores, threshold=model.thresholds[name]).items()
            }
        result[name] = entry
    result["clips"] = [f"{c.label}/{c.path.name}" for c in clips]
    return result
