"""The ISMRMRD header fields reconstruction needs, and fastMRI's image crop rule.

This is the one parser of the XML header; :mod:`mrirecon.data.fastmri_h5` reads the
bytes from a file and calls :func:`parse_header`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["ISMRMRD_NS", "Header", "parse_header", "recon_crop"]

ISMRMRD_NS = "http://www.ismrm.org/ISMRMRD"


class Header(NamedTuple):
    """The parts of the ISMRMRD header that reconstruction needs (fastmri 0.3.0 rules).

    ``padding_left``/``padding_right`` bound the acquired phase-encode columns:
    ``padding_left = enc_y // 2 - center`` and ``padding_right = padding_left + maximum + 1``.
    ``voxel_size`` is the (row, column, slice) spacing in mm of the reconstruction: rows
    run along the ISMRMRD x (readout) axis, columns along y (phase encoding), and the
    slice size is the z field of view over the z matrix size (the slice thickness of 2-D
    acquisitions); None when the reconSpace field of view is missing or not positive.
    """

    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int
    voxel_size: tuple[float, float, float] | None = None


def _xml_int(root: ET.Element, path: Sequence[str]) -> int:
    query = "." + "".join(f"//{{{ISMRMRD_NS}}}{p}" for p in path)
    node = root.find(query)
    if node is None or node.text is None:
        raise ValueError(f"ismrmrd_header has no {'/'.join(path)}")
    try:
        return int(node.text)
    except ValueError:
        raise ValueError(f"ismrmrd_header {'/'.join(path)} is not an integer") from None


def _voxel_size(root: ET.Element) -> tuple[float, float, float] | None:
    ns = f"{{{ISMRMRD_NS}}}"
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
        if not (f > 0 and m > 0):  # also rejects NaN
            return None
        sizes.append(f / m)
    return sizes[0], sizes[1], sizes[2]


def parse_header(xml: bytes | str) -> Header:
    """Parse encoded size, recon size, phase-encode limits and voxel size from a header.

    Args:
        xml: the ``ismrmrd_header`` text.

    Returns:
        the :class:`Header`.

    Raises:
        ValueError: not XML, or a required field is missing or not an integer.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"ismrmrd_header is not valid XML ({exc})") from None
    enc = tuple(_xml_int(root, ["encoding", "encodedSpace", "matrixSize", a]) for a in "xyz")
    rec = tuple(_xml_int(root, ["encoding", "reconSpace", "matrixSize", a]) for a in "xyz")
    lims = ["encoding", "encodingLimits", "kspace_encoding_step_1"]
    center = _xml_int(root, [*lims, "center"])
    maximum = _xml_int(root, [*lims, "maximum"]) + 1
    left = enc[1] // 2 - center
    return Header(enc, rec, left, left + maximum, _voxel_size(root))  # type: ignore[arg-type]


def recon_crop(width: int, recon_size: tuple[int, int]) -> tuple[int, int]:
    """The crop fastMRI applies to the image: the recon size, or (W, W) for narrow images.

    fastMRI's U-Net transform crops to (W, W) when the image width W is smaller than the
    recon width (brain FLAIR files with 203 columns).

    Args:
        width: the k-space (image) width W.
        recon_size: the (h, w) recon size.

    Returns:
        the (h, w) crop.
    """
    if width < recon_size[1]:
        return (width, width)
    return recon_size
