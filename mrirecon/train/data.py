"""Training/validation datasets, samplers and loaders for the U-Net loop.

Training order comes from ``DistributedSampler`` (seeded by ``run.seed`` and the epoch,
so it is the same after a resume and, for one process, equals ``num_replicas=1``);
validation shards whole volumes across ranks so every volume is scored on one rank with
:func:`mrirecon.metrics.volume_metrics`. Masks come from the transform
(``train_rng(seed, epoch, index)``), so the number of workers never changes the data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler, Subset

from mrirecon.data.dataset import SliceDataset, VolumeInfo, scan_folder
from mrirecon.data.transforms import UnetTransform
from mrirecon.errors import ConfigError
from mrirecon.train.augment import build_augment
from mrirecon.train.config import TrainConfig
from mrirecon.train.runtime import Runtime

__all__ = ["split_volumes", "build_datasets", "VolumeShardSampler", "train_loader", "val_loader"]


def _scan(root: Path) -> list[VolumeInfo]:
    return scan_folder(root)[0]


def split_volumes(
    data_root: str | os.PathLike[str],
    val_root: str | os.PathLike[str] | None,
    val_fraction: float,
) -> tuple[list[VolumeInfo], list[VolumeInfo]]:
    """Training and validation volumes.

    ``val_root`` given: all of ``data_root`` trains, ``val_root`` validates. Else, if
    ``data_root`` has ``train/`` and ``val/`` sub-folders, those. Else the last
    ``round(val_fraction * n)`` volumes by file name (at least one when n >= 2 and the
    fraction is > 0) are held out.

    Raises:
        DataError/ValueError: missing folders or no usable files.
    """
    root = Path(data_root)
    if val_root is not None:
        return _scan(root), _scan(Path(val_root))
    if (root / "train").is_dir() and (root / "val").is_dir():
        return _scan(root / "train"), _scan(root / "val")
    vols = sorted(_scan(root), key=lambda v: v.fname)
    n_val = round(val_fraction * len(vols))
    if val_fraction > 0 and len(vols) >= 2:
        n_val = min(max(n_val, 1), len(vols) - 1)
    else:
        n_val = 0
    return vols[: len(vols) - n_val], vols[len(vols) - n_val :]


def build_datasets(
    cfg: TrainConfig, train_vols: Sequence[VolumeInfo], val_vols: Sequence[VolumeInfo]
) -> tuple[SliceDataset | Subset, SliceDataset | None]:
    """Slice datasets with training (random masks, augmentation) and eval transforms."""
    spec = cfg.mask.spec()
    train_tf = UnetTransform(
        spec, mode="train", seed=cfg.run.seed, augment=build_augment(cfg.augment)
    )
    train_ds: SliceDataset | Subset = SliceDataset(list(train_vols), transform=train_tf)
    cap = cfg.data.max_train_slices
    if 0 < cap < len(train_ds):
        step = len(train_ds) / cap  # evenly spread over volumes, deterministic
        train_ds = Subset(train_ds, [int(i * step) for i in range(cap)])
    val_ds = None
    if val_vols:
        vols = list(val_vols)
        if cfg.data.max_val_volumes > 0:
            vols = vols[: cfg.data.max_val_volumes]
        val_ds = SliceDataset(vols, transform=UnetTransform(spec, mode="eval"))
    return train_ds, val_ds


def base_dataset(ds: SliceDataset | Subset) -> SliceDataset:
    """The :class:`SliceDataset` under an optional ``Subset`` (for ``set_epoch``)."""
    return ds.dataset if isinstance(ds, Subset) else ds  # type: ignore[return-value]


class VolumeShardSampler(Sampler[int]):
    """Slice indices of the volumes ``v`` with ``v % world_size == rank``, in file order."""

    def __init__(self, dataset: SliceDataset, rank: int, world_size: int) -> None:
        self.indices = [i for i, (v, _) in enumerate(dataset.index) if v % world_size == rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _worker_init(worker_id: int) -> None:
    # One intra-op thread per worker: workers already run in parallel.
    torch.set_num_threads(1)


def train_loader(
    ds: SliceDataset | Subset, cfg: TrainConfig, rt: Runtime, generator: torch.Generator
) -> tuple[DataLoader, DistributedSampler]:
    """Shuffled loader of this rank's share; call ``sampler.set_epoch(e)`` each epoch.

    ``run.batch_size`` is the global batch, split evenly over ranks.
    """
    if cfg.run.batch_size % rt.world_size:
        raise ConfigError(
            f"run.batch_size {cfg.run.batch_size} must be divisible by the {rt.world_size} processes"
        )
    sampler = DistributedSampler(
        ds, num_replicas=rt.world_size, rank=rt.rank, shuffle=True, seed=cfg.run.seed
    )
    loader = DataLoader(
        ds,
        batch_size=cfg.run.batch_size // rt.world_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        pin_memory=rt.device.type == "cuda",
        worker_init_fn=_worker_init if cfg.data.num_workers else None,
        generator=generator,
        drop_last=False,
    )
    return loader, sampler


def val_loader(ds: SliceDataset, cfg: TrainConfig, rt: Runtime) -> DataLoader:
    """In-order loader over this rank's validation volumes."""
    return DataLoader(
        ds,
        batch_size=max(1, cfg.run.batch_size // rt.world_size),
        sampler=VolumeShardSampler(ds, rt.rank, rt.world_size),
        num_workers=cfg.data.num_workers,
        pin_memory=rt.device.type == "cuda",
        worker_init_fn=_worker_init if cfg.data.num_workers else None,
        # Its own generator: a loader without one draws its worker seed from the global
        # torch RNG (the dropout stream), so each validation pass would shift training.
        generator=torch.Generator().manual_seed(0),
    )
