"""Real MRI data shipped inside the package (licences and attribution in NOTICE.md here).

- ``tugraz_brain_t2_4ch.h5``: in-vivo T2 brain, 4 coils, 1 slice (CC BY 4.0, TU Graz).
- ``twix_gre_phantom_2ch.h5``: GRE phantom, 2 coils, 1 slice (MIT, twixtools).
- ``colin27_t1.npy.bz2``: Colin 27 T1 volume (Holmes et al. 1998), uint8 (181, 217, 181) at 1 mm;
  read it with :func:`load_colin27`.

The two ``.h5`` files are fastMRI-like multi-coil files *without* an ``ismrmrd_header``.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import io
from pathlib import Path

import numpy as np

__all__ = ["ASSETS", "COLIN27_SHAPE", "asset_path", "load_colin27"]

_HERE = Path(__file__).resolve().parent

# Every shipped data file and the licence text that sits beside it.
ASSETS: dict[str, str] = {
    "tugraz_brain_t2_4ch.h5": "tugraz_brain_t2_4ch.LICENSE-repo-MIT.txt",
    "twix_gre_phantom_2ch.h5": "twix_gre_phantom_2ch.LICENSE-MIT.txt",
    "colin27_t1.npy.bz2": "colin27_t1.LICENSE.txt",
}

COLIN27_SHAPE = (181, 217, 181)
# sha256 of the C-order voxel bytes of the original colin27_t1.nii.gz (see NOTICE.md).
_COLIN27_SHA256 = "f5a6ac5d280552d299bc4fb0e6724485f25bad45f69117e87fa5880ebdcce7af"


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


@functools.lru_cache(maxsize=1)
def _colin27_cached() -> np.ndarray:
    path = asset_path("colin27_t1.npy.bz2")
    try:
        raw = bz2.decompress(path.read_bytes())
        vol = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: cannot decode ({exc})") from exc
    if vol.dtype != np.uint8 or vol.shape != COLIN27_SHAPE:
        raise ValueError(f"{path}: expected uint8 {COLIN27_SHAPE}, got {vol.dtype} {vol.shape}")
    vol = np.ascontiguousarray(vol)
    if hashlib.sha256(vol.tobytes()).hexdigest() != _COLIN27_SHA256:
        raise ValueError(f"{path}: voxel checksum mismatch (corrupt asset)")
    vol.setflags(write=False)
    return vol


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
