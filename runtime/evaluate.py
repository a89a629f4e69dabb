"""Evaluating a model on labelled clips: AUC, pAUC and F1 overall, per machine, SNR and domain.

Data flow: labelled clips (:func:`read_labelled_clips`) -> clip scores for every detector
(:func:`score_clips`) -> figures per group (:func:`evaluate_scores`) -> Markdown report,
per-clip CSV and ROC plots (:func:`write_report`). Runs in the plain runtime install;
the plots need matplotlib (the ``[eval]`` extra) and are skipped, with a reason, without it.

Labels: 1 = abnormal, 0 = normal; higher scores mean more anomalous. pAUC is the
McClish-standardised partial AUC for FPR <= 0.1, as DCASE reports it.
"""

from __future__ import annotations

import csv
import datetime as dt
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
from .errors import SoundSentryError
from .metrics import partial_roc_auc, precision_recall_f1, roc_auc, roc_curve
from .model import Model
from .scoring import mono_samples, score_mono

__all__ = [
    "EvaluationError",
    "GroupMetrics",
    "LabelledClip",
    "ScoredClip",
    "evaluate_scores",
    "group_metrics",
    "plot_roc_curves",
    "read_labelled_clips",
    "score_clips",
    "training_fingerprints",
    "write_report",
]

log = logging.getLogger(__name__)

MAX_FPR = 0.1
NORMAL_WORDS = {"normal"}
ABNORMAL_WORDS = {"abnormal", "anomaly", "anomalous"}
_ID_RE = re.compile(r"^(id_\d+|section_\d+)$")
_SNR_RE = re.compile(r"^(-?\d+)_?db", re.IGNORECASE)


class EvaluationError(SoundSentryError):
    """The data cannot be evaluated: no labelled clips found, or an unreadable ``clips.csv``."""


@dataclass(frozen=True)
class LabelledClip:
    """One recording with its label and what else is known (empty string = unknown)."""

    path: Path
    label: str
    machine_type: str = ""
    machine_id: str = ""
    snr_db: str = ""
    domain: str = ""
    source: str = ""
    pcm_sha256: str = ""

    @property
    def y(self) -> int:
        return int(self.label == "abnormal")


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


def _read_csv(csv_path: Path) -> list[LabelledClip]:
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvaluationError(f"{csv_path}: cannot read ({exc})") from exc
    if rows and not {"file", "label"} <= set(rows[0]):
        raise EvaluationError(f"{csv_path}: needs the columns 'file' and 'label' (has: {', '.join(rows[0])})")
    clips = []
    for i, row in enumerate(rows, start=2):
        label = _label_word(row.get("label", ""))
        if label is None:
            raise EvaluationError(f"{csv_path}, line {i}: label {row.get('label')!r} is neither normal nor abnormal")
        clips.append(
            LabelledClip(
                path=csv_path.parent / row["file"],
                label=label,
                machine_type=row.get("machine_type", "") or "",
                machine_id=row.get("machine_id", "") or "",
                snr_db=row.get("snr_db", "") or "",
                domain=row.get("domain", "") or "",
                source=row.get("source_repo", "") or row.get("source", "") or "",
                pcm_sha256=row.get("pcm_sha256", "") or "",
            )
        )
    return clips


def _label_word(word: str) -> str | None:
    word = word.strip().lower()
    if word in NORMAL_WORDS:
        return "normal"
    if word in ABNORMAL_WORDS:
        return "abnormal"
    return None


def _clip_from_path(path: Path, root: Path) -> LabelledClip | None:
    """Label and metadata from the folders (``normal/``, ``abnormal/``, ``id_00/``, ``6dB/``) and DCASE-style names."""
    parts = [p.lower() for p in path.relative_to(root).parts[:-1]]
    label = next((lab for lab in map(_label_word, reversed(parts)) if lab), None)
    tokens = re.split(r"[_\-.]", path.stem.lower())
    if label is None:
        # DCASE names: section_00_source_test_normal_0001_..., anomaly_id_00_00000002
        label = next((lab for lab in map(_label_word, tokens) if lab), None)
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
            clips.extend(_read_csv(path))
        elif path.is_dir() and (path / "clips.csv").is_file():
            clips.extend(_read_csv(path / "clips.csv"))
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
    entries = list(training.get("train_clips", []) or []) + list(training.get("validation_clips", []) or [])
    recordings = (card.get("enrollment", {}) or {}).get("recordings", []) or []
    return {
        "pcm_sha256": {e.get("pcm_sha256", "") for e in entries} - {""},
        "names": {e.get("file", "") for e in entries} - {""},
        "file_sha256": {r.get("sha256", "") for r in recordings} - {""},
    }


def _heard(clip: LabelledClip, fingerprints: dict[str, set[str]]) -> bool:
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
            scores = score_mono(model, y, detectors=detectors, path=clip.path).clip_scores(rule=model.aggregate)
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


