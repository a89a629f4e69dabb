"""``soundsentry enroll``: a model for the user's own machine from its normal recordings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..calibration import DEFAULT_QUANTILE
from ..detector_kinds import DEFAULT_DETECTOR, DETECTOR_NAMES, KINDS
from ..exit_codes import EXIT_FILES_FAILED, EXIT_MODEL_ERROR, EXIT_OK, EXIT_USAGE
from ._common import DEFAULT_MODEL, choose_model, missing_paths, out_in_the_way

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    enroll = sub.add_parser(
        "enroll",
        help="make a model for your own machine from its normal recordings",
        description="Keep a model's encoder, fit its detector on your machine's normal recordings, calibrate the "
        "threshold from those recordings alone and write a new bundle (usable with --model DIR).",
    )
    enroll.add_argument(
        "-m", "--model", help=f"parent model: shipped name or bundle folder (default: {DEFAULT_MODEL}, said on stderr)"
    )
    enroll.add_argument(
        "--normal", nargs="+", required=True, metavar="PATH", help="normal recordings: files or folders (silent or clipped ones are skipped and named)",
    )
    enroll.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder of the new bundle: new or empty, unless --force"
    )
    enroll.add_argument(
        "--detector",
        action="append",
        choices=DETECTOR_NAMES,
        help="detector(s) to fit, the first is the new model's default (default: the parent model's default, "
        f"views for the shipped models, {DEFAULT_DETECTOR} for models without views; "
        f"{', '.join(k.name for k in KINDS if k.needs_train)} need [train])",
    )
    enroll.add_argument("--name", help="model name in the card (default: the folder's name)")
    enroll.add_argument("--machine-type", help="machine type in the card (default: the parent model's)")
    enroll.add_argument(
        "--quantile", type=float, default=DEFAULT_QUANTILE,
        help=f"threshold quantile of the normal fit (default {DEFAULT_QUANTILE})",
    )
    enroll.add_argument(
        "--no-level",
        action="store_true",
        help="keep each window's level (default: level it, so a gain or distance change is not flagged)",
    )
    enroll.add_argument("--force", action="store_true", help="replace the bundle in a non-empty --out folder")
    enroll.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first unusable recording (undecodable, too short, silent, clipped) instead of skipping it",
    )
    return enroll


def run(args: argparse.Namespace) -> int:
    """``soundsentry enroll``: exit 0 when every recording was used, 3 when some were skipped (the bundle is
    still written), 2 when no bundle could be made, 4 when the parent model cannot be loaded."""
    from tqdm import tqdm

    from ..enroll import enroll
    from ..errors import EnrollmentError, ModelError, SoundSentryError
    from ..model import load_model

    missing = missing_paths(args.normal)
    if missing:
        print(f"soundsentry enroll: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    problem = out_in_the_way(args.out, force=args.force)
    if problem:
        print(f"soundsentry enroll: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        parent = load_model(choose_model(args.model))
    except ModelError as exc:
        print(f"soundsentry: {exc}", file=sys.stderr)
        return EXIT_MODEL_ERROR
    bar = tqdm(unit="file", file=sys.stderr, disable=None, leave=False)

    def progress(done: int, total: int, name: str) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        model = enroll(
            parent,
            args.normal,
            out=args.out,
            detectors=args.detector or None,
            name=args.name,
            machine_type=args.machine_type,
            quantile=args.quantile,
            level_normalization=not args.no_level,
            overwrite=args.force,
            strict=args.strict,
            progress=progress,
        )
    except (EnrollmentError, SoundSentryError, ValueError) as exc:
        bar.close()
        print(f"soundsentry enroll: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bar.close()
    info = model.card["enrollment"]
    for s in info["skipped"]:
        print(f"skipped {s['name']}: {s['problem']}", file=sys.stderr)
    print(
        f"enrolled {model.name!r} in {model.bundle.root}: {info['n_recordings']} recordings, {info['seconds']:.1f} s, "
        f"{info['n_windows']} windows; encoder from {parent.name!r}",
        file=sys.stderr,
    )
    print(f"calibration: {info['calibration']['description']}", file=sys.stderr)
    for det, spec in model.card["detectors"].items():
        print(f"{det}: threshold {spec['threshold']:.6g}", file=sys.stderr)
    print(f"score with: soundsentry score --model {model.bundle.root} PATH...", file=sys.stderr)
    return EXIT_FILES_FAILED if info["skipped"] else EXIT_OK
