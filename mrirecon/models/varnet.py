"""End-to-end variational network (E2E-VarNet) with learned coil sensitivities.

Sriram et al., "End-to-End Variational Networks for Accelerated MRI Reconstruction",
MICCAI 2020 (arXiv:2004.06688). The network unrolls ``num_cascades`` steps of

    k_{t+1} = k_t - eta_t M (k_t - k_0) - F E(R(F^-1 k_t))

where ``M`` is the sampling mask, ``k_0`` the measured k-space, ``eta_t`` a learned
data-consistency weight, ``E``/``R`` the sensitivity expand/reduce operators and ``R`` a
normalised U-Net on the coil-combined complex image (2 real channels). The coil
sensitivities are estimated from the ACS block of the masked k-space by another
normalised U-Net applied to each coil image and normalised by their root-sum-of-squares.
The output is the RSS of the final coil images, centre-cropped like the target.

Optionally (``output_gate`` and ``output_mix``, additions to the paper) small CNNs
multiply that magnitude by a learned per-pixel gate and add a learned per-pixel multiple of
the zero-filled magnitude, see :mod:`mrirecon.models.output_heads`.

Complex data are native complex tensors here. Module names, parameter names and the
arithmetic follow ``fastmri.models.VarNet``, so with ``norm="instance"`` a fastMRI VarNet
state_dict loads unchanged and gives the same output.

Memory: ``checkpointing=True`` recomputes each cascade in the backward pass instead of
storing its activations (the memory of one cascade instead of all of them), and every
U-Net runs under the caller's autocast (bf16 on CUDA) while the FFTs and data
consistency stay in float32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mrirecon.fft import center_crop, fft2c, ifft2c, rss
from mrirecon.models.output_heads import GateContext, OutputGate, OutputMix, RowContext
from mrirecon.models.unet import NORMS, Unet

__all__ = [
    "VarNet",
    "VarNetConfig",
    "NormUnet",
    "SensitivityModel",
    "VarNetBlock",
]


class NormUnet(nn.Module):
    """A U-Net on complex images: real/imaginary channels, normalised, padded to 16.

    The real and imaginary parts are normalised separately by their mean and (unbiased)
    std over all channels and pixels, zero-padded symmetrically to multiples of 16, run
    through the U-Net, cropped back and de-normalised.

    Args:
        chans: first-level channels of the U-Net.
        pools: U-Net levels.
        coils: complex channels in and out (1 for a coil-combined image).
        drop_prob: dropout probability.
        norm: U-Net normalisation (``group`` default; ``instance`` matches fastMRI).
        num_groups: GroupNorm groups (must divide ``chans``).
    """

    def __init__(
        self,
        chans: int,
        pools: int,
        coils: int = 1,
        drop_prob: float = 0.0,
        norm: str = "group",
        num_groups: int = 2,
    ) -> None:
        super().__init__()
        self.unet = Unet(
            in_chans=2 * coils,
            out_chans=2 * coils,
            chans=chans,
            num_pool_layers=pools,
            drop_prob=drop_prob,
            norm=norm,
            num_groups=num_groups,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> (N, C, H, W) complex (C = ``coils``)."""
        n, c, h, w = x.shape
        real = torch.cat([x.real, x.imag], dim=1)  # (N, 2C, H, W): all real, then all imag
        grouped = real.reshape(n, 2, c * h * w)
        mean = grouped.mean(dim=2).view(n, 2, 1, 1).repeat_interleave(c, dim=1)
        std = grouped.std(dim=2).view(n, 2, 1, 1).repeat_interleave(c, dim=1)
        real = (real - mean) / std
        h_mult, w_mult = ((h - 1) | 15) + 1, ((w - 1) | 15) + 1
        h_pad = (math.floor((h_mult - h) / 2), math.ceil((h_mult - h) / 2))
        w_pad = (math.floor((w_mult - w) / 2), math.ceil((w_mult - w) / 2))
        real = F.pad(real, [*w_pad, *h_pad])
        real = self.unet(real).float()  # a bf16 autocast ends here: FFTs stay in float32
        real = real[..., h_pad[0] : h_mult - h_pad[1], w_pad[0] : w_mult - w_pad[1]]
        real = real * std + mean
        return torch.complex(real[:, :c], real[:, c:])


