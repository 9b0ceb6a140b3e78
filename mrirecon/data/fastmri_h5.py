"""The fastMRI HDF5 format: every read and write of an .h5 file goes through this module.

An input file holds one volume: ``kspace`` complex (S, H, W) single-coil or
(S, C, H, W) multi-coil; training/validation files add the target
``reconstruction_esc`` (single-coil) or ``reconstruction_rss`` (multi-coil), test files
add a ``mask`` (W,) instead. An optional ``ismrmrd_header`` (parsed by
:mod:`mrirecon.data.header`) gives the encoded and recon sizes. File attributes
(``acquisition``, ``max``, ...) are returned as plain Python values.

An output (submission) file holds ``reconstruction`` (S, h, w) float32, the ``mask``
used and provenance attributes, and is marked finished with :data:`COMPLETE_ATTR`.
Outputs are built in memory (:func:`reconstruction_bytes`) and written to disk by the
caller in one atomic step (:func:`mrirecon.io.atomic_write`): no HDF5 handle is ever
open on a half-written file, so a full disk is an ordinary ``OSError``.

:func:`read_layout` reads only what a file declares (shapes, dtypes, the small mask,
the header, attributes), so a file can be validated before any large read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np

from mrirecon.data.header import Header, parse_header
from mrirecon.data.limits import check_size
from mrirecon.errors import DataError

__all__ = [
    "KSPACE_KEY",
    "MASK_KEY",
    "HEADER_KEY",
    "RECON_KEY",
    "TARGET_KEYS",
    "COMPLETE_ATTR",
    "Declared",
    "Layout",
    "read_layout",
    "VolumeReader",
    "read_header",
    "read_target",
    "reconstruction_bytes",
    "volume_bytes",
    "read_reconstruction",
    "read_attrs",
    "read_output_mask",
    "read_finished_attrs",
    "is_complete",
]

KSPACE_KEY = "kspace"
MASK_KEY = "mask"
HEADER_KEY = "ismrmrd_header"
RECON_KEY = "reconstruction"
# The target each kind of file is scored against (fastMRI: esc single-coil, rss multi-coil).
TARGET_KEYS = {False: "reconstruction_esc", True: "reconstruction_rss"}
# Set on every file mrirecon finishes; a file without it is not a finished output.
COMPLETE_ATTR = "mrirecon_complete"
# Bound on the small datasets (mask, header) read with the layout.
MAX_SMALL_READ = 1 << 20

PathLike = str | os.PathLike[str]


class Declared(NamedTuple):
    """A dataset's declared shape and dtype (no data read)."""

    shape: tuple[int, ...]
    dtype: np.dtype


class Layout(NamedTuple):
    """What an input file declares, read without touching k-space or target data.

    Attributes:
        keys: the top-level names in the file.
        kspace: the ``kspace`` dataset, or None if missing or not a dataset.
        target_key: the target found (the one matching the coil layout first), or None.
        target: its declaration, or None (also when ``target_key`` is not a dataset).
        mask_shape: the declared shape of ``mask``, or None without one.
        mask: the mask's values when it is one-dimensional and small, else None.
        header: the parsed ISMRMRD header, or None without one.
        attrs: file attributes as Python values.
    """

    keys: tuple[str, ...]
    kspace: Declared | None
    target_key: str | None
    target: Declared | None
    mask_shape: tuple[int, ...] | None
    mask: np.ndarray | None
    header: Header | None
    attrs: dict[str, Any]


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj: h5py.File) -> dict[str, Any]:
    return {key: _plain(value) for key, value in obj.attrs.items()}


def _declared(hf: h5py.File, key: str) -> Declared | None:
    obj = hf.get(key)
    if not isinstance(obj, h5py.Dataset):
        return None
    return Declared(tuple(int(s) for s in obj.shape), obj.dtype)


def _small(ds: h5py.Dataset) -> bool:
    return ds.size * max(ds.dtype.itemsize, 1) <= MAX_SMALL_READ


