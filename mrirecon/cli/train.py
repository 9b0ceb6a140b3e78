"""``mrirecon train``: train a U-Net from a YAML config (single process or under torchrun).

Examples::

    mrirecon train --config configs/demo.yaml --data-root demo_data --out runs/demo
    mrirecon train --config configs/knee_singlecoil_4x.yaml --data-root knee/singlecoil_train \\
        --val-root knee/singlecoil_val --set optim.lr=3e-4 --set run.epochs=30
    mrirecon train --resume runs/demo --set run.epochs=20     # continue / extend a run
    mrirecon train --config ... --data-root ... --init pretrained:unet-generalist  # fine-tune
    torchrun --nproc_per_node=4 -m mrirecon train --config ... --data-root ...   # DDP
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mrirecon.errors import ConfigError

if TYPE_CHECKING:  # fit pulls in the data loader stack; import it only to run
    from mrirecon.train.fit import FitResult


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="train a U-Net or E2E-VarNet (configs/*.yaml; DDP under torchrun)",
        description="Train a U-Net or an E2E-VarNet (model.kind) on fastMRI-format data. "
        "Under torchrun every process runs this command and joins one DDP group (env:// init).",
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
        "--init",
        type=Path,
        metavar="CKPT",
        help="start from the weights of a checkpoint, run folder or pretrained:NAME "
        "(fine-tuning: fresh optimiser, epoch 0; its model must match the config)",
    )
    p.add_argument(
        "--out", type=Path, metavar="RUN_DIR", help="run folder (default runs/<config>-<time>)"
    )
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Resolve the config and folders from the arguments and run :func:`fit`."""
    from mrirecon.device import torchrun_env
    from mrirecon.train.config import load_train_config
    from mrirecon.train.fit import fit
    from mrirecon.train.resume import resume_config

    env = torchrun_env()
    if args.resume is not None:
        run_dir = args.resume
        if args.out is not None and args.out.resolve() != run_dir.resolve():
            raise ConfigError("--out and --resume name different run folders; give only --resume")
        if not run_dir.is_dir():
            raise ConfigError(f"--resume {run_dir}: no such run folder")
        plan = resume_config(run_dir, args.config, args.overrides)
        cfg = plan.config
        data_root = args.data_root or plan.data_root
        val_root = args.val_root or plan.val_root
    else:
        cfg = load_train_config(args.config, args.overrides)
        data_root, val_root = args.data_root, args.val_root
        run_dir = args.out
        if run_dir is None:
            if env.world_size > 1:
                raise ConfigError(
                    "under torchrun give --out so that every rank uses the same run folder"
                )
            stem = args.config.stem if args.config else "default"
            run_dir = Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if data_root is None and cfg.data.corpus_slices == 0:
        raise ConfigError("--data-root is required (unless data.corpus_slices streams the corpus)")
    if data_root is not None and not data_root.is_dir():
        raise ConfigError(f"--data-root {data_root}: no such data folder")
    if val_root is not None and not val_root.is_dir():
        raise ConfigError(f"--val-root {val_root}: no such validation folder")
    resume = args.resume is not None
    res = fit(cfg, data_root, run_dir, val_root=val_root, resume=resume, init=args.init)
    if env.rank == 0:
        print(_summary(res))
    return 0


def _summary(res: FitResult) -> str:
    """The one-line result of a run."""
    parts = [f"run folder: {res.run_dir}", f"epochs: {res.epochs}", f"steps: {res.global_step}"]
    if res.val:
        parts.append(f"val SSIM {res.val['val_ssim']:.4f} PSNR {res.val['val_psnr']:.2f}")
    if res.zero_filled:
        zf = res.zero_filled
        parts.append(f"zero-filled SSIM {zf['zf_ssim']:.4f} PSNR {zf['zf_psnr']:.2f}")
    if res.best_ssim is not None:
        parts.append(f"best val SSIM {res.best_ssim:.4f} ({res.run_dir / 'best.pt'})")
    return "; ".join(parts)


__all__ = ["register", "run_train"]
