"""The training driver: data, model, optimiser, epochs, validation, checkpoints, resume.

``fit`` runs in one process or, under ``torchrun``, in every DDP rank (rank 0 alone
writes files). A run folder holds ``config.yaml`` (the resolved config),
``metrics.jsonl``, ``last.pt`` (after every epoch), ``best.pt`` (best validation SSIM)
and ``tb/`` when TensorBoard is installed. ``init`` starts a new run from another
checkpoint's weights (fine-tuning: fresh optimiser, epoch 0), e.g. a shipped model. ``resume=True`` continues from ``last.pt``
exactly: same weights, optimiser/scheduler/scaler state, data order, masks and RNG
streams, so the losses that follow equal those of an uninterrupted run.

A run has three named steps: :func:`_prepare` (data, loaders, model, optimiser),
:func:`_restore` (a checkpoint's state, on resume) and :func:`_run_epochs`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from mrirecon.data.dataset import SliceDataset
from mrirecon.errors import CheckpointError, ConfigError, DataError
from mrirecon.io import remove_stale_temps
from mrirecon.models.unet import UnetConfig
from mrirecon.train.checkpoint import (
    Checkpoint,
    RngState,
    load_checkpoint,
    load_state_strict,
    save_checkpoint,
)
from mrirecon.train.config import TrainConfig, save_train_config, train_config_to_dict
from mrirecon.train.data import (
    base_dataset,
    build_datasets,
    split_data,
    train_loader,
    val_loader,
)
from mrirecon.train.logs import MetricsLog, TensorBoard
from mrirecon.train.loop import (
    EpochResult,
    NonFiniteLossError,
    TrainContext,
    ValMetrics,
    train_one_epoch,
    validate,
    validate_zero_filled,
)
from mrirecon.train.losses import build_loss
from mrirecon.train.optim import build_optimizer, build_scheduler, trainable_parameters
from mrirecon.train.resume import init_weights
from mrirecon.train.runtime import Runtime, barrier, setup_runtime, teardown

__all__ = ["FitResult", "fit"]


@dataclass(frozen=True)
class FitResult:
    """What a finished run produced."""

    run_dir: Path
    epochs: int
    global_step: int
    best_ssim: float | None
    val: dict[str, float] = field(default_factory=dict)
    zero_filled: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Run:
    """The parts of a prepared run (unwrapped model; the optimiser owns its parameters)."""

    cfg: TrainConfig
    rt: Runtime
    run_dir: Path
    data_root: Path | None
    val_root: Path | None
    train_ds: SliceDataset | Subset
    val_ds: SliceDataset | None
    loader: DataLoader
    sampler: DistributedSampler
    vloader: DataLoader | None
    loader_gen: torch.Generator
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    log: MetricsLog
    tb: TensorBoard

    @property
    def last_path(self) -> Path:
        """The run's last.pt."""
        return self.run_dir / "last.pt"


@dataclass(frozen=True)
class _Position:
    """Where a run stands: the next epoch, optimiser steps so far, best validation SSIM."""

    epoch: int = 0
    step: int = 0
    best: float | None = None


def fit(
    cfg: TrainConfig,
    data_root: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    val_root: str | os.PathLike[str] | None = None,
    resume: bool = False,
    init: str | os.PathLike[str] | None = None,
) -> FitResult:
    """Train a U-Net or VarNet (``model.kind``) as ``cfg`` says and write the run folder.

    Args:
        cfg: the resolved config.
        data_root: folder of training .h5 files (or with train/ and val/ sub-folders);
            None when the streamed corpus trains (``data.corpus_slices``) and no files
            validate.
        out_dir: the run folder (created; must not already hold a run unless resuming).
        val_root: folder of validation .h5 files (optional, see
            :func:`mrirecon.train.data.split_data`).
        resume: continue the run in ``out_dir`` from its ``last.pt``.
        init: a checkpoint (file, run folder or ``pretrained:NAME``) whose weights a new
            run starts from; its model must match ``cfg.model`` (``drop_prob`` aside).

    Returns:
        :class:`FitResult`.

    Raises:
        MrireconError: bad data, folders or checkpoints (one line naming the path).
        NonFiniteLossError: the loss diverged; ``last.pt`` keeps the last good epoch.
    """
    rt = setup_runtime(cfg.run)
    try:
        run_dir = Path(out_dir)
        ckpt = _existing_checkpoint(run_dir, resume)
        if init is not None and resume:
            raise ConfigError(f"--init {init}: a resumed run continues its own weights")
        root = Path(data_root) if data_root is not None else None
        run = _prepare(cfg, rt, root, run_dir, val_root, init)
        position = _restore(run, ckpt) if ckpt is not None else _Position()
        return _run_epochs(run, position, resumed=ckpt is not None)
    finally:
        teardown(rt)


def _existing_checkpoint(run_dir: Path, resume: bool) -> Checkpoint | None:
    """The run's last.pt when resuming; refuse to start over an existing run."""
    last = run_dir / "last.pt"
    if resume:
        return load_checkpoint(last)
    if last.exists():
        raise ConfigError(
            f"{run_dir}: already holds a run (last.pt); use --resume {run_dir} or another --out"
        )
    return None


