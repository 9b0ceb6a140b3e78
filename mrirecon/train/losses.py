"""Training losses for the U-Net: L1, SSIM and their weighted mix.

L1 is taken on the normalised images the network sees (fastMRI's U-Net loss). SSIM
is computed on de-normalised images (``x * std + mean``) with the same window and
constants as the evaluation metric (:func:`mrirecon.metrics.ssim_torch`, skimage's
definition; Wang et al., IEEE TIP 2004), with the file's ``max`` attribute as data
range when present, else the slice's target maximum.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mrirecon.metrics import ssim_torch
from mrirecon.train.config import LossConfig

__all__ = ["LossFn", "build_loss", "l1_loss", "ssim_loss"]

# loss(pred, target, mean, std, max_value) -> scalar; pred/target (N, 1, h, w) normalised,
# mean/std/max_value (N,).
LossFn = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor
]


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def l1_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    max_value: torch.Tensor,
) -> torch.Tensor:
    """Mean absolute error of the normalised images (mean/std/max_value unused)."""
    return F.l1_loss(pred, target.to(pred.dtype))


def ssim_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    max_value: torch.Tensor,
) -> torch.Tensor:
    """1 - mean SSIM of the de-normalised slices.

    Args:
        pred, target: (N, 1, h, w) normalised images.
        mean, std: (N,) normalisation of each slice.
        max_value: (N,) data range (volume max); 0 where unknown.

    Returns:
        scalar loss.
    """
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    m, s = _bcast(mean, pred).to(dtype), _bcast(std, pred).to(dtype)
    p = pred.to(dtype) * s + m
    t = target.to(dtype) * s + m
    slice_max = t.detach().flatten(1).amax(dim=1)
    mv = max_value.to(device=t.device, dtype=dtype).reshape(-1)
    data_range = torch.where(mv > 0, mv, slice_max).clamp_min(torch.finfo(dtype).tiny)
    return 1.0 - ssim_torch(t, p, data_range).mean()


def build_loss(cfg: LossConfig) -> LossFn:
    """The loss function a :class:`LossConfig` names."""
    if cfg.name == "l1":
        return l1_loss
    if cfg.name == "ssim":
        return ssim_loss
    w1, w2 = cfg.l1_weight, cfg.ssim_weight

    def mix_loss(pred, target, mean, std, max_value):  # noqa: ANN001, ANN202
        return w1 * l1_loss(pred, target, mean, std, max_value) + w2 * ssim_loss(
            pred, target, mean, std, max_value
        )

    return mix_loss
