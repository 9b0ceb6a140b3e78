"""``mrirecon cs tune --data DIR``: tune the CS lambda per acceleration into a YAML config.

Reconstructing a folder with CS is ``mrirecon reconstruct --method cs [--cs-config FILE]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrirecon.data.masks import MASKS, pair_center_fractions


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``cs`` subcommand."""
    p = sub.add_parser("cs", help="compressed-sensing baseline utilities (lambda tuning)")
    csub = p.add_subparsers(dest="cs_command", metavar="CS_COMMAND")
    csub.required = True
    t = csub.add_parser(
        "tune",
        help="search lambda for best mean SSIM on validation slices; write a YAML config",
    )
    t.add_argument("--data", type=Path, required=True, help="folder of fastMRI files with targets")
    t.add_argument(
        "--out", type=Path, default=Path("configs/cs_tuned.yaml"), help="YAML file to write"
    )
    t.add_argument("--config", type=Path, default=None, help="base CS YAML config")
    t.add_argument("--mask-type", choices=sorted(MASKS), default="random")
    t.add_argument("--accelerations", type=float, nargs="+", default=[4.0, 8.0])
    t.add_argument(
        "--center-fractions",
        type=float,
        nargs="+",
        default=[0.08, 0.04],
        help="one per acceleration, or one for all",
    )
    t.add_argument("--slices", type=int, default=3, help="central slices per volume")
    t.add_argument("--volumes", type=int, default=4, help="at most this many volumes")
    t.add_argument("--lams", type=float, nargs="+", default=None, help="initial lambda grid")
    t.add_argument("--refine", type=int, default=2, help="grid refinement rounds")
    t.add_argument("--iterations", type=int, default=None, help="override solver iterations")
    t.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    """Tune lambda per acceleration and write the tuned config."""
    from mrirecon.cs.config import load_cs_config, save_cs_config
    from mrirecon.cs.tune import DEFAULT_GRID, tune_lambda, tuned_config, tuning_record

    sets = [] if args.iterations is None else [f"iterations={args.iterations}"]
    config = load_cs_config(args.config, sets, flag="--iterations")
    cfs = pair_center_fractions(args.accelerations, args.center_fractions)
    pairs = list(zip(cfs, (float(a) for a in args.accelerations), strict=True))

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    result = tune_lambda(
        args.data,
        config,
        pairs=pairs,
        mask_type=args.mask_type,
        slices_per_volume=args.slices,
        max_volumes=args.volumes,
        grid=args.lams or DEFAULT_GRID,
        refine=args.refine,
        device=args.device,
        log=log,
    )
    tuned = tuned_config(config, result)
    save_cs_config(tuned, args.out, extra=tuning_record(result, args.data, pairs, args.mask_type))
    for acc, lam in sorted(result.lams.items()):
        best = result.scores[acc][lam]
        print(
            f"{acc:g}x: lambda {lam:.4g}  SSIM {best:.4f}  "
            f"(zero-filled {result.zero_filled[acc]:.4f})"
        )
    print(f"wrote {args.out}")
    return 0
