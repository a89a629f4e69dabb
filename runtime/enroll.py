"""Enrollment: a model for the user's own machine from its normal recordings alone.

The shipped encoder is kept as it is; only the detector is fitted again, on the latents of
the user's normal recordings, and the threshold is calibrated from those recordings alone:

1. every recording -> the model's channel policy, features, windows -> encoder latents; unless
   the parent already does, each window's level (mean dB) is moved to the enrolled recordings'
   median level first, so another gain, distance or room loudness is not flagged;
2. the chosen detectors are fitted on all windows with their kind's fit hook
   (:mod:`soundsentry.detector_kinds`): NumPy ones from the plain install, those with
   ``needs_train`` (the One-Class SVM) with the ``[train]`` extra;
3. calibration scores: each recording is scored by a detector refitted without it
   (leave-one-recording-out), so the scores show how much one normal recording differs from
   the others. A single recording cannot show that; it is cut into blocks of
   ``block_windows`` windows and each block is scored by a detector refitted without the
   block *and* without the windows that overlap it (leave-one-block-out);
4. threshold: the kind's rule; ``"lognormal"`` kinds (positive distance-like scores):
   :func:`soundsentry.calibration.lognormal_threshold` (a log-normal prediction bound whose spread
   is pooled with a prior measured per detector on normal recordings, so one to three recordings
   do not give a threshold that flags the next normal recording or another day's); ``"robust"``
   kinds (the One-Class SVM): the training rule :func:`soundsentry.calibration.robust_threshold`;
5. a complete new bundle (encoder copy, detector files, card) is written and loaded back.

Abnormal recordings take no part in any step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from .audio import select_channel
from .batch import find_audio_files
from .calibration import (
    DEFAULT_QUANTILE,
    lognormal_threshold,
    lognormal_threshold_rule,
    robust_threshold,
    robust_threshold_rule,
)
from .card import CARD_NAME, card_header, file_sha256, package_versions, write_card
from .detector_kinds import DEFAULT_DETECTOR, DETECTOR_NAMES, KINDS, TRAIN_EXTRA_HINT, detector_kind, require_extra
from .errors import EnrollmentError, InvalidAudioError, SoundSentryError
from .model import Model, aggregate_scores, load_model
from .quality import describe_flags, signal_flags
from .scoring import check_length, decode, mono_samples

__all__ = [
    "NUMPY_DETECTORS",
    "TRAIN_EXTRA_HINT",
    "CalibrationPlan",
    "EnrolledRecording",
    "NormalInput",
    "calibration_plan",
    "calibration_scores",
    "default_enrollment_detector",
    "embed_recordings",
    "enroll",
    "enrollment_threshold",
    "fit_detector",
    "level_reference",
    "load_recordings",
]

log = logging.getLogger(__name__)

#: One normal recording: a file or folder path, ``(samples, sample_rate)``, or samples at the model's rate.
NormalInput = Union[str, "os.PathLike[str]", tuple[np.ndarray, int], np.ndarray]

#: Detectors fitted in NumPy, so enrollment from the plain install can use them; the others need ``[train]``.
NUMPY_DETECTORS = frozenset(k.name for k in KINDS if not k.needs_train)


@dataclass
class EnrolledRecording:
    """One normal recording after the encoder.

    Attributes
    ----------
    name : str
        The path as given, or ``"<array N>"``.
    sha256 : str
        sha256 of the file's bytes (of the float32 samples for arrays).
    seconds : float
        Duration at the model's rate.
    logmel : np.ndarray, shape (n_mels, n_frames)
    latents : np.ndarray, shape (n_windows, latent_dim)
        Set by :func:`embed_recordings`.
    """

    name: str
    sha256: str
    seconds: float
    logmel: np.ndarray
    latents: np.ndarray | None = None

    @property
    def n_windows(self) -> int:
        return 0 if self.latents is None else int(self.latents.shape[0])


@dataclass
class CalibrationPlan:
    """Which windows each calibration score is computed on, and which windows its detector may use.

    Attributes
    ----------
    mode : str
        ``"leave-one-recording-out"`` or ``"leave-one-block-out"``.
    scored : list of np.ndarray of int
        Window indices (into the concatenated latents) aggregated into one calibration score.
    reference : list of np.ndarray of bool, shape (n_windows,)
        Windows the detector for that score is fitted on.
    description : str
    """

    mode: str
    scored: list[np.ndarray]
    reference: list[np.ndarray]
    description: str


def _expand(normal: Sequence[NormalInput]) -> list[NormalInput]:
    if isinstance(normal, (str, os.PathLike, np.ndarray)) or (
        isinstance(normal, tuple) and len(normal) == 2 and isinstance(normal[0], np.ndarray)
    ):
        normal = [normal]  # one recording given on its own
    out: list[NormalInput] = []
    for item in normal:
        if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
            found = find_audio_files([item])
            if not found:
                log.warning("%s: no audio files in this folder", os.fspath(item))
            out.extend(found)
        else:
            out.append(item)
    return out


def level_reference(model: Model, logmels: Sequence[np.ndarray]) -> float:
    """The enrolled recordings' typical window level in dB (median over all their windows)."""
    return float(np.median(np.concatenate([model.window_levels(lm) for lm in logmels])))


