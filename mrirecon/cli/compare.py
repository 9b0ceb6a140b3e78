"""``mrirecon compare --data DIR --checkpoint CKPT --accelerations 4 8 --out REPORT_DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrirecon.cli.reconstruct import add_mask_args, add_method_args, mask_spec, method_options
from mrirecon.methods import method_names, specs_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="every method on identical masks: metrics.csv, summary.md, report.html",
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
    p.add_argument("--out", type=Path, required=True, help="report folder")
    add_method_args(p, many_checkpoints=True)
    add_mask_args(p, accelerations=(4.0, 8.0))
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help=f"methods to compare, in report order, from {', '.join(method_names())}; learned "
        "methods take the --checkpoint files in order (default: zero-filled, cs and one "
        "learned method per checkpoint, of the kind it holds)",
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


def run(args: argparse.Namespace) -> int:
    from mrirecon.compare import CompareConfig, run_compare
    from mrirecon.methods import CSSpec

    options = method_options(args)
    # Like for like: unless told, every method takes the floor CS's settings give it.
    floor = CSSpec.from_options(options).config.noise_floor
    cfg = CompareConfig(
        data=tuple(args.data),
        out=args.out,
        methods=specs_for(args.methods, options, args.checkpoint),
        mask=mask_spec(args),
        seed=args.seed,
        device=args.device,
        panels=tuple(args.panels),
        overwrite=args.overwrite,
        progress=not args.no_progress,
        noise_floor=floor,
    )
    result = run_compare(cfg)
    print(result.summary)
    for path, why in result.ignored:
        print(f"SKIPPED {path}: {why}", file=sys.stderr)
    for what, why in result.failed:
        print(f"FAILED {what}: {why}", file=sys.stderr)
    print(f"metrics: {result.paths['metrics']}")
    print(f"report: {result.paths['html']}")
    return 0 if result.ok else 1
