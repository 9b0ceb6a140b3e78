"""fastMRI HDF5 files: validation, header parsing, volume reads and a slice dataset.

A fastMRI file holds one volume: ``kspace`` complex64 (S, H, W) single-coil or
(S, C, H, W) multi-coil; training/validation files add the target
``reconstruction_esc`` (single-coil) or ``reconstruction_rss`` (multi-coil), test files
add a ``mask`` (W,) instead. An optional ``ismrmrd_header`` gives the encoded and recon
matrix sizes and the acquired phase-encode limits.

Every file is validated when a folder is indexed (:func:`scan_folder`); bad files are
skipped with a warning listing each one and why, or stop the scan (``strict=True``).
Non-finite k-space is caught when slices are read, so indexing never reads whole
volumes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import torch.utils.data

from mrirecon.data.header import Header, parse_header, recon_crop

__all__ = [
    "DataError",
    "Header",
    "VolumeInfo",
    "RawSlice",
    "inspect_file",
    "scan_folder",
    "read_volume",
    "check_finite",
    "SliceDataset",
    "TARGET_KEYS",
    "parse_header",
    "recon_crop",
]

# The target each kind of file is scored against (fastMRI: esc single-coil, rss multi-coil).
TARGET_KEYS = {False: "reconstruction_esc", True: "reconstruction_rss"}


class DataError(ValueError):
    """A file that cannot be used; the message names the file and the reason."""


class VolumeInfo(NamedTuple):
    """What indexing learned about one file (no array data)."""

    path: Path
    fname: str
    multicoil: bool
    num_slices: int
    num_coils: int
    kspace_shape: tuple[int, ...]
    target_key: str | None
    has_mask: bool
    header: Header | None
    recon_size: tuple[int, int]
    attrs: dict[str, Any]


class RawSlice(NamedTuple):
    """One slice as stored.

    Attributes:
        kspace: complex64 (C, H, W); single-coil files have C = 1.
        target: float32 (h, w) or None for test files.
        file_mask: bool (W,) from a test file's ``mask`` dataset, else None.
        info: the file's :class:`VolumeInfo`.
        slice_idx: index of the slice in the volume.
    """

    kspace: np.ndarray
    target: np.ndarray | None
    file_mask: np.ndarray | None
    info: VolumeInfo
    slice_idx: int


def _attrs(obj: h5py.File) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def inspect_file(path: str | os.PathLike[str]) -> VolumeInfo:
    """Validate a fastMRI file's structure and describe it, without reading k-space.

    Args:
        path: the .h5 file.

    Returns:
        its :class:`VolumeInfo`.

    Raises:
        DataError: "<path>: <reason>" for a file that cannot be used.
    """
    path = Path(path)
    try:
        hf = h5py.File(path, "r")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None
    try:
        with hf:
            return _inspect_open(path, hf)
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: {exc}") from None


def _inspect_open(path: Path, hf: h5py.File) -> VolumeInfo:
    if "kspace" not in hf or not isinstance(hf["kspace"], h5py.Dataset):
        raise DataError(f"{path}: no 'kspace' dataset (found: {sorted(hf.keys()) or 'nothing'})")
    ks = hf["kspace"]
    if not np.issubdtype(ks.dtype, np.complexfloating):
        raise DataError(f"{path}: 'kspace' must be complex, got dtype {ks.dtype}")
    if ks.ndim not in (3, 4):
        raise DataError(
            f"{path}: 'kspace' must be (slices, H, W) or (slices, coils, H, W), got shape {ks.shape}"
        )
    if min(ks.shape) < 1 or ks.shape[-1] < 2 or ks.shape[-2] < 2:
        raise DataError(f"{path}: 'kspace' has an empty or degenerate shape {ks.shape}")
    multicoil = ks.ndim == 4
    num_slices, width = ks.shape[0], ks.shape[-1]

    target_key = None
    for key in (TARGET_KEYS[multicoil], TARGET_KEYS[not multicoil]):
        if key in hf:
            target_key = key
            break
    target_shape = None
    if target_key is not None:
        tgt = hf[target_key]
        if tgt.ndim != 3 or not np.issubdtype(tgt.dtype, np.floating):
            raise DataError(
                f"{path}: '{target_key}' must be real (slices, h, w), got {tgt.dtype} {tgt.shape}"
            )
        if tgt.shape[0] != num_slices:
            raise DataError(
                f"{path}: '{target_key}' has {tgt.shape[0]} slices but 'kspace' has {num_slices}"
            )
        target_shape = (int(tgt.shape[1]), int(tgt.shape[2]))

    has_mask = "mask" in hf
    if has_mask:
        m = hf["mask"]
        if m.ndim != 1 or m.shape[0] != width:
            raise DataError(f"{path}: 'mask' must have shape ({width},), got {m.shape}")

    header = None
    if "ismrmrd_header" in hf:
        raw = hf["ismrmrd_header"][()]
        try:
            header = parse_header(raw if isinstance(raw, bytes | str) else bytes(raw))
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None

    if target_shape is not None:
        recon_size = target_shape
    elif header is not None:
        recon_size = (header.recon_size[0], header.recon_size[1])
    else:
        raise DataError(f"{path}: no target and no ismrmrd_header, so the recon size is unknown")
    h, w = recon_crop(width, recon_size)
    if h > ks.shape[-2] or w > width:
        raise DataError(f"{path}: recon size {recon_size} is larger than k-space {ks.shape[-2:]}")

    return VolumeInfo(
        path=path,
        fname=path.name,
        multicoil=multicoil,
        num_slices=int(num_slices),
        num_coils=int(ks.shape[1]) if multicoil else 1,
        kspace_shape=tuple(int(s) for s in ks.shape),
        target_key=target_key,
        has_mask=has_mask,
        header=header,
        recon_size=recon_size,
        attrs=_attrs(hf),
    )


def list_h5(root: str | os.PathLike[str]) -> list[Path]:
    """The .h5 files directly in ``root``, sorted; a clear error if the folder is unusable."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    return sorted(p for p in root.iterdir() if p.suffix == ".h5" and p.is_file())


