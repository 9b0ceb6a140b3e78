"""Reproducible fastMRI-format volumes simulated from real anatomy (Colin 27).

Each volume goes through these steps:

1. It picks an orientation (axial, coronal or sagittal) and a slab of neighbouring slices
   through the Colin 27 T1 head (Holmes et al., J. Comput. Assist. Tomogr. 1998).
2. It draws a small oblique tilt, an in-plane rotation, a scale, a shift and a flip. Trilinear
   resampling then takes the slab onto a k-space-sized grid. The anatomy is low-passed first:
   an anti-alias filter in-plane and the slice profile through-plane.
3. It re-maps the contrast with a random lookup table (T1, T2-like or mixed) and applies a
   smooth bias field.
4. It adds a smooth random phase. For multi-coil volumes it also adds random loop-coil
   sensitivities, with 4-12 coils in varying layouts.
5. It adds complex Gaussian noise in k-space. Some volumes get zero-padded phase-encode
   columns, which the ISMRMRD header describes.

The k-space geometry, header and targets follow fastMRI (:mod:`mrirecon.synth.kspace`).

Every volume has its own random stream, seeded by (seed, prefix, kind, index), so the same
config writes the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mrirecon.data.assets import asset_path, load_colin27
from mrirecon.fft import fft2c_np
from mrirecon.io import atomic_write
from mrirecon.synth import fields as sf
from mrirecon.synth.anatomy import ORIENTATIONS, sample_anatomy, weighted_choice
from mrirecon.synth.kspace import (
    SynthVolume,
    fastmri_target,
    ismrmrd_header,
    kspace_size_for,
    pad_phase_edges,
    write_volume,
)

__all__ = [
    "ORIENTATIONS",
    "VAL_BAND",
    "SynthConfig",
    "DemoLayout",
    "make_volume",
    "volume_name",
    "synthesize",
    "demo_dataset",
]

SOURCE = (
    "mrirecon synth: simulated from Colin 27 T1 (Holmes et al. 1998, MNI; BSD-3-clause via "
    "Debian mricron-data); see mrirecon/data/assets/NOTICE.md"
)

# Slab-centre band (fraction along each orientation's brain extent) held out for validation.
VAL_BAND = (0.42, 0.58)


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`synthesize` writes. Ranges are (low, high) and are drawn per volume.

    Attributes:
        seed: master seed. Each volume's stream is (seed, prefix, kind, index).
        num_singlecoil: number of single-coil volumes (``reconstruction_esc``).
        num_multicoil: number of multi-coil volumes (``reconstruction_rss``).
        slices: slices per volume.
        recon_size: (h, w) of targets and of the ISMRMRD recon matrix.
        kspace_size: (H, W) of k-space; None gives :func:`kspace_size_for` of ``recon_size``.
        coils: range of coil counts (inclusive) for multi-coil volumes.
        fov_mm: range of the field of view across the recon width, in mm.
        slice_spacing_mm: range of the distance between neighbouring slices, in mm.
        noise: range of the k-space noise std relative to the image peak (log-uniform).
        scale: range of the overall intensity scale (log-uniform).
        pad_prob: probability that a volume has zero-padded phase-encode columns.
        orientation_weights: probabilities of AX, COR, SAG.
        contrast_weights: probabilities of the T1, T2 and MIX contrast families.
        slab_band: allowed slab centres, as a fraction of the brain extent along the normal.
        exclude_band: slab centres whose slab would overlap this band are rejected (None: off).
        prefix: file-name prefix; it also keys the random streams.
    """

    seed: int = 0
    num_singlecoil: int = 2
    num_multicoil: int = 8
    slices: int = 12
    recon_size: tuple[int, int] = (128, 128)
    kspace_size: tuple[int, int] | None = None
    coils: tuple[int, int] = (4, 12)
    fov_mm: tuple[float, float] = (170.0, 260.0)
    slice_spacing_mm: tuple[float, float] = (1.0, 3.0)
    noise: tuple[float, float] = (0.003, 0.03)
    scale: tuple[float, float] = (1e-5, 1e-2)
    pad_prob: float = 0.3
    orientation_weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    contrast_weights: tuple[float, float, float] = (0.35, 0.35, 0.3)
    slab_band: tuple[float, float] = (0.12, 0.88)
    exclude_band: tuple[float, float] | None = None
    prefix: str = "synth"

    def __post_init__(self) -> None:
        h, w = self.recon_size
        H, W = self.kspace
        checks = [
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.num_singlecoil >= 0 and self.num_multicoil >= 0, "volume counts must be >= 0"),
            (1 <= self.slices <= 512, f"slices must be in 1..512, got {self.slices}"),
            (8 <= h and 8 <= w, f"recon size must be at least 8x8, got {h}x{w}"),
            (H >= h and W >= w, f"k-space {H}x{W} is smaller than recon {h}x{w}"),
            (2 <= self.coils[0] <= self.coils[1] <= 64, f"coils must be 2..64, got {self.coils}"),
            (0 <= self.pad_prob <= 1, f"pad_prob must be in [0, 1], got {self.pad_prob}"),
            (0 <= self.slab_band[0] < self.slab_band[1] <= 1, f"bad slab_band {self.slab_band}"),
            (self.prefix.isidentifier(), f"prefix must be a plain name, got {self.prefix!r}"),
        ]
        for lo_hi in (self.fov_mm, self.slice_spacing_mm, self.noise, self.scale):
            checks.append((0 < lo_hi[0] <= lo_hi[1], f"bad range {lo_hi}: need 0 < low <= high"))
        for weights in (self.orientation_weights, self.contrast_weights):
            checks.append((min(weights) >= 0 < sum(weights), f"bad weights {weights}"))
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"SynthConfig: {msg}")

    @property
    def kspace(self) -> tuple[int, int]:
        """The effective (H, W) k-space size."""
        return tuple(self.kspace_size) if self.kspace_size else kspace_size_for(self.recon_size)


