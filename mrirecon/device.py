"""Turning a ``--device`` string into a torch device, with a clear error when it cannot be used."""

from __future__ import annotations

import torch

from mrirecon.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """The torch device for ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).

    Raises:
        ConfigError: an unknown device, or a CUDA device this torch or machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"--device {name!r}: not a device (use cpu, cuda, cuda:N or auto)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA device is available to this torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are present"
            )
    elif device.type != "cpu":
        raise ConfigError(f"--device {name}: unsupported device type (use cpu or cuda)")
    return device