class SensitivityModel(nn.Module):
    """Coil sensitivities from the ACS block: a NormUnet on each coil image, RSS-normalised.

    Args:
        chans: first-level channels of the U-Net.
        pools: U-Net levels.
        mask_center: keep only the fully sampled centre columns of k-space (as fastMRI).
        norm, num_groups: U-Net normalisation.
    """

    def __init__(
        self,
        chans: int,
        pools: int,
        mask_center: bool = True,
        norm: str = "group",
        num_groups: int = 2,
    ) -> None:
        super().__init__()
        self.mask_center = mask_center
        self.norm_unet = NormUnet(chans, pools, norm=norm, num_groups=num_groups)

    @staticmethod
    def center_limits(mask: torch.Tensor, num_low_frequencies: int | None) -> torch.Tensor:
        """(N, 2) [start, stop) of the fully sampled centre columns of each mask.

        Without ``num_low_frequencies`` the symmetric run of sampled columns around the
        centre is found from the mask (fastMRI's rule). Fallback for masks without an ACS
        block: at least one column is kept, so the maps are estimated from the centre
        line alone (blurred along the phase encode, still RSS-normalised) rather than
        failing; data consistency does not depend on them.
        """
        cols = mask.reshape(mask.shape[0], -1).to(torch.int8)
        width = cols.shape[1]
        if num_low_frequencies:
            num = torch.full((cols.shape[0],), int(num_low_frequencies), device=mask.device)
        else:
            cent = width // 2
            left = torch.argmin(cols[:, :cent].flip(1), dim=1)
            right = torch.argmin(cols[:, cent:], dim=1)
            num = torch.clamp(2 * torch.minimum(left, right), min=1)
        start = (width - num + 1) // 2
        return torch.stack([start, start + num], dim=1).long()

    def forward(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: int | None
    ) -> torch.Tensor:
        """(N, C, H, W) k-space, (N, 1, 1, W) mask -> (N, C, H, W) maps with RSS 1."""
        if self.mask_center:
            lim = self.center_limits(mask, num_low_frequencies)
            cols = torch.arange(masked_kspace.shape[-1], device=masked_kspace.device)
            keep = (cols >= lim[:, :1]) & (cols < lim[:, 1:])  # (N, W)
            masked_kspace = masked_kspace * keep[:, None, None, :]
        n, c, h, w = masked_kspace.shape
        images = ifft2c(masked_kspace).reshape(n * c, 1, h, w)
        maps = self.norm_unet(images).reshape(n, c, h, w)
        return maps / rss(maps, dim=1).unsqueeze(1)


class VarNetBlock(nn.Module):
    """One cascade: soft data consistency plus a NormUnet regulariser in image space.

    Args:
        model: the regulariser, (N, 1, H, W) complex -> (N, 1, H, W) complex.
        gated: scale the regulariser term by a learned gate that starts at 0 (ReZero,
            Bachlechner et al. 2020), so an untrained cascade only enforces data
            consistency.
    """

    def __init__(self, model: nn.Module, gated: bool = False) -> None:
        super().__init__()
        self.model = model
        self.dc_weight = nn.Parameter(torch.ones(1))
        # Registered only when gated, so fastMRI state_dicts load strictly otherwise.
        self.gate = nn.Parameter(torch.zeros(1)) if gated else None

    def forward(
        self,
        current: torch.Tensor,
        ref: torch.Tensor,
        mask: torch.Tensor,
        sens: torch.Tensor,
    ) -> torch.Tensor:
        """k_t (N, C, H, W), k_0, mask (N, 1, 1, W), maps (N, C, H, W) -> k_{t+1}."""
        soft_dc = torch.where(mask, current - ref, torch.zeros_like(current)) * self.dc_weight
        reduced = (ifft2c(current) * sens.conj()).sum(dim=1, keepdim=True)
        model_term = fft2c(self.model(reduced) * sens)
        if self.gate is not None:
            model_term = model_term * self.gate
        return current - soft_dc - model_term


