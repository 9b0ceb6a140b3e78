"""The zero-filled baseline: inverse FFT of the masked k-space, cropped, magnitude / RSS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from mrirecon.data.transforms import zero_filled
from mrirecon.methods.base import TIER_BASELINE, MethodOptions, Volume

__all__ = ["ZeroFilledSpec", "ZeroFilled"]


class ZeroFilled:
    """Zero-filled magnitude (RSS for multi-coil), as fastMRI forms it."""

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        k = volume.kspace.to(device)
        out = zero_filled(k, volume.mask.to(device), volume.crop, volume.info.multicoil)
        return out.cpu().numpy().astype(np.float32)

    def provenance(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class ZeroFilledSpec:
    """``--method zero-filled``: no options."""

    kind: ClassVar[str] = "zero-filled"
    label: ClassVar[str] = "Zero-filled"
    tier: ClassVar[int] = TIER_BASELINE
    shown_attrs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_options(cls, options: MethodOptions) -> ZeroFilledSpec:
        return cls()

    @property
    def name(self) -> str:
        return self.kind

    def settings(self) -> dict[str, Any]:
        return {}

    def build(self) -> ZeroFilled:
        return ZeroFilled()