def embed_recordings(
    model: Model, recordings: Sequence[EnrolledRecording], *, level_reference_db: float | None = None
) -> None:
    """Set each recording's encoder latents, with windows levelled to ``level_reference_db`` if given."""
    for r in recordings:
        r.latents = model.embed(model.windows(r.logmel, level_reference_db=level_reference_db))


def load_recordings(
    model: Model,
    normal: Sequence[NormalInput],
    *,
    strict: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[EnrolledRecording], list[dict[str, str]]]:
    """Log-mel spectrograms of every normal recording; folders are searched for audio files.

    A recording that cannot be used (undecodable, too short, NaN, silent or clipped) is skipped with its
    reason unless ``strict``, so one bad file does not lose the others' work.

    Returns
    -------
    recordings : list of EnrolledRecording
    skipped : list of dict with keys ``name`` and ``problem``
    """
    items = _expand(normal)
    recordings: list[EnrolledRecording] = []
    skipped: list[dict[str, str]] = []
    rate = model.sample_rate
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            name = os.fspath(item)
        else:
            name = f"<array {i}>"
        if progress is not None:
            progress(i, len(items), name)
        try:
            if isinstance(item, (str, os.PathLike)):
                y, flags = decode(model, name, limit=False)
                digest = file_sha256(name)
            else:
                samples, sr = item if isinstance(item, tuple) else (item, None)
                y = mono_samples(model, np.asarray(samples), sample_rate=sr)
                flags = signal_flags(select_channel(np.asarray(samples, dtype=np.float32), policy=model.channel))
                digest = hashlib.sha256(np.ascontiguousarray(y, dtype="<f4").tobytes()).hexdigest()
            if flags:
                # Checked on the samples, whatever the encoder: a dead microphone's "normal" would
                # make a threshold that flags every real recording of the machine.
                raise InvalidAudioError(name, f"not used for enrollment: {describe_flags(flags)}")
            check_length(model, y, path=name)
            logmel = model.features(y)
        except SoundSentryError as exc:
            if strict:
                raise
            problem = getattr(exc, "problem", None) or str(exc)
            log.warning("%s: skipped (%s)", name, problem)
            skipped.append({"name": name, "problem": problem})
            continue
        recordings.append(EnrolledRecording(name=name, sha256=digest, seconds=len(y) / rate, logmel=logmel))
    if progress is not None:
        progress(len(items), len(items), "")
    return recordings, skipped


def calibration_plan(
    window_counts: Sequence[int],
    *,
    min_loo_recordings: int = 2,
    block_windows: int = 4,
    guard_windows: int = 3,
) -> CalibrationPlan:
    """Decide how calibration scores are computed from recordings of ``window_counts`` windows.

    Parameters
    ----------
    window_counts : sequence of int
        Windows per recording, in the order of the concatenated latents.
    min_loo_recordings : int
        From this many recordings on, each recording is left out in turn.
    block_windows : int
        Windows per block in leave-one-block-out.
    guard_windows : int
        Windows either side of a block that share spectrogram frames with it; left out of its
        reference too, or the block would be scored against copies of its own frames.

    Raises
    ------
    EnrollmentError
        Too little audio for two calibration scores.
    """
    counts = [int(c) for c in window_counts]
    starts = np.cumsum([0, *counts])
    total = int(starts[-1])
    scored: list[np.ndarray] = []
    reference: list[np.ndarray] = []
    if len(counts) >= min_loo_recordings:
        for i in range(len(counts)):
            keep = np.ones(total, bool)
            keep[starts[i] : starts[i + 1]] = False
            scored.append(np.arange(starts[i], starts[i + 1]))
            reference.append(keep)
        return CalibrationPlan(
            "leave-one-recording-out",
            scored,
            reference,
            f"each of the {len(counts)} recordings scored by a detector refitted without it (leave-one-recording-out)",
        )
    for i, n in enumerate(counts):
        n_blocks = max(1, math.ceil(n / block_windows))
        for block in np.array_split(np.arange(n), n_blocks):
            if block.size == 0:
                continue
            keep = np.ones(total, bool)
            lo = starts[i] + max(0, block[0] - guard_windows)
            hi = starts[i] + min(n, block[-1] + 1 + guard_windows)
            keep[lo:hi] = False
            if keep.sum() < 2:
                continue
            scored.append(starts[i] + block)
            reference.append(keep)
    if len(scored) < 2:
        raise EnrollmentError(
            f"too little normal audio to calibrate a threshold: {len(counts)} recording(s), {total} window(s); "
            "give at least one recording of about 10 s or several shorter ones"
        )
    return CalibrationPlan(
        "leave-one-block-out",
        scored,
        reference,
        f"{len(counts)} recording(s), fewer than {min_loo_recordings}, so leave-one-block-out: {len(scored)} blocks of up "
        f"to {block_windows} windows, each scored by a detector refitted without the block and the {guard_windows} "
        "windows either side that share frames with it (blocks of one recording are more alike than two "
        "recordings, so the threshold rule assumes a wider spread)",
    )


