"""l1-wavelet compressed-sensing reconstruction of batches and volumes.

Solves, per slice, ``x* = argmin_x 1/2 ||M F S x - y||^2 + lam ||W x||_1`` (Lustig M,
Donoho D, Pauly JM. "Sparse MRI: the application of compressed sensing for rapid MR
imaging." MRM 58(6):1182-1195, 2007), optionally plus ``tv TV(x)``, with S from ESPIRiT
(multi-coil) or the identity (single coil), W the orthonormal periodised wavelet, and
the output the coil-combined magnitude ``|x*|`` centre-cropped like fastMRI targets.

Each slice is first divided by ``s = max |A^H y|`` (its zero-filled coil-combined
maximum), so ``lam`` is relative and the solution is ``s`` times that of the scaled
problem (the problem is 1-homogeneous in (y, lam)).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from mrirecon.cs.config import CSConfig
from mrirecon.cs.espirit import espirit_maps
from mrirecon.cs.operators import (
    NormalOp,
    batch_mask,
    grad2d,
    power_iteration,
    sense_adjoint,
    sense_forward,
)
from mrirecon.cs.solvers import Problem, SolveInfo, condat_vu, fista
from mrirecon.cs.wavelet import Wavelet2D

__all__ = [
    "BatchResult",
    "solve_batch",
    "cs_objective",
    "check_inputs",
    "padded_shape",
]


_POWER_MARGIN = 1.02  # power-iteration estimates are at most ~2 % low after 10 iterations


class BatchResult(NamedTuple):
    """Complex solution (B, H, W) in the data's scale, the maps used and solver info."""

    image: torch.Tensor
    maps: torch.Tensor | None
    info: SolveInfo


def padded_shape(shape: tuple[int, int], levels: int) -> tuple[int, int]:
    """(H, W) rounded up to multiples of ``2**levels``."""
    m = 2**levels
    return (math.ceil(shape[0] / m) * m, math.ceil(shape[1] / m) * m)


