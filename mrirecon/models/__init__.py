"""Reconstruction networks."""

from mrirecon.models.unet import ACTIVATIONS, NORMS, Unet, UnetConfig

__all__ = ["ACTIVATIONS", "NORMS", "Unet", "UnetConfig"]
