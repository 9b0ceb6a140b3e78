"""Smooth random fields for k-space synthesis: contrast, phase, bias, coil maps and noise.

These are the physics ingredients :mod:`mrirecon.synth.volumes` needs to turn a magnitude
anatomy (Colin 27) into plausible raw data.

- Contrast: a random lookup table over the T1 intensities re-maps tissue classes. It gives
  T1-like, T2-like (CSF bright) or arbitrary contrasts, in the spirit of SynthSeg's random
  contrasts (Billot et al., Med. Image Anal. 2023).
- Phase: a low-order polynomial plus a low-pass random field. Without it, k-space is
  conjugate-symmetric.
- Coil sensitivities: loop coils placed around the field of view, with a magnitude that
  falls off like the on-axis Biot-Savart field of a circular loop, ``(a^2 / (a^2 + d^2))^1.5``,
  and a phase that winds around each coil (cf. the simulated maps of Pruessmann et al.,
  MRM 1999).
- Noise: complex Gaussian with a random inter-coil correlation; or the Rician /
  noncentral-chi noise of a magnitude image of N channels, optionally as reconstructed by
  a scanner from a reduced k-space support (zero-fill interpolation, partial Fourier).

All functions take an explicit ``np.random.RandomState``. Coordinates are normalised so that
+-1 spans the reconstruction crop.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special

from mrirecon.fft import ifft2c_np
from mrirecon.synth.scanner import supported_magnitude

__all__ = [
    "CONTRASTS",
    "COIL_LAYOUTS",
    "grid",
    "contrast_lut",
    "bias_field",
    "phase_fields",
    "coil_maps",
    "coil_noise",
    "magnitude_noise",
]

# T1 intensities of Colin 27 where the LUT has knots: background, skull, CSF (~28),
# grey matter (~60-85), white matter (~108), then fat and scalp (~160) and above.
_KNOTS = np.array([0.0, 10.0, 28.0, 45.0, 62.0, 85.0, 108.0, 130.0, 165.0, 255.0])
# T2-like template at those knots: CSF bright, grey over white matter, fat fairly bright.
_T2_TEMPLATE = np.array([0.0, 0.03, 1.0, 0.8, 0.62, 0.5, 0.38, 0.45, 0.75, 0.85])


def _lut_t1(rng: np.random.RandomState) -> np.ndarray:
    gamma = rng.uniform(0.7, 1.4)
    vals = (_KNOTS / 255.0) ** gamma
    vals[2:] *= 1.0 + rng.normal(0.0, 0.04, size=len(_KNOTS) - 2)
    return vals


def _lut_t2(rng: np.random.RandomState) -> np.ndarray:
    vals = _T2_TEMPLATE.copy()
    vals[2:] += rng.normal(0.0, 0.07, size=len(_KNOTS) - 2)
    return vals


def _lut_random(rng: np.random.RandomState) -> np.ndarray:
    vals = np.concatenate([[0.0, rng.uniform(0.0, 0.08)], rng.uniform(0.05, 1.0, len(_KNOTS) - 2)])
    return vals


# Contrast families (name -> knot values drawn from rng); the name goes into the
# file's ``acquisition`` attribute.
CONTRASTS = {"T1": _lut_t1, "T2": _lut_t2, "MIX": _lut_random}


def contrast_lut(kind: str, rng: np.random.RandomState) -> np.ndarray:
    """A random intensity lookup table for uint8 T1 values.

    Args:
        kind: a key of :data:`CONTRASTS`.
        rng: random state.

    Returns:
        float32 (256,) with values in [0, 1] (the maximum is scaled to 1, and 0 maps to 0).
    """
    if kind not in CONTRASTS:
        raise ValueError(f"unknown contrast {kind!r} (known: {', '.join(CONTRASTS)})")
    vals = np.clip(CONTRASTS[kind](rng), 0.0, None)
    vals[0] = 0.0
    lut = np.interp(np.arange(256.0), _KNOTS, vals)
    return (lut / max(lut.max(), 1e-6)).astype(np.float32)


def grid(shape: tuple[int, int], recon: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel coordinates of a k-space-sized image grid.

    The centre pixel is ``(H // 2, W // 2)`` (the centred FFT's origin); +-1 are the edges
    of the ``recon`` crop.

    Args:
        shape: (H, W) of the full image.
        recon: (h, w) of the crop.

    Returns:
        (yy, xx), each float64 (H, W).
    """
    (H, W), (h, w) = shape, recon
    y = (np.arange(H) - H // 2) / (h / 2.0)
    x = (np.arange(W) - W // 2) / (w / 2.0)
    return np.meshgrid(y, x, indexing="ij")


def _poly2(yy: np.ndarray, xx: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return coef[0] * xx + coef[1] * yy + coef[2] * xx**2 + coef[3] * xx * yy + coef[4] * yy**2


def bias_field(
    yy: np.ndarray, xx: np.ndarray, rng: np.random.RandomState, strength: float = 0.12
) -> np.ndarray:
    """Smooth multiplicative intensity bias ``exp(p(x, y))``, with p a random quadratic.

    Returns:
        float64 (H, W), about 1 +- ``2 * strength`` over the crop.
    """
    return np.exp(_poly2(yy, xx, rng.normal(0.0, strength, size=5)))


def _lowpass_field(shape: tuple[int, int], recon: tuple[int, int], rng, cycles: int) -> np.ndarray:
    """Real random field holding only spatial frequencies up to ``cycles`` across the crop."""
    (H, W), (h, w) = shape, recon
    spec = np.zeros((H, W), dtype=np.complex128)
    ky = max(1, round(cycles * H / h))
    kx = max(1, round(cycles * W / w))
    cy, cx = H // 2, W // 2
    block = (2 * ky + 1, 2 * kx + 1)
    spec[cy - ky : cy + ky + 1, cx - kx : cx + kx + 1] = rng.normal(size=block) + 1j * rng.normal(
        size=block
    )
    field = ifft2c_np(spec).real
    return field / max(field.std(), 1e-12)


def phase_fields(
    shape: tuple[int, int], recon: tuple[int, int], num_slices: int, rng: np.random.RandomState
) -> np.ndarray:
    """Smooth random image phase for a slab, changing slowly from slice to slice.

    The phase is a constant, plus a random quadratic (up to about +-2 rad at the crop edge),
    plus a low-pass random field (std 0.1-0.6 rad, up to 2 cycles across the crop). The
    field rotates between two independent fields from slice to slice.

    Returns:
        float64 (S, H, W) in radians.
    """
    yy, xx = grid(shape, recon)
    base = rng.uniform(-np.pi, np.pi) + _poly2(yy, xx, rng.normal(0.0, 0.5, size=5))
    amp = rng.uniform(0.1, 0.6)
    f1 = _lowpass_field(shape, recon, rng, cycles=2)
    f2 = _lowpass_field(shape, recon, rng, cycles=2)
    omega = rng.uniform(0.0, 0.3)
    t = omega * (np.arange(num_slices) - (num_slices - 1) / 2.0)
    return base + amp * (np.cos(t)[:, None, None] * f1 + np.sin(t)[:, None, None] * f2)


def _angles_ring(n: int, rng: np.random.RandomState) -> np.ndarray:
    step = 2 * np.pi / n
    return np.arange(n) * step + rng.uniform(-0.3, 0.3, n) * step


def _angles_arcs(n: int, rng: np.random.RandomState) -> np.ndarray:
    # Two facing arcs (e.g. anterior/posterior elements), each spanning 60-120 degrees.
    half = np.pi * rng.uniform(1 / 3, 2 / 3) / 2
    na = (n + 1) // 2
    a = np.linspace(-half, half, na)
    b = np.pi + np.linspace(-half, half, n - na)
    return np.concatenate([a, b]) + rng.normal(0.0, 0.05, n)


def _angles_random(n: int, rng: np.random.RandomState) -> np.ndarray:
    return np.sort(rng.uniform(0.0, 2 * np.pi, n))


# Coil placement around the field of view (name -> angles of the n coil centres).
COIL_LAYOUTS = {"ring": _angles_ring, "arcs": _angles_arcs, "random": _angles_random}


def coil_maps(
    shape: tuple[int, int],
    recon: tuple[int, int],
    num_coils: int,
    slice_offsets: np.ndarray,
    rng: np.random.RandomState,
    layout: str = "ring",
    smooth_phase: bool = False,
) -> np.ndarray:
    """Random loop-coil sensitivity maps around the field of view.

    Coil centres lie on an ellipse just outside the crop (radii 1.05-1.5 in crop half-widths).
    Each has an out-of-plane offset, and rows alternate in z for the "ring" layout. The maps
    are normalised so that their root-sum-of-squares peaks at 1 inside the crop.

    Args:
        shape: (H, W) of the full image grid.
        recon: (h, w) crop.
        num_coils: number of coils C.
        slice_offsets: (S,) through-plane position of each slice (in crop half-widths); the
            coils' distance to each slice depends on it.
        rng: random state.
        layout: a key of :data:`COIL_LAYOUTS`.
        smooth_phase: replace the winding phase (whose branch cut, pointing away from the
            centre, still crosses the crop's corners when a coil sits inside them) by a
            phase ramp along the coil's tangent of the same strength: smooth everywhere.
            The demo data keeps the winding phase.

    Returns:
        complex64 (S, C, H, W).
    """
    if layout not in COIL_LAYOUTS:
        raise ValueError(f"unknown coil layout {layout!r} (known: {', '.join(COIL_LAYOUTS)})")
    yy, xx = grid(shape, recon)
    ang = COIL_LAYOUTS[layout](num_coils, rng) + rng.uniform(0.0, 2 * np.pi)
    rx, ry = rng.uniform(1.05, 1.5, size=2)
    px, py = rx * np.cos(ang), ry * np.sin(ang)
    pz = rng.normal(0.0, 0.25, num_coils)
    if layout == "ring" and rng.uniform() < 0.5:  # two staggered rows
        pz += np.where(np.arange(num_coils) % 2 == 0, 0.35, -0.35)
    size = rng.uniform(0.5, 1.4, num_coils)
    wind = rng.uniform(-1.0, 1.0, num_coils)
    phase0 = rng.uniform(-np.pi, np.pi, num_coils)
    z = np.asarray(slice_offsets, dtype=np.float64)
    maps = np.empty((len(z), num_coils, *shape), dtype=np.complex64)
    for c in range(num_coils):
        dx, dy = xx - px[c], yy - py[c]
        # Angle around the coil measured from the direction towards the FOV centre, so the
        # branch cut of the winding phase points away from the anatomy.
        ex, ey = -px[c], -py[c]
        if smooth_phase:  # tangential offset / distance of the coil to the centre
            theta = (dx * ey - dy * ex) / (ex * ex + ey * ey)
        else:
            theta = np.arctan2(dx * ey - dy * ex, dx * ex + dy * ey)
        phase = np.exp(1j * (phase0[c] + wind[c] * theta)).astype(np.complex64)
        a2 = size[c] ** 2
        r2 = (dx**2 + dy**2).astype(np.float32)
        for s, zs in enumerate(z):
            q = np.float32(a2) / (np.float32(a2 + (pz[c] - zs) ** 2) + r2)
            maps[s, c] = q * np.sqrt(q) * phase
    (H, W), (h, w) = shape, recon
    rows = slice((H - h) // 2, (H - h) // 2 + h)
    cols = slice((W - w) // 2, (W - w) // 2 + w)
    peak = np.sqrt((np.abs(maps[:, :, rows, cols]) ** 2).sum(axis=1)).max()
    return maps / np.float32(peak)


@functools.lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
    """Standard-normal quantiles at the centres of 65536 equal-probability bins (float32)."""
    p = (np.arange(65536) + 0.5) / 65536
    return (np.sqrt(2.0) * special.erfinv(2.0 * p - 1.0)).astype(np.float32)


def coil_noise(
    shape: tuple[int, ...],
    sigma: float,
    rng: np.random.RandomState,
    max_corr: float = 0.3,
    quantised: bool = False,
) -> np.ndarray:
    """Complex Gaussian noise with a random inter-coil covariance.

    The covariance is ``(1 - b) I + b G G^H / C`` (G complex Gaussian, b in [0, max_corr]),
    rescaled to unit diagonal. Each coil's noise then has std ``sigma`` per complex sample
    (``sigma / sqrt(2)`` per real and imaginary part).

    Args:
        shape: (S, C, H, W), or (S, H, W) for one coil.
        sigma: noise standard deviation.
        rng: random state.
        max_corr: the upper bound of b.
        quantised: draw each normal as one of 65536 equal-probability quantiles (a 16-bit
            random index into a table; tails cut at 4.3 sigma), about 4x faster. The
            training corpus uses it; the demo data keeps exact normals.

    Returns:
        complex64 array of ``shape`` (for multi-coil, a transposed view of a coil-major array).
    """
    # Bulk normals from a Generator seeded by ``rng`` (several times faster than RandomState).
    gen = np.random.default_rng(rng.randint(0, 2**32, size=4, dtype=np.uint64))
    shape = tuple(int(n) for n in shape)
    multi = len(shape) == 4 and shape[1] >= 2
    order = (shape[1], shape[0], *shape[2:]) if multi else shape  # coils first for one GEMM
    # Interleaved (re, im) float32 pairs viewed as complex64: no copy.
    if quantised:
        index = gen.integers(0, 65536, size=(*order, 2), dtype=np.uint16)
        normals = _normal_table()[index]
    else:
        normals = gen.standard_normal(size=(*order, 2), dtype=np.float32)
    noise = normals.view(np.complex64)[..., 0]
    gain = np.float32(sigma / np.sqrt(2.0))
    if not multi:
        noise *= gain
        return noise
    c = shape[1]
    g = rng.normal(size=(c, c)) + 1j * rng.normal(size=(c, c))
    b = rng.uniform(0.0, max_corr)
    cov = (1 - b) * np.eye(c) + b * (g @ g.conj().T) / c
    d = 1.0 / np.sqrt(np.real(np.diag(cov)))
    chol = np.linalg.cholesky(cov * d[:, None] * d[None, :]) * gain
    mixed = (chol.astype(np.complex64) @ noise.reshape(c, -1)).reshape(order)
    return mixed.transpose(1, 0, 2, 3)


def magnitude_noise(
    mag: np.ndarray,
    rel: float,
    channels: int,
    rng: np.random.RandomState,
    support: np.ndarray | None = None,
) -> np.ndarray:
    """The root-sum-of-squares magnitude of ``channels`` complex channels, the signal in
    the first, each with Gaussian noise of std ``rel`` times the peak of each slice.

    The noise of a magnitude image: Rician for one channel, noncentral chi for more (its
    law depends only on the signal's norm, so one signal channel is general), with a
    Rayleigh or chi floor where the object is absent.

    Args:
        mag: (S, H, W) noise-free magnitude.
        rel: noise std relative to each slice's peak.
        channels: receive channels N (>= 1).
        rng: the random stream.
        support: optional bool (H, W) centred k-space support of the scanner's
            reconstruction (:func:`mrirecon.synth.scanner.scanner_support`): each complex
            channel, signal and noise, keeps only these frequencies (zero-filled) before
            the magnitude, so the image is interpolated or blurred and its noise spatially
            correlated, as in a magnitude image exported by a scanner.

    Returns:
        float32 (S, H, W) noisy magnitude.
    """
    sigma = rel * mag.reshape(mag.shape[0], -1).max(axis=1)[:, None, None]
    if support is not None:
        return supported_magnitude(mag, sigma, channels, rng, support)
    noise = rng.standard_normal((2, *mag.shape)).astype(np.float32) * sigma
    out = np.abs((mag + noise[0]) + 1j * noise[1]).astype(np.float32)
    if channels == 1:
        return out
    power = out**2
    for _ in range(channels - 1):  # one channel at a time: 2N full-size arrays may not fit
        noise = rng.standard_normal((2, *mag.shape)).astype(np.float32) * sigma
        power += noise[0] ** 2 + noise[1] ** 2
    return np.sqrt(power)
