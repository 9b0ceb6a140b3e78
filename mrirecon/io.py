"""Reconstruction files (fastMRI submission format) and atomic writes.

A reconstruction file has the input's name and one dataset ``reconstruction``
(S, h, w) float32 at the recon size. mrirecon also stores the mask used (``mask``, (W,)
bool) and provenance attributes (method, checkpoint hash, mask type, acceleration,
centre fraction, seed, package version). Every file is written to a temporary name in
the destination folder and renamed, so a killed job never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "atomic_write",
    "write_reconstruction",
    "read_reconstruction",
    "is_complete",
    "RECON_KEY",
    "TMP_SUFFIX",
]

RECON_KEY = "reconstruction"
TMP_SUFFIX = ".tmp"
# Set on every file mrirecon finishes; a file without it is not a finished output.
COMPLETE_ATTR = "mrirecon_complete"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    The data is fsync'ed before the rename so a crash cannot expose a partial file.
    """
    path = Path(path)
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _attr_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _checked_recon(path: str | os.PathLike[str], recon: np.ndarray) -> np.ndarray:
    """The reconstruction as an array, or a one-line error: it must be real, (S, h, w), finite."""
    recon = np.asarray(recon)
    if recon.ndim != 3 or np.iscomplexobj(recon):
        raise ValueError(
            f"{path}: reconstruction must be real (S, h, w), got {recon.dtype} {recon.shape}"
        )
    if not np.isfinite(recon).all():
        raise ValueError(f"{path}: reconstruction contains NaN/Inf; not written")
    return recon


def write_reconstruction(
    path: str | os.PathLike[str],
    recon: np.ndarray,
    attrs: Mapping[str, Any] | None = None,
    mask: np.ndarray | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Atomically write a fastMRI submission file.

    Args:
        path: destination .h5 file.
        recon: (S, h, w) real reconstruction, stored as float32.
        attrs: provenance attributes (scalars or short lists).
        mask: the (W,) column mask used, stored as ``mask``.
        extra: additional datasets to store (e.g. ``target`` for a compare run).

    Returns:
        the written path.
    """
    recon = _checked_recon(path, recon)
    path = Path(path)
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as hf:
            hf.create_dataset(RECON_KEY, data=recon.astype(np.float32))
            if mask is not None:
                hf.create_dataset("mask", data=np.asarray(mask, dtype=bool))
            for key, value in (extra or {}).items():
                hf.create_dataset(key, data=value)
            for key, value in (attrs or {}).items():
                hf.attrs[key] = _attr_value(value)
            hf.attrs[COMPLETE_ATTR] = True
    return path


def read_reconstruction(path: str | os.PathLike[str]) -> np.ndarray:
    """Read the ``reconstruction`` dataset of a submission file as float32 (S, h, w)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as hf:
            if RECON_KEY not in hf:
                raise ValueError(f"{path}: no '{RECON_KEY}' dataset")
            data = np.asarray(hf[RECON_KEY][()], dtype=np.float32)
    except OSError:
        raise ValueError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None
    if data.ndim != 3:
        raise ValueError(f"{path}: '{RECON_KEY}' must be (S, h, w), got shape {data.shape}")
    return data


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The attributes of a submission file, numpy scalars turned into Python values."""
    with h5py.File(path, "r") as hf:
        out = {}
        for key, value in hf.attrs.items():
            if isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, bytes):
                value = value.decode()
            out[key] = value
        return out


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a finished mrirecon output (readable and marked complete)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as hf:
            return bool(hf.attrs.get(COMPLETE_ATTR, False)) and RECON_KEY in hf
    except OSError:
        return False


def write_csv_rows(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """Write a CSV table atomically (parent folders created): a header, then the rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
    return path


def check_writable(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and prove it is writable, or raise a clear OSError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"{folder}: output folder is not writable ({exc.strerror or exc})") from None
    return folder


# --- NIfTI export (optional extra ``nifti``: nibabel) ---------------------------------

NIFTI_SUFFIX = ".nii.gz"


def voxel_size_from_header(xml: bytes | str) -> tuple[float, float, float] | None:
    """(row, column, slice) voxel size in mm from an ISMRMRD header's reconSpace.

    Rows of a reconstruction run along the ISMRMRD x (readout) axis and columns along y
    (phase encoding); the slice size is the z field of view over the z matrix size
    (the slice thickness of 2-D acquisitions). None when the header lacks the fields.
    """
    import xml.etree.ElementTree as ET

    ns = "{http://www.ismrm.org/ISMRMRD}"
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    space = root.find(f".//{ns}encoding/{ns}reconSpace")
    if space is None:
        return None
    sizes = []
    for axis in "xyz":
        fov = space.find(f"{ns}fieldOfView_mm/{ns}{axis}")
        mat = space.find(f"{ns}matrixSize/{ns}{axis}")
        try:
            f, m = float(fov.text), float(mat.text)  # type: ignore[union-attr,arg-type]
        except (AttributeError, TypeError, ValueError):
            return None
        if not (f > 0 and m > 0):
            return None
        sizes.append(f / m)
    return sizes[0], sizes[1], sizes[2]


def nifti_affine(shape: tuple[int, int, int], voxel_size: tuple[float, float, float]) -> np.ndarray:
    """Voxel-to-mm affine of :func:`write_nifti`'s array, centred on the volume.

    The array is (columns, rows flipped, slices), so a viewer shows each slice as it
    appears in the (h, w) reconstruction (top row at the top).
    """
    dr, dc, ds = voxel_size
    affine = np.diag([dc, dr, ds, 1.0])
    affine[:3, 3] = -(np.asarray(shape, dtype=np.float64) - 1) / 2 * np.array([dc, dr, ds])
    return affine


def write_nifti(
    path: str | os.PathLike[str],
    recon: np.ndarray,
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write an (S, h, w) reconstruction as a gzipped NIfTI-1 file.

    Args:
        path: destination, normally ``*.nii.gz``.
        recon: (S, h, w) real volume, stored as float32.
        voxel_size: (row, column, slice) spacing in mm (1 mm default; see
            :func:`voxel_size_from_header`).
        attrs: provenance stored as a JSON comment extension.

    Returns:
        the written path.

    Raises:
        ValueError: bad array, or nibabel is not installed.
    """
    import gzip
    import json

    try:
        import nibabel as nib
    except ImportError:
        raise ValueError(
            "NIfTI output needs nibabel: pip install 'mrirecon[nifti]' (or pip install nibabel)"
        ) from None
    recon = _checked_recon(path, recon)
    data = np.ascontiguousarray(recon[:, ::-1, :].transpose(2, 1, 0), dtype=np.float32)
    img = nib.Nifti1Image(data, nifti_affine(data.shape, voxel_size))
    img.header.set_xyzt_units("mm")
    img.header.set_qform(img.affine, code=1)
    img.header.set_sform(img.affine, code=1)
    if attrs:
        plain = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in attrs.items()}
        img.header["descrip"] = f"mrirecon {plain.get('method', '')}"[:79].encode()
        ext = nib.nifti1.Nifti1Extension("comment", json.dumps(plain, default=str).encode())
        img.header.extensions.append(ext)
    payload = gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_bytes(payload)
    return path
