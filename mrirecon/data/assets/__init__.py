"""Real MRI data shipped inside the package (licences and attribution in NOTICE.md here).

- ``tugraz_brain_t2_4ch.h5``: in-vivo T2 brain, 4 coils, 1 slice (CC BY 4.0, TU Graz).
- ``twix_gre_phantom_2ch.h5``: GRE phantom, 2 coils, 1 slice (MIT, twixtools).
- ``colin27_t1.npy.bz2``: Colin 27 T1 volume (Holmes et al. 1998), uint8 (181, 217, 181) at 1 mm;
  read it with :func:`load_colin27`.
- ``colin27_brain_mask.npy.bz2``: its brain mask (MRIcron's ``ch2bet``), :func:`load_colin27_brain_mask`.
- ``mni152_2009a_t1_gm_wm.npy.bz2``: MNI ICBM152 2009a T1 template (skull-stripped) with grey-
  and white-matter probability maps, :func:`load_mni152`.
- ``natural_images.npz``: CC0 / public-domain photographs from scikit-image, grey scale,
  :func:`load_natural_images`.

:data:`HELD_OUT` names the real scans kept for evaluation: no training data may use them.

The two ``.h5`` files are fastMRI-like multi-coil files *without* an ``ismrmrd_header``.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import io
from pathlib import Path

import numpy as np

__all__ = [
    "ASSETS",
    "HELD_OUT",
    "COLIN27_SHAPE",
    "MNI152_SHAPE",
    "asset_path",
    "load_colin27",
    "load_colin27_brain_mask",
    "load_mni152",
    "load_natural_images",
]

_HERE = Path(__file__).resolve().parent

# Every shipped data file and the licence text that sits beside it.
ASSETS: dict[str, str] = {
    "tugraz_brain_t2_4ch.h5": "tugraz_brain_t2_4ch.LICENSE-repo-MIT.txt",
    "twix_gre_phantom_2ch.h5": "twix_gre_phantom_2ch.LICENSE-MIT.txt",
    "colin27_t1.npy.bz2": "colin27_t1.LICENSE.txt",
    "colin27_brain_mask.npy.bz2": "colin27_t1.LICENSE.txt",
    "mni152_2009a_t1_gm_wm.npy.bz2": "mni152_2009a.LICENSE.txt",
    "natural_images.npz": "natural_images.LICENSE.txt",
}
# Real scans reserved for held-out evaluation: never training or tuning data.
HELD_OUT: frozenset[str] = frozenset({"tugraz_brain_t2_4ch.h5", "twix_gre_phantom_2ch.h5"})

COLIN27_SHAPE = (181, 217, 181)
# sha256 of the C-order voxel bytes of the original colin27_t1.nii.gz (see NOTICE.md).
_COLIN27_SHA256 = "f5a6ac5d280552d299bc4fb0e6724485f25bad45f69117e87fa5880ebdcce7af"
MNI152_SHAPE = (3, 197, 233, 189)
# sha256 of the C-order voxel bytes of the derived assets (scripts/build_corpus_assets.py).
_MNI152_SHA256 = "79197a4e816fe769af4e19e1f4964dc9965936606e35813a8a6afa06ff95b70c"
_COLIN27_MASK_SHA256 = "71eeb28dcf25e44766cd504998ad3bcca31d41a6a120195d90a068f3c338cc12"


def asset_path(name: str) -> Path:
    """Path of a shipped asset file.

    Args:
        name: file name in the assets folder, e.g. ``"tugraz_brain_t2_4ch.h5"`` (a data
            file, a licence text or ``"NOTICE.md"``).

    Returns:
        Absolute path of the file.

    Raises:
        ValueError: ``name`` is not a shipped asset, or the file is missing from the install.
    """
    known = set(ASSETS) | set(ASSETS.values()) | {"NOTICE.md"}
    if name not in known:
        raise ValueError(f"{name}: not a shipped asset (known: {', '.join(sorted(ASSETS))})")
    path = _HERE / name
    if not path.is_file():
        raise ValueError(f"{path}: asset missing from this installation")
    return path


def _load_npy_bz2(name: str, shape: tuple[int, ...], sha256: str) -> np.ndarray:
    """A read-only uint8 array from a bz2-compressed ``.npy`` asset, checked against its hash."""
    path = asset_path(name)
    try:
        raw = bz2.decompress(path.read_bytes())
        vol = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: cannot decode ({exc})") from exc
    if vol.dtype != np.uint8 or vol.shape != shape:
        raise ValueError(f"{path}: expected uint8 {shape}, got {vol.dtype} {vol.shape}")
    vol = np.ascontiguousarray(vol)
    if hashlib.sha256(vol.tobytes()).hexdigest() != sha256:
        raise ValueError(f"{path}: voxel checksum mismatch (corrupt asset)")
    vol.setflags(write=False)
    return vol


@functools.lru_cache(maxsize=1)
def _colin27_cached() -> np.ndarray:
    return _load_npy_bz2("colin27_t1.npy.bz2", COLIN27_SHAPE, _COLIN27_SHA256)


def load_colin27() -> np.ndarray:
    """The Colin 27 T1 brain volume (Holmes et al., J. Comput. Assist. Tomogr. 1998).

    Axes are x, y, z in RAS order (x: left to right, y: posterior to anterior, z: inferior
    to superior), 1 mm isotropic voxels; magnitude only. The file is decoded once per process.

    Returns:
        uint8 array (181, 217, 181), a fresh writable copy.

    Raises:
        ValueError: the asset is missing or corrupt.
    """
    return _colin27_cached().copy()


@functools.lru_cache(maxsize=1)
def load_colin27_brain_mask() -> np.ndarray:
    """The brain mask of Colin 27 (``ch2bet.nii.gz > 0`` of MRIcron), voxel-aligned with it.

    Returns:
        read-only bool array (181, 217, 181), decoded once per process.

    Raises:
        ValueError: the asset is missing or corrupt.
    """
    nbytes = -(-int(np.prod(COLIN27_SHAPE)) // 8)
    packed = _load_npy_bz2("colin27_brain_mask.npy.bz2", (nbytes,), _COLIN27_MASK_SHA256)
    mask = np.unpackbits(packed, count=int(np.prod(COLIN27_SHAPE))).astype(bool)
    mask = mask.reshape(COLIN27_SHAPE)
    mask.setflags(write=False)
    return mask


@functools.lru_cache(maxsize=1)
def load_mni152() -> np.ndarray:
    """The MNI ICBM152 2009a symmetric template (Fonov et al. 2009, 2011) at 1 mm.

    Channel 0 is the skull-stripped T1 template, channels 1 and 2 the grey- and
    white-matter probability maps (255 = certain). Axes x, y, z in RAS order as Colin 27.

    Returns:
        read-only uint8 array (3, 197, 233, 189), decoded once per process.

    Raises:
        ValueError: the asset is missing or corrupt.
    """
    return _load_npy_bz2("mni152_2009a_t1_gm_wm.npy.bz2", MNI152_SHAPE, _MNI152_SHA256)


@functools.lru_cache(maxsize=1)
def load_natural_images() -> dict[str, np.ndarray]:
    """The CC0 / public-domain scikit-image photographs, grey scale (longest side 256).

    Returns:
        name -> read-only uint8 (h, w) image, in a fixed (sorted) order.

    Raises:
        ValueError: the asset is missing or corrupt.
    """
    path = asset_path("natural_images.npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = {name: np.ascontiguousarray(npz[name]) for name in sorted(npz.files)}
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise ValueError(f"{path}: cannot decode ({exc})") from exc
    for name, img in images.items():
        if img.dtype != np.uint8 or img.ndim != 2 or min(img.shape) < 8:
            raise ValueError(f"{path}: image {name!r} is not a uint8 2-D image ({img.shape})")
        img.setflags(write=False)
    return images
