"""One training epoch and one validation pass, as plain functions.

Validation scores whole volumes exactly as offline evaluation does: outputs are
de-normalised (``output * std + mean``), stacked per file in slice order and compared
with the un-normalised cropped target by :func:`mrirecon.metrics.volume_metrics`; the
reported number is the mean over volumes (summed across DDP ranks).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mrirecon.data.dataset import SliceDataset
from mrirecon.data.header import recon_crop
from mrirecon.data.transforms import (
    KspaceSample,
    UnetSample,
    normalize,
    select_mask,
    zero_filled,
)
from mrirecon.errors import DataError, MrireconError
from mrirecon.fft import center_crop
from mrirecon.metrics import volume_metrics
from mrirecon.train.data import VolumeShardSampler
from mrirecon.train.logs import MetricsLog, TensorBoard, image_grid, progress
from mrirecon.train.losses import LossFn, noharm_hinge
from mrirecon.train.runtime import Runtime, all_reduce_sum

__all__ = [
    "NonFiniteLossError",
    "TrainContext",
    "EpochResult",
    "ValMetrics",
    "train_one_epoch",
    "validate",
    "validate_zero_filled",
]


class NonFiniteLossError(MrireconError):
    """The loss or gradient norm became NaN/Inf; training stops."""


@dataclass(frozen=True)
class TrainContext:
    """What a training epoch works with, fixed for the whole run.

    Attributes:
        model: the (possibly DDP-wrapped/compiled) network, (N, 1, h, w) -> (N, 1, h, w).
        optimizer, scheduler, scaler: stepped once per batch (scheduler per step).
        loss_fn: ``loss(pred, target, mean, std, max_value)``.
        noharm_weight: weight of the do-no-harm hinge against each batch's zero-filled
            image (:func:`~mrirecon.train.losses.noharm_hinge`), added to ``loss_fn``'s
            value; 0 = off.
        noharm_start_epoch: the first epoch (0-based) that adds the hinge.
        runtime: device/precision/DDP settings.
        grad_clip: max global gradient 2-norm, 0 = no clipping (the pre-clip norm is
            logged either way).
        log, tb: metric sinks (rank 0 only writes).
        log_every: steps between log records.
        show_progress: draw a tqdm bar (rank 0).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: LossFn
    runtime: Runtime
    noharm_weight: float = 0.0
    noharm_start_epoch: int = 0
    grad_clip: float = 0.0
    log: MetricsLog | None = None
    tb: TensorBoard | None = None
    log_every: int = 10
    show_progress: bool = True


@dataclass
class EpochResult:
    """Summary of one training epoch (losses are means over ranks and steps)."""

    loss: float
    steps: int
    slices: int
    seconds: float
    global_step: int
    grad_norm: float


@dataclass
class ValMetrics:
    """Mean per-volume validation metrics and a few (name, image grid) pairs for logging."""

    nmse: float
    psnr: float
    ssim: float
    num_volumes: int
    images: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def as_dict(self, prefix: str) -> dict[str, float]:
        """``{prefix_nmse, prefix_psnr, prefix_ssim}``."""
        return {f"{prefix}_{k}": getattr(self, k) for k in ("nmse", "psnr", "ssim")}


