"""Linear operators of the CS problem: SENSE encoding ``A = M F S``, its normal operator,
finite differences for total variation, and power iteration for the Lipschitz constant.

Conventions: k-space and images are native complex tensors; ``F`` is the centred
orthonormal 2-D FFT of :mod:`mrirecon.fft`; ``M`` keeps the sampled phase-encode
columns (last dim); ``S`` multiplies by coil sensitivities (maps None = single coil,
S = identity with one coil).

The normal operator uses that a column mask commutes with the readout FFT, so
``F^H M F = F_W^H M F_W`` (1-D along the phase-encode axis only), and that this is a
circulant operator, so the centring shifts fold into ``ifftshift(mask)``: half the FFT
work of the direct form and no shifts.
"""

from __future__ import annotations

import torch

from mrirecon.fft import fft2c, ifft2c

__all__ = [
    "sense_forward",
    "sense_adjoint",
    "NormalOp",
    "power_iteration",
    "grad2d",
    "grad2d_adjoint",
    "batch_mask",
]


def batch_mask(mask: torch.Tensor, batch: int) -> torch.Tensor:
    """A (W,) or (B, W) bool mask as a (B, 1, 1, W) float32 tensor."""
    if mask.dim() == 1:
        mask = mask.expand(batch, -1)
    if mask.dim() != 2 or mask.shape[0] != batch:
        raise ValueError(f"mask must be (W,) or ({batch}, W), got {tuple(mask.shape)}")
    return mask.to(torch.float32)[:, None, None, :]


def _coils(x: torch.Tensor, maps: torch.Tensor | None) -> torch.Tensor:
    return x[:, None] if maps is None else maps * x[:, None]


def _combine(xc: torch.Tensor, maps: torch.Tensor | None) -> torch.Tensor:
    return xc[:, 0] if maps is None else (maps.conj() * xc).sum(dim=1)


def sense_forward(x: torch.Tensor, maps: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """A x = M F S x.

    Args:
        x: complex image (B, H, W).
        maps: complex (B, C, H, W) sensitivities, or None (single coil).
        mask: bool (W,) or (B, W).

    Returns:
        masked k-space (B, C, H, W) (C = 1 without maps).
    """
    return fft2c(_coils(x, maps)) * batch_mask(mask, x.shape[0])


def sense_adjoint(y: torch.Tensor, maps: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """A^H y = S^H F^H M y: (B, C, H, W) k-space -> (B, H, W) image."""
    return _combine(ifft2c(y * batch_mask(mask, y.shape[0])), maps)


class NormalOp:
    """``x -> A^H A x`` for images (B, Hp, Wp) that may be zero-padded beyond (H, W).

    The CS variable may live on a grid padded at the bottom/right so that the wavelet
    levels divide it; A then reads only the top-left (H, W) block (``A P^T``).

    Args:
        maps: complex (B, C, H, W) or None for single coil.
        mask: bool (W,) or (B, W).
        shape: (H, W) of k-space.
        padded: (Hp, Wp) >= (H, W) of the variable.
    """

    def __init__(
        self,
        maps: torch.Tensor | None,
        mask: torch.Tensor,
        batch: int,
        shape: tuple[int, int],
        padded: tuple[int, int],
    ) -> None:
        self.maps, self.shape, self.padded = maps, shape, padded
        self.weights = torch.fft.ifftshift(batch_mask(mask, batch), dim=-1)
        self._maps_conj = None if maps is None else maps.conj().resolve_conj()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.shape
        img = x[..., :h, :w] if self.padded != self.shape else x
        k = torch.fft.fft(_coils(img, self.maps), dim=-1)
        coils = torch.fft.ifft(k.mul_(self.weights), dim=-1)
        if self._maps_conj is None:
            return self.pad(coils[:, 0])
        out = self._maps_conj[:, 0] * coils[:, 0]
        for c in range(1, coils.shape[1]):  # fused multiply-adds beat mul + sum on CPU
            out.addcmul_(self._maps_conj[:, c], coils[:, c])
        return self.pad(out)

    def pad(self, img: torch.Tensor) -> torch.Tensor:
        """Zero-pad (B, H, W) at the bottom/right to the variable grid."""
        if self.padded == self.shape:
            return img
        out = img.new_zeros(img.shape[0], *self.padded)
        out[..., : self.shape[0], : self.shape[1]] = img
        return out


def power_iteration(
    op, shape: tuple[int, ...], iterations: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Largest eigenvalue of a Hermitian PSD batched operator, per batch entry.

    Args:
        op: callable on complex tensors of ``shape`` (B, ...).
        shape: the operand shape; the batch is the first dim.
        iterations: number of power iterations (>= 1).
        generator: CPU random generator for the start vector (explicit randomness).
        device: where to run.

    Returns:
        (B,) float32 eigenvalue estimates (Rayleigh quotients).
    """
    v = torch.randn(shape, generator=generator, dtype=torch.complex64).to(device)
    dims = tuple(range(1, len(shape)))
    v = v / torch.linalg.vector_norm(v, dim=dims, keepdim=True)
    est = torch.zeros(shape[0], device=device)
    for _ in range(max(1, iterations)):
        u = op(v)
        est = (v.conj() * u).sum(dim=dims).real
        v = u / torch.linalg.vector_norm(u, dim=dims, keepdim=True).clamp_min(1e-30)
    return est


def grad2d(x: torch.Tensor) -> torch.Tensor:
    """Periodic forward differences (B, H, W) -> (B, 2, H, W); ||grad||^2 <= 8."""
    return torch.stack([x.roll(-1, dims=-2) - x, x.roll(-1, dims=-1) - x], dim=1)


def grad2d_adjoint(p: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`grad2d` (minus the divergence): (B, 2, H, W) -> (B, H, W)."""
    return (p[:, 0].roll(1, dims=-2) - p[:, 0]) + (p[:, 1].roll(1, dims=-1) - p[:, 1])
