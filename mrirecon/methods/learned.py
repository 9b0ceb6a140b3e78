"""What every learned method shares: a checkpoint, its hash, loading and provenance.

A learned spec names a training checkpoint (a file, a run folder or ``pretrained:NAME``);
its settings are the checkpoint file's SHA-256, so a rerun with other weights is never
taken for a finished one. :class:`LoadedModel` loads the network on the CPU once, moves
it to the device it is asked to run on, and reports the provenance every output stores.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mrirecon.errors import CheckpointError, ConfigError
from mrirecon.methods.base import MethodOptions, Volume

__all__ = [
    "CheckpointSpec",
    "LoadedModel",
    "file_sha256",
    "checkpoint_kind",
    "checkpoint_tag",
    "DEFAULT_BATCH",
]

DEFAULT_BATCH = 8
_TAG = re.compile(r"^[A-Za-z0-9._-]+$")


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, hex (records which checkpoint produced an output)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class CheckpointSpec:
    """Base of the learned methods' specs.

    Attributes:
        checkpoint: a checkpoint file, a run folder (its best.pt, else last.pt) or
            ``pretrained:NAME``.
        batch_size: slices per forward pass.
        tag: tells two checkpoints of one kind apart: the method is then named
            ``KIND@TAG`` (its output folder and report column); "" = just ``KIND``.
        noise_floor: raise the output magnitude to the target's noise floor, estimated
            per volume from its k-space (:mod:`mrirecon.noise_floor`; off by default, so a
            model's output is the network's, e.g. fastMRI's for imported weights).
    """

    checkpoint: Path
    batch_size: int = DEFAULT_BATCH
    tag: str = ""
    noise_floor: bool = False

    kind: ClassVar[str]  # the method, and the ``model.kind`` its checkpoints hold

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.tag and not _TAG.match(self.tag):
            raise ConfigError(f"method tag {self.tag!r}: use letters, digits, '.', '_' or '-'")

    @property
    def name(self) -> str:
        """``KIND`` or ``KIND@TAG``."""
        return f"{self.kind}@{self.tag}" if self.tag else self.kind

    @classmethod
    def from_options(cls, options: MethodOptions) -> CheckpointSpec:
        if options.checkpoint is None:
            raise ConfigError(f"--method {cls.kind} needs --checkpoint")
        floor = bool(options.noise_floor)  # None: off, the network's own output
        return cls(Path(options.checkpoint), options.batch_size, noise_floor=floor)

    @cached_property
    def checkpoint_file(self) -> Path:
        """The checkpoint file itself (a run folder or shipped name resolved)."""
        from mrirecon.train.checkpoint import resolve_checkpoint

        return resolve_checkpoint(self.checkpoint)

    @cached_property
    def checkpoint_sha256(self) -> str:
        """SHA-256 of the checkpoint file (identifies the weights behind an output)."""
        path = self.checkpoint_file
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        return file_sha256(path)

    def settings(self) -> dict[str, Any]:
        extra = {"noise_floor": True} if self.noise_floor else {}  # off: as before it existed
        return {"checkpoint_sha256": self.checkpoint_sha256, **extra}


class LoadedModel:
    """A checkpoint's network, loaded once and moved to the device it runs on.

    Args:
        spec: the learned method's spec.

    Raises:
        CheckpointError: missing, corrupt or mismatched checkpoint, or one that holds
            another kind of model than the method runs (one line naming it).
    """

    def __init__(self, spec: CheckpointSpec) -> None:
        from mrirecon.train.checkpoint import checkpoint_hash, load_model

        self.spec = spec
        self.model, self.config = load_model(spec.checkpoint_file, "cpu")
        kind = self.config.model.kind
        if kind != spec.kind:
            raise CheckpointError(
                f"{spec.checkpoint}: holds a {kind} model; use --method {kind}, not {spec.kind}"
            )
        self._device = torch.device("cpu")
        self._floor: float | None = None
        model_cfg = {f"model_{k}": v for k, v in vars(self.config.model).items() if k != "kind"}
        self._prov = {
            "checkpoint": str(spec.checkpoint_file.resolve()),
            "checkpoint_sha256": spec.checkpoint_sha256,
            "model_hash": checkpoint_hash(spec.checkpoint_file),
            **model_cfg,
            "train_accelerations": list(self.config.mask.accelerations),
        }

    def on(self, device: torch.device) -> torch.nn.Module:
        """The network on ``device`` (moved there on first use)."""
        if device != self._device:
            self.model = self.model.to(device)
            self._device = device
        return self.model

    def finish(self, volume: Volume, image: np.ndarray) -> np.ndarray:
        """The network's (S, h, w) output, raised to the noise floor if the spec asks."""
        if not self.spec.noise_floor:
            return image
        from mrirecon.noise_floor import floor_level

        self._floor = floor_level(volume.kspace, volume.mask)
        return np.maximum(image, np.float32(self._floor))

    def provenance(self) -> dict[str, Any]:
        floor = "off" if not self.spec.noise_floor else f"{self._floor or 0.0:.4g}"
        autocast = "bf16" if self._device.type == "cuda" else "none"
        return {**self._prov, "autocast": autocast, "noise_floor": floor}


def checkpoint_kind(checkpoint: str | os.PathLike[str]) -> str:
    """The ``model.kind`` (``unet``, ``varnet``) a checkpoint holds: the method that runs it."""
    from mrirecon.train.checkpoint import load_checkpoint, resolve_checkpoint

    return load_checkpoint(resolve_checkpoint(checkpoint)).config.model.kind


def checkpoint_tag(checkpoint: str | os.PathLike[str]) -> str:
    """A short tag naming a checkpoint: the shipped name, the run folder, or the file stem."""
    text = str(checkpoint)
    if text.startswith("pretrained:"):
        return text.split(":", 1)[1]
    path = Path(text)
    stem = path.name if path.is_dir() else (path.parent.name or path.stem)
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem) or "model"