def read_layout(path: PathLike) -> Layout:
    """Read a file's declared structure, the small ``mask``, the header and the attributes.

    Args:
        path: the .h5 file.

    Returns:
        its :class:`Layout`.

    Raises:
        DataError: "<path>: <reason>" for a missing, unreadable or corrupt file or header.
    """
    path = Path(path)
    hf = _open(path)
    try:
        with hf:
            kspace = _declared(hf, KSPACE_KEY)
            multicoil = kspace is not None and len(kspace.shape) == 4
            target_key = next(
                (k for k in (TARGET_KEYS[multicoil], TARGET_KEYS[not multicoil]) if k in hf), None
            )
            mask_ds = hf.get(MASK_KEY)
            mask_shape, mask = None, None
            if MASK_KEY in hf:
                is_ds = isinstance(mask_ds, h5py.Dataset)
                mask_shape = tuple(int(s) for s in mask_ds.shape) if is_ds else ()
                if is_ds and mask_ds.ndim == 1 and _small(mask_ds):
                    mask = np.asarray(mask_ds[()]) != 0
            header = None
            header_ds = hf.get(HEADER_KEY)
            if HEADER_KEY in hf:
                if not isinstance(header_ds, h5py.Dataset) or not _small(header_ds):
                    raise DataError(f"{path}: '{HEADER_KEY}' is not a short text dataset")
                raw = header_ds[()]
                try:
                    header = parse_header(raw if isinstance(raw, bytes | str) else bytes(raw))
                except ValueError as exc:
                    raise DataError(f"{path}: {exc}") from None
            return Layout(
                keys=tuple(sorted(hf.keys())),
                kspace=kspace,
                target_key=target_key,
                target=_declared(hf, target_key) if target_key else None,
                mask_shape=mask_shape,
                mask=mask,
                header=header,
                attrs=_attrs(hf),
            )
    except (OSError, KeyError, TypeError) as exc:  # h5py's errors for damaged metadata
        raise DataError(f"{path}: {exc}") from None


class VolumeReader:
    """An open input file, read slice by slice or whole.

    Keep one per process: an HDF5 handle must not be shared across a fork.

    Args:
        path: the .h5 file (already validated).
        target_key: the target dataset to read, or None.
        has_mask: read the file's ``mask``.
    """

    def __init__(self, path: PathLike, target_key: str | None, has_mask: bool) -> None:
        self.path = Path(path)
        self.target_key = target_key
        self.has_mask = has_mask
        self._hf = _open(self.path)

    def read(self, index: int | slice) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """k-space complex64, target float32 or None, and mask bool (W,) or None.

        Args:
            index: one slice, or ``slice(None)`` for the whole volume.

        Raises:
            DataError: the data cannot be read.
        """
        try:
            kspace = np.asarray(self._hf[KSPACE_KEY][index], dtype=np.complex64)
            target = None
            if self.target_key is not None:
                target = np.asarray(self._hf[self.target_key][index], dtype=np.float32)
            mask = np.asarray(self._hf[MASK_KEY][()]) != 0 if self.has_mask else None
        except (OSError, KeyError) as exc:
            where = "" if isinstance(index, slice) else f" of slice {index}"
            raise DataError(f"{self.path}: read{where} failed ({exc})") from None
        return kspace, target, mask

    def close(self) -> None:
        """Close the file handle."""
        self._hf.close()

    def __enter__(self) -> VolumeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_header(path: PathLike) -> Header | None:
    """The parsed ISMRMRD header of a file, or None (no header, or the file is unusable)."""
    try:
        return read_layout(path).header
    except DataError:
        return None


