"""Training checkpoints: atomic save, validated load, model rebuild and a stable hash.

A checkpoint is a ``torch.save`` dict of plain types and tensors (loadable with
``weights_only=True``, so loading never runs pickled code) holding the model,
optimiser, scheduler and grad-scaler states, the epoch/step counters, the RNG states
needed to continue bit for bit, the resolved config and the package versions. Files are
written to a temporary file in the same folder and renamed, so a crash never leaves a
half-written ``last.pt``/``best.pt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mrirecon
from mrirecon.models.unet import Unet
from mrirecon.train.config import TrainConfig, config_from_dict

__all__ = [
    "FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "checkpoint_hash",
    "model_hash",
    "rng_state",
    "set_rng_state",
    "versions",
]

FORMAT = "mrirecon-unet-checkpoint/1"
_REQUIRED = ("format", "model", "config", "epoch", "step")


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    try:
        from mrirecon.io import atomic_write  # the project's helper, when present
    except ImportError:
        atomic_write = None
    if atomic_write is not None:
        with atomic_write(path) as tmp:
            yield Path(tmp)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions() -> dict[str, str]:
    """Versions of the packages that determine a checkpoint's behaviour."""
    return {
        "mrirecon": str(mrirecon.__version__),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def rng_state(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """torch CPU/CUDA RNG states (dropout) and the data loader's generator state."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Atomically write a checkpoint dict (``format``/``versions`` are added).

    Args:
        path: destination file (its folder must exist).
        state: at least model, config (dict), epoch, step.
    """
    path = Path(path)
    payload = {"format": FORMAT, "versions": versions(), **state}
    with _atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read and validate a checkpoint.

    Raises:
        ValueError: "<path>: reason" if it is missing, unreadable, truncated or not a
            mrirecon U-Net checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/truncated zips
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        picked = [ln for ln in lines if "Unpickler error" in ln] or lines or [type(exc).__name__]
        reason = picked[0]
        raise ValueError(f"{path}: not a readable checkpoint ({reason[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(
            f"{path}: not an mrirecon U-Net checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return ckpt


def config_of(ckpt: dict[str, Any], path: str | os.PathLike[str] = "checkpoint") -> TrainConfig:
    """The :class:`TrainConfig` stored in a checkpoint."""
    try:
        return config_from_dict(ckpt["config"])
    except ValueError as exc:
        raise ValueError(f"{path}: stored config is invalid ({exc})") from None


def load_state_strict(
    module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike[str]
) -> None:
    """``load_state_dict`` with a one-line ValueError naming the file on any mismatch."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = " ".join(lines[1:3]) if len(lines) > 1 else lines[0]
        raise ValueError(
            f"{path}: model weights do not match the stored config ({detail[:300]})"
        ) from None


def load_model(
    checkpoint_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[Unet, TrainConfig]:
    """Rebuild the U-Net a checkpoint was trained with and load its weights.

    Args:
        checkpoint_path: a ``last.pt``/``best.pt`` file (or a run folder: its best.pt,
            else last.pt).
        device: where to put the model.

    Returns:
        (model in eval mode on ``device``, the checkpoint's :class:`TrainConfig`).

    Raises:
        ValueError: unreadable/corrupt checkpoint, or weights that do not fit the config.
    """
    path = resolve_checkpoint(checkpoint_path)
    ckpt = load_checkpoint(path)
    cfg = config_of(ckpt, path)
    model = cfg.model.build()
    load_state_strict(model, ckpt["model"], path)
    return model.to(device).eval(), cfg


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or a run folder's best.pt (else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise ValueError(f"{path}: run folder has no best.pt or last.pt")
    return path


def model_hash(state_dict: dict[str, torch.Tensor], model_config: dict[str, Any]) -> str:
    """SHA-256 of the model config and weights (names, dtypes, shapes, bytes, sorted).

    Independent of optimiser state, save time and file layout, so re-saving the same
    weights gives the same hash.
    """
    h = hashlib.sha256()
    h.update(json.dumps(model_config, sort_keys=True).encode())
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(state_dict[name].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def checkpoint_hash(checkpoint_path: str | os.PathLike[str]) -> str:
    """Stable hash identifying the model in a checkpoint: :func:`model_hash`, 16 hex digits."""
    path = resolve_checkpoint(checkpoint_path)
    ckpt = load_checkpoint(path)
    return model_hash(ckpt["model"], ckpt["config"].get("model", {}))[:16]
