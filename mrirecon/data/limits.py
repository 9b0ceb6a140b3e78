"""Limits on what a file may declare, checked before any read.

A hostile or corrupt file can declare arrays of any size (chunked and never written,
so the file itself is tiny). Every input is checked against these limits and against
the memory available now before its data are read, so no command allocates without
bound (:func:`mrirecon.data.dataset.inspect_file`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrirecon.errors import DataError

__all__ = ["MAX_SLICES", "MAX_COILS", "MAX_MATRIX", "check_size"]

# Limits on declared sizes, checked before any read so a hostile file cannot make a
# command allocate without bound. Generous for 2-D MRI: fastMRI's largest files have
# 640 x 368 k-space, under 100 slices and 28 coils.
MAX_SLICES = 4096
MAX_COILS = 512
MAX_MATRIX = 8192


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_size(path: Path, key: str, shape: tuple[int, ...], dtype: type | np.dtype) -> None:
    """Raise DataError if a declared (slices, [coils,] rows, columns) array is too large.

    Limits: :data:`MAX_SLICES` slices, :data:`MAX_COILS` coils, :data:`MAX_MATRIX` rows
    and columns, and no more bytes (as ``dtype``) than the memory available now.
    """
    slices, rows, cols = shape[0], shape[-2], shape[-1]
    coils = shape[1] if len(shape) == 4 else 1
    if slices > MAX_SLICES or coils > MAX_COILS or max(rows, cols) > MAX_MATRIX:
        raise DataError(
            f"{path}: '{key}' declares shape {shape}, beyond the limits ({MAX_SLICES} "
            f"slices, {MAX_COILS} coils, {MAX_MATRIX} rows or columns)"
        )
    need = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    free = _available_memory()
    if free is not None and need > free:
        raise DataError(
            f"{path}: '{key}' {shape} needs {need / 2**30:.1f} GiB, more than the "
            f"{free / 2**30:.1f} GiB of memory available"
        )
