"""Slabs of real anatomy for :mod:`mrirecon.synth.volumes`: geometry, contrast and resampling.

A slab is a stack of neighbouring slices through the Colin 27 head (Holmes et al., J. Comput.
Assist. Tomogr. 1998). It is taken in one of three orientations and turned by an oblique
rigid transform (in-plane rotation, tilt, flip) with anisotropic pixel spacing. It is then
resampled trilinearly onto a k-space-sized grid after a random contrast re-mapping. Before
resampling the anatomy is low-passed: a Gaussian anti-alias filter in-plane and the slice
profile through-plane.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from mrirecon.synth import fields as sf

if TYPE_CHECKING:
    from mrirecon.synth.volumes import SynthConfig

__all__ = [
    "BRAIN_THRESHOLD",
    "ORIENTATIONS",
    "brain_box",
    "face_taper",
    "rotation",
    "sample_anatomy",
    "slab_centre",
    "weighted_choice",
]

# Orientation -> (row axis, column axis, slice normal) in Colin voxel axes (x, y, z RAS).
ORIENTATIONS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "AX": ((0, -1, 0), (1, 0, 0), (0, 0, 1)),  # anterior at the top
    "COR": ((0, 0, -1), (1, 0, 0), (0, 1, 0)),  # superior at the top
    "SAG": ((0, 0, -1), (0, 1, 0), (1, 0, 0)),
}
BRAIN_THRESHOLD = 20  # Colin 27 T1 values above this are head, not air


def weighted_choice(
    rng: np.random.RandomState, names: Sequence[str], weights: Sequence[float]
) -> str:
    """One of ``names`` drawn with probabilities proportional to ``weights``."""
    p = np.asarray(weights, dtype=np.float64)
    return names[rng.choice(len(names), p=p / p.sum())]


def brain_box(volume: np.ndarray) -> np.ndarray:
    """(3, 2) first/last voxel index of the head along x, y, z."""
    box = np.empty((3, 2))
    head = volume[::2, ::2, ::2] > BRAIN_THRESHOLD  # 2-voxel precision is plenty
    for ax in range(3):
        other = tuple(i for i in range(3) if i != ax)
        idx = np.flatnonzero(head.any(axis=other))
        if idx.size == 0:
            raise ValueError("anatomy volume is empty (no voxel above the head threshold)")
        box[ax] = 2 * idx[0], 2 * idx[-1]
    return box


def face_taper(pts: Sequence[np.ndarray], shape: Sequence[int], width: float = 20.0):
    """Smooth fade-out within ``width`` voxels of the volume's faces.

    Colin 27 cuts the neck off at its lower face; without the fade, that cut would be a
    sharp straight edge in coronal and sagittal slices, which no scan has.
    """
    weight = np.ones_like(pts[0])
    for p, n in zip(pts, shape, strict=True):
        d = np.clip(np.minimum(p, n - 1 - p) / width, 0.0, 1.0)
        weight *= np.sin(0.5 * np.pi * d) ** 2
    return weight


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation matrix about a unit axis."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def slab_centre(
    rng: np.random.RandomState, config: SynthConfig, extent: float, half: float
) -> float:
    """Slab centre fraction in ``slab_band`` whose slab avoids ``exclude_band``."""
    lo, hi = config.slab_band
    for _ in range(1000):
        frac = rng.uniform(lo, hi)
        ex = config.exclude_band
        if ex is None or frac + half / extent <= ex[0] or frac - half / extent >= ex[1]:
            return frac
    raise ValueError(f"SynthConfig: no slab of this thickness fits {config.slab_band} outside {ex}")


def sample_anatomy(
    volume: np.ndarray, config: SynthConfig, rng: np.random.RandomState
) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw a slab's geometry and contrast and resample it onto the k-space grid.

    Args:
        volume: the uint8 anatomy (x, y, z) at 1 mm, e.g. Colin 27.
        config: sizes and ranges (k-space size, recon width, slices, fov, spacing, bands,
            orientation and contrast weights).
        rng: random state.

    Returns:
        (magnitude float64 (S, H, W) scaled to a maximum of 1, the drawn parameters).
    """
    (H, W), w, S = config.kspace, config.recon_size[1], config.slices
    orient = weighted_choice(rng, list(ORIENTATIONS), config.orientation_weights)
    contrast = weighted_choice(rng, list(sf.CONTRASTS), config.contrast_weights)
    row, col, normal = (np.asarray(a, dtype=np.float64) for a in ORIENTATIONS[orient])
    # In-plane rotation (mostly upright, sometimes 90/180/270 degrees), flip and oblique tilt.
    theta = np.deg2rad(rng.choice([0, 90, 180, 270], p=[0.6, 0.15, 0.1, 0.15]))
    theta += np.deg2rad(np.clip(rng.normal(0, 6), -15, 15))
    flip = bool(rng.uniform() < 0.5)
    tilt_r, tilt_c = np.deg2rad(rng.uniform(-8, 8, size=2))
    rot = rotation(normal, theta)
    rot = rotation(rot @ row, tilt_r) @ rotation(rot @ col, tilt_c) @ rot
    row, col, normal = rot @ row, rot @ col * (-1 if flip else 1), rot @ normal
    spacing = rng.uniform(*config.fov_mm) / w
    aspect = rng.uniform(0.9, 1.1)
    sp_r, sp_c = spacing * aspect, spacing / aspect
    dz = rng.uniform(*config.slice_spacing_mm)
    box = brain_box(volume)
    nax = int(np.flatnonzero(ORIENTATIONS[orient][2])[0])
    half = dz * (S - 1) / 2
    frac = slab_centre(rng, config, box[nax, 1] - box[nax, 0], half)
    centre = box.mean(axis=1) + rng.normal(0, 6, size=3)
    centre[nax] = box[nax, 0] + frac * (box[nax, 1] - box[nax, 0])
    # Voxel bounding box of the whole slab (the map is affine: its corners suffice).
    r = (np.array([0, H - 1]) - H // 2) * sp_r
    c = (np.array([0, W - 1]) - W // 2) * sp_c
    k = np.array([-half, half])
    corners = np.array([centre + a * row + b * col + z * normal for a in r for b in c for z in k])
    lo = np.clip(np.floor(corners.min(0)) - 4, 0, np.array(volume.shape) - 1).astype(int)
    hi = np.clip(np.ceil(corners.max(0)) + 5, lo + 1, np.array(volume.shape)).astype(int)
    lut = sf.contrast_lut(contrast, rng)
    thickness = dz * rng.uniform(0.8, 1.0)
    block = lut[volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]]
    # Very coarse pixels (tiny recon sizes only): mean-pool f^3 voxels so the blur stays cheap.
    f = max(1, min(int(spacing // 1.5), *block.shape))
    if f > 1:
        n = [(b // f) * f for b in block.shape]
        block = block[: n[0], : n[1], : n[2]]
        block = block.reshape(n[0] // f, f, n[1] // f, f, n[2] // f, f).mean(axis=(1, 3, 5))
    # Anti-alias in-plane for pixels coarser than the voxels; slice profile through-plane.
    sigma = [0.42 * np.sqrt(max((spacing / f) ** 2 - 1.0, 0.0))] * 3
    sigma[nax] = 0.42 * np.sqrt(max((thickness / f) ** 2 - 1.0, 0.0))
    block = ndimage.gaussian_filter(block, sigma=sigma, mode="constant")
    rr = (np.arange(H) - H // 2)[:, None] * sp_r
    cc = (np.arange(W) - W // 2)[None, :] * sp_c
    out = np.empty((S, H, W))
    for s in range(S):
        z = (s - (S - 1) / 2) * dz
        pts = [centre[a] + rr * row[a] + cc * col[a] + z * normal[a] for a in range(3)]
        local = [(pts[a] - lo[a] - (f - 1) / 2) / f for a in range(3)]
        out[s] = ndimage.map_coordinates(block, local, order=1, cval=0.0, prefilter=False)
        out[s] *= face_taper(pts, volume.shape)
    out /= max(out.max(), 1e-12)
    params = {
        "orientation": orient,
        "contrast": contrast,
        "rotation_deg": round(float(np.rad2deg(theta)), 3),
        "flip": flip,
        "tilt_deg": [round(float(np.rad2deg(t)), 3) for t in (tilt_r, tilt_c)],
        "pixel_mm": [round(float(sp_r), 4), round(float(sp_c), 4)],
        "slice_spacing_mm": round(float(dz), 4),
        "slab_centre_frac": round(float(frac), 4),
    }
    return out, params
