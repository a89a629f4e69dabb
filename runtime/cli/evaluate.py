"""``soundsentry evaluate``: AUC, pAUC and F1 of a model on labelled clips; Markdown report and ROC plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..detector_kinds import DETECTOR_NAMES
from ..exit_codes import EXIT_FILES_FAILED, EXIT_MODEL_ERROR, EXIT_OK, EXIT_USAGE
from ._common import DEFAULT_MODEL, choose_model

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    evaluate = sub.add_parser(
        "evaluate",
        help="AUC, pAUC and F1 of a model on labelled clips; Markdown report and ROC plots",
        description="Score labelled clips (folders with normal/ and abnormal/ subfolders, or a clips.csv) and "
        "write a Markdown report with AUC, pAUC (FPR<=0.1), precision/recall/F1 at the model's threshold, "
        "overall and per machine, SNR and domain, plus ROC plots (PNG, needs matplotlib) next to it.",
    )
    evaluate.add_argument("data", nargs="+", metavar="DATA", help="folders with normal/ and abnormal/, or clips.csv files")
    evaluate.add_argument(
        "-m", "--model", help=f"shipped model name or bundle folder (default: {DEFAULT_MODEL}, said on stderr)"
    )
    evaluate.add_argument("--detector", action="append", choices=DETECTOR_NAMES, help="detector(s) (default: all)")
    evaluate.add_argument("-o", "--output", type=Path, help="Markdown report (default: evaluation_<model>.md)")
    evaluate.add_argument(
        "--machine-type",
        help="only clips.csv rows of this machine type (default: the model's type when the CSV has it; 'all' for every row)",
    )
    evaluate.add_argument("--machine-id", action="append", help="only clips of this machine id (repeatable)")
    evaluate.add_argument(
        "--include-heard", action="store_true", help="keep clips the model was trained, validated or enrolled on"
    )
    evaluate.add_argument("--no-plots", action="store_true", help="do not write ROC plots")
    return evaluate


def run(args: argparse.Namespace) -> int:
    """``soundsentry evaluate``: exit 0 when every clip was scored, 3 when some failed, 2 for bad data (no normal
    or no abnormal clip: the report is written, the figures that need both are missing), 4 model error."""
    from ..errors import ModelError
    from ..evaluate import EvaluationError, LabelledClip, heard, read_labelled_clips, score_clips, training_fingerprints
    from ..evaluate_report import write_report
    from ..markdown import fmt
    from ..model import load_model

    try:
        model = load_model(choose_model(args.model))
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
        excluded = [c for c in clips if heard(c, fingerprints)]
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
    missing_class = None
    for det, rows in report.metrics.items():
        if rows:
            r = rows[0]
            if r.n_normal and r.n_abnormal:
                figures = (
                    f"AUC {fmt(r.auc)}, pAUC {fmt(r.pauc)}, F1 {fmt(r.f1)}, false alarms {fmt(r.false_alarm_rate)}"
                )
            elif r.n_abnormal:  # recall needs abnormal clips only
                figures, missing_class = f"detected {fmt(r.recall)} of the abnormal clips", "normal"
            else:  # the false-alarm rate needs normal clips only
                figures, missing_class = f"false alarms {fmt(r.false_alarm_rate)}", "abnormal"
            print(f"{det}: {r.n_normal} normal / {r.n_abnormal} abnormal clips: {figures}", file=sys.stderr)
    print(f"report: {report.markdown}", file=sys.stderr)
    if report.plots_skipped and not args.no_plots:
        print(f"ROC plots skipped: {report.plots_skipped}", file=sys.stderr)
    failed = sum(1 for s in scored if s.error)
    if failed:
        print(f"{failed} clips could not be scored (listed in the report)", file=sys.stderr)
    if missing_class == "normal":
        print(
            "soundsentry evaluate: no normal clips found: the false-alarm figures (false alarm rate, "
            "precision, F1, AUC, pAUC) are missing; add the machine's normal recordings (a normal/ folder)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if missing_class == "abnormal":
        print(
            "soundsentry evaluate: no abnormal clips found: the detection figures (recall, precision, F1, "
            "AUC, pAUC) are missing; add recordings of faults (an abnormal/ folder)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_FILES_FAILED if failed else EXIT_OK
