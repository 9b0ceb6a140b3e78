"""What the corpus images: real anatomy with random contrast, natural images, procedural shapes.

Every source draws a magnitude image stack (S, H, W) on a k-space-sized grid (H = 2h for
fastMRI's readout oversampling) from an explicit random state:

- ``mni152``: the MNI ICBM152 2009a template. Contrast per tissue class, from the grey- and
  white-matter probability maps and CSF = brain minus both (partial volumes mix linearly),
  with T1-, T2-, PD-, FLAIR-like or random class intensities, or a smooth random curve of the
  T1 template. The template is skull-stripped; some draws wrap it in a procedural skull and
  scalp (layers at random distances from the brain surface).
- ``colin27``: the Colin 27 T1 head (with skull and scalp) through a random contrast curve,
  or skull-stripped with its brain mask.
- ``natural``: CC0 / public-domain photographs (Dar et al., 2020: natural-image pre-training
  helps MRI reconstruction), zoomed, rotated and windowed onto the field of view.
- ``shapes``: procedural phantoms of random ellipses with smooth texture.

Skull-stripped draws are exactly zero outside the brain (before any noise). The held-out
real scans (:data:`mrirecon.data.assets.HELD_OUT`) are never read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from mrirecon.data.assets import (
    load_colin27,
    load_colin27_brain_mask,
    load_mni152,
    load_natural_images,
)
from mrirecon.synth.anatomy import brain_box
from mrirecon.synth.slab import draw_slab, resample, slab_block

__all__ = [
    "ASSET_FILES",
    "SOURCES",
    "TISSUE_CONTRASTS",
    "smooth_curve",
    "smooth_field",
    "draw_source",
    "preload",
]

# The asset files the corpus reads (tests check that none is held out).
ASSET_FILES = (
    "colin27_t1.npy.bz2",
    "colin27_brain_mask.npy.bz2",
    "mni152_2009a_t1_gm_wm.npy.bz2",
    "natural_images.npz",
)
# Relative (CSF, GM, WM) signal of each contrast family (literature-typical orderings).
TISSUE_CONTRASTS: dict[str, tuple[float, float, float]] = {
    "T1": (0.12, 0.55, 0.85),
    "T2": (1.0, 0.55, 0.38),
    "PD": (0.9, 0.8, 0.62),
    "FLAIR": (0.06, 0.8, 0.5),
}

Drawn = tuple[np.ndarray, dict[str, Any]]


def smooth_curve(rng: np.random.RandomState, monotone: bool, knots: int = 6) -> np.ndarray:
    """A smooth random intensity curve on [0, 1] as a 256-entry table, with f(0) = 0.

    Monotone curves keep the anatomy's contrast order (a new T1 weighting); non-monotone
    ones re-order tissues (any contrast).

    Returns:
        float32 (256,) in [0, 1] with maximum 1.
    """
    steps = rng.gamma(1.0, 1.0, knots) if monotone else rng.uniform(0.0, 1.0, knots)
    vals = np.concatenate([[0.0], np.cumsum(steps) if monotone else steps])
    x = np.linspace(0.0, 1.0, knots + 1)
    # Cubic through the knots, then clipped: smooth but free to overshoot slightly.
    coef = np.polyfit(x, vals, min(3, knots))
    curve = np.clip(np.polyval(coef, np.linspace(0.0, 1.0, 256)), 0.0, None)
    curve[0] = 0.0
    return (curve / max(curve.max(), 1e-6)).astype(np.float32)


def smooth_field(
    shape: tuple[int, int], recon: tuple[int, int], rng: np.random.RandomState, cycles: int
) -> np.ndarray:
    """A real random field with spatial frequencies up to ``cycles`` across the recon crop.

    Built separably (a (H, K) x (K, K) x (K, W) product of Fourier bases), so it costs far
    less than an FFT of the full grid.

    Returns:
        float32 (H, W) with unit standard deviation.
    """
    (H, W), (h, w) = shape, recon
    k = np.arange(-cycles, cycles + 1)
    ey = np.exp(2j * np.pi * np.outer((np.arange(H) - H // 2) / h, k)).astype(np.complex64)
    ex = np.exp(2j * np.pi * np.outer(k, (np.arange(W) - W // 2) / w)).astype(np.complex64)
    coef = (rng.normal(size=(len(k), len(k))) + 1j * rng.normal(size=(len(k), len(k)))) / (
        1.0 + np.hypot(*np.meshgrid(k, k, indexing="ij"))
    )
    field = (ey @ coef.astype(np.complex64) @ ex).real
    return field / max(float(field.std()), 1e-12)


class _Mni(NamedTuple):
    maps: np.ndarray  # uint8 (5, X, Y, Z): T1, CSF, GM, WM, cistern fill (255 = 1)
    near: np.ndarray  # uint8 (X, Y, Z): 255 - distance (mm) outside the cranium
    box: np.ndarray  # (3, 2) brain bounding box


# The cranium is the brain closed by this radius: the skull then spans the notches around
# the brain stem and cerebellum (filled with CSF, like the cisterns) instead of every fold.
_CLOSE_MM = 25.0


@functools.lru_cache(maxsize=1)
def _mni() -> _Mni:
    raw = load_mni152()
    brain = raw[0] > 0
    gm_wm = raw[1].astype(np.int16) + raw[2]
    csf = np.where(brain, np.clip(255 - gm_wm, 0, 255), 0).astype(np.uint8)
    outside = ndimage.distance_transform_edt(~brain)
    cranium = ndimage.distance_transform_edt(outside <= _CLOSE_MM) > _CLOSE_MM
    fill = np.where(cranium & ~brain, 255, 0).astype(np.uint8)
    # Stored as 255 - distance so that resampling outside the volume (0) reads "far away".
    near = (255 - np.minimum(ndimage.distance_transform_edt(~cranium), 255)).astype(np.uint8)
    return _Mni(np.stack([raw[0], csf, raw[1], raw[2], fill]), near, brain_box(raw[0]))


def _grid(rng: np.random.RandomState, recon: tuple[int, int]) -> float:
    """Field of view across the recon width in mm (a head is ~150-190 mm wide).

    A narrow matrix narrows the field of view, down to 3/4: some draws crop the head, as a
    tight rectangular field of view does.
    """
    return float(rng.uniform(170.0, 280.0) * max(0.75, recon[1] / max(recon)))


def _skull(d: np.ndarray, rng: np.random.RandomState, curve: np.ndarray) -> np.ndarray:
    """Procedural extra-cerebral layers from the distance ``d`` (mm) outside the brain.

    CSF rim, inner bone table (dark), marrow (fat-like), outer table (dark), scalp (fat and
    muscle), each a few mm, with soft edges; intensities follow the contrast ``curve``.
    """
    edges = np.cumsum(rng.uniform([1.0, 1.0, 1.5, 1.0, 3.0], [3.0, 2.5, 4.0, 2.0, 8.0]))
    levels = [curve[int(v)] for v in rng.uniform([20, 0, 150, 0, 120], [60, 25, 240, 25, 220])]
    # Each layer is a soft (1 mm) step up at its inner edge; the sum of the steps gives each
    # layer's level, and the last step down ends the scalp.
    steps = np.diff(np.concatenate([[0.0], levels, [0.0]]))
    out = np.zeros_like(d)
    for edge, step in zip(np.concatenate([[0.0], edges]), steps, strict=True):
        out += np.float32(step) * np.clip(d - np.float32(edge - 0.5), 0.0, 1.0)
    return out * (d > 0)


def draw_mni152(rng, shape, recon, skull_prob: float) -> Drawn:
    maps, near, head = _mni()
    slab = draw_slab(rng, head, shape, _grid(rng, recon), recon[1])
    box = slab_block(slab, maps.shape[1:])
    mode = rng.choice(["tissue", "curve"], p=[0.7, 0.3])
    curve = smooth_curve(rng, monotone=bool(rng.uniform() < 0.5))
    if mode == "tissue":
        names = [*TISSUE_CONTRASTS, "random"]
        family = str(rng.choice(names, p=[0.25, 0.25, 0.15, 0.15, 0.2]))
        base = TISSUE_CONTRASTS.get(family) or tuple(rng.uniform(0.05, 1.0, 3))
        w = (np.asarray(base) * rng.uniform(0.85, 1.15, 3) / 255.0).astype(np.float32)
        block = w[0] * maps[1][box] + w[1] * maps[2][box] + w[2] * maps[3][box]
        csf_level = w[0]
    else:
        family = "curve"
        block = curve[maps[0][box]]
        csf_level = np.float32(curve[rng.randint(20, 60)] / 255.0)
    skull = bool(rng.uniform() < skull_prob)
    if skull:  # the cisterns between brain and skull hold CSF
        block = block + csf_level * maps[4][box]
    mag = resample(block.astype(np.float32), box, slab, maps.shape[1:])
    if skull:
        dist = 255.0 - resample(near[box], box, slab, maps.shape[1:], blur=False)
        mag += _skull(dist, rng, curve)
    return mag, _params("mni152", family, skull, slab)


@functools.lru_cache(maxsize=2)
def _colin(stripped: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Colin 27 uint8, its head or brain box), skull-stripped or not, once per process."""
    vol = load_colin27()
    if stripped:
        vol[~load_colin27_brain_mask()] = 0
    vol.setflags(write=False)
    return vol, brain_box(vol)