def _say(rt: Runtime, msg: str) -> None:
    if rt.is_main:
        print(msg, file=sys.stderr, flush=True)


def _prepare(
    cfg: TrainConfig,
    rt: Runtime,
    data_root: Path | None,
    run_dir: Path,
    val_root: str | os.PathLike[str] | None,
    init: str | os.PathLike[str] | None = None,
) -> _Run:
    """Step 1: check the data, write config.yaml, build loaders, model and optimiser."""
    train_vols, val_vols = split_data(cfg, data_root, val_root)
    for v in val_vols:
        if v.target_key is None:
            raise DataError(f"{v.path}: validation files need a target ({v.fname} has none)")
    if isinstance(cfg.model, UnetConfig) and (cfg.model.in_chans != 1 or cfg.model.out_chans != 1):
        raise ConfigError(
            "model.in_chans/out_chans: the U-Net data transform yields 1-channel magnitude "
            f"images, got {cfg.model.in_chans}/{cfg.model.out_chans}"
        )
    start_weights = None if init is None else init_weights(cfg, init)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed)  # identical initial weights on every rank
        net = cfg.model.build()
    trainable_parameters(net, cfg.optim.trainable)  # freezes the rest; before any file is written
    if rt.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(run_dir)  # a checkpoint write killed before its rename
        save_train_config(cfg, run_dir / "config.yaml")
    barrier(rt)
    train_ds, val_ds = build_datasets(cfg, train_vols, val_vols)
    loader_gen = torch.Generator().manual_seed(cfg.run.seed * 7919 + rt.rank)
    loader, sampler = train_loader(train_ds, cfg, rt, loader_gen)
    torch.manual_seed(cfg.run.seed + rt.rank)  # the dropout stream of this rank
    if start_weights is not None:
        load_state_strict(net, start_weights.complete(net.state_dict()), init)
        added = "".join(f"; {name} added, freshly initialised" for name in start_weights.added)
        _say(rt, f"initial weights from --init {init}{added}")
    fmt = torch.channels_last if rt.channels_last else torch.contiguous_format
    net = net.to(rt.device, memory_format=fmt)
    optimizer = build_optimizer([p for p in net.parameters() if p.requires_grad], cfg.optim)
    return _Run(
        cfg=cfg,
        rt=rt,
        run_dir=run_dir,
        data_root=data_root,
        val_root=None if val_root is None else Path(val_root),
        train_ds=train_ds,
        val_ds=val_ds,
        loader=loader,
        sampler=sampler,
        vloader=val_loader(val_ds, cfg, rt) if val_ds is not None else None,
        loader_gen=loader_gen,
        net=net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, cfg.sched, len(loader), cfg.run.epochs),
        scaler=torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16),
        log=MetricsLog(run_dir / "metrics.jsonl" if rt.is_main else None),
        tb=TensorBoard(run_dir / "tb" if rt.is_main else None, cfg.run.tensorboard),
    )


def _restore(run: _Run, ckpt: Checkpoint) -> _Position:
    """Step 2 (resume): weights, optimiser/scheduler/scaler state and this rank's RNG."""
    load_state_strict(run.net, ckpt.model, run.last_path)
    try:
        run.optimizer.load_state_dict(ckpt.optimizer)
        run.scheduler.load_state_dict(ckpt.scheduler)
        run.scaler.load_state_dict(ckpt.scaler)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{run.last_path}: optimiser/scheduler state does not fit this config ({exc})"
        ) from None
    if run.rt.rank < len(ckpt.rng):
        ckpt.rng[run.rt.rank].restore(run.loader_gen)
    return _Position(ckpt.epoch + 1, ckpt.step, ckpt.best_ssim)


def _gather(obj: Any, rt: Runtime) -> list[Any]:
    if not rt.distributed:
        return [obj]
    out: list[Any] = [None] * rt.world_size
    dist.all_gather_object(out, obj)
    return out


def _context(run: _Run) -> tuple[TrainContext, torch.nn.Module]:
    """The training context (compiled, DDP-wrapped model) and the model to validate."""
    rt, cfg = run.rt, run.cfg
    fwd = torch.compile(run.net) if rt.compile else run.net
    train_model: torch.nn.Module = fwd
    if rt.distributed:
        ids = [rt.local_rank] if rt.device.type == "cuda" else None
        train_model = DistributedDataParallel(fwd, device_ids=ids)
    ctx = TrainContext(
        model=train_model,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        scaler=run.scaler,
        loss_fn=build_loss(cfg.loss),
        noharm_weight=cfg.loss.noharm_weight,
        noharm_start_epoch=cfg.loss.noharm_start_epoch,
        runtime=rt,
        grad_clip=cfg.optim.grad_clip,
        log=run.log,
        tb=run.tb,
        log_every=cfg.run.log_every,
        show_progress=cfg.run.progress,
    )
    return ctx, fwd