def fit_detector(name: str, latents: np.ndarray, *, params: dict[str, Any]):
    """Fit detector ``name`` on normal latents (n, d) with its registry hook; returns an object with ``anomaly_score``.

    Kinds that need the ``[train]`` extra (:attr:`~soundsentry.detector_kinds.DetectorKind.needs_train`)
    raise :class:`EnrollmentError` without it.
    """
    try:
        kind = detector_kind(name)
    except KeyError as exc:
        raise EnrollmentError(exc.args[0]) from None
    return kind.fit_latents(latents, params=params)


def calibration_scores(
    name: str, latents: np.ndarray, plan: CalibrationPlan, *, params: dict[str, Any], aggregate: str = "mean"
) -> list[float]:
    """Normal-only calibration scores of detector ``name`` following ``plan``."""
    out = []
    for scored, keep in zip(plan.scored, plan.reference, strict=True):
        detector = fit_detector(name, latents[keep], params=params)
        out.append(aggregate_scores(detector.anomaly_score(latents[scored]), rule=aggregate))
    return out


def enrollment_threshold(detector: str, scores: Sequence[float], *, quantile: float, n_recordings: int) -> tuple[float, str]:
    """Threshold from normal calibration scores and its rule in words: the kind's rule (its ``threshold``).

    ``"lognormal"`` kinds (positive scores): :func:`~soundsentry.calibration.lognormal_threshold` with the
    kind's measured spreads, which stays sensible with one to a few recordings and covers another
    session of the same machine. ``"robust"`` kinds (scores can be negative, no spread measured):
    the training pipeline's :func:`~soundsentry.calibration.robust_threshold`.
    """
    kind = detector_kind(detector)
    if kind.threshold == "lognormal":
        prior, single = kind.log_spread_prior
        kwargs = {"prior_spread": prior, "single_recording_spread": single}
        return (
            lognormal_threshold(scores, quantile=quantile, n_recordings=n_recordings, **kwargs),
            lognormal_threshold_rule(quantile, n_recordings=n_recordings, **kwargs),
        )
    return robust_threshold(scores, quantile=quantile), f"{robust_threshold_rule(quantile)} to the calibration scores"


def default_enrollment_detector(model: Model) -> str:
    """The detector enrollment fits when none is chosen: the parent's default where the plain install can
    fit it on this encoder, else :data:`~soundsentry.detector_kinds.DEFAULT_DETECTOR`."""
    name = model.default_detector
    kind = detector_kind(name) if name in DETECTOR_NAMES else None
    if kind is None or kind.needs_train or (kind.per_recording and not hasattr(model.encoder, "view_columns")):
        return DEFAULT_DETECTOR
    return name


def _prepare_out(out: Path, model: Model, overwrite: bool) -> None:
    if out.resolve() == Path(model.bundle.root).resolve():
        raise EnrollmentError(f"{out}: the output folder is the parent model's own folder; choose a new one")
    if out.exists():
        if not out.is_dir():
            raise EnrollmentError(f"{out}: exists and is not a folder")
        entries = list(out.iterdir())
        if entries and not overwrite:
            raise EnrollmentError(f"{out}: folder exists and is not empty (overwrite=True replaces the bundle in it)")
        if entries and not (out / CARD_NAME).is_file():
            # Never delete a folder that is not a bundle, whatever the flag says.
            raise EnrollmentError(f"{out}: folder is not empty and holds no model bundle; refusing to replace it")


