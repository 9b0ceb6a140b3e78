"""fastMRI raw-data conventions shared by every simulator: sizes, header, targets, files.

The k-space has fastMRI's geometry: the readout (H) is 2x oversampled and W may add
phase-oversampling columns to the recon width. Targets are computed from the stored k-space
exactly as fastMRI does: ``ifft2c``, complex centre crop to the recon size, then the
magnitude (``reconstruction_esc``) or the root-sum-of-squares over coils
(``reconstruction_rss``). Files are written through :mod:`mrirecon.data.fastmri_h5`.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.fft

from mrirecon.data.fastmri_h5 import volume_bytes
from mrirecon.fft import crop_slices
from mrirecon.io import atomic_write

__all__ = [
    "pad_phase_edges",
    "SynthVolume",
    "kspace_size_for",
    "ismrmrd_header",
    "fft2c_rows",
    "fastmri_target",
    "write_volume",
]


def kspace_size_for(recon: Sequence[int]) -> tuple[int, int]:
    """fastMRI-like k-space size for a recon size.

    The readout (H) is 2x oversampled. W is the recon width plus about 15% of
    phase-oversampling columns, rounded to a multiple of 16 (so 320 -> 368 and 128 -> 144).
    """
    h, w = int(recon[0]), int(recon[1])
    return 2 * h, w + 16 * max(1, round(0.15 * w / 16))


class SynthVolume(NamedTuple):
    """One simulated volume, ready to write.

    Attributes:
        kspace: complex64 (S, H, W) single-coil or (S, C, H, W) multi-coil.
        target: float32 (S, h, w), the fastMRI target of the fully sampled k-space.
        header: ISMRMRD XML bytes.
        attrs: HDF5 attributes (acquisition, max, norm, patient_id, source, synth_params).
        params: the drawn parameters (orientation, contrast, coils, padding, ...).
    """

    kspace: np.ndarray
    target: np.ndarray
    header: bytes
    attrs: dict[str, Any]
    params: dict[str, Any]


def _xml(parent: ET.Element, tag: str, children: dict[str, Any] | None = None, text=None):
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    for name, value in (children or {}).items():
        _xml(el, name, text=value)
    return el


def ismrmrd_header(
    kspace_size: tuple[int, int],
    recon_size: tuple[int, int],
    num_slices: int,
    num_coils: int,
    padding: tuple[int, int],
    pixel_mm: Sequence[float],
    slice_mm: float,
) -> bytes:
    """Minimal ISMRMRD XML header with the fields fastMRI reads.

    ``encodedSpace/matrixSize`` is (H, W, 1) and ``reconSpace/matrixSize`` is (h, w, 1).
    ``kspace_encoding_step_1`` has ``center = W // 2 - padding_left`` and ``maximum = acquired
    columns - 1``, so fastmri 0.3.0 recovers ``padding_left`` and ``padding_right = W -
    padding[1]``.

    Returns:
        UTF-8 XML bytes in the namespace http://www.ismrm.org/ISMRMRD.
    """
    (H, W), (h, w) = kspace_size, recon_size
    root = ET.Element("ismrmrdHeader", xmlns="http://www.ismrm.org/ISMRMRD")
    system = {"systemVendor": "mrirecon", "systemModel": "synth", "receiverChannels": num_coils}
    _xml(root, "acquisitionSystemInformation", system)
    _xml(root, "experimentalConditions", {"H1resonanceFrequency_Hz": 127728000})
    enc = _xml(root, "encoding")
    for space, (rows, cols) in (("encodedSpace", (H, W)), ("reconSpace", (h, w))):
        el = _xml(enc, space)
        _xml(el, "matrixSize", {"x": rows, "y": cols, "z": 1})
        fov = {"x": round(rows * pixel_mm[0], 3), "y": round(cols * pixel_mm[1], 3), "z": slice_mm}
        _xml(el, "fieldOfView_mm", fov)
    lims = _xml(enc, "encodingLimits")
    acquired = W - padding[0] - padding[1]
    step1 = {"minimum": 0, "maximum": acquired - 1, "center": W // 2 - padding[0]}
    _xml(lims, "kspace_encoding_step_1", step1)
    _xml(lims, "kspace_encoding_step_2", {"minimum": 0, "maximum": 0, "center": 0})
    _xml(lims, "slice", {"minimum": 0, "maximum": num_slices - 1, "center": num_slices // 2})
    _xml(enc, "trajectory", text="cartesian")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


_AXES = (-2, -1)


def fft2c_rows(image: np.ndarray, rows: int) -> np.ndarray:
    """Centred orthonormal 2-D FFT of ``image`` zero-padded to ``rows`` rows (centred).

    Equal to :func:`mrirecon.fft.fft2c_np` of the padded image, in the input's precision
    (scipy keeps complex64 in single precision, about 3x faster than NumPy). The padded,
    ``ifftshift``-ed input is built in one pass instead of padding and rolling.

    Args:
        image: complex (..., Hw, W) with Hw <= rows and rows - Hw even.
        rows: H, the padded number of rows.

    Returns:
        complex (..., H, W) k-space.
    """
    hw, W = image.shape[-2:]
    top = (rows - hw) // 2
    shifted = np.zeros((*image.shape[:-2], rows, W), dtype=image.dtype)
    # ifftshift moves row n to (n - H // 2) % H and column m to (m - W // 2) % W.
    # The input rows land in at most two contiguous runs of the output.
    start = (top - rows // 2) % rows
    first = min(hw, rows - start)
    rolled = np.roll(image, -(W // 2), axis=-1)
    shifted[..., start : start + first, :] = rolled[..., :first, :]
    shifted[..., : hw - first, :] = rolled[..., first:, :]
    return scipy.fft.fftshift(scipy.fft.fft2(shifted, axes=_AXES, norm="ortho"), axes=_AXES)


def pad_phase_edges(kspace: np.ndarray, rng: np.random.RandomState, prob: float) -> tuple[int, int]:
    """With probability ``prob``, zero 1..W/12 phase-encode columns at each edge, in place.

    Real scans often leave the outermost phase-encode lines unacquired (fastMRI's headers
    record the acquired range); this mimics it.

    Returns:
        (left, right) zeroed columns; (0, 0) when nothing was zeroed.
    """
    width = kspace.shape[-1]
    pad = (0, 0)
    if rng.uniform() < prob:
        pad = tuple(int(p) for p in rng.randint(1, max(2, width // 12) + 1, size=2))
        kspace[..., : pad[0]] = 0
        kspace[..., width - pad[1] :] = 0
    return pad  # type: ignore[return-value]


def fastmri_target(kspace: np.ndarray, recon: tuple[int, int], multicoil: bool) -> np.ndarray:
    """The fastMRI target of fully sampled k-space: ``ifft2c``, centre crop, magnitude or RSS.

    Args:
        kspace: complex (S, H, W) single-coil or (S, C, H, W) multi-coil.
        recon: (h, w) recon size.
        multicoil: RSS over the coil axis (else the magnitude, fastMRI's ESC).

    Returns:
        float32 (S, h, w).
    """
    H, W = kspace.shape[-2:]
    image = scipy.fft.ifft2(scipy.fft.ifftshift(kspace, axes=_AXES), axes=_AXES, norm="ortho")
    # fftshift + centre crop as one gather of the crop (fftshift(y)[i] = y[(i - N // 2) % N]):
    # no copy of the whole image.
    rows, cols = crop_slices(kspace.shape, recon)
    r = (np.arange(rows.start, rows.stop) - H // 2) % H
    c = (np.arange(cols.start, cols.stop) - W // 2) % W
    coil_images = image[..., r[:, None], c[None, :]]
    if multicoil:
        return np.sqrt((np.abs(coil_images) ** 2).sum(axis=1)).astype(np.float32)
    return np.abs(coil_images).astype(np.float32)


def write_volume(path: str | os.PathLike[str], vol: SynthVolume) -> Path:
    """Write a volume as a fastMRI HDF5 file, atomically (temp file + ``os.replace``).

    Returns:
        The path written.
    """
    path = Path(path)
    data = volume_bytes(vol.kspace, vol.target, vol.header, vol.attrs)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return path