def _prep(x: torch.Tensor, rt: Runtime) -> torch.Tensor:
    x = x.to(rt.device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if rt.channels_last else x


Batch = UnetSample | KspaceSample


def predict(model: nn.Module, batch: Batch, rt: Runtime) -> tuple[UnetSample, torch.Tensor]:
    """Run the network on a batch: (its U-Net sample, the normalised (N, 1, h, w) output).

    An image network (U-Net) maps the normalised zero-filled image; a k-space network
    (E2E-VarNet) maps the masked k-space and mask to an (N, h, w) magnitude, which is
    normalised with the same zero-filled mean/std so that every loss and the validation
    de-normalisation treat both alike. Runs under autocast when ``rt`` says so.
    """
    amp = {"dtype": rt.amp_dtype or torch.float32, "enabled": rt.amp_dtype is not None}
    if isinstance(batch, KspaceSample):
        s = batch.sample
        crop = (int(batch.crop[0, 0]), int(batch.crop[0, 1]))
        num_low = int(batch.num_low[0]) if bool((batch.num_low == batch.num_low[0]).all()) else 0
        kspace, mask = batch.kspace.to(rt.device), s.mask.to(rt.device)
        with torch.autocast(rt.device.type, **amp):
            out = model(kspace, mask, num_low or None, crop)
        mean = s.mean.to(rt.device).reshape(-1, 1, 1)
        std = s.std.to(rt.device).reshape(-1, 1, 1)
        return s, normalize(out.float(), mean, std, clamp=False).unsqueeze(1)
    with torch.autocast(rt.device.type, **amp):
        return batch, model(_prep(batch.image, rt))


def train_one_epoch(
    ctx: TrainContext, loader: Iterable[Batch], *, epoch: int, global_step: int
) -> EpochResult:
    """Train for one pass over ``loader``.

    Args:
        ctx: model, optimiser, loss, runtime and logging of the run.
        loader: batches of :class:`UnetSample` or :class:`KspaceSample`.
        epoch: epoch index (for logs).
        global_step: optimiser steps taken before this epoch.

    Returns:
        the epoch's :class:`EpochResult`.

    Raises:
        NonFiniteLossError: the loss or the gradient norm is NaN/Inf.
    """
    model, optimizer, scheduler, scaler = ctx.model, ctx.optimizer, ctx.scheduler, ctx.scaler
    rt, grad_clip, log, tb, log_every = ctx.runtime, ctx.grad_clip, ctx.log, ctx.tb, ctx.log_every
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total = len(loader) if hasattr(loader, "__len__") else 0  # type: ignore[arg-type]
    bar = progress(total, f"epoch {epoch}", ctx.show_progress and rt.is_main)
    noharm = ctx.noharm_weight if epoch >= ctx.noharm_start_epoch else 0.0
    loss_sum, gnorm_sum, steps, slices = 0.0, 0.0, 0, 0
    start = last = time.perf_counter()
    last_slices = 0
    try:
        for item in loader:
            batch, output = predict(model, item, rt)
            target = _prep(batch.target, rt)
            mean, std = batch.mean.to(rt.device), batch.std.to(rt.device)
            max_value = batch.max_value.to(rt.device)
            loss = ctx.loss_fn(output.float(), target, mean, std, max_value)
            if noharm > 0:
                # batch.image is the zero-filled image the network was given, normalised
                # like the target (the U-Net's input; a VarNet's own zero-filled RSS).
                baseline = _prep(batch.image, rt)
                hinge = noharm_hinge(output.float(), baseline, target, mean, std, max_value)
                loss = loss + noharm * hinge
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
            stats = all_reduce_sum(
                torch.stack([loss.detach().double(), gnorm.detach().double()]).cpu(), rt
            )
            loss_v, gnorm_v = (stats / rt.world_size).tolist()
            if not (math.isfinite(loss_v) and (math.isfinite(gnorm_v) or scaler.is_enabled())):
                what = "loss" if not math.isfinite(loss_v) else "gradient norm"
                raise NonFiniteLossError(
                    f"non-finite {what} ({loss_v if what == 'loss' else gnorm_v}) at epoch {epoch}, "
                    f"step {global_step}; lower optim.lr, enable optim.grad_clip or check the data"
                )
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            global_step += 1
            steps += 1
            slices += batch.image.shape[0] * rt.world_size
            loss_sum += loss_v
            gnorm_sum += gnorm_v
            bar.update(1)
            if steps % log_every == 0 or steps == total:
                now = time.perf_counter()
                rate = (slices - last_slices) / max(now - last, 1e-9)
                last, last_slices = now, slices
                bar.set_postfix(loss=f"{loss_v:.4g}", lr=f"{lr:.3g}", slices_s=f"{rate:.1f}")
                if rt.is_main:
                    rec = {"loss": loss_v, "lr": lr, "grad_norm": gnorm_v, "slices_per_s": rate}
                    if log is not None:
                        log.write("step", epoch=epoch, step=global_step, **rec)
                    if tb is not None:
                        tb.scalars({f"train/{k}": v for k, v in rec.items()}, global_step)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return EpochResult(
        loss=loss_sum / max(steps, 1),
        steps=steps,
        slices=slices,
        seconds=seconds,
        global_step=global_step,
        grad_norm=gnorm_sum / max(steps, 1),
    )


def _reduce_volume_metrics(
    per_volume: list[tuple[float, float, float]], rt: Runtime
) -> tuple[float, float, float, int]:
    arr = np.asarray(per_volume, dtype=np.float64).reshape(-1, 3)
    sums = torch.from_numpy(np.concatenate([arr.sum(axis=0), [len(arr)]]))
    sums = all_reduce_sum(sums, rt)
    n = int(sums[3].item())
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    nmse, psnr, ssim = (sums[:3] / n).tolist()
    return nmse, psnr, ssim, n


def _stack(fname: str, slices: dict[int, np.ndarray]) -> np.ndarray:
    order = sorted(slices)
    if order != list(range(len(order))):
        raise DataError(f"{fname}: validation got slices {order}, not a whole volume")
    return np.stack([slices[i] for i in order])


@torch.inference_mode()
def validate(
    model: nn.Module, loader: Iterable[Batch], rt: Runtime, num_images: int = 0
) -> ValMetrics:
    """Validation metrics of ``model`` on whole volumes (mean over volumes and ranks).

    Args:
        model: the network.
        loader: in-order batches (:class:`UnetSample`/:class:`KspaceSample`) of this rank's volumes.
        rt: device/precision/DDP settings.
        num_images: middle-slice image grids (ZF | output | target | error) to return.

    Returns:
        :class:`ValMetrics` with NMSE, PSNR, SSIM as :func:`volume_metrics` defines them.
    """
    model.eval()
    preds: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    targets: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    zfs: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for item in loader:
        batch, output = predict(model, item, rt)
        mean = batch.mean.reshape(-1, 1, 1)
        std = batch.std.reshape(-1, 1, 1)
        out = output.float()[:, 0].cpu() * std + mean
        zf = batch.image[:, 0] * std + mean
        for i, (fname, sl) in enumerate(zip(batch.fname, batch.slice_idx.tolist(), strict=True)):
            preds[fname][sl] = out[i].numpy()
            targets[fname][sl] = batch.target_raw[i].numpy()
            zfs[fname][sl] = zf[i].numpy()
    per_volume, images = [], []
    for fname in preds:
        pred, gt = _stack(fname, preds[fname]), _stack(fname, targets[fname])
        per_volume.append(tuple(volume_metrics(gt, pred)))
        if len(images) < num_images:
            mid = len(pred) // 2
            images.append((fname, image_grid(zfs[fname][mid], pred[mid], gt[mid])))
    nmse, psnr, ssim, n = _reduce_volume_metrics(per_volume, rt)
    return ValMetrics(nmse, psnr, ssim, n, images)


class _ZeroFilledSlices(torch.utils.data.Dataset):
    """(fname, slice_idx, zero-filled magnitude, cropped target) of each slice of ``ds``,
    with the eval mask each file gets in validation."""

    def __init__(self, ds: SliceDataset) -> None:
        self.ds = ds
        self.spec = getattr(ds.transform, "mask", None)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[str, int, np.ndarray, np.ndarray]:
        raw = self.ds.raw_slice(i)
        if raw.target is None:
            raise DataError(f"{raw.info.path}: validation files need a target")
        width = raw.kspace.shape[-1]
        crop = recon_crop(width, raw.target.shape)
        m = select_mask(self.spec, width, raw.info.fname, raw.file_mask, None)
        kspace, mask = torch.from_numpy(raw.kspace), torch.from_numpy(m.mask)
        zf = zero_filled(kspace, mask, crop, raw.info.multicoil)
        return raw.info.fname, raw.slice_idx, zf.numpy(), center_crop(raw.target, crop)


def _as_is(item: Any) -> Any:
    return item


def validate_zero_filled(ds: SliceDataset, rt: Runtime, num_workers: int = 0) -> ValMetrics:
    """The zero-filled baseline on the same volumes, masks and metric as :func:`validate`.

    Computed from the raw slices (not from the clamped network input).
    """
    loader = torch.utils.data.DataLoader(
        _ZeroFilledSlices(ds),
        batch_size=None,
        collate_fn=_as_is,  # keep the numpy arrays
        sampler=VolumeShardSampler(ds, rt.rank, rt.world_size),
        num_workers=num_workers,
        # Its own generator: a loader without one draws its worker seed from the global
        # torch RNG, which would shift the dropout stream after a resume.
        generator=torch.Generator().manual_seed(0),
    )
    recons: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    targets: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    for fname, sl, zf, target in loader:
        recons[fname][sl] = zf
        targets[fname][sl] = target
    per_volume = [
        tuple(volume_metrics(_stack(f, targets[f]), _stack(f, recons[f]))) for f in recons
    ]
    nmse, psnr, ssim, n = _reduce_volume_metrics(per_volume, rt)
    return ValMetrics(nmse, psnr, ssim, n)