class DemoLayout(NamedTuple):
    """Folders written by :func:`demo_dataset`."""

    train_dir: Path
    val_dir: Path
    real_dir: Path


def _volume_rng(config: SynthConfig, multicoil: bool, index: int) -> np.random.RandomState:
    seed = int(config.seed)
    key = [seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(config.prefix.encode()), int(multicoil), index]
    return np.random.RandomState(key)


def _loguniform(rng: np.random.RandomState, lo_hi: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]))))


def make_volume(
    config: SynthConfig, index: int, multicoil: bool, volume: np.ndarray | None = None
) -> SynthVolume:
    """Simulate one fastMRI-format volume.

    Args:
        config: what to simulate.
        index: volume number. Together with the seed, prefix and kind it keys the random stream.
        multicoil: multi-coil (``reconstruction_rss``) or single-coil (``reconstruction_esc``).
        volume: the Colin 27 uint8 (181, 217, 181) array (None: :func:`load_colin27`).

    Returns:
        The volume's k-space, target, header and attributes.
    """
    if volume is None:
        volume = load_colin27()
    rng = _volume_rng(config, multicoil, index)
    (H, W), recon, S = config.kspace, config.recon_size, config.slices
    mag, params = sample_anatomy(volume, config, rng)
    yy, xx = sf.grid((H, W), recon)
    phase = sf.phase_fields((H, W), recon, S, rng)
    image = (mag * sf.bias_field(yy, xx, rng) * np.exp(1j * phase)).astype(np.complex64)
    if multicoil:
        layout = weighted_choice(rng, list(sf.COIL_LAYOUTS), (0.5, 0.25, 0.25))
        ncoil = int(rng.randint(config.coils[0], config.coils[1] + 1))
        offsets = (np.arange(S) - (S - 1) / 2) * params["slice_spacing_mm"]
        offsets /= params["pixel_mm"][1] * recon[1] / 2
        maps = sf.coil_maps((H, W), recon, ncoil, offsets, rng, layout)
        image = image[:, None] * maps
        params.update(coils=ncoil, coil_layout=layout)
    scale = _loguniform(rng, config.scale)
    rel_noise = _loguniform(rng, config.noise)
    kspace = fft2c_np(image)  # complex64 in, complex64 out (numpy >= 2)
    kspace *= np.float32(scale)
    kspace += sf.coil_noise(kspace.shape, rel_noise * scale, rng)
    pad = pad_phase_edges(kspace, rng, config.pad_prob)
    kspace = np.ascontiguousarray(kspace, dtype=np.complex64)
    # The target, exactly as fastMRI computes it from the stored k-space.
    target = fastmri_target(kspace, recon, multicoil)
    params.update(scale=scale, noise_rel=rel_noise, padding=list(pad))
    header = ismrmrd_header(
        kspace_size=(H, W),
        recon_size=recon,
        num_slices=S,
        num_coils=params.get("coils", 1),
        padding=pad,
        pixel_mm=params["pixel_mm"],
        slice_mm=params["slice_spacing_mm"],
    )
    attrs = {
        "acquisition": f"SYNTH_{params['contrast']}_{params['orientation']}",
        "max": float(target.max()),
        "norm": float(np.linalg.norm(target)),
        "patient_id": f"{config.prefix}-{config.seed}-{'mc' if multicoil else 'sc'}{index:03d}",
        "source": SOURCE,
        "synth_params": json.dumps(params, sort_keys=True),
    }
    return SynthVolume(kspace, target, header, attrs, params)


