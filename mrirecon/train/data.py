"""Training/validation datasets, samplers and loaders for the U-Net loop.

Training slices come from files, or, with ``data.corpus_slices`` > 0, are streamed from
the domain-randomised corpus (:class:`~mrirecon.synth.corpus.CorpusSliceDataset`, a pure
function of (run.seed, epoch, index)); validation always reads files.

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
from mrirecon.data.transforms import KspaceTransform, UnetTransform
from mrirecon.errors import ConfigError
from mrirecon.models.varnet import VarNetConfig
from mrirecon.synth.corpus import CorpusSliceDataset
from mrirecon.train.augment import build_augment
from mrirecon.train.config import TrainConfig
from mrirecon.train.runtime import Runtime

__all__ = [
    "TrainSet",
    "split_data",
    "build_datasets",
    "base_dataset",
    "VolumeShardSampler",
    "train_loader",
    "val_loader",
]

# The training dataset: files (optionally a capped Subset) or the streamed corpus.
TrainSet = SliceDataset | CorpusSliceDataset | Subset
PathArg = str | os.PathLike[str] | None


def _scan(root: Path) -> list[VolumeInfo]:
    return scan_folder(root)[0]


def split_data(
    cfg: TrainConfig, data_root: PathArg, val_root: PathArg
) -> tuple[list[VolumeInfo], list[VolumeInfo]]:
    """Training and validation volumes of a run.

    Files train (``data.corpus_slices`` = 0): with ``val_root``, all of ``data_root``
    trains and ``val_root`` validates. Else, if ``data_root`` has ``train/`` and ``val/``
    sub-folders, those. Else the last ``round(data.val_fraction * n)`` volumes by file name
    (at least one when n >= 2 and the fraction is > 0) are held out.

    The corpus trains (``data.corpus_slices`` > 0): no file trains; the validation files
    are ``val_root``, else ``data_root`` (its ``val/`` sub-folder if it has one), else none.

    Raises:
        ConfigError: no data folder for file training, or two different validation folders
            for corpus training.
        DataError: missing folders or no usable files.
    """
    if cfg.data.corpus_slices > 0:
        if data_root is not None and val_root is not None and Path(data_root) != Path(val_root):
            raise ConfigError(
                f"--data-root {data_root} and --val-root {val_root}: with data.corpus_slices "
                "the corpus trains; give the validation folder once"
            )
        folder = val_root if val_root is not None else data_root
        if folder is None:
            return [], []
        folder = Path(folder)
        return [], _scan(folder / "val" if (folder / "val").is_dir() else folder)
    if data_root is None:
        raise ConfigError("--data-root is required unless data.corpus_slices streams the corpus")
    root = Path(data_root)
    if val_root is not None:
        return _scan(root), _scan(Path(val_root))
    if (root / "train").is_dir() and (root / "val").is_dir():
        return _scan(root / "train"), _scan(root / "val")
    vols = sorted(_scan(root), key=lambda v: v.fname)
    val_fraction = cfg.data.val_fraction
    n_val = round(val_fraction * len(vols))
    if val_fraction > 0 and len(vols) >= 2:
        n_val = min(max(n_val, 1), len(vols) - 1)
    else:
        n_val = 0
    return vols[: len(vols) - n_val], vols[len(vols) - n_val :]


def build_datasets(
    cfg: TrainConfig, train_vols: Sequence[VolumeInfo], val_vols: Sequence[VolumeInfo]
) -> tuple[TrainSet, SliceDataset | None]:
    """Slice datasets with training (random masks, augmentation) and eval transforms.

    With ``data.corpus_slices`` > 0 the training set is the streamed corpus (seeded by
    ``run.seed``) and ``train_vols`` must be empty (see :func:`split_data`).
    """
    spec = cfg.mask.spec()
    # A k-space network (E2E-VarNet) also reads the masked k-space; an image network not.
    transform = KspaceTransform if isinstance(cfg.model, VarNetConfig) else UnetTransform
    train_tf = transform(spec, mode="train", seed=cfg.run.seed, augment=build_augment(cfg.augment))
    train_ds: TrainSet
    if cfg.data.corpus_slices > 0:
        if train_vols:
            raise ConfigError("data.corpus_slices: the corpus trains, so no file may train too")
        train_ds = CorpusSliceDataset(
            cfg.data.corpus, cfg.data.corpus_slices, seed=cfg.run.seed, transform=train_tf
        )
    else:
        train_ds = SliceDataset(list(train_vols), transform=train_tf)
    cap = cfg.data.max_train_slices
    if isinstance(train_ds, SliceDataset) and 0 < cap < len(train_ds):
        step = len(train_ds) / cap  # evenly spread over volumes, deterministic
        train_ds = Subset(train_ds, [int(i * step) for i in range(cap)])
    val_ds = None
    if val_vols:
        vols = list(val_vols)
        if cfg.data.max_val_volumes > 0:
            vols = vols[: cfg.data.max_val_volumes]
        val_ds = SliceDataset(vols, transform=transform(spec, mode="eval"))
    return train_ds, val_ds


def base_dataset(ds: TrainSet) -> SliceDataset | CorpusSliceDataset:
    """The dataset under an optional ``Subset`` (for ``set_epoch``)."""
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
    ds: TrainSet, cfg: TrainConfig, rt: Runtime, generator: torch.Generator
) -> tuple[DataLoader, DistributedSampler]:
    """Shuffled loader of this rank's share; call ``sampler.set_epoch(e)`` each epoch.

    ``run.batch_size`` is the global batch, split evenly over ranks.
    """
    if cfg.run.batch_size % rt.world_size:
        raise ConfigError(
            f"run.batch_size {cfg.run.batch_size} must be divisible by the {rt.world_size} processes"
        )
    low, high = cfg.data.corpus.matrix
    if isinstance(ds, CorpusSliceDataset) and cfg.run.batch_size > rt.world_size and low != high:
        raise ConfigError(
            f"run.batch_size {cfg.run.batch_size}: streamed corpus slices vary in size "
            f"(data.corpus.matrix {low}..{high}); use one slice per process or a fixed matrix"
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
