"""The U-Net method: a trained magnitude-image U-Net applied to the zero-filled image.

The zero-filled magnitude of each slice is normalised exactly as in training
(:func:`mrirecon.data.transforms.zero_filled` and :func:`~mrirecon.data.transforms.normalize`:
instance mean/std, clamp to +-6), run through the network in batches (bf16 autocast on
CUDA only) and de-normalised with ``output * std + mean`` (Zbontar et al.,
arXiv:1811.08839).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from mrirecon.data.transforms import normalize, zero_filled
from mrirecon.methods.base import TIER_LEARNED, Volume
from mrirecon.methods.learned import DEFAULT_BATCH, CheckpointSpec, LoadedModel
from mrirecon.models.unet import Unet

__all__ = ["UnetSpec", "UnetMethod", "unet_inference"]


@torch.inference_mode()
def unet_inference(
    model: torch.nn.Module,
    image: torch.Tensor,
    device: torch.device,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """Run a magnitude-image U-Net on a stack of zero-filled slices, as in training.

    Each slice is normalised with its own mean and (unbiased) std, clamped to +-6
    (unclamped for a residual U-Net, which clamps inside),
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
    residual = isinstance(model, Unet) and model.residual
    use_amp = device.type == "cuda"
    for start in range(0, image.shape[0], batch_size):
        chunk = image[start : start + batch_size].to(device, torch.float32)
        mean = chunk.mean(dim=(-2, -1), keepdim=True)
        std = chunk.std(dim=(-2, -1), keepdim=True)
        # A residual U-Net adds its correction to the unclamped input (it clamps its
        # own body's input), so it reproduces the zero-filled image exactly when untrained.
        x = normalize(chunk, mean, std, clamp=not residual).unsqueeze(1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            y = model(x)
        out[start : start + chunk.shape[0]] = (y.float()[:, 0] * std + mean).cpu()
    return out


class UnetMethod(LoadedModel):
    """A loaded U-Net checkpoint, ready to reconstruct volumes."""

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        model = self.on(device)
        with torch.inference_mode():
            image = zero_filled(
                volume.kspace.to(device), volume.mask.to(device), volume.crop, volume.info.multicoil
            )
        out = unet_inference(model, image, device, self.spec.batch_size)
        return self.finish(volume, out.numpy().astype(np.float32, copy=False))


@dataclass(frozen=True)
class UnetSpec(CheckpointSpec):
    """``--method unet --checkpoint CKPT``: a trained U-Net (see :class:`CheckpointSpec`)."""

    kind: ClassVar[str] = "unet"
    label: ClassVar[str] = "U-Net"
    tier: ClassVar[int] = TIER_LEARNED
    shown_attrs: ClassVar[tuple[str, ...]] = (
        "checkpoint",
        "checkpoint_sha256",
        "model_hash",
        "train_accelerations",
        "autocast",
        "noise_floor",
    )

    def build(self) -> UnetMethod:
        return UnetMethod(self)
