"""mrirecon: accelerated MRI reconstruction for fastMRI-format k-space."""

__version__ = "0.1.0"
