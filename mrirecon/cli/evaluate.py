"""``mrirecon evaluate --targets DIR --predictions DIR [--csv FILE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrirecon.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score reconstructions against targets (fastMRI metrics)")
    p.add_argument(
        "--targets", type=Path, required=True, help="folder of fastMRI files with targets"
    )
    p.add_argument("--predictions", type=Path, required=True, help="folder of reconstructions")
    p.add_argument("--csv", type=Path, default=None, help="write the per-volume table here")
    p.add_argument(
        "--challenge",
        choices=["singlecoil", "multicoil"],
        default=None,
        help="force the target dataset (default: rss if present, else esc)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrirecon.evaluate import evaluate_folders, format_summary, write_scores_csv

    key = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss", None: None}[
        args.challenge
    ]
    result = evaluate_folders(args.targets, args.predictions, target_key=key)
    for name in result.missing:
        print(f"MISSING prediction for {args.targets / name}", file=sys.stderr)
    for name in result.extra:
        print(f"EXTRA prediction without a target: {args.predictions / name}", file=sys.stderr)
    for path, reason in result.skipped:
        print(f"SKIPPED {path}: {reason}", file=sys.stderr)
    for name, reason in result.errors:
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    if not result.scores:
        raise DataError(f"{args.predictions}: nothing could be scored")
    if args.csv:
        write_scores_csv(args.csv, result.scores)
        print(f"per-volume table: {args.csv}")
    print(format_summary(result.scores))
    return 0 if result.ok else 1