def read_target(path: PathLike, key: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A file's target volume (S, h, w) float32 and its attributes.

    Args:
        path: the .h5 file.
        key: the target dataset; None picks ``reconstruction_rss``, then ``_esc``.

    Raises:
        DataError: unreadable file, no target, or a target that is not (S, h, w).
    """
    path = Path(path)
    keys = [key] if key else [TARGET_KEYS[True], TARGET_KEYS[False]]
    with _open(path) as hf:
        found = next((k for k in keys if isinstance(hf.get(k), h5py.Dataset)), None)
        if found is None:
            raise DataError(f"{path}: no target dataset ({' or '.join(keys)})")
        if hf[found].ndim != 3:
            raise DataError(f"{path}: target must be (S, h, w), got shape {hf[found].shape}")
        check_size(path, found, hf[found].shape, np.float32)
        try:
            data = np.asarray(hf[found][()], dtype=np.float32)
        except (OSError, TypeError) as exc:
            raise DataError(f"{path}: read of '{found}' failed ({exc})") from None
        return data, _attrs(hf)


def _image(fill: Any) -> bytes:
    """An HDF5 file built in memory by ``fill(hf)``, as bytes."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as hf:
        fill(hf)
    return buf.getvalue()


def _attr_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return np.asarray(value)
    return value


def reconstruction_bytes(
    recon: np.ndarray, attrs: Mapping[str, Any], mask: np.ndarray | None
) -> bytes:
    """A finished submission file as bytes: ``reconstruction``, ``mask`` and attributes.

    Args:
        recon: (S, h, w) real reconstruction, stored as float32.
        attrs: provenance attributes (scalars or short lists; None is stored as "").
        mask: the (W,) column mask used, or None.
    """

    def fill(hf: h5py.File) -> None:
        hf.create_dataset(RECON_KEY, data=np.asarray(recon, dtype=np.float32))
        if mask is not None:
            hf.create_dataset(MASK_KEY, data=np.asarray(mask, dtype=bool))
        for key, value in attrs.items():
            hf.attrs[key] = _attr_value(value)
        hf.attrs[COMPLETE_ATTR] = True

    return _image(fill)


def volume_bytes(
    kspace: np.ndarray,
    target: np.ndarray | None,
    header: bytes | str | None,
    attrs: Mapping[str, Any],
) -> bytes:
    """An input file as bytes: k-space, its target (esc or rss by coil layout), header.

    Args:
        kspace: complex (S, H, W) or (S, C, H, W).
        target: float (S, h, w), or None for a test file.
        header: ISMRMRD header text, or None.
        attrs: file attributes.
    """

    def fill(hf: h5py.File) -> None:
        hf.create_dataset(KSPACE_KEY, data=kspace)
        if target is not None:
            hf.create_dataset(TARGET_KEYS[kspace.ndim == 4], data=target)
        if header is not None:
            hf.create_dataset(HEADER_KEY, data=np.bytes_(header))
        for name, value in attrs.items():
            hf.attrs[name] = value

    return _image(fill)


def read_reconstruction(path: PathLike) -> np.ndarray:
    """Read the ``reconstruction`` dataset of a submission file as float32 (S, h, w).

    Raises:
        DataError: unreadable file, no ``reconstruction``, or not (S, h, w).
    """
    path = Path(path)
    with _open(path) as hf:
        ds = hf.get(RECON_KEY)
        if not isinstance(ds, h5py.Dataset):
            raise DataError(f"{path}: no '{RECON_KEY}' dataset")
        if ds.ndim != 3:
            raise DataError(f"{path}: '{RECON_KEY}' must be (S, h, w), got shape {ds.shape}")
        if ds.dtype.kind not in "biuf":  # bool, integer, float
            raise DataError(
                f"{path}: '{RECON_KEY}' must be real, got dtype {ds.dtype} (complex predictions "
                "are not scored; store the magnitude)"
            )
        check_size(path, RECON_KEY, ds.shape, np.float32)
        try:
            return np.asarray(ds[()], dtype=np.float32)
        except (OSError, TypeError) as exc:
            raise DataError(f"{path}: read of '{RECON_KEY}' failed ({exc})") from None


def read_attrs(path: PathLike) -> dict[str, Any]:
    """The attributes of an HDF5 file (input or output) as Python values."""
    with _open(Path(path)) as hf:
        return _attrs(hf)


def read_output_mask(path: PathLike) -> np.ndarray | None:
    """The ``mask`` an output file was reconstructed with (bool (W,)), or None."""
    with _open(Path(path)) as hf:
        ds = hf.get(MASK_KEY)
        return np.asarray(ds[()], dtype=bool) if isinstance(ds, h5py.Dataset) else None


def read_finished_attrs(path: PathLike) -> dict[str, Any] | None:
    """The attributes of a finished output file, or None if it is missing or unfinished."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as hf:
            if not hf.attrs.get(COMPLETE_ATTR, False) or RECON_KEY not in hf:
                return None
            return _attrs(hf)
    except OSError:  # an unreadable file is not finished; it will be redone
        return None


def is_complete(path: PathLike) -> bool:
    """True if ``path`` is a finished mrirecon output (readable and marked complete)."""
    return read_finished_attrs(path) is not None
