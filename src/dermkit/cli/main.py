"""The ``dermkit`` command: a thin argparse front over the library.

Each sub-command lives in its own module exposing ``register(subparsers)``, which adds
its parser and sets ``handler`` (a function ``(args) -> int``). Errors a user can cause
(:class:`~dermkit.errors.DermkitError`) end in a one-line message and exit code 2;
``--debug`` shows the traceback instead, and TensorFlow's start-up noise (CUDA, absl
and CPU-feature lines), which is otherwise hidden (see :mod:`dermkit.cli.quiet`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import traceback
from collections.abc import Sequence

from dermkit import __version__
from dermkit.errors import DermkitError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

COMMAND_MODULES: tuple[str, ...] = (
    "dermkit.cli.data_cmd",
    "dermkit.cli.plugins_cmd",
    "dermkit.cli.train_cmd",
    "dermkit.cli.refit_cmd",
    "dermkit.cli.demo_cmd",
    "dermkit.cli.evaluate_cmd",
    "dermkit.cli.predict_cmd",
    "dermkit.cli.compare_cmd",
    "dermkit.cli.export_cmd",
    "dermkit.cli.gan_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dermkit",
        description="Train and evaluate classifiers of dermatoscopic skin-lesion images.",
    )
    parser.add_argument("--version", action="version", version=f"dermkit {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show full tracebacks instead of one-line errors, and TensorFlow's start-up log",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    from dermkit.cli.quiet import quiet_tensorflow

    try:
        with contextlib.nullcontext() if args.debug else quiet_tensorflow():
            return int(handler(args))
    except DermkitError as error:
        if args.debug:
            traceback.print_exc()
        print(f"dermkit: error: {error.render()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dermkit: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"dermkit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
