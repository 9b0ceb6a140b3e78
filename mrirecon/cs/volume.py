"""CS reconstruction of a whole volume: choose lambda for the scan, then solve in batches.

Every slice is solved from zero at the scan's lambda, so a ``lam: auto`` output is exactly
the fixed-lambda reconstruction at the lambda it records. With ``noise_floor`` the output
magnitude is raised to the target's noise floor (:mod:`mrirecon.noise_floor`), one level per
scan.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mrirecon.cs.auto import LambdaChoice, choose_lambda
from mrirecon.cs.config import CSConfig
from mrirecon.cs.recon import check_inputs, solve_batch
from mrirecon.fft import center_crop
from mrirecon.noise_floor import floor_level

__all__ = ["CSResult", "cs_reconstruct"]


class CSResult(NamedTuple):
    """A reconstructed volume: float32 (S, h, w) magnitude on the CPU, its lambda, and the
    noise floor the magnitude was raised to (0 = none, ``noise_floor`` off)."""

    image: torch.Tensor
    choice: LambdaChoice
    floor: float = 0.0


def cs_reconstruct(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    crop: tuple[int, int],
    config: CSConfig | None = None,
    acceleration: float | None = None,
    device: torch.device | str = "cpu",
    multicoil: bool | None = None,
    name: str = "",
) -> CSResult:
    """CS reconstruction of a volume, slices processed ``config.batch_size`` at a time.

    Args:
        kspace: complex (S, C, H, W) k-space (C = 1 for single-coil), on any device.
        mask: bool (W,) sampled columns.
        crop: (h, w) output size (fastMRI centre crop of the complex image).
        config: CS settings (None = defaults: ``lam: auto``).
        acceleration: picks the table's lambda (``lam`` None, or "auto"'s fallback and
            pull); None or 0 uses the mask's own acceleration W / (sampled columns).
        device: where to compute.
        multicoil: estimate ESPIRiT maps (True) or use S = identity (False, needs
            C = 1); None = multi-coil when C > 1.
        name: the file name; seeds "auto"'s held-out columns and names it in warnings.

    Returns:
        :class:`CSResult`.
    """
    config = config or CSConfig()
    check_inputs(kspace, mask)
    if mask.dim() != 1:
        raise ValueError(f"mask must be (W,), got {tuple(mask.shape)}")
    h, w = kspace.shape[-2:]
    if not (0 < crop[0] <= h and 0 < crop[1] <= w):
        raise ValueError(f"crop {tuple(crop)} does not fit images {h}x{w}")
    if multicoil is False and kspace.shape[1] != 1:
        raise ValueError(f"single-coil reconstruction needs C = 1, got {kspace.shape[1]} coils")
    device = torch.device(device)
    choice = choose_lambda(
        kspace, mask, config, name, acceleration, multicoil, device, crop_rows=crop[0]
    )
    floor = floor_level(kspace, mask) if config.noise_floor else 0.0
    out = []
    for s0 in range(0, kspace.shape[0], config.batch_size):
        k = kspace[s0 : s0 + config.batch_size].to(device)
        res = solve_batch(k, mask, choice.lam, config, estimate_maps=multicoil)
        out.append(center_crop(res.image, crop).abs().float().cpu().clamp_min(floor))
    return CSResult(torch.cat(out), choice, floor)
