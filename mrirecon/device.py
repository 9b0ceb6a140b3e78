"""Where a process runs: ``--device`` strings as torch devices, and its torchrun coordinates.

Both are read by commands that do not train (``reconstruct``), so this module stays light.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from mrirecon.errors import ConfigError

__all__ = ["resolve_device", "TorchrunEnv", "torchrun_env"]


class TorchrunEnv(NamedTuple):
    """This process's place in a torchrun launch ((0, 1, 0) when not launched by torchrun)."""

    rank: int
    world_size: int
    local_rank: int


def _env_int(name: str, default: int, minimum: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        number = int(value) if value else default
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ConfigError(f"environment variable {name}={value!r} must be an integer >= {minimum}")
    return number


def torchrun_env() -> TorchrunEnv:
    """``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as torchrun sets them.

    Returns:
        :class:`TorchrunEnv`; (0, 1, 0) when the variables are absent.

    Raises:
        ConfigError: a variable that is not a non-negative integer, or a rank outside
            the world size.
    """
    env = TorchrunEnv(
        rank=_env_int("RANK", 0, 0),
        world_size=_env_int("WORLD_SIZE", 1, 1),
        local_rank=_env_int("LOCAL_RANK", 0, 0),
    )
    if env.rank >= env.world_size:
        raise ConfigError(f"environment: RANK={env.rank} is not below WORLD_SIZE={env.world_size}")
    return env


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
