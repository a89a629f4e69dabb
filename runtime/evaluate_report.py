"""Rendering of an evaluation: the Markdown report, the per-clip scores CSV and ROC plots (matplotlib).

The computation (reading labelled clips, scoring, the figures) is :mod:`soundsentry.evaluate`.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluate import MAX_FPR, GroupMetrics, LabelledClip, ScoredClip, evaluate_scores
from .markdown import fmt, table
from .metrics import roc_auc, roc_curve
from .model import Model

__all__ = ["Report", "plot_roc_curves", "write_report"]


def _table(rows: Sequence[GroupMetrics]) -> list[str]:
    return table(
        ["group", "value", "normal", "abnormal", "AUC", "pAUC (FPR≤0.1)", "precision", "recall", "F1", "false alarms"],
        (
            [r.group, r.value, r.n_normal, r.n_abnormal, fmt(r.auc), fmt(r.pauc), fmt(r.precision), fmt(r.recall),
             fmt(r.f1), fmt(r.false_alarm_rate)]
            for r in rows
        ),
        align=["l", "l", "r", "r", "r", "r", "r", "r", "r", "r"],
    )


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
        f"- Scored channel: {model.channel}; clip score: {_clip_rule(model)}; higher = more anomalous",
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


def _clip_rule(model) -> str:
    """How the clip score is made, in words: the detector's own (views) or the card's aggregate of window scores."""
    det = model.detector()
    if hasattr(det, "clip_score"):
        from .views import combine_rule

        return f"the {model.default_detector} detector's own ({combine_rule(getattr(det, 'combine', 'max'))})"
    return f"{model.aggregate} of window scores"
