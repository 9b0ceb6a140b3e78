"""``mrirecon compare --data DIR --checkpoint CKPT --accelerations 4 8 --out REPORT_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from mrirecon.cli.reconstruct import add_mask_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="zero-filled vs CS vs U-Net on identical masks: metrics.csv, summary.md, report.html",
        description="Reconstruct every file of the data folders with each method at each "
        "acceleration (same mask per file for all methods), score them against the targets "
        "and write metrics.csv, summary.md, figures/ and a self-contained report.html. "
        "Rerunning with the same --out reuses finished reconstructions.",
    )
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="folder(s) of fastMRI files with targets",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="U-Net checkpoint or run folder")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    add_mask_args(p, accelerations=(4.0, 8.0), center_fractions=())
    p.add_argument(
        "--methods",
        nargs="+",
        default=["zero-filled", "cs", "unet"],
        help="methods to compare, in report order (default: zero-filled cs unet)",
    )
    p.add_argument("--cs-config", type=Path, default=None, help="CS YAML config")
    p.add_argument(
        "--cs-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a CS setting (repeatable), e.g. --cs-set iterations=50",
    )
    p.add_argument(
        "--panels",
        nargs="+",
        default=[],
        metavar="FILE[:SLICE]",
        help="slices to draw (default: middle slice of the first file of each data folder)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--overwrite", action="store_true", help="redo finished reconstructions")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def parse_sets(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` strings (values parsed as YAML) as a dict."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--cs-set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def run(args: argparse.Namespace) -> int:
    from mrirecon import methods as _methods  # noqa: F401  (registers unet and cs)
    from mrirecon.compare import CompareConfig, fastmri_pairs, run_compare

    cfg = CompareConfig(
        data=tuple(args.data),
        out=args.out,
        checkpoint=args.checkpoint,
        accelerations=tuple(float(a) for a in args.accelerations),
        center_fractions=fastmri_pairs(args.accelerations, args.center_fractions),
        mask_kind=args.mask_type,
        seed=args.seed,
        methods=tuple(args.methods),
        device=args.device,
        cs_config=args.cs_config,
        cs_options=parse_sets(args.cs_set),
        panels=tuple(args.panels),
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    result = run_compare(cfg)
    print(result.summary)
    for what, why in result.failed:
        print(f"FAILED {what}: {why}", file=sys.stderr)
    print(f"metrics: {result.paths['metrics']}")
    print(f"report: {result.paths['html']}")
    return 0 if result.ok else 1