def volume_name(config: SynthConfig, index: int, multicoil: bool) -> str:
    """File name of a synthetic volume, e.g. ``synth_s0_mc003.h5``."""
    return f"{config.prefix}_s{config.seed}_{'mc' if multicoil else 'sc'}{index:03d}.h5"


def synthesize(out_dir: str | os.PathLike[str], config: SynthConfig) -> list[Path]:
    """Write ``config``'s single-coil then multi-coil volumes into ``out_dir``.

    Returns:
        The files written, in order.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    volume = load_colin27()
    paths = []
    for multicoil, count in ((False, config.num_singlecoil), (True, config.num_multicoil)):
        for i in range(count):
            vol = make_volume(config, i, multicoil, volume)
            paths.append(write_volume(out / volume_name(config, i, multicoil), vol))
    return paths


def demo_dataset(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    num_train: int = 10,
    num_val: int = 3,
    slices: int = 10,
    recon_size: tuple[int, int] = (128, 128),
) -> DemoLayout:
    """Write a small demo dataset: synthetic train/val plus the real scans.

    - ``train/``: ``num_train`` multi-coil volumes (4-8 coils) whose slabs avoid
      :data:`VAL_BAND`.
    - ``val/``: ``num_val`` volumes with slab centres inside that band, from their own
      random streams (prefix ``val``).
    - ``real/``: the real TU Graz 4-coil brain and the twix phantom, copied unchanged.

    Returns:
        The three folders.
    """
    root = Path(out_dir)
    layout = DemoLayout(root / "train", root / "val", root / "real")
    common = dict(seed=seed, num_singlecoil=0, slices=slices, recon_size=recon_size, coils=(4, 8))
    train = SynthConfig(num_multicoil=num_train, exclude_band=VAL_BAND, prefix="train", **common)
    val = SynthConfig(num_multicoil=num_val, slab_band=VAL_BAND, prefix="val", **common)
    synthesize(layout.train_dir, train)
    synthesize(layout.val_dir, val)
    layout.real_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tugraz_brain_t2_4ch.h5", "twix_gre_phantom_2ch.h5"):
        with atomic_write(layout.real_dir / name) as tmp:
            shutil.copyfile(asset_path(name), tmp)
    return layout
