"""``mrirecon reconstruct --method M --input DIR --output DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrirecon.data.masks import MASKS, MaskSpec
from mrirecon.io import WRITER_FORMATS
from mrirecon.methods import MethodOptions, make_spec, method_names


def add_mask_args(p: argparse.ArgumentParser, accelerations: tuple[float, ...] = (4.0,)) -> None:
    """Mask options shared by reconstruct and compare."""
    p.add_argument("--mask-type", choices=sorted(MASKS), default="random")
    p.add_argument("--accelerations", type=float, nargs="+", default=list(accelerations))
    p.add_argument(
        "--center-fractions",
        type=float,
        nargs="+",
        default=[],
        help="one per acceleration, or one for all (default: fastMRI's 0.32 / acceleration)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="mask seed; default: fastMRI's per-file validation seeding (comparable with published numbers)",
    )


def add_method_args(p: argparse.ArgumentParser, many_checkpoints: bool = False) -> None:
    """Options that method specs take (each method uses what it needs)."""
    if many_checkpoints:
        p.add_argument(
            "--checkpoint",
            type=Path,
            nargs="+",
            default=[],
            help="checkpoints, run folders or pretrained:NAME, one per learned method",
        )
    else:
        p.add_argument(
            "--checkpoint",
            type=Path,
            default=None,
            help="checkpoint, run folder or pretrained:NAME (learned methods)",
        )
    p.add_argument("--cs-config", type=Path, default=None, help="CS YAML config (method cs)")
    p.add_argument(
        "--cs-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a CS setting (repeatable), e.g. --cs-set iterations=50",
    )
    if many_checkpoints:  # compare: one setting for every method, like for like
        floor_help = (
            "raise every method's output but zero-filled's to the noise floor of the target, "
            "estimated from the k-space (default: CS's noise_floor setting, on unless "
            "--cs-set noise_floor=false), or none (--no-noise-floor)"
        )
    else:
        floor_help = (
            "raise the output to the noise floor of the target, estimated from the k-space "
            "(default: on for CS, as its noise_floor setting; off for learned methods)"
        )
    p.add_argument(
        "--noise-floor", action=argparse.BooleanOptionalAction, default=None, help=floor_help
    )


def mask_spec(args: argparse.Namespace) -> MaskSpec:
    return MaskSpec.paired(args.mask_type, args.accelerations, args.center_fractions)


def method_options(args: argparse.Namespace) -> MethodOptions:
    one = args.checkpoint if not isinstance(args.checkpoint, list) else None
    return MethodOptions(one, args.cs_config, tuple(args.cs_set), noise_floor=args.noise_floor)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct",
        help="reconstruct a folder of fastMRI files into submission-format .h5 files",
        description="Reconstruct every .h5 file of --input into --output. Finished outputs made "
        "with the same settings are kept; outputs made with other settings stop the run "
        "(use --overwrite to redo them).",
    )
    p.add_argument(
        "--method",
        default=None,
        help=f"one of {', '.join(method_names())} (default: the kind of model --checkpoint "
        "holds, else zero-filled)",
    )
    p.add_argument("--input", type=Path, required=True, help="folder of fastMRI .h5 files")
    p.add_argument("--output", type=Path, required=True, help="output folder (not inside --input)")
    add_method_args(p)
    add_mask_args(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--overwrite", action="store_true", help="redo files already reconstructed")
    p.add_argument(
        "--format",
        choices=list(WRITER_FORMATS),
        default="h5",
        help="h5: fastMRI submission files (default); nifti: .nii.gz (needs nibabel)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrirecon.device import torchrun_env
    from mrirecon.methods.learned import checkpoint_kind
    from mrirecon.reconstruct import ReconJob, reconstruct_folder

    method = args.method
    if method is None:
        method = checkpoint_kind(args.checkpoint) if args.checkpoint else "zero-filled"
    env = torchrun_env()
    device = args.device
    if device == "cuda" and env.world_size > 1:
        device = f"cuda:{env.local_rank}"  # torchrun: one GPU per rank
    job = ReconJob(
        input_dir=args.input,
        output_dir=args.output,
        method=make_spec(method, method_options(args)),
        mask=mask_spec(args),
        seed=args.seed,
        device=device,
        overwrite=args.overwrite,
        rank=env.rank,
        world_size=env.world_size,
        output_format=args.format,
        progress=not args.no_progress,
    )
    report = reconstruct_folder(job)
    print(
        f"{len(report.written)} written, {len(report.skipped)} already complete, "
        f"{len(report.failed)} failed; {report.slices} slices in {report.seconds:.1f} s -> {args.output}"
    )
    for path, reason in report.ignored:
        print(f"SKIPPED {path}: {reason}", file=sys.stderr)
    for path, reason in report.failed:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    return 0 if report.ok else 1
