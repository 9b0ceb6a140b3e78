"""The ``mrirecon`` command: a thin argparse front over the package's modules.

Each subcommand lives in its own module under ``mrirecon.cli`` and exposes
``register(subparsers)``; handlers return an exit code and only wire options to the
package's functions. Start-up is kept short: a command module imports at its top only
what its options need (no torch, scipy or matplotlib; ``tests/test_startup.py``), and
only the command being run is registered in full. Warnings print as one line each.
Errors that users can fix (bad files, options, configs,
checkpoints: :class:`~mrirecon.errors.MrireconError` and other ``ValueError``; ``OSError``)
are printed as one line, never a traceback. Any other exception is a bug: it keeps its
traceback, followed by a one-line hint to report it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
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


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on a command line (the first word not an option), if known."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``mrirecon`` parser; with a known command in ``argv``, only that command's module
    is imported and registered in full (the others get a bare entry, so that errors and
    ``--help`` still name every command)."""
    chosen = _command(argv)
    parser = argparse.ArgumentParser(
        prog="mrirecon",
        description="Accelerated MRI reconstruction for fastMRI-format k-space.",
    )
    parser.add_argument("--version", action="version", version=f"mrirecon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        if chosen is None or name == chosen:
            importlib.import_module(f"mrirecon.cli.{name}").register(sub)
        else:
            sub.add_parser(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"mrirecon {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line
            code = args.func(args)
    except KeyboardInterrupt:
        print("mrirecon: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # MrireconError is a ValueError
        print(f"mrirecon {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        # A bug, not bad input: say so in one line, then let it surface with its traceback.
        print(
            f"mrirecon {args.command}: internal error (a bug in mrirecon {__version__}); "
            "please report it with the command line and the traceback below",
            file=sys.stderr,
        )
        raise
    return int(code or 0)