def enroll(
    model: Model | str | os.PathLike[str],
    normal: Sequence[NormalInput],
    *,
    out: str | os.PathLike[str],
    detectors: Sequence[str] | None = None,
    name: str | None = None,
    machine_type: str | None = None,
    n_neighbors: int | None = None,
    nu: float | None = None,
    quantile: float = DEFAULT_QUANTILE,
    min_loo_recordings: int = 2,
    block_windows: int = 4,
    level_normalization: bool = True,
    overwrite: bool = False,
    strict: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> Model:
    """Fit a model's detector(s) on a machine's own normal recordings and write a new bundle.

    Parameters
    ----------
    model : Model or str or os.PathLike
        The parent: a loaded model, a shipped model name (``"fan"``, ``"general"``) or a bundle folder.
        Its encoder, features, window and normalisation are kept.
    normal : sequence of NormalInput
        Normal recordings: audio file paths, folders (searched recursively), ``(samples, rate)``
        tuples or arrays at the model's rate; samples of shape (n,) or (n, channels).
    out : str or os.PathLike
        Folder of the new bundle; must be new or empty (or a bundle, with ``overwrite``).
    detectors : sequence of str, optional
        Names of :data:`~soundsentry.detector_kinds.KINDS`; the first is the new bundle's default.
        Kinds with ``needs_train`` need the ``[train]`` extra. Default: the parent's default detector
        (:func:`default_enrollment_detector`).
    name, machine_type : str, optional
        For the card (defaults: the output folder's name, the parent's machine type).
    n_neighbors, nu : optional
        Fitting parameters of the kinds that have them (defaults: the parent card's, else the kind's).
    quantile : float
        Quantile of the threshold rule's fitted distribution (see :func:`enrollment_threshold`).
    min_loo_recordings, block_windows : int
        Calibration by leave-one-recording-out from ``min_loo_recordings`` recordings on,
        else leave-one-block-out with blocks of ``block_windows`` windows (see :func:`calibration_plan`).
    level_normalization : bool
        Move every window's level (mean dB) to the enrolled recordings' typical level before the
        encoder, so a change of gain, distance or room loudness is not flagged (a machine that
        only gets louder is then not flagged either). Ignored when the parent already levels.
    overwrite : bool
        Replace an existing bundle at ``out``.
    strict : bool
        Raise on the first unusable recording instead of skipping it.
    progress : callable(done, total, name), optional
        Called before each recording and once at the end (``done == total``).

    Returns
    -------
    Model
        The new bundle, loaded (and checked) from ``out``.

    Raises
    ------
    EnrollmentError
        No usable recordings, too little audio, bad options, OC-SVM without ``[train]``, or ``out`` in the way.
    AudioError
        With ``strict``, the first recording that cannot be used.
    """
    if not isinstance(model, Model):
        model = load_model(model)
    detectors = list(dict.fromkeys(detectors or (default_enrollment_detector(model),)))
    if not detectors:
        raise EnrollmentError("choose at least one detector")
    columns = getattr(model.encoder, "view_columns", None)
    for det in detectors:
        if det not in DETECTOR_NAMES:
            raise EnrollmentError(f"unknown detector {det!r} (choose from: {', '.join(DETECTOR_NAMES)})")
        require_extra(detector_kind(det))  # fail before minutes of embedding, not after
        if detector_kind(det).per_recording and columns is None:
            raise EnrollmentError(
                f"the {det} detector needs an encoder with views (model {model.name!r} has a {model.encoder.kind} encoder); "
                f"choose another detector"
            )
    out = Path(out)
    _prepare_out(out, model, overwrite)

    recordings, skipped = load_recordings(model, normal, strict=strict, progress=progress)
    if not recordings:
        reasons = "; ".join(f"{s['name']}: {s['problem']}" for s in skipped[:5])
        raise EnrollmentError("no usable normal recordings" + (f" ({reasons})" if reasons else ""))
    level = None
    if level_normalization and model.level_reference_db is None and hasattr(model.encoder, "window_levels"):
        # Rounded as the card stores it, so scoring later uses exactly the level the detector was fitted with.
        level = round(level_reference(model, [r.logmel for r in recordings]), 4)
    embed_recordings(model, recordings, level_reference_db=level)
    latents = np.concatenate([r.latents for r in recordings]).astype(np.float32).astype(np.float64)
    plan = calibration_plan(
        [r.n_windows for r in recordings], min_loo_recordings=min_loo_recordings, block_windows=block_windows
    )
    extra_files = [f for f in (model.card["encoder"].get("licence_file"),) if f]

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:
        encoder_file = model.card["encoder"]["file"]
        shutil.copyfile(model.bundle.path(encoder_file), tmp / "encoder.onnx")
        for extra in extra_files:
            shutil.copyfile(model.bundle.path(extra), tmp / extra)
        card_detectors: dict[str, Any] = {}
        for det in detectors:
            kind = detector_kind(det)
            if kind.per_recording:
                params = kind.resolve_params(model.card["detectors"].get(det), n_neighbors=n_neighbors, quantile=quantile)
                fitted = kind.fit_recordings([r.latents for r in recordings], params=params, columns=columns())
                kind.save_fitted(fitted, tmp / kind.file, latent_dim=latents.shape[1])
                entry = {"file": kind.file} | kind.card_fields(fitted, params=params, n_reference=len(latents))
                entry |= {"threshold": 1.0, "threshold_rule": "each view calibrated on the enrolled recordings (see calibration)"}
                card_detectors[det] = entry
                log.info("%s: view thresholds %s", det, np.round(fitted.thresholds_, 4).tolist())
                continue
            params = kind.resolve_params(model.card["detectors"].get(det), n_neighbors=n_neighbors, nu=nu)
            fitted = kind.fit_latents(latents, params=params)
            scores = calibration_scores(det, latents, plan, params=params, aggregate=model.aggregate)
            n_rec = len(recordings) if plan.mode == "leave-one-recording-out" else 1
            threshold, rule = enrollment_threshold(det, scores, quantile=quantile, n_recordings=n_rec)
            rule = f"{rule}; {len(scores)} normal calibration scores: {plan.description}"
            kind.save_fitted(fitted, tmp / kind.file, latent_dim=latents.shape[1])
            entry: dict[str, Any] = {"file": kind.file}
            entry |= kind.card_fields(fitted, params=params, n_reference=len(latents))
            entry |= {
                "threshold": threshold,
                "threshold_rule": rule,
                "calibration_scores": [round(float(s), 6) for s in scores],
            }
            card_detectors[det] = entry
            log.info("%s: threshold %.4g from %d calibration scores", det, threshold, len(scores))

        card = _card(model, out, tmp, recordings, skipped, plan, card_detectors, detectors, name, machine_type, quantile)
        if level is not None:
            card["normalization"] = dict(card["normalization"]) | {
                "level_reference_db": level,
                "level": "each window's mean log-mel dB moved to level_reference_db (the enrolled recordings' median "
                "window level) before standardisation: a gain, distance or room-loudness change is not flagged",
            }
        write_card(tmp, card, files=["encoder.onnx", *extra_files, *(detector_kind(d).file for d in detectors)])
        if out.exists():
            shutil.rmtree(out) if any(out.iterdir()) else out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(out, 0o755)  # mkdtemp makes it owner-only; a bundle is read by everyone
    return load_model(out)


def _card(model, out, tmp, recordings, skipped, plan, card_detectors, detectors, name, machine_type, quantile):
    parent = model.card
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    keep = ("features", "window", "channel", "normalization", "aggregate", "score_direction")
    card = card_header(name=name or out.name, machine_type=machine_type or parent.get("machine_type", ""), created=now)
    card |= {k: parent[k] for k in keep if k in parent}
    card["encoder"] = dict(parent["encoder"]) | {"file": "encoder.onnx"}
    card["detectors"] = card_detectors
    card["default_detector"] = detectors[0]
    card["enrollment"] = {
        "created": now,
        "parent": {
            "name": model.name,
            "machine_type": parent.get("machine_type", ""),
            "created": parent.get("created", ""),
            "encoder_sha256": file_sha256(tmp / "encoder.onnx"),
            "training_split": parent.get("training", {}).get("split", ""),
        },
        "recordings": [
            {
                "file": os.path.basename(r.name) if not r.name.startswith("<") else r.name,
                "path": r.name,
                "sha256": r.sha256,
                "seconds": round(r.seconds, 3),
                "windows": r.n_windows,
            }
            for r in recordings
        ],
        "skipped": skipped,
        "n_recordings": len(recordings),
        "n_windows": int(sum(r.n_windows for r in recordings)),
        "seconds": round(sum(r.seconds for r in recordings), 3),
        "scored_channel": model.channel,
        "calibration": {"mode": plan.mode, "n_scores": len(plan.scored), "description": plan.description},
        "quantile": quantile,
        "note": "encoder kept from the parent model; detector(s) fitted and threshold calibrated on these normal "
        "recordings only, no abnormal recording was used",
    }
    card["versions"] = package_versions()
    return card
