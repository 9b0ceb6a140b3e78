"""The training driver: data, model, optimiser, epochs, validation, checkpoints, resume.

``fit`` runs in one process or, under ``torchrun``, in every DDP rank (rank 0 alone
writes files). A run folder holds ``config.yaml`` (the resolved config),
``metrics.jsonl``, ``last.pt`` (after every epoch), ``best.pt`` (best validation SSIM)
and ``tb/`` when TensorBoard is installed. ``resume=True`` continues from ``last.pt``
exactly: same weights, optimiser/scheduler/scaler state, data order, masks and RNG
streams, so the losses that follow equal those of an uninterrupted run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mrirecon.train.checkpoint import (
    load_checkpoint,
    load_state_strict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from mrirecon.train.config import TrainConfig, config_to_dict, save_config
from mrirecon.train.data import (
    base_dataset,
    build_datasets,
    split_volumes,
    train_loader,
    val_loader,
)
from mrirecon.train.logs import MetricsLog, TensorBoard
from mrirecon.train.loop import NonFiniteLossError, evaluate, evaluate_zero_filled, train_one_epoch
from mrirecon.train.losses import build_loss
from mrirecon.train.optim import build_optimizer, build_scheduler
from mrirecon.train.runtime import Runtime, barrier, setup_runtime, teardown

__all__ = ["FitResult", "fit"]


@dataclass
class FitResult:
    """What a finished run produced."""

    run_dir: Path
    epochs: int
    global_step: int
    best_ssim: float | None
    val: dict[str, float] = field(default_factory=dict)
    zero_filled: dict[str, float] = field(default_factory=dict)


def fit(
    cfg: TrainConfig,
    data_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    val_root: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> FitResult:
    """Train a U-Net as ``cfg`` says and write the run folder.

    Args:
        cfg: the resolved config.
        data_root: folder of training .h5 files (or with train/ and val/ sub-folders).
        out_dir: the run folder (created; must not already hold a run unless resuming).
        val_root: folder of validation .h5 files (optional, see
            :func:`mrirecon.train.data.split_volumes`).
        resume: continue the run in ``out_dir`` from its ``last.pt``.

    Returns:
        :class:`FitResult`.

    Raises:
        ValueError: bad data, folders or checkpoints (one line naming the path).
        NonFiniteLossError: the loss diverged; ``last.pt`` keeps the last good epoch.
    """
    rt = setup_runtime(cfg.run)
    try:
        return _fit(cfg, rt, Path(data_root), Path(out_dir), val_root, resume)
    finally:
        teardown(rt)


def _gather(obj: Any, rt: Runtime) -> list[Any]:
    if not rt.distributed:
        return [obj]
    out: list[Any] = [None] * rt.world_size
    dist.all_gather_object(out, obj)
    return out


def _say(rt: Runtime, msg: str) -> None:
    if rt.is_main:
        print(msg, file=sys.stderr, flush=True)


def _fit(
    cfg: TrainConfig,
    rt: Runtime,
    data_root: Path,
    run_dir: Path,
    val_root: str | os.PathLike[str] | None,
    resume: bool,
) -> FitResult:
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    ckpt = load_checkpoint(last_path) if resume else None
    if not resume and last_path.exists():
        raise ValueError(
            f"{run_dir}: already holds a run (last.pt); use --resume {run_dir} or another --out"
        )
    train_vols, val_vols = split_volumes(data_root, val_root, cfg.data.val_fraction)
    for v in val_vols:
        if v.target_key is None:
            raise ValueError(f"{v.path}: validation files need a target ({v.fname} has none)")
    if cfg.model.in_chans != 1 or cfg.model.out_chans != 1:
        raise ValueError(
            "model.in_chans/out_chans: the U-Net data transform yields 1-channel magnitude "
            f"images, got {cfg.model.in_chans}/{cfg.model.out_chans}"
        )
    if rt.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
    barrier(rt)
    log = MetricsLog(run_dir / "metrics.jsonl" if rt.is_main else None)
    tb = TensorBoard(run_dir / "tb" if rt.is_main else None, cfg.run.tensorboard)

    train_ds, val_ds = build_datasets(cfg, train_vols, val_vols)
    loader_gen = torch.Generator().manual_seed(cfg.run.seed * 7919 + rt.rank)
    loader, sampler = train_loader(train_ds, cfg, rt, loader_gen)
    vloader = val_loader(val_ds, cfg, rt) if val_ds is not None else None

    torch.manual_seed(cfg.run.seed + rt.rank)  # the dropout stream of this rank
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed)  # identical initial weights on every rank
        net = cfg.model.build()
    if ckpt is not None:
        load_state_strict(net, ckpt["model"], last_path)
    fmt = torch.channels_last if rt.channels_last else torch.contiguous_format
    net = net.to(rt.device, memory_format=fmt)
    optimizer = build_optimizer(net.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.sched, len(loader), cfg.run.epochs)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)

    start_epoch, step, best = 0, 0, None
    if ckpt is not None:
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"{last_path}: optimiser/scheduler state does not fit this config ({exc})"
            ) from None
        start_epoch, step, best = ckpt["epoch"] + 1, ckpt["step"], ckpt.get("best_ssim")
        rngs = ckpt.get("rng", [])
        if rt.rank < len(rngs):
            set_rng_state(rngs[rt.rank], loader_gen)

    fwd = torch.compile(net) if rt.compile else net
    if rt.distributed:
        ids = [rt.local_rank] if rt.device.type == "cuda" else None
        train_model: torch.nn.Module = DistributedDataParallel(fwd, device_ids=ids)
    else:
        train_model = fwd
    loss_fn = build_loss(cfg.loss)

    zf = {}
    if val_ds is not None:
        zf = evaluate_zero_filled(val_ds, rt, cfg.data.num_workers).as_dict("zf")
    log.write(
        "start",
        resumed=resume,
        start_epoch=start_epoch,
        world_size=rt.world_size,
        device=str(rt.device),
        amp=str(rt.amp_dtype),
        train_slices=len(train_ds),
        val_volumes=len(val_ds.volumes) if val_ds is not None else 0,
        config=config_to_dict(cfg),
        **zf,
    )
    _say(
        rt,
        f"run {run_dir}: {len(train_ds)} training slices, "
        f"{len(val_ds.volumes) if val_ds else 0} validation volumes, device {rt.device} x{rt.world_size}",
    )
    val_dict: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.run.epochs):
        base_dataset(train_ds).set_epoch(epoch)
        sampler.set_epoch(epoch)
        try:
            res = train_one_epoch(
                train_model,
                loader,
                optimizer,
                scheduler,
                scaler,
                loss_fn,
                rt,
                epoch=epoch,
                global_step=step,
                grad_clip=cfg.optim.grad_clip,
                log=log,
                tb=tb,
                log_every=cfg.run.log_every,
                show_progress=cfg.run.progress,
            )
        except NonFiniteLossError as exc:
            log.write("error", epoch=epoch, message=str(exc))
            kept = (
                f"last good checkpoint {last_path} is unchanged"
                if last_path.exists()
                else "no checkpoint was written yet"
            )
            raise NonFiniteLossError(f"{exc}; stopping ({kept})") from None
        step = res.global_step
        val = None
        if vloader is not None and (
            (epoch + 1) % cfg.run.val_every == 0 or epoch + 1 == cfg.run.epochs
        ):
            val = evaluate(fwd, vloader, rt, cfg.run.num_log_images if rt.is_main else 0)
            val_dict = val.as_dict("val")
        is_best = val is not None and (best is None or val.ssim > best)
        if is_best:
            best = val.ssim
        rngs = _gather(rng_state(loader_gen), rt)
        if rt.is_main:
            state = {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "step": step,
                "best_ssim": best,
                "rng": rngs,
                "world_size": rt.world_size,
                "config": config_to_dict(cfg),
                "data_root": str(data_root),
                "val_root": None if val_root is None else str(val_root),
                "val": val.as_dict("val") if val is not None else {},
            }
            save_checkpoint(last_path, state)
            if is_best:
                save_checkpoint(best_path, state)
            rec = {
                "train_loss": res.loss,
                "grad_norm": res.grad_norm,
                "seconds": res.seconds,
                "slices_per_s": res.slices / max(res.seconds, 1e-9),
                "lr": optimizer.param_groups[0]["lr"],
            }
            if val is not None:
                rec.update(val.as_dict("val"))
            log.write("epoch", epoch=epoch, step=step, best=is_best, **rec, **zf)
            tb.scalars({f"epoch/{k}": v for k, v in rec.items() if isinstance(v, float)}, step)
            for name, grid in val.images if val is not None else []:
                tb.image(f"val/{name}", grid, step)
            vtxt = (
                f"  val SSIM {val.ssim:.4f} PSNR {val.psnr:.2f} (zero-filled SSIM {zf.get('zf_ssim', float('nan')):.4f})"
                if val
                else ""
            )
            _say(
                rt,
                f"epoch {epoch + 1}/{cfg.run.epochs}  loss {res.loss:.4g}{vtxt}  {res.seconds:.1f} s",
            )
        barrier(rt)
    tb.close()
    return FitResult(run_dir, cfg.run.epochs, step, best, val_dict, zf)