class VarNet(nn.Module):
    """The E2E-VarNet: learned sensitivities, ``num_cascades`` unrolled steps, RSS output.

    Args:
        num_cascades: unrolled steps.
        chans, pools: channels and levels of each cascade's U-Net.
        sens_chans, sens_pools: channels and levels of the sensitivity U-Net.
        norm: U-Net normalisation (``group`` default; ``instance`` matches fastMRI).
        num_groups: GroupNorm groups of the cascade U-Nets (must divide ``chans``).
        sens_num_groups: GroupNorm groups of the sensitivity U-Net.
        mask_center: estimate sensitivities from the centre columns only.
        checkpointing: recompute the sensitivity network and each cascade in the
            backward pass (activation memory of one of them instead of all).
        gated: each cascade's regulariser term is scaled by a learned gate that starts
            at 0, so the untrained network returns the zero-filled RSS image ("do no
            harm", like the residual U-Net) and learns only corrections to it.
        output_gate: gate the output magnitude with an :class:`OutputGate` (not in the
            paper; lets the network output exact zero backgrounds).
        output_mix: add a learned local multiple of the zero-filled magnitude to the
            output with an :class:`OutputMix` (not in the paper; lets it keep the measured
            noise of noisy magnitude data), after the gate.
        gate_context: give the output gate the whole image's statistics through a
            :class:`GateContext` (needs ``output_gate``).
        gate_rows: give the output gate the zero-filled image's emptiest readout rows
            (its noise floor where aliasing cannot hide it) through a
            :class:`RowContext` (needs ``output_gate``).
    """

    def __init__(
        self,
        num_cascades: int = 12,
        chans: int = 18,
        pools: int = 4,
        sens_chans: int = 8,
        sens_pools: int = 4,
        norm: str = "group",
        num_groups: int = 6,
        sens_num_groups: int = 4,
        mask_center: bool = True,
        checkpointing: bool = False,
        gated: bool = False,
        output_gate: bool = False,
        output_mix: bool = False,
        gate_context: bool = False,
        gate_rows: bool = False,
    ) -> None:
        super().__init__()
        if (gate_context or gate_rows) and not output_gate:
            raise ValueError("gate_context and gate_rows need output_gate")
        self.checkpointing = checkpointing
        self.sens_net = SensitivityModel(sens_chans, sens_pools, mask_center, norm, sens_num_groups)
        self.cascades = nn.ModuleList(
            [
                VarNetBlock(NormUnet(chans, pools, norm=norm, num_groups=num_groups), gated)
                for _ in range(num_cascades)
            ]
        )
        # Built last (the other weights draw the same numbers with or without it) and
        # registered only when asked for, so fastMRI state_dicts load strictly otherwise.
        self.output_gate = OutputGate() if output_gate else None
        self.output_mix = OutputMix() if output_mix else None
        self.gate_context = GateContext() if gate_context else None
        self.gate_rows = RowContext() if gate_rows else None

    def sensitivities(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: int | None
    ) -> torch.Tensor:
        """(N, C, H, W) coil maps; a single coil has unit sensitivity."""
        if masked_kspace.shape[1] == 1:
            return torch.ones_like(masked_kspace)
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(
                self.sens_net, masked_kspace, mask, num_low_frequencies, use_reentrant=False
            )
        return self.sens_net(masked_kspace, mask, num_low_frequencies)

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        num_low_frequencies: int | None = None,
        crop: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Reconstruct a batch of slices.

        Args:
            masked_kspace: complex (N, C, H, W) measured k-space, zero where not sampled.
            mask: bool (N, 1, 1, W) or (W,) sampled columns.
            num_low_frequencies: fully sampled centre columns (None: found from the mask).
            crop: (h, w) centre crop of the output (None: the full image).

        Returns:
            real (N, h, w) RSS magnitude.
        """
        if masked_kspace.dim() != 4 or not masked_kspace.is_complex():
            raise ValueError(
                f"VarNet expects complex (N, C, H, W) k-space, got {masked_kspace.dtype} "
                f"{tuple(masked_kspace.shape)}"
            )
        mask = mask.reshape(-1, 1, 1, masked_kspace.shape[-1]).expand(
            masked_kspace.shape[0], 1, 1, -1
        )
        sens = self.sensitivities(masked_kspace, mask, num_low_frequencies)
        kspace = masked_kspace
        for cascade in self.cascades:
            if self.checkpointing and torch.is_grad_enabled():
                kspace = checkpoint(cascade, kspace, masked_kspace, mask, sens, use_reentrant=False)
            else:
                kspace = cascade(kspace, masked_kspace, mask, sens)
        image = rss(ifft2c(kspace).abs(), dim=1)
        if crop is not None:
            image = center_crop(image, crop)
        if self.output_gate is not None or self.output_mix is not None:
            zero_filled = rss(ifft2c(masked_kspace).abs(), dim=1)
            if crop is not None:
                zero_filled = center_crop(zero_filled, crop)
            if self.output_gate is not None:
                image = self.output_gate(image, zero_filled, self.gate_context, self.gate_rows)
            if self.output_mix is not None:
                image = self.output_mix(image, zero_filled)
        return image


@dataclass(frozen=True)
class VarNetConfig:
    """The ``model`` section of a VarNet training config: :class:`VarNet`'s arguments."""

    kind: str = "varnet"
    num_cascades: int = 12
    chans: int = 18
    pools: int = 4
    sens_chans: int = 8
    sens_pools: int = 4
    norm: str = "group"
    num_groups: int = 6
    sens_num_groups: int = 4
    mask_center: bool = True
    checkpointing: bool = False
    gated: bool = False
    output_gate: bool = False
    output_mix: bool = False
    gate_context: bool = False
    gate_rows: bool = False

    def __post_init__(self) -> None:
        for name in ("gate_context", "gate_rows"):
            if getattr(self, name) and not self.output_gate:
                raise ValueError(f"model.{name} needs model.output_gate")
        if self.kind != "varnet":
            raise ValueError(f"model.kind: a VarNet config has kind 'varnet', got {self.kind!r}")
        if self.norm not in NORMS:
            raise ValueError(f"model.norm: unknown {self.norm!r}; choose from {sorted(NORMS)}")
        for name in ("num_cascades", "chans", "pools", "sens_chans", "sens_pools"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.norm == "group":
            for groups, chans, what in (
                (self.num_groups, self.chans, "num_groups"),
                (self.sens_num_groups, self.sens_chans, "sens_num_groups"),
            ):
                if groups < 1 or chans % groups:
                    raise ValueError(f"model.{what} {groups} must divide its channels {chans}")

    def build(self) -> VarNet:
        """A freshly initialised :class:`VarNet` (draws from the global torch RNG)."""
        return VarNet(**{k: v for k, v in asdict(self).items() if k != "kind"})
