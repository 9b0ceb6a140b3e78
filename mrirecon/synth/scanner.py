"""What a scanner's reconstruction does to a magnitude image: a reduced k-space support.

Scanners export magnitude images reconstructed from less k-space than their matrix (2x
zero-fill interpolation, partial Fourier). Restricting each complex receive channel, signal
and noise, to that support before the magnitude blurs the image and correlates its noise;
:func:`~mrirecon.synth.fields.magnitude_noise` applies it when given a ``support``.
"""

from __future__ import annotations

import numpy as np

from mrirecon.fft import fft2c_np, ifft2c_np

__all__ = ["scanner_support", "supported_magnitude"]


def supported_magnitude(
    mag: np.ndarray,
    sigma: np.ndarray,
    channels: int,
    rng: np.random.RandomState,
    support: np.ndarray,
) -> np.ndarray:
    """:func:`~mrirecon.synth.fields.magnitude_noise` with each channel restricted to ``support``."""
    if support.shape != mag.shape[1:] or not support.any():
        raise ValueError(f"support: need a non-empty {mag.shape[1:]} mask, got {support.shape}")
    power = np.zeros(mag.shape, dtype=np.float32)
    for c in range(channels):
        noise = rng.standard_normal((2, *mag.shape)).astype(np.float32) * sigma
        channel = (mag if c == 0 else 0.0) + noise[0] + 1j * noise[1]
        channel = ifft2c_np(fft2c_np(channel) * support)
        power += (np.abs(channel) ** 2).astype(np.float32)
    return np.sqrt(power)


def scanner_support(
    shape: tuple[int, int], rng: np.random.RandomState
) -> tuple[np.ndarray, dict[str, float]]:
    """A random k-space support of a scanner's magnitude reconstruction.

    Scanners export images reconstructed from less k-space than their matrix: acquired at
    half the resolution and zero-fill interpolated 2x (a common default), and/or with
    partial Fourier along the phase encode (columns; 5/8 to 7/8 of k-space, zero-filled,
    as in most diffusion EPI). Interpolation is drawn with probability 1/2; partial
    Fourier always without it, and with probability 1/2 with it.

    Args:
        shape: (H, W) image grid.
        rng: the random stream.

    Returns:
        bool (H, W) centred support, and what was drawn (``interpolated``: 0 or 1,
        ``partial_fourier``: the kept fraction of the columns, 1 for none).
    """
    H, W = shape
    interpolated = rng.uniform() < 0.5
    fraction = float(rng.uniform(5 / 8, 7 / 8)) if not interpolated or rng.uniform() < 0.5 else 1.0
    rows = np.ones(H, dtype=bool)
    cols = np.ones(W, dtype=bool)
    if interpolated:
        rows[: H // 2 - H // 4] = rows[H // 2 + H // 4 :] = False
        cols[: W // 2 - W // 4] = cols[W // 2 + W // 4 :] = False
    if fraction < 1.0:
        # Of the (possibly interpolated) acquired columns, keep one side and the centre.
        acquired = np.flatnonzero(cols)
        cols[acquired[int(round(fraction * len(acquired))) :]] = False
    return rows[:, None] & cols[None, :], {
        "interpolated": float(interpolated),
        "partial_fourier": fraction,
    }
