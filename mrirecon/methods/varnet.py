"""The E2E-VarNet method: a trained unrolled network on the masked multi-coil k-space.

Each batch of slices goes through :class:`mrirecon.models.varnet.VarNet` with the file's
mask and its fully sampled centre width; the output is the RSS magnitude at the recon
size (Sriram et al., MICCAI 2020). bf16 autocast applies to the U-Nets on CUDA only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from mrirecon.methods.base import TIER_LEARNED, Volume
from mrirecon.methods.learned import CheckpointSpec, LoadedModel

__all__ = ["VarNetSpec", "VarNetMethod"]


class VarNetMethod(LoadedModel):
    """A loaded E2E-VarNet checkpoint, ready to reconstruct volumes."""

    @torch.inference_mode()
    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        model = self.on(device)
        mask = volume.mask.to(device)
        num_low = volume.mask_info.num_low or None  # a file's own mask: found from the mask
        out = []
        for start in range(0, volume.kspace.shape[0], self.spec.batch_size):
            k = volume.kspace[start : start + self.spec.batch_size].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                image = model(k, mask, num_low, volume.crop)
            out.append(image.float().cpu())
        return self.finish(volume, torch.cat(out).numpy().astype(np.float32, copy=False))


@dataclass(frozen=True)
class VarNetSpec(CheckpointSpec):
    """``--method varnet --checkpoint CKPT``: a trained E2E-VarNet."""

    kind: ClassVar[str] = "varnet"
    label: ClassVar[str] = "E2E-VarNet"
    tier: ClassVar[int] = TIER_LEARNED
    shown_attrs: ClassVar[tuple[str, ...]] = (
        "checkpoint",
        "checkpoint_sha256",
        "model_hash",
        "model_num_cascades",
        "train_accelerations",
        "autocast",
        "noise_floor",
    )

    def build(self) -> VarNetMethod:
        return VarNetMethod(self)
