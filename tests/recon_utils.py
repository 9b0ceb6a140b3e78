"""Helpers shared by the reconstruct/compare/report tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import make_volume, write_fastmri

TINY_MODEL = {"chans": 4, "num_pool_layers": 2, "num_groups": 2}


def tiny_checkpoint(path: Path, seed: int = 0, model: dict | None = None) -> Path:
    """An untrained U-Net saved with the training code's checkpoint format."""
    from mrirecon.train.checkpoint import Checkpoint, save_checkpoint
    from mrirecon.train.config import train_config_from_dict

    cfg = train_config_from_dict({"model": model or TINY_MODEL})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = cfg.model.build()
        # GroupNorm starts as identity; perturb its affine so the net is not near-trivial.
        for p in net.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, Checkpoint(config=cfg, model=net.state_dict()))
    return path


def data_folder(folder: Path, specs: list[tuple[str, bool, int, int]]) -> list[Path]:
    """Write fastMRI files (name, multicoil, slices, seed) built from the real scan."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, multicoil, slices, seed in specs:
        k, t = make_volume(multicoil, slices=slices, seed=seed)
        out.append(write_fastmri(folder / name, k, t, multicoil=multicoil))
    return out