def check_inputs(kspace: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise ValueError for k-space/mask that the solver cannot use."""
    if not isinstance(kspace, torch.Tensor) or not kspace.is_complex() or kspace.dim() != 4:
        shape = tuple(getattr(kspace, "shape", ()))
        raise ValueError(f"k-space must be a complex tensor (S, C, H, W), got shape {shape}")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask))}")
    if mask.shape[-1] != kspace.shape[-1] or mask.dim() not in (1, 2):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match k-space {tuple(kspace.shape)} "
            f"(need ({kspace.shape[-1]},))"
        )
    if mask.dim() == 2 and mask.shape[0] != kspace.shape[0]:
        raise ValueError(f"per-slice mask {tuple(mask.shape)} vs {kspace.shape[0]} slices")
    if not bool(mask.any()):
        raise ValueError("mask samples no column")
    if not bool(torch.isfinite(torch.view_as_real(kspace)).all()):
        raise ValueError("k-space contains NaN/Inf")


@torch.no_grad()
def solve_batch(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    lam: float | torch.Tensor,
    config: CSConfig | None = None,
    maps: torch.Tensor | None = None,
    estimate_maps: bool | None = None,
    x0: torch.Tensor | None = None,
    iterations: int | None = None,
) -> BatchResult:
    """Reconstruct a batch of slices on the device of ``kspace``.

    Args:
        kspace: complex (B, C, H, W) k-space (masked here, so unmasked input is fine).
        mask: bool (W,) or (B, W) sampled phase-encode columns.
        lam: relative l1-wavelet weight (> 0), a fraction of max |A^H y| per slice: one
            value, or (B,) values (a lambda grid solved as one batch).
        config: wavelet, solver and ESPIRiT settings (``config.lam`` is ignored here);
            None = defaults.
        maps: complex (B, C, H, W) sensitivities to use instead of estimating them.
        estimate_maps: ESPIRiT when True; None = when C > 1 and no maps are given.
        x0: complex (B, H, W) warm start in the data's scale (None = zeros).
        iterations: solver iterations (None = ``config.iterations``).

    Returns:
        :class:`BatchResult` with the complex image (B, H, W) in the data's scale.
    """
    check_inputs(kspace, mask)
    lam_t = torch.as_tensor(lam, dtype=torch.float32).flatten().expand(kspace.shape[0])
    if not bool(torch.isfinite(lam_t).all() and (lam_t > 0).all()):
        raise ValueError(f"lambda must be > 0, got {lam}")
    if x0 is not None and x0.shape != (kspace.shape[0], *kspace.shape[-2:]):
        raise ValueError(
            f"warm start {tuple(x0.shape)} does not match k-space {tuple(kspace.shape)}"
        )
    config = config or CSConfig()
    steps = config.iterations if iterations is None else iterations
    with torch.autocast(kspace.device.type, enabled=False):  # complex64/float32 throughout
        return _solve_batch(kspace, mask, lam_t, config, maps, estimate_maps, x0, steps)


def _solve_batch(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    lam: torch.Tensor,
    config: CSConfig,
    maps: torch.Tensor | None,
    estimate_maps: bool | None,
    x0: torch.Tensor | None,
    iterations: int,
) -> BatchResult:
    dev = kspace.device
    mask = mask.to(dev)
    bsz, ncoil, h, w = kspace.shape
    y = kspace.to(torch.complex64) * batch_mask(mask, bsz)
    if maps is None and (estimate_maps if estimate_maps is not None else ncoil > 1):
        maps = espirit_maps(y, mask, config.espirit)
    if maps is not None:
        maps = maps.to(dev, torch.complex64)
        if maps.shape != y.shape:
            raise ValueError(f"maps {tuple(maps.shape)} do not match k-space {tuple(y.shape)}")
    elif ncoil != 1:
        raise ValueError(f"{ncoil}-coil k-space needs sensitivity maps")

    aty = sense_adjoint(y, maps, mask)
    scale = aty.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(torch.float32).tiny)
    y = y / scale[:, None, None, None]
    aty = aty / scale[:, None, None]
    padded = padded_shape((h, w), config.levels)
    wavelet = Wavelet2D(padded, config.wavelet, config.levels, dev)
    lam_t = lam.to(dev)
    normal = NormalOp(maps, mask, bsz, (h, w), padded)
    gen = torch.Generator().manual_seed(config.seed)
    if maps is None:
        lip = torch.ones(bsz, device=dev)  # M F is a projection: L = 1 exactly
    else:
        # Power iteration approaches L from below; ||M F S||^2 <= max_px sum_c |S_c|^2 bounds
        # it from above (M F is a projection), so the inflated estimate is capped by the bound.
        est = power_iteration(normal, (bsz, *padded), config.power_iters, gen, dev)
        bound = (maps.abs() ** 2).sum(1).amax(dim=(1, 2))
        lip = torch.minimum(_POWER_MARGIN * est, bound).clamp_min(1e-6)
    if maps is None and padded == (h, w) and config.tv == 0:
        # Single coil: iterate on the image's 2-D DFT, where A^H A is the column mask.
        weights = normal.weights[:, 0]
        spec = torch.fft.fft2(aty, norm="ortho")
        problem = Problem(lambda u: u * weights, spec, wavelet, True, diag=weights)
    else:
        problem = Problem(normal, normal.pad(aty), wavelet, False)
    u0 = None if x0 is None else problem.variable(normal.pad(x0.to(dev) / scale[:, None, None]))
    if config.tv > 0:
        tv = torch.full((bsz,), float(config.tv), device=dev)
        u, info = condat_vu(problem, lam_t, lip, iterations, tv, config.tol, x0=u0)
    else:
        restart = config.solver == "fista-restart"
        u, info = fista(problem, lam_t, lip, iterations, config.tol, restart, x0=u0)
    image = problem.image(u)[..., :h, :w] * scale[:, None, None]
    return BatchResult(image, maps, info)


def cs_objective(
    image: torch.Tensor,
    kspace: torch.Tensor,
    mask: torch.Tensor,
    maps: torch.Tensor | None,
    lam: float | torch.Tensor,
    wavelet: Wavelet2D,
    tv: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Per-slice objective ``1/2 ||M F S x - y||^2 + lam ||W x||_1 + tv TV(x)``.

    Args:
        image: complex (B, H, W) (or the padded grid of ``wavelet``; k-space uses the
            top-left (H, W) block).
        kspace: complex (B, C, H, W) measured k-space (masked here).
        mask: bool (W,) or (B, W).
        maps: (B, C, H, W) or None (single coil).
        lam: absolute l1 weight, scalar or (B,).
        wavelet: the transform W (its shape is the image grid).
        tv: absolute isotropic TV weight.

    Returns:
        (B,) float objective values.
    """
    h, w = kspace.shape[-2:]
    resid = sense_forward(image[..., :h, :w], maps, mask) - kspace * batch_mask(mask, len(image))
    data = 0.5 * (resid.abs() ** 2).sum(dim=(1, 2, 3))
    l1 = wavelet.flatten(wavelet.forward(image)).abs().sum(dim=-1)
    val = data + torch.as_tensor(lam, device=image.device) * l1
    if torch.any(torch.as_tensor(tv) > 0):
        tvv = torch.sqrt((grad2d(image).abs() ** 2).sum(dim=1)).sum(dim=(1, 2))
        val = val + torch.as_tensor(tv, device=image.device) * tvv
    return val
