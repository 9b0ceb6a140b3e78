"""The ISMRMRD header fields reconstruction needs, and fastMRI's image crop rule."""

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
    """

    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int


def _xml_int(root: ET.Element, path: Sequence[str]) -> int:
    query = "." + "".join(f"//{{{ISMRMRD_NS}}}{p}" for p in path)
    node = root.find(query)
    if node is None or node.text is None:
        raise ValueError(f"ismrmrd_header has no {'/'.join(path)}")
    return int(node.text)


def parse_header(xml: bytes | str) -> Header:
    """Parse encoded size, recon size and phase-encode limits from an ISMRMRD header."""
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
    return Header(enc, rec, left, left + maximum)  # type: ignore[arg-type]


def recon_crop(width: int, recon_size: tuple[int, int]) -> tuple[int, int]:
    """The crop fastMRI applies to the image: the recon size, or (W, W) for narrow images.

    fastMRI's U-Net transform crops to (W, W) when the image width W is smaller than the
    recon width (brain FLAIR files with 203 columns).
    """
    if width < recon_size[1]:
        return (width, width)
    return recon_size