# -- report ------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _table(rows: Sequence[GroupMetrics]) -> list[str]:
    lines = [
        "| group | value | normal | abnormal | AUC | pAUC (FPR≤0.1) | precision | recall | F1 | false alarms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.group} | {r.value} | {r.n_normal} | {r.n_abnormal} | {_fmt(r.auc)} | {_fmt(r.pauc)} | "
            f"{_fmt(r.precision)} | {_fmt(r.recall)} | {_fmt(r.f1)} | {_fmt(r.false_alarm_rate)} |"
        )
    return lines


def plot_roc_curves(
    scored: Sequence[ScoredClip], *, detector: str, threshold: float, path: str | os.PathLike[str], title: str
) -> None:
    """ROC curve of ``detector`` (overall, and per machine when there are several) as a PNG.

    Raises
    ------
    ImportError
        matplotlib is not installed (the ``[eval]`` extra).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only, no display needed
    import matplotlib.pyplot as plt

    ok = [s for s in scored if not s.error and detector in s.scores]
    labels = np.array([s.clip.y for s in ok])
    scores = np.array([s.scores[detector] for s in ok])
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=110)
    try:
        curves = [("all", labels, scores)]
        machines = sorted({s.clip.machine_id for s in ok if s.clip.machine_id})
        if len(machines) > 1:
            for m in machines:
                mask = np.array([s.clip.machine_id == m for s in ok])
                curves.append((m, labels[mask], scores[mask]))
        for name, y, s in curves:
            if y.all() or not y.any():
                continue
            fpr, tpr, _ = roc_curve(y, s)
            width = 2.2 if name == "all" else 1.2
            ax.plot(fpr, tpr, lw=width, drawstyle="default", label=f"{name}: AUC {roc_auc(y, s):.3f} ({len(y)} clips)")
        # The operating point of the model's own threshold.
        pred = scores > threshold
        if labels.any() and not labels.all():
            ax.plot(pred[labels == 0].mean(), pred[labels == 1].mean(), "ko", label=f"threshold {threshold:.4g}")
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="chance")
        ax.axvspan(0, MAX_FPR, color="0.9", zorder=0, label=f"pAUC region (FPR≤{MAX_FPR})")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title)
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    markdown: Path
    scores_csv: Path
    plots: list[Path]
    plots_skipped: str
    metrics: dict[str, list[GroupMetrics]]


def write_report(
    model: Model,
    scored: Sequence[ScoredClip],
    out: str | os.PathLike[str],
    *,
    data_description: str = "",
    excluded: Sequence[LabelledClip] = (),
    plots: bool = True,
) -> Report:
    """Write the Markdown report ``out``, the per-clip scores (``<stem>_scores.csv``) and ROC PNGs
    (``<stem>_roc_<detector>.png``) next to it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    detectors = [d for d in model.detectors if any(d in s.scores for s in scored)] or model.detectors
    metrics = {d: evaluate_scores(scored, detector=d, threshold=model.thresholds[d]) for d in detectors}
    failed = [s for s in scored if s.error]
    ok = [s for s in scored if not s.error]
    n_norm = sum(1 for s in ok if s.clip.y == 0)
    n_abn = len(ok) - n_norm

    plot_paths: list[Path] = []
    skipped = ""
    if not plots:
        skipped = "plots not requested"
    elif not (n_norm and n_abn):
        skipped = "a ROC curve needs both normal and abnormal clips"
    else:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            skipped = 'matplotlib is not installed (pip install "soundsentry[eval]")'
        else:
            for det in detectors:
                png = stem.parent / f"{stem.name}_roc_{det}.png"
                plot_roc_curves(scored, detector=det, threshold=model.thresholds[det], path=png, title=f"{model.name}: {det}")
                plot_paths.append(png)

    scores_csv = stem.parent / f"{stem.name}_scores.csv"
    with open(scores_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "machine_type", "machine_id", "snr_db", "domain", *[f"score_{d}" for d in detectors], "error"])
        for s in scored:
            c = s.clip
            w.writerow(
                [c.path, c.label, c.machine_type, c.machine_id, c.snr_db, c.domain]
                + [f"{s.scores[d]:.6g}" if d in s.scores else "" for d in detectors]
                + [s.error]
            )

    card = model.card
    lines = [
        f"# Evaluation of model `{model.name}`",
        "",
        f"- Model: `{model.name}` ({card.get('machine_type', '?')}), folder `{model.bundle.root}`",
        f"- Data: {data_description or 'labelled clips'}",
        f"- Clips scored: {len(ok)} ({n_norm} normal, {n_abn} abnormal); failed: {len(failed)}; "
        f"left out because the model was trained or calibrated on them: {len(excluded)}",
        f"- Scored channel: {model.channel}; clip score = {model.aggregate} of window scores; higher = more anomalous",
        f"- Written: {dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}",
        "",
        "AUC and pAUC (McClish-standardised, FPR ≤ 0.1, as in DCASE) do not depend on the threshold. "
        "Precision, recall, F1 and the false alarm rate (normal clips flagged) use the model's own threshold. "
        "`n/a`: undefined for that group (one class only, or nothing flagged). With few clips every figure is "
        "coarse: one clip moves the AUC by 1/(normal x abnormal).",
    ]
    split = (card.get("training", {}) or {}).get("split") or (card.get("enrollment", {}) or {}).get("note")
    if split:
        lines += ["", f"Model trained: {split}"]
    for det in detectors:
        lines += ["", f"## Detector `{det}` (threshold {model.thresholds[det]:.6g})", ""]
        rows = metrics[det]
        lines += _table(rows) if rows else ["No clip could be scored."]
        png = next((p for p in plot_paths if p.name.endswith(f"_roc_{det}.png")), None)
        if png is not None:
            lines += ["", f"![ROC curve, {det}]({png.name})"]
    lines += ["", "## Plots", "", f"ROC plots: {len(plot_paths)} written" + (f"; skipped: {skipped}" if skipped else "")]
    if failed:
        lines += ["", "## Clips that could not be scored", ""]
        lines += [f"- `{s.clip.path}`: {s.error}" for s in failed]
    if excluded:
        lines += ["", "## Left out (heard in training, validation or enrollment)", ""]
        lines += [f"- `{c.path}`" for c in excluded]
    lines += ["", f"Per-clip scores: `{scores_csv.name}`", ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return Report(markdown=out, scores_csv=scores_csv, plots=plot_paths, plots_skipped=skipped, metrics=metrics)


# -- command line ------------------------------------------------------------------------------


def run_cli(args) -> int:
    """``soundsentry evaluate``: exit 0 when every clip was scored, 3 when some failed, 2 for bad data, 4 model error."""
    import sys

    from .cli import EXIT_FILES_FAILED, EXIT_MODEL_ERROR, EXIT_OK, EXIT_USAGE
    from .errors import ModelError
    from .model import load_model

    try:
        model = load_model(args.model)
        detectors = list(dict.fromkeys(args.detector or model.detectors))
        for det in detectors:
            if det not in model.detectors:
                raise ModelError(f"model {model.name!r} has no detector {det!r}")
    except ModelError as exc:
        print(f"soundsentry: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    try:
        clips = read_labelled_clips(args.data)
    except EvaluationError as exc:
        print(f"soundsentry evaluate: {exc}", file=sys.stderr)
        return EXIT_USAGE

    notes = []
    machine_type = args.machine_type
    types = {c.machine_type for c in clips if c.machine_type}
    if machine_type is None and model.card.get("machine_type") in types:
        machine_type = model.card["machine_type"]
    if machine_type and machine_type != "all":
        clips = [c for c in clips if c.machine_type == machine_type]
        notes.append(f"machine type {machine_type}")
    if args.machine_id:
        clips = [c for c in clips if c.machine_id in set(args.machine_id)]
        notes.append(f"machines {', '.join(args.machine_id)}")
    excluded: list[LabelledClip] = []
    if not args.include_heard:
        fingerprints = training_fingerprints(model.card)
        excluded = [c for c in clips if _heard(c, fingerprints)]
        clips = [c for c in clips if c not in set(excluded)]
        if excluded:
            notes.append(f"{len(excluded)} clips the model heard in training/enrollment left out")
    if not clips:
        print("soundsentry evaluate: no labelled clips left after filtering", file=sys.stderr)
        return EXIT_USAGE

    from tqdm import tqdm

    bar = tqdm(total=len(clips), unit="clip", file=sys.stderr, disable=None, leave=False)

    def progress(done: int, total: int, name: str) -> None:
        bar.n = done
        bar.refresh()

    try:
        scored = score_clips(model, clips, detectors=detectors, progress=progress)
    finally:
        bar.close()
    out = args.output or Path(f"evaluation_{model.name}.md")
    description = ", ".join(str(d) for d in args.data) + (f" ({'; '.join(notes)})" if notes else "")
    report = write_report(model, scored, out, data_description=description, excluded=excluded, plots=not args.no_plots)
    for det, rows in report.metrics.items():
        if rows:
            r = rows[0]
            print(
                f"{det}: {r.n_normal} normal / {r.n_abnormal} abnormal clips: AUC {_fmt(r.auc)}, pAUC {_fmt(r.pauc)}, "
                f"F1 {_fmt(r.f1)}, false alarms {_fmt(r.false_alarm_rate)}",
                file=sys.stderr,
            )
    print(f"report: {report.markdown}", file=sys.stderr)
    if report.plots_skipped and not args.no_plots:
        print(f"ROC plots skipped: {report.plots_skipped}", file=sys.stderr)
    failed = sum(1 for s in scored if s.error)
    if failed:
        print(f"{failed} clips could not be scored (listed in the report)", file=sys.stderr)
        return EXIT_FILES_FAILED
    return EXIT_OK
