"""Evaluating a model on labelled clips: AUC, pAUC and F1 overall, per machine, SNR and domain.

Data flow: labelled clips (:func:`read_labelled_clips`) -> clip scores for every detector
(:func:`score_clips`) -> figures per group (:func:`evaluate_scores`) -> Markdown report,
per-clip CSV and ROC plots (:func:`write_report`). Runs in the plain runtime install;
the plots need matplotlib (the ``[eval]`` extra) and are skipped, with a reason, without it.

Labels: 1 = abnormal, 0 = normal; higher scores mean more anomalous. pAUC is the
McClish-standardised partial AUC for FPR <= 0.1, as DCASE reports it.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .batch import AUDIO_SUFFIXES
from .bundle import file_sha256
from .clips import Clip, ClipsError, label_word, read_clips_csv
from .errors import SoundSentryError
from .metrics import partial_roc_auc, precision_recall_f1, roc_auc
from .model import Model
from .scoring import mono_samples, score_mono

__all__ = [
    "EvaluationError",
    "GroupMetrics",
    "LabelledClip",
    "ScoredClip",
    "evaluate_scores",
    "group_metrics",
    "heard",
    "read_labelled_clips",
    "score_clips",
    "training_fingerprints",
]

log = logging.getLogger(__name__)

MAX_FPR = 0.1
_ID_RE = re.compile(r"^(id_\d+|section_\d+)$")
_SNR_RE = re.compile(r"^(-?\d+)_?db", re.IGNORECASE)


#: The data cannot be evaluated: no labelled clips found, or an unreadable ``clips.csv``.
EvaluationError = ClipsError
#: A recording with its label (the clips.csv record, :class:`soundsentry.clips.Clip`).
LabelledClip = Clip


@dataclass
class ScoredClip:
    """A clip and its clip score per detector, or the error that stopped it."""

    clip: LabelledClip
    scores: dict[str, float] = field(default_factory=dict)
    error: str = ""


@dataclass
class GroupMetrics:
    """Figures of one detector on one group of clips. Rates are ``nan`` where undefined."""

    group: str
    value: str
    n_normal: int
    n_abnormal: int
    auc: float
    pauc: float
    precision: float
    recall: float
    f1: float
    false_alarm_rate: float

    @property
    def n(self) -> int:
        return self.n_normal + self.n_abnormal


# -- reading labelled clips -------------------------------------------------------------------


def _clip_from_path(path: Path, root: Path) -> LabelledClip | None:
    """Label and metadata from the folders (``normal/``, ``abnormal/``, ``id_00/``, ``6dB/``) and DCASE-style names."""
    parts = [p.lower() for p in path.relative_to(root).parts[:-1]]
    label = next((lab for lab in map(label_word, reversed(parts)) if lab), None)
    tokens = re.split(r"[_\-.]", path.stem.lower())
    if label is None:
        # DCASE names: section_00_source_test_normal_0001_..., anomaly_id_00_00000002
        label = next((lab for lab in map(label_word, tokens) if lab), None)
    if label is None:
        return None
    machine_id = next((p for p in reversed(parts) if _ID_RE.match(p)), "")
    if not machine_id:
        m = re.search(r"(id_\d+|section_\d+)", path.stem.lower())
        machine_id = m.group(1) if m else ""
    snr = next((m.group(1) for p in parts if (m := _SNR_RE.match(p))), "")
    domain = next((t for t in tokens if t in ("source", "target")), "")
    return LabelledClip(path=path, label=label, machine_id=machine_id, snr_db=snr, domain=domain)


def read_labelled_clips(data: Sequence[str | os.PathLike[str]]) -> list[LabelledClip]:
    """Labelled clips from ``clips.csv`` files and folders.

    Parameters
    ----------
    data : sequence of path
        - a ``.csv`` with columns ``file`` (relative to the CSV) and ``label`` (normal/abnormal),
          optionally ``machine_type``, ``machine_id``, ``snr_db``, ``domain``, ``source_repo``;
        - a folder holding a ``clips.csv`` (that file is read);
        - any other folder: audio files under a ``normal``/``abnormal`` (or ``anomaly``) folder,
          or with DCASE-style names (``..._normal_...``, ``anomaly_...``); ``id_NN``/``section_NN``
          folders or names give the machine, ``6dB``/``-6_dB`` folders the SNR.

    Raises
    ------
    EvaluationError
        A path does not exist, a CSV is malformed, or nothing labelled was found.
    """
    clips: list[LabelledClip] = []
    for item in data:
        path = Path(item)
        if path.is_file() and path.suffix.lower() == ".csv":
            clips.extend(read_clips_csv(path))
        elif path.is_dir() and (path / "clips.csv").is_file():
            clips.extend(read_clips_csv(path / "clips.csv"))
        elif path.is_dir():
            audio = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            found = [c for c in (_clip_from_path(p, path) for p in audio) if c is not None]
            if len(found) < len(audio):
                log.warning("%s: %d audio files have no normal/abnormal label and are left out", path, len(audio) - len(found))
            if not found:
                raise EvaluationError(
                    f"{path}: no labelled clips (put them in normal/ and abnormal/ subfolders or give a clips.csv)"
                )
            clips.extend(found)
        elif path.exists():
            raise EvaluationError(f"{path}: not a folder or a .csv file")
        else:
            raise EvaluationError(f"{path}: not found")
    if not clips:
        raise EvaluationError("no labelled clips found")
    return clips


def training_fingerprints(card: dict[str, Any]) -> dict[str, set[str]]:
    """What a bundle was trained or calibrated on, to keep those clips out of its evaluation.

    Returns
    -------
    dict with ``pcm_sha256`` (training/validation clips), ``file_sha256`` (enrolled
    recordings) and ``names`` (file names of training/validation clips).
    """
    training = card.get("training", {}) or {}
    # Trained bundles list train_clips and validation_clips; views bundles the clips their detector was fitted on.
    entries = [e for key in ("train_clips", "validation_clips", "clips") for e in training.get(key, []) or []]
    recordings = (card.get("enrollment", {}) or {}).get("recordings", []) or []
    return {
        "pcm_sha256": {e.get("pcm_sha256", "") for e in entries} - {""},
        "names": {e.get("file", "") for e in entries} - {""},
        "file_sha256": {r.get("sha256", "") for r in recordings} - {""},
    }


def heard(clip: LabelledClip, fingerprints: dict[str, set[str]]) -> bool:
    if clip.pcm_sha256 and clip.pcm_sha256 in fingerprints["pcm_sha256"]:
        return True
    if clip.path.name in fingerprints["names"]:
        return True
    if fingerprints["file_sha256"] and clip.path.is_file():
        return file_sha256(clip.path) in fingerprints["file_sha256"]
    return False


# -- scoring -----------------------------------------------------------------------------------


def score_clips(
    model: Model,
    clips: Sequence[LabelledClip],
    *,
    detectors: Sequence[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[ScoredClip]:
    """Clip scores of every detector; each clip is decoded and embedded once.

    A clip that cannot be scored keeps its error and the others go on.
    """
    detectors = list(detectors or model.detectors)
    out = []
    for i, clip in enumerate(clips):
        if progress is not None:
            progress(i, len(clips), str(clip.path))
        try:
            # The one scoring path, with the encoder run once for all detectors.
            y = mono_samples(model, clip.path)
            scores = score_mono(model, y, detectors=detectors, path=clip.path).clip_scores(model)
            out.append(ScoredClip(clip, scores))
        except SoundSentryError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            log.warning("%s: %s", clip.path, problem)
            out.append(ScoredClip(clip, error=problem))
    if progress is not None:
        progress(len(clips), len(clips), "")
    return out


# -- figures -----------------------------------------------------------------------------------


def group_metrics(
    labels: np.ndarray, scores: np.ndarray, *, threshold: float, group: str = "all", value: str = "all"
) -> GroupMetrics:
    """AUC, pAUC (FPR <= 0.1, McClish), precision/recall/F1 at ``threshold`` and the false alarm rate.

    AUC and pAUC are ``nan`` unless both classes are present; precision is ``nan`` when nothing is
    flagged, recall when there is no abnormal clip, the false alarm rate when there is no normal clip.
    """
    y = np.asarray(labels).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    n_abn = int(y.sum())
    n_norm = int(y.size - n_abn)
    both = n_abn > 0 and n_norm > 0
    prf = precision_recall_f1(y, s, threshold=threshold)
    flagged = s > threshold
    nan = math.nan
    return GroupMetrics(
        group=group,
        value=value,
        n_normal=n_norm,
        n_abnormal=n_abn,
        auc=roc_auc(y, s) if both else nan,
        pauc=partial_roc_auc(y, s, max_fpr=MAX_FPR) if both else nan,
        precision=prf["precision"] if flagged.any() else nan,
        recall=prf["recall"] if n_abn else nan,
        f1=prf["f1"] if n_abn else nan,
        false_alarm_rate=float(flagged[y == 0].mean()) if n_norm else nan,
    )


GROUPS = (("machine", "machine_id"), ("SNR (dB)", "snr_db"), ("domain", "domain"), ("machine type", "machine_type"))


def evaluate_scores(
    scored: Sequence[ScoredClip], *, detector: str, threshold: float
) -> list[GroupMetrics]:
    """Figures of ``detector`` overall and for every known value of machine, SNR, domain and type.

    A grouping is reported only when at least one clip has a known value for it; clips with an
    unknown value are counted under ``"?"``.
    """
    ok = [s for s in scored if not s.error and detector in s.scores]
    if not ok:
        return []
    labels = np.array([s.clip.y for s in ok])
    scores = np.array([s.scores[detector] for s in ok])
    rows = [group_metrics(labels, scores, threshold=threshold)]
    for title, attr in GROUPS:
        values = [getattr(s.clip, attr) for s in ok]
        known = sorted({v for v in values if v})
        if not known or (len(known) == 1 and all(values)):
            continue  # nothing to break down
        for value in [*known, ""] if not all(values) else known:
            mask = np.array([v == value for v in values])
            rows.append(group_metrics(labels[mask], scores[mask], threshold=threshold, group=title, value=value or "?"))
    return rows
