"""Training losses: L1, SSIM, their weighted mix, and a do-no-harm hinge.

L1 is taken on the normalised images the network sees (fastMRI's U-Net loss). SSIM
is computed on de-normalised images (``x * std + mean``) with the same window and
constants as the evaluation metric (:func:`mrirecon.metrics.ssim_torch`, skimage's
definition; Wang et al., IEEE TIP 2004), with the file's ``max`` attribute as data
range when present, else the slice's target maximum.

The hinge (:func:`noharm_hinge`, opt-in by ``loss.noharm_weight``) is added to any of them:
the mean over slices of ``max(0, SSIM(zero-filled) - SSIM(output))``, zero on every slice
where the network is at least as good as the zero-filled image it was given. The
evaluation asks each scan to be no worse than zero-filled ("do no harm"); a plain loss
weighs the rare slice where the network loses like any other, and the hinge weighs it
more, with a gradient that points towards the zero-filled image's score.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mrirecon.metrics import ssim_torch
from mrirecon.train.config import LossConfig

__all__ = ["LossFn", "build_loss", "l1_loss", "noharm_hinge", "ssim_loss"]

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


def _ssim_slices(
    pred: torch.Tensor,
    target: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    max_value: torch.Tensor,
) -> torch.Tensor:
    """(N,) SSIM of the de-normalised slices (see :func:`ssim_loss`)."""
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    m, s = _bcast(mean, pred).to(dtype), _bcast(std, pred).to(dtype)
    p = pred.to(dtype) * s + m
    t = target.to(dtype) * s + m
    slice_max = t.detach().flatten(1).amax(dim=1)
    mv = max_value.to(device=t.device, dtype=dtype).reshape(-1)
    data_range = torch.where(mv > 0, mv, slice_max).clamp_min(torch.finfo(dtype).tiny)
    return ssim_torch(t, p, data_range)


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
    return 1.0 - _ssim_slices(pred, target, mean, std, max_value).mean()


def noharm_hinge(
    pred: torch.Tensor,
    baseline: torch.Tensor,
    target: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    max_value: torch.Tensor,
) -> torch.Tensor:
    """Mean over slices of ``max(0, SSIM(baseline) - SSIM(pred))``, de-normalised.

    Args:
        pred, baseline, target: (N, 1, h, w) normalised images; ``baseline`` is the
            zero-filled image the network was given (no gradient flows into it).
        mean, std: (N,) normalisation of each slice.
        max_value: (N,) data range (volume max); 0 where unknown.

    Returns:
        scalar, 0 when the network is at least as good as the baseline on every slice.
    """
    ref = _ssim_slices(baseline.detach().to(pred.dtype), target, mean, std, max_value)
    ours = _ssim_slices(pred, target, mean, std, max_value)
    return torch.relu(ref - ours).mean()


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