def draw_colin27(rng, shape, recon, strip_prob: float) -> Drawn:
    stripped = bool(rng.uniform() < strip_prob)
    vol, head = _colin(stripped)
    slab = draw_slab(rng, head, shape, _grid(rng, recon), recon[1])
    box = slab_block(slab, vol.shape)
    monotone = bool(rng.uniform() < 0.5)
    curve = smooth_curve(rng, monotone=monotone)
    mag = resample(curve[vol[box]], box, slab, vol.shape)
    return mag, _params("colin27", "monotone" if monotone else "curve", not stripped, slab)


def _params(source: str, contrast: str, skull: bool, slab) -> dict[str, Any]:
    return {
        "source": source,
        "contrast": contrast,
        "skull": skull,
        "orientation": slab.orientation,
        "pixel_mm": [round(float(p), 4) for p in slab.pixel_mm],
        "slice_spacing_mm": round(float(slab.slice_mm), 4),
    }


def _support(shape, recon, rng) -> np.ndarray:
    """A soft-edged ellipse or rounded rectangle inside the recon field of view."""
    (H, W), (h, w) = shape, recon
    yy = (np.arange(H, dtype=np.float32) - H // 2)[:, None] / (h / 2)
    xx = (np.arange(W, dtype=np.float32) - W // 2)[None, :] / (w / 2)
    ry, rx = rng.uniform(0.6, 1.0, 2)
    p = rng.choice([2.0, 4.0, 8.0])  # superellipse: ellipse .. rounded rectangle
    r = (np.abs(yy / ry) ** p + np.abs(xx / rx) ** p) ** (1 / p)
    return np.clip((1.0 - r) / 0.03, 0.0, 1.0).astype(np.float32)


def _planes(rng, shape, slices, spread_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-slice affine maps of the grid: (S,) angles, (S, 2) shifts, scale."""
    theta = rng.uniform(0.0, 2 * np.pi) + rng.normal(0, 0.02, slices).cumsum()
    shift = rng.normal(0, spread_px, (slices, 2)).cumsum(axis=0)
    return theta, shift, np.float32(rng.uniform(0.5, 1.3))


def draw_natural(rng, shape, recon, slices: int) -> Drawn:
    images = load_natural_images()
    name = str(rng.choice(list(images)))
    img = images[name].astype(np.float32) / 255.0
    if rng.uniform() < 0.5:
        img = smooth_curve(rng, monotone=False)[np.round(img * 255).astype(np.intp)]
    (H, W), (h, w) = shape, recon
    theta, shift, scale = _planes(rng, shape, slices, 1.0)
    zoom = max(img.shape) / max(h, w) * scale
    yy = (np.arange(H, dtype=np.float32) - H // 2)[:, None]
    xx = (np.arange(W, dtype=np.float32) - W // 2)[None, :]
    centre = np.array(img.shape, dtype=np.float32) / 2
    support = _support(shape, recon, rng)
    out = np.empty((slices, H, W), dtype=np.float32)
    for s in range(slices):
        c, n = np.cos(theta[s]), np.sin(theta[s])
        y = zoom * (c * yy - n * xx) + centre[0] + shift[s, 0]
        x = zoom * (n * yy + c * xx) + centre[1] + shift[s, 1]
        out[s] = ndimage.map_coordinates(img, [y, x], order=1, mode="mirror", prefilter=False)
    return out * support, {"source": "natural", "contrast": name, "skull": False}


def draw_shapes(rng, shape, recon, slices: int) -> Drawn:
    (H, W), (h, w) = shape, recon
    yy = (np.arange(H, dtype=np.float32) - H // 2)[:, None] / (h / 2)
    xx = (np.arange(W, dtype=np.float32) - W // 2)[None, :] / (w / 2)
    count = int(rng.randint(4, 16))
    centres = rng.uniform(-0.7, 0.7, (count, 2))
    radii = rng.uniform(0.05, 0.6, (count, 2))
    angles = rng.uniform(0, np.pi, count)
    levels = rng.uniform(-0.5, 1.0, count)
    drift = rng.normal(0, 0.01, (slices, count, 2)).cumsum(axis=0)
    texture = 1.0 + 0.15 * smooth_field(shape, recon, rng, cycles=int(rng.randint(2, 8)))
    support = _support(shape, recon, rng)
    out = np.empty((slices, H, W), dtype=np.float32)
    for s in range(slices):
        img = np.full((H, W), rng.uniform(0.2, 0.6), dtype=np.float32)
        for i in range(count):
            cy, cx = centres[i] + drift[s, i]
            c, n = np.cos(angles[i]), np.sin(angles[i])
            u = (c * (yy - cy) + n * (xx - cx)) / radii[i, 0]
            v = (-n * (yy - cy) + c * (xx - cx)) / radii[i, 1]
            img += levels[i] * (u * u + v * v <= 1.0)
        out[s] = np.clip(img, 0.0, None) * texture * support
    out /= max(float(out.max()), 1e-6)
    return out, {"source": "shapes", "contrast": f"{count} ellipses", "skull": False}


# Source name -> drawer(rng, (H, W), (h, w), option) -> (magnitude (S, H, W), params).
SOURCES: dict[str, Callable[..., Drawn]] = {
    "mni152": draw_mni152,
    "colin27": draw_colin27,
    "natural": draw_natural,
    "shapes": draw_shapes,
}


def preload() -> None:
    """Decode the anatomy and images once in this process (about 4 s).

    A dataset calls this before DataLoader workers fork, so every worker shares the
    decoded arrays instead of decoding them again each epoch.
    """
    _mni()
    _colin(True)
    _colin(False)
    load_natural_images()


def draw_source(
    name: str,
    rng: np.random.RandomState,
    shape: tuple[int, int, int],
    recon: tuple[int, int],
    skull_prob: float,
) -> Drawn:
    """Draw a magnitude stack from one source.

    Args:
        name: a key of :data:`SOURCES`.
        rng: random state.
        shape: (S, H, W) of the grid.
        recon: (h, w) recon size (the anatomy fills about this part of the grid).
        skull_prob: probability that a head keeps (or gets) skull and scalp.

    Returns:
        (float32 (S, H, W) magnitude with maximum 1, the drawn parameters).
    """
    S, H, W = shape
    if name in ("mni152", "colin27"):
        option = skull_prob if name == "mni152" else 1.0 - skull_prob
        mag, params = SOURCES[name](rng, shape, recon, option)
    else:
        mag, params = SOURCES[name](rng, (H, W), recon, S)
    peak = float(mag.max())
    if peak <= 0:  # a slab that missed the object entirely: an empty image is still valid data
        return mag, params
    mag *= np.float32(1.0 / peak)
    return mag, params
