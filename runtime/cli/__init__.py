"""The ``soundsentry`` command line: one module per subcommand.

Arguments are parsed before NumPy or ONNX Runtime are imported, so ``--help`` and usage
errors are instant. Exit status of ``score``: see :data:`~soundsentry.exit_codes.EXIT_CODES`.

Subcommands of other packages (``soundsentry train`` from the training package) are found
through the entry-point group ``soundsentry.commands``: each entry point names a module with
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``. The runtime
never imports those packages itself.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from importlib import metadata

from ..exit_codes import EXIT_CODES, EXIT_OK, EXIT_USAGE
from . import enroll, evaluate, info, listen, score, watch
from ._common import epilog, one_blas_thread

__all__ = ["ENTRY_POINT_GROUP", "EXIT_CODES", "build_parser", "main"]

log = logging.getLogger(__name__)

#: Entry-point group of subcommands added by other packages.
ENTRY_POINT_GROUP = "soundsentry.commands"

# Kept for scripts and tests that called them by these names.
_one_blas_thread = one_blas_thread


def _plugins() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    """The parser and each subcommand's handler."""
    parser = argparse.ArgumentParser(
        prog="soundsentry",
        description="Flag abnormal sounds of industrial machines.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(),
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    score.add_parser(sub)
    evaluate.add_parser(sub)
    enroll.add_parser(sub)
    info.add_models_parser(sub)
    info.add_info_parser(sub)
    watch.add_parser(sub)
    listen.add_parser(sub)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "score": score.run,
        "evaluate": evaluate.run,
        "enroll": enroll.run,
        "models": info.run_models,
        "info": info.run_info,
        "watch": watch.run,
        "listen": listen.run,
    }
    for ep in _plugins():
        if ep.name in handlers:
            continue  # a plugin cannot replace a built-in command
        try:
            module = ep.load()  # argparse only: a plugin imports its heavy parts in run()
        except Exception as exc:  # a broken plugin must not break the other commands
            log.debug("soundsentry command %r could not be loaded: %s", ep.name, exc)
            continue
        module.add_parser(sub)
        handlers[ep.name] = module.run
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    one_blas_thread()
    if args.version:
        from .. import __version__

        print(f"soundsentry {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
