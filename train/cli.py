"""``soundsentry train``: arguments are parsed before TensorFlow is imported."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from soundsentry.detector_kinds import DEFAULT_DETECTOR, KINDS
from soundsentry.exit_codes import EXIT_USAGE

__all__ = ["add_parser", "build_parser", "main", "run"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="soundsentry train",
        description="Train a model bundle on the normal clips of one machine type (needs the [train] extra).",
    )
    parser.add_argument("data", type=Path, help="a clips.csv (like shared/data/mimii/clips.csv) or a folder of audio")
    parser.add_argument("--machine-type", required=True, help="machine type to train on, e.g. fan")
    parser.add_argument(
        "--out", type=Path, required=True, help="bundle folder to write: new or empty, unless --force"
    )
    parser.add_argument("--force", action="store_true", help="replace the bundle in a non-empty --out folder")
    parser.add_argument("--name", help="model name in the card (default: the machine type)")
    parser.add_argument(
        "--test-machine",
        action="append",
        default=[],
        metavar="ID",
        help="machine id held out of training and used only for evaluation (repeatable)",
    )
    parser.add_argument(
        "--epochs", type=int, default=100, help="maximum epochs; early stopping on held-out normals (default: 100)"
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=10,
        help="stop after this many epochs without a better validation loss; the best epoch is kept (default: 10)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the validation split, weights and shuffling (default: 0)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.25,
        help="share of the training machines' normal clips held out for early stopping and the threshold "
        "(default: 0.25)",
    )
    parser.add_argument("--max-train-clips", type=int, help="use at most this many training clips (quick runs)")
    parser.add_argument("--channel0-only", action="store_true", help="train on channel 0 only, not every channel")
    parser.add_argument(
        "--center",
        choices=["none", "window_median"],
        default="window_median",
        help="subtract each window's per-band median (cancels microphone/gain drift; default) or not",
    )
    parser.add_argument(
        "--window-frames", type=int, default=64, help="analysis window in frames, a multiple of 16 (default: 64)"
    )
    parser.add_argument(
        "--latent-dim",
        type=int,
        default=64,
        help="size of the encoder's output, what the detectors see of each window (default: 64)",
    )
    parser.add_argument(
        "--detector", choices=[k.name for k in KINDS if not k.per_recording], default=DEFAULT_DETECTOR, help=f"default detector in the card (default: {DEFAULT_DETECTOR})"
    )
    return parser


def add_parser(sub) -> argparse.ArgumentParser:
    """``soundsentry train``: registered in the entry-point group ``soundsentry.commands`` (pyproject)."""
    train = sub.add_parser("train", help="train a model bundle (needs the [train] extra)", add_help=True)
    return build_parser(train)


def run(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    from soundsentry.cli._common import out_in_the_way

    # Before anything slow: `enroll --out` and `train --out` treat an existing folder alike.
    problem = out_in_the_way(args.out, force=args.force)
    if problem:
        print(f"soundsentry train: {problem}", file=sys.stderr)
        return EXIT_USAGE

    # Only look for the packages: TensorFlow must first be imported through tf_compat.
    if any(find_spec(name) is None for name in ("tensorflow", "sklearn", "tf2onnx", "skl2onnx")):
        print('soundsentry train needs the [train] extra: pip install "soundsentry[train]"', file=sys.stderr)
        return EXIT_USAGE
    return _train(args)


def _train(args: argparse.Namespace) -> int:
    # Heavy imports only now that the arguments are known to be valid.
    from .data import read_clips_csv, scan_folder, split_clips
    from .pipeline import TrainConfig, train_bundle

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.data.suffix.lower() == ".csv":
        clips = read_clips_csv(args.data)
    else:
        clips = scan_folder(args.data, machine_type=args.machine_type)
    split = split_clips(
        clips,
        machine_type=args.machine_type,
        test_machines=tuple(args.test_machine),
        validation_fraction=args.validation_fraction,
        seed=args.seed,
    )
    if args.max_train_clips:
        split.train = split.train[: args.max_train_clips]
    config = TrainConfig(
        name=args.name or args.machine_type,
        machine_type=args.machine_type,
        epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        all_channels=not args.channel0_only,
        center=args.center,
        window_frames=args.window_frames,
        window_hop_frames=max(1, args.window_frames // 4),
        train_hop_frames=max(1, args.window_frames // 16),
        latent_dim=args.latent_dim,
        default_detector=args.detector,
    )
    card = train_bundle(config, split, args.out)
    evaluation = card.get("evaluation")
    print(f"wrote {args.out}")
    if evaluation:
        for name in card["detectors"]:
            e = evaluation[name]
            if "auc" in e:
                print(
                    f"{name}: AUC {e['auc']:.3f}  pAUC {e['pauc_fpr_0.1']:.3f}  F1 {e['f1']:.3f} "
                    f"on {evaluation['n_normal']} normal / {evaluation['n_abnormal']} abnormal held-out clips"
                )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
