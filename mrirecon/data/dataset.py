"""Validated fastMRI volumes: the door check, whole-volume reads and a slice dataset.

:func:`inspect_file` validates one file from what it declares (no k-space is read) and
describes it as a :class:`VolumeInfo`; every command uses it, so a file is usable for
all of them or for none. :func:`scan_folder` indexes a folder, skipping bad files with a
warning listing each one and why (or stopping, ``strict=True``). :func:`read_volume`
reads a whole volume and :class:`SliceDataset` single slices; both check k-space for
NaN/Inf as they read, so indexing never reads whole volumes. The file format itself
(every HDF5 read) lives in :mod:`mrirecon.data.fastmri_h5`.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch.utils.data

from mrirecon.data.fastmri_h5 import VolumeReader, read_layout
from mrirecon.data.header import Header, recon_crop
from mrirecon.data.limits import check_size
from mrirecon.errors import DataError

__all__ = [
    "VolumeInfo",
    "RawSlice",
    "check_mask",
    "inspect_file",
    "list_h5",
    "skipped_h5",
    "scan_folder",
    "read_volume",
    "check_finite",
    "check_kspace_finite",
    "SliceDataset",
]


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


def check_mask(path: Path, mask: np.ndarray) -> None:
    """Raise DataError unless a file's mask acquires a column outside its centre block.

    The centre block is the run of acquired columns around the middle column
    (fastMRI's fully sampled low frequencies). A mask that acquires nothing, or only that
    block, leaves nothing to reconstruct from; a fully sampled mask is allowed.
    """
    acquired = np.flatnonzero(mask)
    if acquired.size == 0:
        raise DataError(f"{path}: 'mask' acquires no columns; the file cannot be reconstructed")
    if acquired.size == mask.size:
        return
    mid = mask.size // 2
    runs = np.split(acquired, np.flatnonzero(np.diff(acquired) != 1) + 1)
    if len(runs) == 1 and runs[0][0] <= mid <= runs[0][-1]:
        raise DataError(
            f"{path}: 'mask' acquires only the {acquired.size} centre columns, none outside"
        )


def _check_recon_size(path: Path, recon: tuple[int, int], kspace_hw: tuple[int, int]) -> None:
    h, w = recon
    height, width = kspace_hw
    if h < 1 or w < 1:
        raise DataError(f"{path}: recon size {recon} must be positive")
    # fastMRI's narrow-image rule (recon_crop) covers images down to half the recon
    # width; a larger recon size is an error, not a silent crop to (W, W).
    if h > height or w > 2 * width:
        raise DataError(f"{path}: recon size {recon} is larger than k-space {kspace_hw}")


def inspect_file(path: str | os.PathLike[str]) -> VolumeInfo:
    """Validate a fastMRI file before any large read and describe it (the door check).

    Every command (reconstruct, evaluate, train, ``data check``) validates files here:
    declared shapes within limits and available memory
    (:func:`~mrirecon.data.limits.check_size`); complex k-space; a real target with
    matching slices; a usable ``mask`` (:func:`check_mask`); a recon size (the target's,
    else the header's) that is positive with h <= H and w <= W, or W < w <= 2 W, where
    fastMRI's narrow-image rule crops to (W, W) (:func:`~mrirecon.data.header.recon_crop`).

    Args:
        path: the .h5 file.

    Returns:
        its :class:`VolumeInfo`.

    Raises:
        DataError: "<path>: <reason>" for a file that cannot be used.
    """
    path = Path(path)
    lay = read_layout(path)
    ks = lay.kspace
    if ks is None:
        raise DataError(f"{path}: no 'kspace' dataset (found: {list(lay.keys) or 'nothing'})")
    if not np.issubdtype(ks.dtype, np.complexfloating):
        raise DataError(f"{path}: 'kspace' must be complex, got dtype {ks.dtype}")
    if len(ks.shape) not in (3, 4):
        raise DataError(
            f"{path}: 'kspace' must be (slices, H, W) or (slices, coils, H, W), got shape {ks.shape}"
        )
    if min(ks.shape) < 1 or ks.shape[-1] < 2 or ks.shape[-2] < 2:
        raise DataError(f"{path}: 'kspace' has an empty or degenerate shape {ks.shape}")
    multicoil = len(ks.shape) == 4
    num_slices, height, width = ks.shape[0], ks.shape[-2], ks.shape[-1]
    coils = ks.shape[1] if multicoil else 1
    check_size(path, "kspace", (num_slices, coils, height, width), np.complex64)

    target_key, target_shape = lay.target_key, None
    if target_key is not None:
        tgt = lay.target
        if tgt is None or len(tgt.shape) != 3 or not np.issubdtype(tgt.dtype, np.floating):
            got = f"{tgt.dtype} {tgt.shape}" if tgt is not None else "not a dataset"
            raise DataError(f"{path}: '{target_key}' must be real (slices, h, w), got {got}")
        if tgt.shape[0] != num_slices:
            raise DataError(
                f"{path}: '{target_key}' has {tgt.shape[0]} slices but 'kspace' has {num_slices}"
            )
        check_size(path, target_key, tgt.shape, np.float32)
        target_shape = (tgt.shape[1], tgt.shape[2])

    has_mask = lay.mask_shape is not None
    if has_mask:
        if lay.mask_shape != (width,) or lay.mask is None:
            raise DataError(f"{path}: 'mask' must have shape ({width},), got {lay.mask_shape}")
        check_mask(path, lay.mask)

    if target_shape is not None:
        recon_size = target_shape
    elif lay.header is not None:
        recon_size = (lay.header.recon_size[0], lay.header.recon_size[1])
    else:
        raise DataError(f"{path}: no target and no ismrmrd_header, so the recon size is unknown")
    _check_recon_size(path, recon_size, (height, width))
    h, w = recon_crop(width, recon_size)
    if h > height or w > width:
        raise DataError(f"{path}: recon size {recon_size} is larger than k-space {ks.shape[-2:]}")

    return VolumeInfo(
        path=path,
        fname=path.name,
        multicoil=multicoil,
        num_slices=num_slices,
        num_coils=coils,
        kspace_shape=ks.shape,
        target_key=target_key,
        has_mask=has_mask,
        header=lay.header,
        recon_size=recon_size,
        attrs=lay.attrs,
    )


def _entries(root: str | os.PathLike[str]) -> list[tuple[Path, str | None]]:
    """Every ``*.h5`` entry of ``root``, sorted, with why it is skipped (None: a file)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    out: list[tuple[Path, str | None]] = []
    for p in sorted(root.iterdir()):
        if p.suffix != ".h5":
            continue
        try:
            st = p.stat()  # follows links: a broken link or a loop raises here
        except OSError as exc:
            loop = exc.errno == errno.ELOOP
            out.append((p, "symbolic link loop" if loop else "broken symbolic link"))
            continue
        out.append((p, None if stat.S_ISREG(st.st_mode) else "not a regular file (a folder?)"))
    return out


def list_h5(root: str | os.PathLike[str]) -> list[Path]:
    """The .h5 files directly in ``root``, sorted; a clear error if the folder is unusable.

    Entries named ``*.h5`` that are not readable files are left out; :func:`skipped_h5`
    lists them so that a command can report each one.
    """
    return [p for p, why in _entries(root) if why is None]


def skipped_h5(root: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """The ``*.h5`` entries of ``root`` that :func:`list_h5` leaves out, with the reason.

    Folders named ``*.h5``, broken symbolic links and symbolic link loops.
    """
    return [(p, why) for p, why in _entries(root) if why is not None]


def scan_folder(
    root: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], strict: bool = False
) -> tuple[list[VolumeInfo], list[tuple[Path, str]]]:
    """Validate every .h5 file of a folder (or an explicit list of files).

    Args:
        root: a folder, or an iterable of file paths.
        strict: raise on the first listing of bad files instead of skipping them.

    Returns:
        (usable volumes, [(path, reason), ...] for the files and ``*.h5`` entries skipped).

    Raises:
        DataError: for a missing or empty folder, or bad files when ``strict``.
    """
    good: list[VolumeInfo] = []
    bad: list[tuple[Path, str]] = []
    if isinstance(root, str | os.PathLike):
        files = list_h5(root)
        if not files:
            raise DataError(f"{root}: no .h5 files found")
        bad = skipped_h5(root)
    else:
        files = [Path(p) for p in root]
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
    with VolumeReader(info.path, info.target_key, info.has_mask) as reader:
        kspace, target, mask = reader.read(slice(None))
    if not info.multicoil:
        kspace = kspace[:, None]
    check_finite(info.path, kspace)
    return kspace, target, mask


def check_kspace_finite(info: VolumeInfo) -> None:
    """Read k-space slice by slice (memory bounded by one slice) and check it is finite.

    Raises:
        DataError: naming the first slice with NaN/Inf, or an unreadable slice.
    """
    with VolumeReader(info.path, None, False) as reader:
        for i in range(info.num_slices):
            check_finite(info.path, reader.read(i)[0], f" in slice {i}")


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
        self._readers: dict[int, VolumeReader] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds training masks (call before each epoch)."""
        self.epoch = int(epoch)

    def _reader(self, vol: int) -> VolumeReader:
        if os.getpid() != self._pid:  # a forked worker must not reuse the parent's handles
            self._readers, self._pid = {}, os.getpid()
        reader = self._readers.get(vol)
        if reader is None:
            info = self.volumes[vol]
            reader = VolumeReader(info.path, info.target_key, info.has_mask)
            self._readers[vol] = reader
        return reader

    def raw_slice(self, i: int) -> RawSlice:
        """The i-th slice as stored, k-space checked for NaN/Inf."""
        vol, sl = self.index[i]
        info = self.volumes[vol]
        kspace, target, mask = self._reader(vol).read(sl)
        if not info.multicoil:
            kspace = kspace[None]
        check_finite(info.path, kspace, f" in slice {sl}")
        return RawSlice(kspace, target, mask, info, sl)

    def __getitem__(self, i: int) -> Any:
        raw = self.raw_slice(i)
        if self.transform is None:
            return raw
        return self.transform(raw, self.epoch, i)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = {}  # HDF5 handles cannot be pickled to spawned workers
        return state

    def close(self) -> None:
        """Close the HDF5 handles this process opened."""
        for reader in self._readers.values():
            reader.close()
        self._readers = {}
