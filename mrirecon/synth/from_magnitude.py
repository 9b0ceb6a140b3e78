"""Raw data from a magnitude image, as the generalisation benchmark makes its scans.

Magnitude images (DICOM or NIfTI exports, often already noisy) have no k-space. This is the
one conversion the held-out benchmark (``scripts/bench_generalisation.py``) applies to
them, kept here so that validation data can be made by the same protocol from other
images: the image centred in fastMRI's 2x-oversampled readout (empty margins), a smooth
random phase, loop-coil sensitivities (or one coil, with an ESC target), white k-space noise
over the whole field of view, and the target computed from that k-space as fastMRI does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mrirecon.fft import fft2c_np
from mrirecon.synth.fields import coil_maps, coil_noise, phase_fields
from mrirecon.synth.kspace import SynthVolume, fastmri_target, ismrmrd_header, kspace_size_for

__all__ = ["MagnitudeScan", "scan_from_magnitude"]


class MagnitudeScan(NamedTuple):
    """How a magnitude image becomes a scan: coils (1 = single-coil ESC) and noise std
    relative to the image peak; ``seed`` fixes phase, coil maps and noise."""

    coils: int
    noise: float
    seed: int


def scan_from_magnitude(magnitude: np.ndarray, sim: MagnitudeScan, source: str) -> SynthVolume:
    """fastMRI-format k-space of magnitude slices (S, h, w): phase, coils, noise, target.

    Args:
        magnitude: real (S, h, w) slices; scaled so that their peak is 1.
        sim: coils, noise and seed.
        source: the ``source`` attribute of the file.

    Returns:
        the :class:`~mrirecon.synth.kspace.SynthVolume` (k-space (S, C, H, W), C = 1 for one
        coil, with H = 2h readout oversampling).
    """
    rng = np.random.RandomState(sim.seed)
    S, h, w = magnitude.shape
    H, W = kspace_size_for((h, w))
    image = np.zeros((S, H, W), dtype=np.complex128)
    r0, c0 = (H - h) // 2, (W - w) // 2
    image[:, r0 : r0 + h, c0 : c0 + w] = magnitude / magnitude.max()
    image *= np.exp(1j * phase_fields((H, W), (h, w), S, rng))
    if sim.coils > 1:
        image = image[:, None] * coil_maps((H, W), (h, w), sim.coils, np.zeros(S), rng)
    kspace = fft2c_np(image).astype(np.complex64)
    if sim.noise > 0:
        kspace += coil_noise(kspace.shape, sim.noise, rng)
    multicoil = sim.coils > 1
    target = fastmri_target(kspace, (h, w), multicoil)
    header = ismrmrd_header((H, W), (h, w), S, sim.coils, (0, 0), (1.0, 1.0), 3.0)
    attrs = {
        "acquisition": "SIM_FROM_MAGNITUDE",
        "max": float(target.max()),
        "norm": float(np.linalg.norm(target)),
        "source": source,
    }
    return SynthVolume(kspace, target, header, attrs, {})
