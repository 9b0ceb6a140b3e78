"""The U-Net method: a trained magnitude-image U-Net applied to the zero-filled image.

The zero-filled magnitude of each slice is normalised exactly as in training
(:func:`mrirecon.data.transforms.zero_filled` and :func:`~mrirecon.data.transforms.normalize`:
instance mean/std, clamp to +-6), run through the network in batches (bf16 autocast on
CUDA only) and de-normalised with ``output * std + mean`` (Zbontar et al.,
arXiv:1811.08839).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mrirecon.data.transforms import normalize, zero_filled
from mrirecon.errors import CheckpointError, ConfigError
from mrirecon.methods.base import TIER_LEARNED, MethodOptions, Volume

__all__ = ["UnetSpec", "UnetMethod", "unet_inference", "file_sha256"]

DEFAULT_BATCH = 8


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, hex (records which checkpoint produced an output)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@torch.inference_mode()
def unet_inference(
    model: torch.nn.Module,
    image: torch.Tensor,
    device: torch.device,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """Run a magnitude-image U-Net on a stack of zero-filled slices, as in training.

    Each slice is normalised with its own mean and (unbiased) std, clamped to +-6,
    passed through ``model`` in batches of ``batch_size`` (bf16 autocast on CUDA) and
    de-normalised with ``output * std + mean``.

    Args:
        model: (N, 1, h, w) -> (N, 1, h, w) network, already on ``device``.
        image: real (S, h, w) zero-filled magnitudes.
        device: where to run.
        batch_size: slices per forward pass.

    Returns:
        float32 (S, h, w) on the CPU.
    """
    if image.dim() != 3:
        raise ValueError(f"expected (S, h, w) images, got shape {tuple(image.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    out = torch.empty(image.shape, dtype=torch.float32)
    use_amp = device.type == "cuda"
    for start in range(0, image.shape[0], batch_size):
        chunk = image[start : start + batch_size].to(device, torch.float32)
        mean = chunk.mean(dim=(-2, -1), keepdim=True)
        std = chunk.std(dim=(-2, -1), keepdim=True)
        x = normalize(chunk, mean, std).unsqueeze(1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            y = model(x)
        out[start : start + chunk.shape[0]] = (y.float()[:, 0] * std + mean).cpu()
    return out


class UnetMethod:
    """A loaded U-Net checkpoint, ready to reconstruct volumes.

    Args:
        spec: the method's spec (checkpoint and batch size).

    Raises:
        CheckpointError: missing, corrupt or mismatched checkpoint (one line naming it).
    """

    def __init__(self, spec: UnetSpec) -> None:
        from mrirecon.train.checkpoint import checkpoint_hash, load_model

        self.spec = spec
        self.model, self.config = load_model(spec.checkpoint_file, "cpu")
        self._device = torch.device("cpu")
        self._prov = {
            "checkpoint": str(spec.checkpoint_file.resolve()),
            "checkpoint_sha256": spec.checkpoint_sha256,
            "model_hash": checkpoint_hash(spec.checkpoint_file),
            "model_chans": self.config.model.chans,
            "model_num_pool_layers": self.config.model.num_pool_layers,
            "model_norm": self.config.model.norm,
            "train_accelerations": list(self.config.mask.accelerations),
        }

    def _on(self, device: torch.device) -> torch.nn.Module:
        if device != self._device:
            self.model = self.model.to(device)
            self._device = device
        return self.model

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        model = self._on(device)
        with torch.inference_mode():
            image = zero_filled(
                volume.kspace.to(device), volume.mask.to(device), volume.crop, volume.info.multicoil
            )
        out = unet_inference(model, image, device, self.spec.batch_size)
        return out.numpy().astype(np.float32, copy=False)

    def provenance(self) -> dict[str, Any]:
        return {**self._prov, "autocast": "bf16" if self._device.type == "cuda" else "none"}


@dataclass(frozen=True)
class UnetSpec:
    """``--method unet --checkpoint CKPT``: a trained U-Net.

    Attributes:
        checkpoint: a checkpoint file or a run folder (its best.pt, else last.pt).
        batch_size: slices per forward pass.
    """

    checkpoint: Path
    batch_size: int = DEFAULT_BATCH

    name: ClassVar[str] = "unet"
    label: ClassVar[str] = "U-Net"
    tier: ClassVar[int] = TIER_LEARNED
    shown_attrs: ClassVar[tuple[str, ...]] = (
        "checkpoint",
        "checkpoint_sha256",
        "model_hash",
        "train_accelerations",
        "autocast",
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")

    @classmethod
    def from_options(cls, options: MethodOptions) -> UnetSpec:
        if options.checkpoint is None:
            raise ConfigError(f"--method {cls.name} needs --checkpoint")
        return cls(Path(options.checkpoint), options.batch_size)

    @cached_property
    def checkpoint_file(self) -> Path:
        """The checkpoint file itself (a run folder resolved to its best.pt/last.pt)."""
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
        return {"checkpoint_sha256": self.checkpoint_sha256}

    def build(self) -> UnetMethod:
        return UnetMethod(self)
