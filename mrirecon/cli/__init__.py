"""The ``mrirecon`` command: a thin argparse front over the package's modules.

Each subcommand lives in its own module under ``mrirecon.cli`` and exposes
``register(subparsers)``; handlers return an exit code. Errors that users can fix
(bad files, bad options) are raised as ``ValueError``/``OSError`` and printed as one
line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mrirecon import __version__

# Subcommand modules, in the order --help lists them.
COMMANDS: tuple[str, ...] = (
    "data",
    "reconstruct",
    "evaluate",
    "train",
    "compare",
    "demo",
    "cs",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrirecon",
        description="Accelerated MRI reconstruction for fastMRI-format k-space.",
    )
    parser.add_argument("--version", action="version", version=f"mrirecon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"mrirecon.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("mrirecon: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"mrirecon {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)