def scan_folder(
    root: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], strict: bool = False
) -> tuple[list[VolumeInfo], list[tuple[Path, str]]]:
    """Validate every .h5 file of a folder (or an explicit list of files).

    Args:
        root: a folder, or an iterable of file paths.
        strict: raise on the first listing of bad files instead of skipping them.

    Returns:
        (usable volumes, [(path, reason), ...] for the files skipped).

    Raises:
        DataError: for a missing or empty folder, or bad files when ``strict``.
    """
    if isinstance(root, str | os.PathLike):
        files = list_h5(root)
        if not files:
            raise DataError(f"{root}: no .h5 files found")
    else:
        files = [Path(p) for p in root]
    good, bad = [], []
    for f in files:
        try:
            good.append(inspect_file(f))
        except DataError as exc:
            bad.append((f, str(exc).removeprefix(f"{f}: ")))
    if bad:
        listing = "; ".join(f"{p.name}: {why}" for p, why in bad)
        if strict:
            raise DataError(f"{len(bad)} unusable file(s): {listing}")
        warnings.warn(f"skipping {len(bad)} unusable file(s): {listing}", stacklevel=2)
    return good, bad


def check_finite(path: Path, kspace: np.ndarray, where: str = "") -> None:
    """Raise DataError if k-space holds NaN or Inf."""
    if not np.isfinite(kspace).all():
        raise DataError(f"{path}: 'kspace' contains NaN/Inf{where}")


