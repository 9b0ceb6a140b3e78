"""Derive the training-corpus anatomy assets from their published sources (run once, offline).

Writes into ``mrirecon/data/assets/`` (see NOTICE.md there for sources and licences):

- ``mni152_2009a_t1_gm_wm.npy.bz2``: uint8 (3, 197, 233, 189), the MNI ICBM152 2009a
  symmetric T1 template (skull-stripped) and its grey- and white-matter probability maps
  (0..255), unchanged voxels, as bundled in the nilearn wheel
  (``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``).
- ``colin27_brain_mask.npy.bz2``: bool (181, 217, 181) packed with ``np.packbits`` along the
  flattened C-order voxels, ``ch2bet.nii.gz > 0`` from Debian's mricron-data (the
  skull-stripped Colin 27, voxel-aligned with ``colin27_t1``).
- ``natural_images.npz``: uint8 grey-scale copies (longest side at most 256) of the CC0 /
  public-domain photographs bundled with scikit-image.

Usage::

    pip download nilearn --no-deps -d /tmp/nl && unzip /tmp/nl/nilearn-*.whl 'nilearn/datasets/data/mni*' -d /tmp/nl
    apt-get download mricron-data && dpkg-deb -x mricron-data_*.deb /tmp/mricron
    python scripts/build_corpus_assets.py --nilearn /tmp/nl/nilearn/datasets/data \\
        --mricron /tmp/mricron/usr/share/mricron/templates

Needs nibabel and scikit-image (the package itself needs neither at run time).
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import io
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parents[1] / "mrirecon" / "data" / "assets"
MNI_NAME = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
# scikit-image sample photographs with a CC0 or public-domain statement in their docstring
# (skimage/data/_fetchers.py). Left out: coins/moon/page/logo/ihc (no clear statement),
# and the phantom (the corpus draws its own procedural phantoms).
NATURAL = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "grass", "gravel",
    "horse", "hubble_deep_field", "microaneurysms", "retina", "rocket", "text",
)  # fmt: skip


def _npy_bz2(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return bz2.compress(buf.getvalue(), 9)


def _grey_uint8(image: np.ndarray, longest: int = 256) -> np.ndarray:
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.transform import resize

    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = rgba2rgb(img)
    if img.ndim == 3:
        img = rgb2gray(img)
    img = img.astype(np.float64)
    img = (img - img.min()) / max(np.ptp(img), 1e-12)
    scale = longest / max(img.shape)
    if scale < 1:
        shape = tuple(max(8, round(s * scale)) for s in img.shape)
        img = resize(img, shape, anti_aliasing=True)
    return np.round(img * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nilearn", type=Path, required=True, help="nilearn/datasets/data")
    parser.add_argument("--mricron", type=Path, required=True, help="mricron templates folder")
    args = parser.parse_args()

    import nibabel as nib
    import skimage.data

    maps = []
    for kind in ("t1", "gm", "wm"):
        path = args.nilearn / MNI_NAME.format(kind)
        print(f"{path.name}: sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")
        maps.append(np.asarray(nib.load(path).dataobj, dtype=np.uint8))
    mni = np.stack(maps)
    (ASSETS / "mni152_2009a_t1_gm_wm.npy.bz2").write_bytes(_npy_bz2(mni))
    print(f"mni voxels sha256 {hashlib.sha256(mni.tobytes()).hexdigest()}")

    bet = args.mricron / "ch2bet.nii.gz"
    print(f"{bet.name}: sha256 {hashlib.sha256(bet.read_bytes()).hexdigest()}")
    mask = np.asarray(nib.load(bet).dataobj) > 0
    packed = np.packbits(mask.ravel())
    (ASSETS / "colin27_brain_mask.npy.bz2").write_bytes(_npy_bz2(packed))
    print(f"colin mask packed sha256 {hashlib.sha256(packed.tobytes()).hexdigest()}")

    images = {name: _grey_uint8(getattr(skimage.data, name)()) for name in NATURAL}
    np.savez_compressed(ASSETS / "natural_images.npz", **images)
    for name, img in images.items():
        print(f"{name}: {img.shape}")


if __name__ == "__main__":
    main()
