"""``soundsentry export-onnx``: one self-contained ONNX file of a bundle's whole pipeline (needs [export]).

A subcommand of ``soundsentry`` through the entry-point group ``soundsentry.commands``: the
runtime's CLI never imports this package itself. Declaring the arguments imports nothing heavy;
``onnx`` is imported when the command runs.
Exit status: 0 written, 2 bad command line or the [export] extra missing, 4 model error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]

from soundsentry.exit_codes import EXIT_OK, EXIT_USAGE

HELP = "write one ONNX file: 16 kHz samples in, window scores and clip score out (needs [export])"


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "export-onnx",
        help=HELP,
        description="Write one self-contained ONNX graph of a bundle's whole pipeline: 16 kHz mono float32 "
        "samples in ('samples'), window scores, clip score and verdict out ('window_scores', 'score', "
        "'abnormal'), for programs that run onnxruntime without Python. See docs/onnx_pipeline.md.",
    )
    parser.add_argument("out", type=Path, metavar="OUT.onnx", help="the file to write")
    parser.add_argument("-m", "--model", default="fan", help="shipped model name or bundle folder (default: fan)")
    parser.add_argument("--detector", help="detector (default: the model's)")
    parser.add_argument("--threshold", type=float, help="threshold of the 'abnormal' output (default: the model's)")
    parser.add_argument(
        "--fft",
        choices=["auto", "matmul", "dft"],
        default="auto",
        help="spectra with ONNX's DFT or a DFT matrix (default auto: DFT for power-of-two sizes)",
    )
    parser.add_argument(
        "--precision",
        choices=["float64", "float32"],
        default="float64",
        help="arithmetic of the front end (default float64, the runtime's)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    if find_spec("onnx") is None:
        print('soundsentry export-onnx needs the [export] extra: pip install "soundsentry[export]"', file=sys.stderr)
        return EXIT_USAGE

    from soundsentry.cli._common import load_model_with_detector

    from .onnx_pipeline import export_pipeline

    model = load_model_with_detector(args.model, args.detector)
    if isinstance(model, int):  # the exit status; why was printed
        return model
    try:
        out = export_pipeline(
            model, args.out, detector=args.detector, threshold=args.threshold, fft=args.fft, precision=args.precision
        )
    except ValueError as exc:  # a kind without an ONNX builder
        print(f"soundsentry export-onnx: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"soundsentry export-onnx: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    detector = args.detector or model.default_detector
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): model {model.name}, detector {detector}; "
        "input 'samples' (float32, 16 kHz mono), outputs 'window_scores', 'score', 'abnormal'",
        file=sys.stderr,
    )
    return EXIT_OK
