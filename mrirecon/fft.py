"""Centred orthonormal FFTs, root-sum-of-squares and centre crops.

All functions act on the last two dimensions (:func:`ifft_readout` on the readout only)
and accept any number of leading dimensions. Complex data is a native complex tensor
(``torch.complex64``), never a trailing real/imaginary axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "fft2c", "ifft2c", "ifft_readout", "shift_index", "rss", "abs2", "center_crop",
    "crop_slices", "fft2c_np", "ifft2c_np",
]  # fmt: skip

_DIMS = (-2, -1)


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred, orthonormal 2-D FFT: image space -> k-space.

    Args:
        image: complex tensor (..., H, W).

    Returns:
        k-space, complex tensor (..., H, W).
    """
    if not image.is_complex():
        raise ValueError(f"fft2c needs a complex tensor, got {image.dtype}")
    x = torch.fft.ifftshift(image, dim=_DIMS)
    x = torch.fft.fft2(x, dim=_DIMS, norm="ortho")
    return torch.fft.fftshift(x, dim=_DIMS)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centred, orthonormal 2-D inverse FFT: k-space -> image space.

    This is the adjoint (and inverse) of :func:`fft2c`.

    Args:
        kspace: complex tensor (..., H, W).

    Returns:
        image, complex tensor (..., H, W).
    """
    if not kspace.is_complex():
        raise ValueError(f"ifft2c needs a complex tensor, got {kspace.dtype}")
    x = torch.fft.ifftshift(kspace, dim=_DIMS)
    x = torch.fft.ifft2(x, dim=_DIMS, norm="ortho")
    return torch.fft.fftshift(x, dim=_DIMS)


def shift_index(n: int, positions: torch.Tensor, inverse: bool) -> torch.Tensor:
    """Where ``positions`` of an axis of length n come from under (i)fftshift.

    ``fftshift(y)[i] = y[(i - n//2) % n]`` and ``ifftshift(y)[i] = y[(i + n//2) % n]``, so
    a centring shift folds into an ``index_select`` (or ``index_copy_``) with these indices.
    """
    return (positions + (n // 2 if inverse else -(n // 2))) % n


def ifft_readout(kspace: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
    """Centred, orthonormal 1-D inverse FFT along the readout (dim -2), some rows kept.

    The centring shifts are folded into the gathers, so only the kept rows are copied out.

    Args:
        kspace: complex tensor (..., H, W), e.g. some k-space columns.
        rows: image rows to keep (e.g. the centre crop's, :func:`crop_slices`); None = all.

    Returns:
        complex tensor (..., len(rows), W): rows of the image along the readout.
    """
    h, dev = kspace.shape[-2], kspace.device
    x = kspace.index_select(-2, shift_index(h, torch.arange(h, device=dev), inverse=True))
    x = torch.fft.ifft(x, dim=-2, norm="ortho")
    if rows is None:
        rows = slice(0, h)
    return x.index_select(
        -2, shift_index(h, torch.arange(rows.start, rows.stop, device=dev), False)
    )


def fft2c_np(image: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`fft2c` (used by the data synthesiser and tests)."""
    x = np.fft.ifftshift(image, axes=_DIMS)
    x = np.fft.fft2(x, axes=_DIMS, norm="ortho")
    return np.fft.fftshift(x, axes=_DIMS)


def ifft2c_np(kspace: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`ifft2c`."""
    x = np.fft.ifftshift(kspace, axes=_DIMS)
    x = np.fft.ifft2(x, axes=_DIMS, norm="ortho")
    return np.fft.fftshift(x, axes=_DIMS)


def rss(data: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares coil combination.

    Args:
        data: real or complex tensor, coils along ``dim`` (default (..., C, H, W)).
        dim: the coil dimension.

    Returns:
        real tensor with ``dim`` removed, e.g. (..., H, W).
    """
    return torch.sqrt(abs2(data).sum(dim=dim))


def abs2(data: torch.Tensor) -> torch.Tensor:
    """Squared magnitude re^2 + im^2 (no square root, cheaper than ``abs() ** 2``)."""
    if data.is_complex():
        return torch.view_as_real(data).square().sum(dim=-1)
    return data.square()


def crop_slices(shape: Sequence[int], crop: Sequence[int]) -> tuple[slice, slice]:
    """Index slices of a centre crop of the last two dims, fastMRI's rule.

    The crop starts at ``(dim - crop) // 2``.

    Args:
        shape: full shape (..., H, W) of the array to crop.
        crop: (h, w) of the crop.

    Returns:
        (rows, cols) slices.
    """
    h, w = int(shape[-2]), int(shape[-1])
    ch, cw = int(crop[0]), int(crop[1])
    if not (0 < ch <= h and 0 < cw <= w):
        raise ValueError(f"cannot centre-crop {h}x{w} to {ch}x{cw}")
    top, left = (h - ch) // 2, (w - cw) // 2
    return slice(top, top + ch), slice(left, left + cw)


def center_crop(data: torch.Tensor | np.ndarray, crop: Sequence[int]):
    """Centre-crop the last two dimensions of a real or complex array/tensor.

    Args:
        data: (..., H, W) tensor or ndarray, real or complex.
        crop: (h, w) of the crop, each no larger than the data.

    Returns:
        (..., h, w), the same type as ``data`` (a view where possible).
    """
    rows, cols = crop_slices(data.shape, crop)
    return data[..., rows, cols]
