"""Oblique slabs through a 3-D volume: random geometry and trilinear resampling.

The corpus (:mod:`mrirecon.synth.corpus`) cuts each volume out of a 1 mm anatomy (Colin 27
or the MNI ICBM152 template). A :class:`Slab` is the geometry: an orientation, an in-plane
rotation (any angle), a flip, an oblique tilt, pixel spacing and a centre. :func:`slab_block`
gives the voxel box the slab touches, so the contrast is computed only there, and
:func:`resample` takes any per-voxel image of that box onto the k-space-sized grid.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from mrirecon.synth.anatomy import ORIENTATIONS, face_taper, rotation, weighted_choice

__all__ = ["Slab", "draw_slab", "slab_block", "resample"]


class Slab(NamedTuple):
    """Geometry of a slab of S slices on an (H, W) grid, in voxel coordinates.

    Attributes:
        orientation: "AX", "COR" or "SAG".
        centre: (3,) voxel position of the grid's centre pixel in the middle slice.
        row, col, normal: (3,) unit vectors of the image rows, columns and slice normal.
        pixel_mm: (row, column) pixel spacing in mm (= voxels).
        slice_mm: distance between slices in mm.
        thickness_mm: slice-profile width (the through-plane blur).
        shape: (S, H, W) of the grid.
    """

    orientation: str
    centre: np.ndarray
    row: np.ndarray
    col: np.ndarray
    normal: np.ndarray
    pixel_mm: tuple[float, float]
    slice_mm: float
    thickness_mm: float
    shape: tuple[int, int, int]


def draw_slab(
    rng: np.random.RandomState,
    box: np.ndarray,
    shape: tuple[int, int, int],
    fov_mm: float,
    recon_w: int,
) -> Slab:
    """Draw a random slab through the object in ``box``.

    Args:
        rng: random state.
        box: (3, 2) first and last voxel of the object along x, y, z.
        shape: (S, H, W) of the k-space-sized grid.
        fov_mm: field of view across the recon width ``recon_w``, in mm.
        recon_w: recon width w (pixels).

    Returns:
        the :class:`Slab`.
    """
    orient = weighted_choice(rng, list(ORIENTATIONS), (0.5, 0.25, 0.25))
    row, col, normal = (np.asarray(a, dtype=np.float64) for a in ORIENTATIONS[orient])
    # Any in-plane angle sometimes; otherwise upright or a quarter turn with a few degrees.
    if rng.uniform() < 0.25:
        theta = rng.uniform(0.0, 2 * np.pi)
    else:
        theta = np.deg2rad(rng.choice([0, 90, 180, 270], p=[0.55, 0.15, 0.15, 0.15]))
        theta += np.deg2rad(np.clip(rng.normal(0, 5), -15, 15))
    rot = rotation(normal, theta)
    tilt_r, tilt_c = np.deg2rad(np.clip(rng.normal(0, 5, size=2), -12, 12))
    rot = rotation(rot @ row, tilt_r) @ rotation(rot @ col, tilt_c) @ rot
    flip = -1.0 if rng.uniform() < 0.5 else 1.0
    row, col, normal = rot @ row, rot @ col * flip, rot @ normal
    spacing = fov_mm / recon_w
    aspect = rng.uniform(0.85, 1.15)
    pixel = (spacing * aspect, spacing / aspect)
    dz = rng.uniform(0.8, 5.0)
    nax = int(np.flatnonzero(ORIENTATIONS[orient][2])[0])
    centre = box.mean(axis=1) + rng.normal(0, 8, size=3)
    centre[nax] = box[nax, 0] + rng.uniform(0.15, 0.85) * (box[nax, 1] - box[nax, 0])
    return Slab(orient, centre, row, col, normal, pixel, dz, dz * rng.uniform(0.7, 1.0), shape)


def _points(slab: Slab, s: int) -> list[np.ndarray]:
    S, H, W = slab.shape
    rr = ((np.arange(H, dtype=np.float32) - H // 2) * np.float32(slab.pixel_mm[0]))[:, None]
    cc = ((np.arange(W, dtype=np.float32) - W // 2) * np.float32(slab.pixel_mm[1]))[None, :]
    z = (s - (S - 1) / 2) * slab.slice_mm
    start = slab.centre + z * slab.normal
    return [
        np.float32(start[a]) + rr * np.float32(slab.row[a]) + cc * np.float32(slab.col[a])
        for a in range(3)
    ]


def slab_block(slab: Slab, volume_shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    """The voxel box (with a margin for the blur) that the slab's grid touches."""
    S, H, W = slab.shape
    r = (np.array([0, H - 1]) - H // 2) * slab.pixel_mm[0]
    c = (np.array([0, W - 1]) - W // 2) * slab.pixel_mm[1]
    k = np.array([-1, 1]) * slab.slice_mm * (S - 1) / 2
    corners = np.array(
        [
            slab.centre + a * slab.row + b * slab.col + z * slab.normal
            for a in r
            for b in c
            for z in k
        ]
    )
    lim = np.array(volume_shape)
    lo = np.clip(np.floor(corners.min(0)) - 4, 0, lim - 1).astype(int)
    hi = np.clip(np.ceil(corners.max(0)) + 5, lo + 1, lim).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def resample(
    block: np.ndarray,
    box: tuple[slice, slice, slice],
    slab: Slab,
    volume_shape: tuple[int, ...],
    blur: bool = True,
) -> np.ndarray:
    """Low-pass ``block`` (the image of ``box``) and sample it on the slab's grid.

    The blur is an anti-alias filter in-plane for pixels coarser than 1 mm and the slice
    profile through-plane; the faces of the volume fade out smoothly (a cut neck is not a
    straight edge in any real scan). Values are exactly zero wherever the block is zero
    within one voxel, so a skull-stripped image keeps an exactly zero background.

    Args:
        block: the per-voxel image of ``box``.
        box: the voxel box (:func:`slab_block`).
        slab: the geometry.
        volume_shape: shape of the whole volume (for the face fade-out).
        blur: apply the anti-alias and slice-profile blur (off for maps such as distances).

    Returns:
        float32 (S, H, W).
    """
    spacing = max(slab.pixel_mm)
    nax = int(np.argmax(np.abs(slab.normal)))
    sigma = [0.42 * np.sqrt(max(spacing**2 - 1.0, 0.0))] * 3
    sigma[nax] = 0.42 * np.sqrt(max(slab.thickness_mm**2 - 1.0, 0.0))
    if blur and max(sigma) > 0.3:
        # truncate=2: the Gaussian tail beyond 2 sigma is below 2%; keeps the blur cheap.
        block = ndimage.gaussian_filter(block, sigma=sigma, mode="constant", truncate=2.0)
    lo = [b.start for b in box]
    S, H, W = slab.shape
    out = np.empty((S, H, W), dtype=np.float32)
    for s in range(S):
        pts = _points(slab, s)
        local = np.stack([pts[a] - np.float32(lo[a]) for a in range(3)])
        ndimage.map_coordinates(block, local, out[s], order=1, cval=0.0, prefilter=False)
        out[s] *= face_taper(pts, volume_shape, width=12.0)
    return out
