"""``mrirecon reconstruct --method M --input DIR --output DIR``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import mrirecon.methods  # noqa: F401  (registers the unet and cs methods)
from mrirecon.data.masks import MASKS, MaskSpec, parse_pairs
from mrirecon.reconstruct import METHODS, ReconJob, reconstruct_folder


def add_mask_args(
    p: argparse.ArgumentParser, accelerations=(4.0,), center_fractions=(0.08,)
) -> None:
    """Mask options shared by reconstruct and compare."""
    p.add_argument("--mask-type", choices=sorted(MASKS), default="random")
    p.add_argument("--accelerations", type=float, nargs="+", default=list(accelerations))
    p.add_argument(
        "--center-fractions",
        type=float,
        nargs="+",
        default=list(center_fractions),
        help="one per acceleration, or one for all",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="mask seed; default: fastMRI's per-file validation seeding (comparable with published numbers)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct",
        help="reconstruct a folder of fastMRI files into submission-format .h5 files",
    )
    p.add_argument("--method", default="zero-filled", help="zero-filled, unet or cs")
    p.add_argument("--input", type=Path, required=True, help="folder of fastMRI .h5 files")
    p.add_argument("--output", type=Path, required=True, help="output folder")
    p.add_argument("--checkpoint", type=Path, default=None, help="U-Net checkpoint (method unet)")
    p.add_argument("--cs-config", type=Path, default=None, help="CS YAML config (method cs)")
    add_mask_args(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--overwrite", action="store_true", help="redo files already reconstructed")
    p.add_argument(
        "--format",
        choices=["h5", "nifti"],
        default="h5",
        help="h5: fastMRI submission files (default); nifti: .nii.gz (needs nibabel)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def mask_spec(args: argparse.Namespace) -> MaskSpec:
    pairs = parse_pairs(args.center_fractions, args.accelerations)
    return MaskSpec(args.mask_type, tuple(c for c, _ in pairs), tuple(a for _, a in pairs))


def method_options(args: argparse.Namespace) -> dict:
    if args.method == "unet":
        if args.checkpoint is None:
            raise ValueError("--method unet needs --checkpoint")
        return {"checkpoint": args.checkpoint}
    if args.method == "cs" and args.cs_config is not None:
        return {"config_path": args.cs_config}
    return {}


def run(args: argparse.Namespace) -> int:
    if args.method not in METHODS:
        raise ValueError(f"unknown method {args.method!r}; choose from {sorted(METHODS)}")
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = args.device
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # torchrun: one GPU per rank
    job = ReconJob(
        input_dir=args.input,
        output_dir=args.output,
        method=args.method,
        mask=mask_spec(args),
        seed=args.seed,
        device=device,
        overwrite=args.overwrite,
        rank=rank,
        world_size=world,
        method_options=method_options(args),
        progress=not args.no_progress,
    )
    report = reconstruct_folder(job, writer=mrirecon.methods.output_writer(args.format, args.input))
    print(
        f"{len(report.written)} written, {len(report.skipped)} already complete, "
        f"{len(report.failed)} failed; {report.slices} slices in {report.seconds:.1f} s -> {args.output}"
    )
    for path, reason in report.failed:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    return 0 if report.ok else 1
