"""Image quality metrics with fastMRI's definitions, plus a batched torch SSIM.

All volume metrics take magnitude volumes (S, H, W) already cropped to the target
size, exactly as ``fastmri/evaluate.py`` computes them:

- NMSE = ||gt - pred||^2 / ||gt||^2 over the whole volume;
- PSNR = skimage ``peak_signal_noise_ratio`` with ``data_range = gt.max()`` (volume max);
- SSIM = mean over slices of skimage ``structural_similarity`` (7x7 uniform window,
  K1 = 0.01, K2 = 0.03, sample covariance) with ``data_range = gt.max()``.

The reported number for a data set is the mean over volumes. Every path in mrirecon
(training validation, ``evaluate``, ``compare``) calls :func:`volume_metrics`, so the
numbers agree (fastMRI's own Lightning loop does not agree with its evaluate.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = ["VolumeMetrics", "nmse", "psnr", "ssim", "volume_metrics", "ssim_torch"]

_WIN = 7
_K1, _K2 = 0.01, 0.03


class VolumeMetrics(NamedTuple):
    """Per-volume scores."""

    nmse: float
    psnr: float
    ssim: float


def _check(gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.shape != pred.shape:
        raise ValueError(f"shape mismatch: target {gt.shape} vs prediction {pred.shape}")
    if gt.ndim != 3:
        raise ValueError(f"metrics need volumes (S, H, W), got shape {gt.shape}")


def nmse(gt: np.ndarray, pred: np.ndarray) -> float:
    """Normalised mean squared error of a volume: ||gt - pred||^2 / ||gt||^2."""
    _check(gt, pred)
    gt64, pred64 = gt.astype(np.float64), pred.astype(np.float64)
    return float(np.linalg.norm(gt64 - pred64) ** 2 / np.linalg.norm(gt64) ** 2)


def psnr(gt: np.ndarray, pred: np.ndarray, maxval: float | None = None) -> float:
    """Peak signal-to-noise ratio of a volume, data range = volume max of ``gt``."""
    _check(gt, pred)
    maxval = float(gt.max()) if maxval is None else maxval
    return float(peak_signal_noise_ratio(gt, pred, data_range=maxval))


def ssim(gt: np.ndarray, pred: np.ndarray, maxval: float | None = None) -> float:
    """Mean over slices of skimage's SSIM, data range = volume max of ``gt``."""
    _check(gt, pred)
    maxval = float(gt.max()) if maxval is None else maxval
    scores = [structural_similarity(gt[i], pred[i], data_range=maxval) for i in range(gt.shape[0])]
    return float(np.mean(scores))


def volume_metrics(gt: np.ndarray, pred: np.ndarray) -> VolumeMetrics:
    """NMSE, PSNR and SSIM of one volume (S, H, W), fastMRI definitions."""
    gt = np.asarray(gt, dtype=np.float32)
    pred = np.asarray(pred, dtype=np.float32)
    _check(gt, pred)
    if not (np.isfinite(gt).all() and np.isfinite(pred).all()):
        raise ValueError("target or prediction contains NaN/Inf")
    return VolumeMetrics(nmse(gt, pred), psnr(gt, pred), ssim(gt, pred))


def ssim_torch(
    gt: torch.Tensor, pred: torch.Tensor, data_range: torch.Tensor | float
) -> torch.Tensor:
    """Batched SSIM per slice, equal to skimage's ``structural_similarity`` defaults.

    Uses a 7x7 uniform window with sample covariance and averages over the valid
    region (skimage crops 3 pixels on each border before averaging, which is the
    region a 'valid' convolution covers). Differentiable, so it also serves as a loss.

    Args:
        gt: (N, H, W) or (N, 1, H, W) target slices.
        pred: same shape as ``gt``.
        data_range: scalar, or (N,) per-slice data range (e.g. the volume max).

    Returns:
        (N,) SSIM of each slice.
    """
    if gt.shape != pred.shape:
        raise ValueError(
            f"shape mismatch: target {tuple(gt.shape)} vs prediction {tuple(pred.shape)}"
        )
    if gt.dim() == 3:
        gt, pred = gt.unsqueeze(1), pred.unsqueeze(1)
    if gt.dim() != 4 or gt.shape[1] != 1:
        raise ValueError(f"ssim_torch needs (N, H, W) or (N, 1, H, W), got {tuple(gt.shape)}")
    if gt.shape[-1] < _WIN or gt.shape[-2] < _WIN:
        raise ValueError(f"images must be at least {_WIN}x{_WIN}, got {tuple(gt.shape[-2:])}")
    dtype = torch.float64 if gt.dtype == torch.float64 else torch.float32
    x, y = pred.to(dtype), gt.to(dtype)
    dr = torch.as_tensor(data_range, dtype=dtype, device=x.device).reshape(-1, 1, 1, 1)
    c1, c2 = (_K1 * dr) ** 2, (_K2 * dr) ** 2
    kernel = torch.full((1, 1, _WIN, _WIN), 1.0 / _WIN**2, dtype=dtype, device=x.device)
    np_ = _WIN * _WIN
    cov_norm = np_ / (np_ - 1)
    ux, uy = F.conv2d(x, kernel), F.conv2d(y, kernel)
    uxx, uyy, uxy = F.conv2d(x * x, kernel), F.conv2d(y * y, kernel), F.conv2d(x * y, kernel)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    num = (2 * ux * uy + c1) * (2 * vxy + c2)
    den = (ux**2 + uy**2 + c1) * (vx + vy + c2)
    return (num / den).mean(dim=(1, 2, 3))