def read_volume(info: VolumeInfo) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Read a whole volume.

    Returns:
        kspace complex64 (S, C, H, W) (C = 1 for single-coil), target float32 (S, h, w)
        or None, and the file's mask bool (W,) or None.

    Raises:
        DataError: unreadable data or non-finite k-space.
    """
    try:
        with h5py.File(info.path, "r") as hf:
            kspace = np.asarray(hf["kspace"][()], dtype=np.complex64)
            target = None
            if info.target_key is not None:
                target = np.asarray(hf[info.target_key][()], dtype=np.float32)
            mask = np.asarray(hf["mask"][()]).astype(bool) if info.has_mask else None
    except (OSError, KeyError) as exc:
        raise DataError(f"{info.path}: read failed ({exc})") from None
    if not info.multicoil:
        kspace = kspace[:, None]
    check_finite(info.path, kspace)
    return kspace, target, mask


class SliceDataset(torch.utils.data.Dataset):
    """Slices of a folder of fastMRI files, optionally passed through a transform.

    Files are validated once when the index is built. HDF5 handles are opened lazily
    in each worker process and kept per process (never shared across a fork); no
    array data is cached on the dataset, so workers do not grow (fastMRI issue #215).

    Args:
        root: folder of .h5 files, a list of files, or a list of :class:`VolumeInfo`.
        transform: ``transform(raw: RawSlice, epoch: int, index: int)``; None returns
            the :class:`RawSlice`.
        strict: stop on bad files instead of skipping them with a warning.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Sequence[VolumeInfo],
        transform: Callable[[RawSlice, int, int], Any] | None = None,
        strict: bool = False,
    ) -> None:
        if (
            isinstance(root, Sequence)
            and not isinstance(root, str)
            and root
            and all(isinstance(v, VolumeInfo) for v in root)
        ):
            self.volumes: list[VolumeInfo] = list(root)  # type: ignore[arg-type]
            self.skipped: list[tuple[Path, str]] = []
        else:
            self.volumes, self.skipped = scan_folder(root, strict=strict)  # type: ignore[arg-type]
        if not self.volumes:
            raise DataError(f"{root}: no usable fastMRI files")
        self.index: list[tuple[int, int]] = [
            (v, s) for v, info in enumerate(self.volumes) for s in range(info.num_slices)
        ]
        self.transform = transform
        self.epoch = 0
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds training masks (call before each epoch)."""
        self.epoch = int(epoch)

    def _file(self, vol: int) -> h5py.File:
        if os.getpid() != self._pid:  # a forked worker must not reuse the parent's handles
            self._handles, self._pid = {}, os.getpid()
        hf = self._handles.get(vol)
        if hf is None:
            path = self.volumes[vol].path
            try:
                hf = h5py.File(path, "r")
            except OSError:
                raise DataError(
                    f"{path}: not a readable HDF5 file (truncated or corrupt?)"
                ) from None
            self._handles[vol] = hf
        return hf

    def raw_slice(self, i: int) -> RawSlice:
        """The i-th slice as stored, k-space checked for NaN/Inf."""
        vol, sl = self.index[i]
        info = self.volumes[vol]
        hf = self._file(vol)
        try:
            kspace = np.asarray(hf["kspace"][sl], dtype=np.complex64)
            target = hf[info.target_key][sl] if info.target_key else None
            mask = np.asarray(hf["mask"][()]).astype(bool) if info.has_mask else None
        except (OSError, KeyError) as exc:
            raise DataError(f"{info.path}: read of slice {sl} failed ({exc})") from None
        if not info.multicoil:
            kspace = kspace[None]
        check_finite(info.path, kspace, f" in slice {sl}")
        if target is not None:
            target = np.asarray(target, dtype=np.float32)
        return RawSlice(kspace, target, mask, info, sl)

    def __getitem__(self, i: int) -> Any:
        raw = self.raw_slice(i)
        if self.transform is None:
            return raw
        return self.transform(raw, self.epoch, i)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}  # h5py handles cannot be pickled to spawned workers
        return state

    def close(self) -> None:
        for hf in self._handles.values():
            hf.close()
        self._handles = {}
