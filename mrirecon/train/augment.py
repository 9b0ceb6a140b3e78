"""Augmentation of fully sampled k-space, applied by the transform before masking.

Geometric ops act on the coil images (``ifft2c`` -> op -> ``fft2c``), so the result is
the k-space of a flipped/rotated object and masking, zero-filling and the target stay
physically consistent. Intensity scaling and the global phase are linear, so they act
on k-space directly. All draws come from the ``rng`` the transform passes in
(``train_rng(seed, epoch, index)``), so augmentation is reproducible and exact on resume.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mrirecon.errors import DataError
from mrirecon.fft import fft2c, ifft2c
from mrirecon.train.config import AugmentConfig

__all__ = ["KspaceAugment", "build_augment"]


class KspaceAugment:
    """Callable ``augment(kspace (C, H, W) complex, rng) -> kspace`` of the same shape.

    Args:
        cfg: probabilities and ranges of each op. Every op always consumes its draws,
            so the stream (and hence the mask drawn after it) does not depend on which
            ops fired.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, kspace: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        """Augment one slice.

        Args:
            kspace: complex (C, H, W) fully sampled k-space.
            rng: the sample's random state.

        Returns:
            complex (C, H, W) augmented k-space.
        """
        if not kspace.is_complex() or kspace.dim() != 3:
            raise DataError(
                f"augment needs complex (C, H, W) k-space, got {kspace.dtype} {tuple(kspace.shape)}"
            )
        c = self.cfg
        u = rng.uniform(size=5)
        lo, hi = c.scale_range
        log_scale = rng.uniform(math.log(lo), math.log(hi))
        phase = rng.uniform(0.0, 2 * math.pi)
        rot_k = 1 + 2 * int(rng.randint(2))  # 90 or 270 degrees

        dims: list[int] = []
        if u[0] < c.hflip_p:
            dims.append(-1)
        if u[1] < c.vflip_p:
            dims.append(-2)
        rotate = u[2] < c.rot90_p
        if dims or rotate:
            image = ifft2c(kspace)
            if dims:
                image = torch.flip(image, dims)
            if rotate:
                square = image.shape[-1] == image.shape[-2]
                image = torch.rot90(image, rot_k if square else 2, dims=(-2, -1))
            kspace = fft2c(image.contiguous())
        factor = complex(1.0)
        if u[3] < c.scale_p:
            factor *= math.exp(log_scale)
        if u[4] < c.phase_p:
            factor *= complex(math.cos(phase), math.sin(phase))
        if factor != 1.0:
            kspace = kspace * factor
        return kspace


def build_augment(cfg: AugmentConfig) -> KspaceAugment | None:
    """The augmentation callable, or None when ``cfg.enabled`` is False."""
    return KspaceAugment(cfg) if cfg.enabled else None