def _log_start(run: _Run, position: _Position, resumed: bool, zf: dict[str, float]) -> None:
    n_val = len(run.val_ds.volumes) if run.val_ds is not None else 0
    run.log.write(
        "start",
        resumed=resumed,
        start_epoch=position.epoch,
        world_size=run.rt.world_size,
        device=str(run.rt.device),
        amp=str(run.rt.amp_dtype),
        train_slices=len(run.train_ds),
        val_volumes=n_val,
        config=train_config_to_dict(run.cfg),
        **zf,
    )
    _say(
        run.rt,
        f"run {run.run_dir}: {len(run.train_ds)} training slices, {n_val} validation volumes, "
        f"device {run.rt.device} x{run.rt.world_size}",
    )


def _run_epochs(run: _Run, position: _Position, resumed: bool) -> FitResult:
    """Step 3: train, validate and checkpoint every remaining epoch."""
    cfg = run.cfg
    ctx, fwd = _context(run)
    zf: dict[str, float] = {}
    if run.val_ds is not None:
        zf = validate_zero_filled(run.val_ds, run.rt, cfg.data.num_workers).as_dict("zf")
    _log_start(run, position, resumed, zf)
    val_dict: dict[str, float] = {}
    step, best = position.step, position.best
    for epoch in range(position.epoch, cfg.run.epochs):
        base_dataset(run.train_ds).set_epoch(epoch)
        run.sampler.set_epoch(epoch)
        try:
            res = train_one_epoch(ctx, run.loader, epoch=epoch, global_step=step)
        except NonFiniteLossError as exc:
            run.log.write("error", epoch=epoch, message=str(exc))
            kept = (
                f"last good checkpoint {run.last_path} is unchanged"
                if run.last_path.exists()
                else "no checkpoint was written yet"
            )
            raise NonFiniteLossError(f"{exc}; stopping ({kept})") from None
        step = res.global_step
        val = None
        last_epoch = epoch + 1 == cfg.run.epochs
        if run.vloader is not None and ((epoch + 1) % cfg.run.val_every == 0 or last_epoch):
            num_images = cfg.run.num_log_images if run.rt.is_main else 0
            val = validate(fwd, run.vloader, run.rt, num_images)
            val_dict = val.as_dict("val")
        is_best = val is not None and (best is None or val.ssim > best)
        if is_best:
            best = val.ssim
        _save_epoch(run, epoch, step, best, val, is_best, res, zf)
        barrier(run.rt)
    run.tb.close()
    return FitResult(run.run_dir, cfg.run.epochs, step, best, val_dict, zf)


def _save_epoch(
    run: _Run,
    epoch: int,
    step: int,
    best: float | None,
    val: ValMetrics | None,
    is_best: bool,
    res: EpochResult,
    zf: dict[str, float],
) -> None:
    """Write last.pt (and best.pt, a snapshot), the epoch record and the console line (rank 0)."""
    rngs = _gather(RngState.capture(run.loader_gen), run.rt)
    if not run.rt.is_main:
        return
    ckpt = Checkpoint(
        config=run.cfg,
        model=run.net.state_dict(),
        epoch=epoch,
        step=step,
        optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(),
        scaler=run.scaler.state_dict(),
        rng=tuple(rngs),
        best_ssim=best,
        world_size=run.rt.world_size,
        data_root=None if run.data_root is None else str(run.data_root),
        val_root=None if run.val_root is None else str(run.val_root),
        val=val.as_dict("val") if val is not None else {},
    )
    save_checkpoint(run.last_path, ckpt)
    if is_best:
        save_checkpoint(run.run_dir / "best.pt", ckpt)
    every = run.cfg.run.snapshot_every
    if every and (epoch + 1) % every == 0:  # weights and validation record only
        snap = replace(ckpt, optimizer={}, scheduler={}, scaler={}, rng=())
        save_checkpoint(run.run_dir / f"epoch-{epoch:03d}.pt", snap)
    rec = {
        "train_loss": res.loss,
        "grad_norm": res.grad_norm,
        "seconds": res.seconds,
        "slices_per_s": res.slices / max(res.seconds, 1e-9),
        "lr": run.optimizer.param_groups[0]["lr"],
    }
    if val is not None:
        rec.update(val.as_dict("val"))
    run.log.write("epoch", epoch=epoch, step=step, best=is_best, **rec, **zf)
    run.tb.scalars({f"epoch/{k}": v for k, v in rec.items() if isinstance(v, float)}, step)
    for name, grid in val.images if val is not None else []:
        run.tb.image(f"val/{name}", grid, step)
    vtxt = ""
    if val is not None:
        zf_ssim = zf.get("zf_ssim", float("nan"))
        vtxt = f"  val SSIM {val.ssim:.4f} PSNR {val.psnr:.2f} (zero-filled SSIM {zf_ssim:.4f})"
    _say(
        run.rt,
        f"epoch {epoch + 1}/{run.cfg.run.epochs}  loss {res.loss:.4g}{vtxt}  {res.seconds:.1f} s",
    )
