"""The ``mrirecon`` command: a thin argparse front over the package's modules.

Each subcommand lives in its own module under ``mrirecon.cli`` and exposes
``register(subparsers)``; handlers return an exit code and only wire options to the
package's functions. Errors that users can fix (bad files, options, configs,
checkpoints: :class:`~mrirecon.errors.MrireconError` and other ``ValueError``; ``OSError``)
are printed as one line, never a traceback. Any other exception is a bug: it keeps its
traceback, followed by a one-line hint to report it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
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
    "models",
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
    except (ValueError, OSError) as exc:  # MrireconError is a ValueError
        print(f"mrirecon {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print(
            f"mrirecon {args.command}: internal error (a bug in mrirecon {__version__}); "
            "please report it with the command line and the traceback above",
            file=sys.stderr,
        )
        return 2
    return int(code or 0)
