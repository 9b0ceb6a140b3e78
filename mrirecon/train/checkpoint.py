"""Training checkpoints: a typed record, atomic save, validated load, model rebuild, hash.

A checkpoint is a :class:`Checkpoint` record. On disk it is a ``torch.save`` dict of
plain types and tensors (loadable with ``weights_only=True``, so loading never runs
pickled code) holding the model, optimiser, scheduler and grad-scaler states, the
epoch/step counters, the RNG states needed to continue bit for bit, the resolved config
and the package versions. :func:`load_checkpoint` is the one reader: it checks every
field and turns the dict back into the record, so no caller reads string keys. Files
are written through :func:`mrirecon.io.atomic_write`, so a crash never leaves a
half-written ``last.pt``/``best.pt``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mrirecon
from mrirecon.errors import CheckpointError, ConfigError
from mrirecon.io import atomic_write
from mrirecon.models.registry import is_pretrained, pretrained_path
from mrirecon.models.unet import Unet
from mrirecon.train.config import TrainConfig, train_config_from_dict, train_config_to_dict

__all__ = [
    "FORMAT",
    "RngState",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_state_strict",
    "resolve_checkpoint",
    "checkpoint_hash",
    "model_hash",
    "versions",
]

FORMAT = "mrirecon-unet-checkpoint/1"


def versions() -> dict[str, str]:
    """Versions of the packages that determine a checkpoint's behaviour."""
    return {
        "mrirecon": str(mrirecon.__version__),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class RngState:
    """The random streams of one rank: torch CPU (dropout), CUDA, and the loader's.

    Attributes:
        torch: ``torch.get_rng_state()``.
        cuda: one state per visible CUDA device (empty without CUDA).
        loader: the training loader's generator state (shuffling, worker seeds), if any.
    """

    torch: torch.Tensor
    cuda: tuple[torch.Tensor, ...] = ()
    loader: torch.Tensor | None = None

    @classmethod
    def capture(cls, loader: torch.Generator | None = None) -> RngState:
        """The current global streams and the training loader's generator."""
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else ()
        state = None if loader is None else loader.get_state()
        return cls(torch=torch.get_rng_state(), cuda=cuda, loader=state)

    def restore(self, loader: torch.Generator | None = None) -> None:
        """Set the global streams and the training loader's generator to this state."""
        torch.set_rng_state(self.torch)
        if self.cuda and torch.cuda.is_available() and len(self.cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(list(self.cuda))
        if loader is not None and self.loader is not None:
            loader.set_state(self.loader)

    def to_dict(self) -> dict[str, Any]:
        """The on-disk form (plain dict of tensors)."""
        out: dict[str, Any] = {"torch": self.torch}
        if self.cuda:
            out["cuda"] = list(self.cuda)
        if self.loader is not None:
            out["loader"] = self.loader
        return out


@dataclass(frozen=True)
class Checkpoint:
    """Everything a run needs to be rebuilt or continued exactly.

    Attributes:
        config: the resolved training config (it rebuilds the model).
        model: the network's ``state_dict``.
        epoch: index of the last finished epoch.
        step: optimiser steps taken so far.
        optimizer, scheduler, scaler: their ``state_dict`` (empty for a bare model).
        rng: one :class:`RngState` per DDP rank.
        best_ssim: best validation SSIM so far (None without validation).
        world_size: DDP processes of the run.
        data_root, val_root: the run's data folders (None if not recorded).
        val: the validation metrics of this epoch (``val_ssim``...).
        versions: package versions at save time (:func:`versions` when saved).
    """

    config: TrainConfig
    model: dict[str, torch.Tensor]
    epoch: int = 0
    step: int = 0
    optimizer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    scaler: dict[str, Any] = field(default_factory=dict)
    rng: tuple[RngState, ...] = ()
    best_ssim: float | None = None
    world_size: int = 1
    data_root: str | None = None
    val_root: str | None = None
    val: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The on-disk dict (``format`` and current ``versions`` included)."""
        return {
            "format": FORMAT,
            "versions": versions(),
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "epoch": self.epoch,
            "step": self.step,
            "best_ssim": self.best_ssim,
            "rng": [r.to_dict() for r in self.rng],
            "world_size": self.world_size,
            "config": train_config_to_dict(self.config),
            "data_root": self.data_root,
            "val_root": self.val_root,
            "val": dict(self.val),
        }


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> None:
    """Atomically write a checkpoint (its folder must exist)."""
    with atomic_write(Path(path)) as tmp:
        torch.save(ckpt.to_dict(), tmp)


def _read_dict(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/truncated zips
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        picked = [ln for ln in lines if "Unpickler error" in ln] or lines or [type(exc).__name__]
        reason = picked[0]
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason[:200]})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(
            f"{path}: not an mrirecon U-Net checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    return raw


class _Fields:
    """Typed reads of the raw dict's entries, each failing with one line naming the entry."""

    def __init__(self, path: Path, raw: dict[str, Any]) -> None:
        self.path, self.raw = path, raw

    def bad(self, key: str, want: str) -> CheckpointError:
        """The error for entry ``key`` not being ``want``."""
        got = type(self.raw.get(key)).__name__
        return CheckpointError(f"{self.path}: checkpoint entry {key!r} must be {want}, got {got}")

    def need(self, key: str) -> Any:
        """A required entry."""
        if key not in self.raw:
            raise CheckpointError(f"{self.path}: checkpoint lacks {key!r}")
        return self.raw[key]

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        """An integer entry >= ``minimum`` (required unless a default is given)."""
        value = self.need(key) if default is None else self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.bad(key, f"an integer >= {minimum}")
        return value

    def mapping(self, key: str, required: bool = False) -> dict[str, Any]:
        """A mapping entry with string keys (missing or None: empty unless required)."""
        value = self.need(key) if required else self.raw.get(key, {})
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.bad(key, "a mapping with string keys")
        return dict(value)

    def tensors(self, key: str) -> dict[str, torch.Tensor]:
        """A required mapping of tensors (a ``state_dict``)."""
        value = self.mapping(key, required=True)
        if not all(isinstance(v, torch.Tensor) for v in value.values()):
            raise self.bad(key, "a mapping of tensors")
        return value

    def text(self, key: str) -> str | None:
        """An optional string entry."""
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.bad(key, "a string or None")
        return value

    def number(self, key: str) -> float | None:
        """An optional number entry."""
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(key, "a number or None")
        return float(value)

    def rng(self) -> tuple[RngState, ...]:
        """The per-rank RNG states."""
        value = self.raw.get("rng", [])
        if not isinstance(value, list | tuple):
            raise self.bad("rng", "a list of per-rank RNG states")
        out = []
        for state in value:
            ok = isinstance(state, Mapping) and isinstance(state.get("torch"), torch.Tensor)
            cuda = state.get("cuda", []) if ok else []
            loader = state.get("loader") if ok else None
            ok = ok and (loader is None or isinstance(loader, torch.Tensor))
            ok = ok and isinstance(cuda, list | tuple)
            ok = ok and all(isinstance(c, torch.Tensor) for c in cuda)
            if not ok:
                raise self.bad("rng", "a list of per-rank RNG states (tensors)")
            out.append(RngState(state["torch"], tuple(cuda), loader))
        return tuple(out)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Read a checkpoint and validate every field into a :class:`Checkpoint`.

    Raises:
        CheckpointError: "<path>: reason" if it is missing, unreadable, truncated, not a
            mrirecon U-Net checkpoint, or has an entry of the wrong type or value.
    """
    path = Path(path)
    raw = _read_dict(path, map_location)
    f = _Fields(path, raw)
    config_raw = f.mapping("config", required=True)
    try:
        config = train_config_from_dict(config_raw, source="stored config")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: stored config is invalid ({exc})") from None
    val = f.mapping("val")
    if not all(isinstance(v, int | float) for v in val.values()):
        raise f.bad("val", "a mapping of metric numbers")
    best = f.number("best_ssim")
    if best is not None and not math.isfinite(best):
        raise f.bad("best_ssim", "a finite number or None")
    vers = f.mapping("versions")
    return Checkpoint(
        config=config,
        model=f.tensors("model"),
        epoch=f.integer("epoch"),
        step=f.integer("step"),
        optimizer=f.mapping("optimizer"),
        scheduler=f.mapping("scheduler"),
        scaler=f.mapping("scaler"),
        rng=f.rng(),
        best_ssim=best,
        world_size=f.integer("world_size", default=1, minimum=1),
        data_root=f.text("data_root"),
        val_root=f.text("val_root"),
        val={k: float(v) for k, v in val.items()},
        versions={k: str(v) for k, v in vers.items()},
    )


def load_state_strict(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]
) -> None:
    """``load_state_dict`` with a one-line CheckpointError naming the file on any mismatch."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = " ".join(lines[1:3]) if len(lines) > 1 else lines[0]
        raise CheckpointError(
            f"{path}: model weights do not match the stored config ({detail[:300]})"
        ) from None


def load_model(
    checkpoint_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[Unet, TrainConfig]:
    """Rebuild the U-Net a checkpoint was trained with and load its weights.

    Args:
        checkpoint_path: a ``last.pt``/``best.pt`` file (or a run folder: its best.pt,
            else last.pt).
        device: where to put the model.

    Returns:
        (model in eval mode on ``device``, the checkpoint's :class:`TrainConfig`).

    Raises:
        CheckpointError: unreadable/corrupt checkpoint, or weights that do not fit the config.
    """
    path = resolve_checkpoint(checkpoint_path)
    ckpt = load_checkpoint(path)
    model = ckpt.config.model.build()
    load_state_strict(model, ckpt.model, path)
    return model.to(device).eval(), ckpt.config


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, a run folder's best.pt (else last.pt), or a shipped model.

    ``pretrained:NAME`` names the weights of a model shipped in the package (see
    :mod:`mrirecon.models.registry`).

    Raises:
        CheckpointError: a run folder without checkpoints, or an unknown/missing shipped model.
    """
    if is_pretrained(path):
        return pretrained_path(path)
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder has no best.pt or last.pt")
    return path


def model_hash(state_dict: Mapping[str, torch.Tensor], model_config: Mapping[str, Any]) -> str:
    """SHA-256 of the model config and weights (names, dtypes, shapes, bytes, sorted).

    Independent of optimiser state, save time and file layout, so re-saving the same
    weights gives the same hash.
    """
    h = hashlib.sha256()
    h.update(json.dumps(dict(model_config), sort_keys=True).encode())
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(state_dict[name].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def checkpoint_hash(checkpoint_path: str | os.PathLike[str]) -> str:
    """Stable hash identifying the model in a checkpoint: :func:`model_hash`, 16 hex digits."""
    path = resolve_checkpoint(checkpoint_path)
    ckpt = load_checkpoint(path)
    return model_hash(ckpt.model, train_config_to_dict(ckpt.config)["model"])[:16]
