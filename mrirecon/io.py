"""Output files: atomic writes, the h5 and NIfTI writers, CSV tables.

Every file is written to a hidden temporary name in the destination folder
(``.NAME.XXXX.tmp``), fsync'ed and renamed, so a killed job never leaves a half-written
file under the real name. A kill between write and rename can leave the temporary file;
:func:`remove_stale_temps` removes such leftovers on the next run.

A :class:`Writer` stores one reconstruction: :class:`H5Writer` as a fastMRI submission
file (:mod:`mrirecon.data.fastmri_h5`: the input's name, ``reconstruction``
(S, h, w) float32 at the recon size, the ``mask`` used and provenance attributes),
:class:`NiftiWriter` as ``.nii.gz``.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mrirecon.data.fastmri_h5 import read_finished_attrs, read_header, reconstruction_bytes
from mrirecon.errors import ConfigError, DataError

__all__ = [
    "TMP_SUFFIX",
    "NIFTI_SUFFIX",
    "WRITER_FORMATS",
    "atomic_write",
    "remove_stale_temps",
    "write_reconstruction",
    "write_nifti",
    "nifti_affine",
    "write_csv_rows",
    "check_writable",
    "Writer",
    "H5Writer",
    "NiftiWriter",
    "make_writer",
]

TMP_SUFFIX = ".tmp"
NIFTI_SUFFIX = ".nii.gz"
WRITER_FORMATS = ("h5", "nifti")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    The data is fsync'ed before the rename so a crash cannot expose a partial file.
    The temporary file is locked (``flock``) until it is renamed or removed, which tells
    :func:`remove_stale_temps` of another run that it is in use.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove this program's leftover temporary files from ``folder`` (a killed run's).

    The rule: a regular file directly in ``folder`` whose name starts with ``.`` and ends
    with :data:`TMP_SUFFIX` (the names :func:`atomic_write` makes) and that no process
    holds locked. A running writer holds its temporary file locked from creation to
    rename, so another run's work in progress is never removed.

    Args:
        folder: an output folder; a missing folder has nothing to remove.

    Returns:
        the files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if not (name.startswith(".") and name.endswith(TMP_SUFFIX)) or entry.is_symlink():
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # a folder, or gone already
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            entry.unlink()
            removed.append(entry)
        except OSError:  # locked: a running writer's file
            continue
        finally:
            os.close(fd)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _checked_recon(path: str | os.PathLike[str], recon: np.ndarray) -> np.ndarray:
    """The reconstruction as an array, or a one-line error: it must be real, (S, h, w), finite."""
    recon = np.asarray(recon)
    if recon.ndim != 3 or np.iscomplexobj(recon):
        raise DataError(
            f"{path}: reconstruction must be real (S, h, w), got {recon.dtype} {recon.shape}"
        )
    if not np.isfinite(recon).all():
        raise DataError(f"{path}: reconstruction contains NaN/Inf; not written")
    return recon


def write_reconstruction(
    path: str | os.PathLike[str],
    recon: np.ndarray,
    attrs: Mapping[str, Any] | None = None,
    mask: np.ndarray | None = None,
) -> Path:
    """Atomically write a fastMRI submission file (built in memory, then one write).

    Args:
        path: destination .h5 file.
        recon: (S, h, w) real reconstruction, stored as float32.
        attrs: provenance attributes (scalars or short lists).
        mask: the (W,) column mask used, stored as ``mask``.

    Returns:
        the written path.

    Raises:
        DataError: the array is not real (S, h, w) or not finite.
        OSError: the file cannot be written (e.g. a full disk); nothing is left behind.
    """
    data = reconstruction_bytes(_checked_recon(path, recon), attrs or {}, mask)
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return path


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
            :attr:`mrirecon.data.header.Header.voxel_size`).
        attrs: provenance stored as a JSON comment extension.

    Returns:
        the written path.

    Raises:
        ValueError: bad array, or nibabel is not installed.
    """
    try:
        import nibabel as nib
    except ImportError:
        raise ConfigError(
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


class Writer(Protocol):
    """Stores one reconstructed volume: the output format of ``reconstruct``.

    Attributes:
        format: ``h5`` or ``nifti`` (one of :data:`WRITER_FORMATS`).
    """

    format: str

    def output_name(self, input_path: Path) -> str:
        """The output file name for an input file."""
        ...

    def finished_attrs(self, path: Path) -> dict[str, Any] | None:
        """The attributes of a finished output at ``path``, or None (missing/unfinished)."""
        ...

    def write(
        self, path: Path, recon: np.ndarray, attrs: Mapping[str, Any], mask: np.ndarray | None
    ) -> Path:
        """Write ``recon`` (S, h, w) with its provenance ``attrs`` and ``mask`` atomically."""
        ...


class H5Writer:
    """fastMRI submission files: ``NAME.h5`` with ``reconstruction``, ``mask`` and attributes."""

    format = "h5"

    def output_name(self, input_path: Path) -> str:
        """The input's own name (fastMRI's submission format)."""
        return Path(input_path).name

    def finished_attrs(self, path: Path) -> dict[str, Any] | None:
        """The attributes of a finished submission file, else None."""
        return read_finished_attrs(path)

    def write(
        self, path: Path, recon: np.ndarray, attrs: Mapping[str, Any], mask: np.ndarray | None
    ) -> Path:
        """See :func:`write_reconstruction`."""
        return write_reconstruction(path, recon, attrs, mask)


class NiftiWriter:
    """``NAME.nii.gz`` outputs (:func:`write_nifti`).

    The voxel size comes from the input file's ISMRMRD header (reconSpace field of view
    over matrix size), else 1 mm; the input file is ``input_dir / attrs["source_file"]``.
    Provenance attributes and the acquired mask columns are stored as a JSON comment
    extension, which :meth:`finished_attrs` reads back.

    Args:
        input_dir: folder of the input files (their headers give the voxel size).

    Raises:
        ConfigError: nibabel is not installed.
    """

    format = "nifti"

    def __init__(self, input_dir: str | os.PathLike[str]) -> None:
        try:
            import nibabel  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--format nifti needs nibabel: pip install 'mrirecon[nifti]' (or pip install nibabel)"
            ) from None
        self.input_dir = Path(input_dir)

    def output_name(self, input_path: Path) -> str:
        """``name.h5`` -> ``name.nii.gz``."""
        name = Path(input_path).name
        return name.removesuffix(".h5") + NIFTI_SUFFIX

    def finished_attrs(self, path: Path) -> dict[str, Any] | None:
        """The provenance of a finished ``.nii.gz`` output, else None.

        Outputs are written atomically, so a readable file with mrirecon's JSON comment
        is finished; anything else (missing, foreign or corrupt) is not.
        """
        import nibabel as nib

        if not Path(path).is_file():
            return None
        try:
            exts = nib.load(path).header.extensions
            for ext in exts:
                if ext.get_code() == 6:  # NIfTI "comment" extension
                    attrs = json.loads(ext.get_content())
                    return attrs if isinstance(attrs, dict) else None
        except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError):
            return None
        return None

    def voxel_size(self, source_file: str) -> tuple[float, float, float]:
        """The voxel size in mm from the input file's header, else (1, 1, 1)."""
        header = read_header(self.input_dir / source_file)
        if header is None or header.voxel_size is None:
            return (1.0, 1.0, 1.0)
        return header.voxel_size

    def write(
        self, path: Path, recon: np.ndarray, attrs: Mapping[str, Any], mask: np.ndarray | None
    ) -> Path:
        """Write ``path`` (named by :meth:`output_name`) with voxel size and provenance."""
        path = Path(path)
        attrs = dict(attrs)
        vs = self.voxel_size(str(attrs.get("source_file", path.name)))
        attrs["voxel_size_mm"] = list(vs)
        if mask is not None:
            attrs["mask_columns"] = np.flatnonzero(mask).tolist()
            attrs["mask_width"] = int(np.asarray(mask).size)
        return write_nifti(path, recon, vs, attrs)


def make_writer(fmt: str, input_dir: str | os.PathLike[str]) -> Writer:
    """The writer for an output format.

    Args:
        fmt: one of :data:`WRITER_FORMATS`.
        input_dir: folder of the input files (NIfTI reads their headers).

    Raises:
        ConfigError: unknown format, or NIfTI without nibabel.
    """
    if fmt == "h5":
        return H5Writer()
    if fmt == "nifti":
        return NiftiWriter(input_dir)
    raise ConfigError(f"--format: unknown output format {fmt!r}; choose from {WRITER_FORMATS}")
