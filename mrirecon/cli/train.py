"""``mrirecon train``: train a U-Net from a YAML config (single process or under torchrun).

Examples::

    mrirecon train --config configs/demo.yaml --data-root demo_data --out runs/demo
    mrirecon train --config configs/knee_singlecoil_4x.yaml --data-root knee/singlecoil_train \\
        --val-root knee/singlecoil_val --set optim.lr=3e-4 --set run.epochs=30
    mrirecon train --resume runs/demo --set run.epochs=20     # continue / extend a run
    torchrun --nproc_per_node=4 -m mrirecon train --config ... --data-root ...   # DDP
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mrirecon.train.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)

# Keys that may differ between a run's stored config and a resume request.
RESUME_MUTABLE = {
    "run.epochs",
    "run.progress",
    "run.tensorboard",
    "run.log_every",
    "data.num_workers",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a U-Net (configs/*.yaml; DDP under torchrun)",
        description="Train a U-Net on fastMRI-format data. Under torchrun every process runs "
        "this command and joins one DDP group (env:// init).",
    )
    p.add_argument("--config", type=Path, help="YAML config (see configs/)")
    p.add_argument(
        "--data-root",
        type=Path,
        help="folder of training .h5 files, or with train/ and val/ sub-folders "
        "(on --resume defaults to the run's own)",
    )
    p.add_argument("--val-root", type=Path, help="folder of validation .h5 files")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable), e.g. --set optim.lr=3e-4",
    )
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument(
        "--out", type=Path, metavar="RUN_DIR", help="run folder (default runs/<config>-<time>)"
    )
    p.set_defaults(func=run_train)


def _flat(cfg: TrainConfig) -> dict[str, object]:
    return {f"{s}.{k}": v for s, sec in config_to_dict(cfg).items() for k, v in sec.items()}


def resume_config(
    run_dir: Path, config: Path | None, overrides: list[str]
) -> tuple[TrainConfig, dict]:
    """The stored config of ``run_dir`` with overrides; a clear error if they change the run.

    Returns:
        (config, the checkpoint's data/val roots as a dict).
    """
    from mrirecon.train.checkpoint import config_of, load_checkpoint

    ckpt = load_checkpoint(run_dir / "last.pt")
    stored = config_of(ckpt, run_dir / "last.pt")
    if config is not None:
        requested = load_config(config, overrides)
    else:
        try:
            requested = config_from_dict(apply_overrides(config_to_dict(stored), overrides))
        except ValueError as exc:
            raise ValueError(f"--set: {exc}") from None
    a, b = _flat(stored), _flat(requested)
    changed = sorted(k for k in a if a[k] != b[k] and k not in RESUME_MUTABLE)
    if changed:
        diff = ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in changed[:5])
        raise ValueError(
            f"{run_dir}: --resume must keep the run's config, but these differ: {diff} "
            f"(only {', '.join(sorted(RESUME_MUTABLE))} may change)"
        )
    roots = {"data_root": ckpt.get("data_root"), "val_root": ckpt.get("val_root")}
    return requested, roots


def run_train(args: argparse.Namespace) -> int:
    from mrirecon.train.fit import fit

    if args.resume is not None:
        run_dir = args.resume
        if args.out is not None and args.out.resolve() != run_dir.resolve():
            raise ValueError("--out and --resume name different run folders; give only --resume")
        if not run_dir.is_dir():
            raise ValueError(f"{run_dir}: no such run folder")
        cfg, roots = resume_config(run_dir, args.config, args.overrides)
        data_root = args.data_root or (Path(roots["data_root"]) if roots["data_root"] else None)
        val_root = args.val_root or (Path(roots["val_root"]) if roots["val_root"] else None)
    else:
        cfg = load_config(args.config, args.overrides)
        data_root, val_root = args.data_root, args.val_root
        run_dir = args.out
        if run_dir is None:
            stem = args.config.stem if args.config else "default"
            run_dir = Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise ValueError(
                    "under torchrun give --out so that every rank uses the same run folder"
                )
    if data_root is None:
        raise ValueError("--data-root is required")
    if not data_root.is_dir():
        raise ValueError(f"{data_root}: no such data folder")
    if val_root is not None and not val_root.is_dir():
        raise ValueError(f"{val_root}: no such validation folder")
    res = fit(cfg, data_root, run_dir, val_root=val_root, resume=args.resume is not None)
    if int(os.environ.get("RANK", "0")) == 0:
        parts = [f"run folder: {res.run_dir}", f"epochs: {res.epochs}", f"steps: {res.global_step}"]
        if res.val:
            parts.append(f"val SSIM {res.val['val_ssim']:.4f} PSNR {res.val['val_psnr']:.2f}")
        if res.zero_filled:
            parts.append(
                f"zero-filled SSIM {res.zero_filled['zf_ssim']:.4f} PSNR {res.zero_filled['zf_psnr']:.2f}"
            )
        if res.best_ssim is not None:
            parts.append(f"best val SSIM {res.best_ssim:.4f} ({res.run_dir / 'best.pt'})")
        print("; ".join(parts))
    return 0


__all__ = ["register", "run_train", "resume_config"]
