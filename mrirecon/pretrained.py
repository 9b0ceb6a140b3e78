"""Checkpoints from elsewhere: fastMRI U-Net and VarNet weights, and compact copies for shipping.

:func:`import_fastmri` turns a ``fastmri.models.Unet`` or ``fastmri.models.VarNet``
state_dict (``torch.save`` of ``model.state_dict()``, the form of fastMRI's published knee
and brain baselines) into an mrirecon checkpoint whose config matches it: InstanceNorm,
LeakyReLU 0.2, and the channels, pooling levels, in/out channels and (VarNet) cascades
read from the tensors. Module names of :class:`mrirecon.models.Unet` and
:class:`mrirecon.models.varnet.VarNet` follow fastMRI's, so the weights load unchanged.

:func:`pack_checkpoint` strips a training checkpoint down to what inference and
fine-tuning need (config and weights, fp16 storage by default) for
``mrirecon/models/assets/`` (see :mod:`mrirecon.models.registry`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from mrirecon.errors import CheckpointError, ConfigError
from mrirecon.models.registry import MAX_BYTES
from mrirecon.models.unet import UnetConfig
from mrirecon.models.varnet import VarNetConfig
from mrirecon.train.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_state_strict,
    resolve_checkpoint,
    save_checkpoint,
)
from mrirecon.train.config import MaskConfig, TrainConfig

__all__ = ["fastmri_unet_config", "fastmri_varnet_config", "import_fastmri", "pack_checkpoint"]

# fastMRI's U-Net baselines train on random masks at 4x and 8x with these centre fractions.
FASTMRI_MASK = MaskConfig(kind="random", center_fractions=(0.08, 0.04), accelerations=(4.0, 8.0))
# Prefixes that wrappers add to the names: fastMRI's Lightning UnetModule, DDP.
_PREFIXES = ("unet.", "module.")
_DOWN = re.compile(r"^down_sample_layers\.(\d+)\.")
_CASCADE = re.compile(r"^cascades\.(\d+)\.")


def _refuse_existing(out: Path) -> None:
    if out.exists():
        raise ConfigError(f"--out {out}: already exists; choose another path")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict file (a Lightning checkpoint's ``state_dict`` entry is taken too)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such state_dict file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or pickled files
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"{path}: not a readable state_dict ({reason})") from None
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not raw:
        raise CheckpointError(f"{path}: expected a fastmri.models.Unet state_dict (a mapping)")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()):
        raise CheckpointError(f"{path}: a state_dict maps names to tensors; this one does not")
    state = dict(raw)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def fastmri_unet_config(
    state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]
) -> UnetConfig:
    """The :class:`UnetConfig` of a ``fastmri.models.Unet`` state_dict, read from its shapes.

    Args:
        state: the state_dict (without wrapper prefixes).
        path: its file, named in errors.

    Raises:
        CheckpointError: not a fastMRI U-Net state_dict (one line naming the file).
    """
    first = state.get("down_sample_layers.0.layers.0.weight")
    levels = {int(m.group(1)) for k in state if (m := _DOWN.match(k))}
    if first is None or first.dim() != 4 or not levels:
        raise CheckpointError(
            f"{path}: not a fastmri.models.Unet state_dict (no down_sample_layers.0 convolution)"
        )
    pools = max(levels) + 1
    last = state.get(f"up_conv.{pools - 1}.1.weight")
    if last is None or last.dim() != 4:
        raise CheckpointError(
            f"{path}: not a fastmri.models.Unet state_dict (no final 1x1 convolution "
            f"up_conv.{pools - 1}.1.weight)"
        )
    chans, in_chans = int(first.shape[0]), int(first.shape[1])
    return UnetConfig(
        in_chans=in_chans,
        out_chans=int(last.shape[0]),
        chans=chans,
        num_pool_layers=pools,
        drop_prob=0.0,
        norm="instance",
        activation="leaky_relu",
        negative_slope=0.2,
    )


def fastmri_varnet_config(
    state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]
) -> VarNetConfig:
    """The :class:`VarNetConfig` of a ``fastmri.models.VarNet`` state_dict, from its shapes.

    Raises:
        CheckpointError: not a fastMRI VarNet state_dict (one line naming the file).
    """
    cascades = {int(m.group(1)) for k in state if (m := _CASCADE.match(k))}
    if not cascades:
        raise CheckpointError(f"{path}: not a fastmri.models.VarNet state_dict (no cascades)")

    def sub(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

    reg = fastmri_unet_config(sub("cascades.0.model.unet."), path)
    sens = fastmri_unet_config(sub("sens_net.norm_unet.unet."), path)
    return VarNetConfig(
        num_cascades=max(cascades) + 1,
        chans=reg.chans,
        pools=reg.num_pool_layers,
        sens_chans=sens.chans,
        sens_pools=sens.num_pool_layers,
        norm="instance",
    )


def import_fastmri(state_dict: str | os.PathLike[str], out: str | os.PathLike[str]) -> Checkpoint:
    """Write an mrirecon checkpoint holding a fastMRI U-Net's or VarNet's weights.

    Args:
        state_dict: ``torch.save(fastmri.models.Unet(...).state_dict(), path)``'s file (or
            a ``fastmri.models.VarNet``'s).
        out: the checkpoint to write (must not exist; its folder is created).

    Returns:
        The written :class:`Checkpoint` (accepted by ``reconstruct``, ``compare`` and
        ``train --init``; its ``model.kind`` says which method runs it).

    Raises:
        CheckpointError: unreadable file, not a fastMRI U-Net or VarNet, or a U-Net that is
            not a 1-channel (magnitude) network, which is what mrirecon's U-Net method runs.
        ConfigError: ``out`` exists.
    """
    path, out = Path(state_dict), Path(out)
    _refuse_existing(out)
    state = _read_state_dict(path)
    model: UnetConfig | VarNetConfig
    if any(k.startswith("cascades.") for k in state):
        model = fastmri_varnet_config(state, path)
    else:
        model = fastmri_unet_config(state, path)
        if (model.in_chans, model.out_chans) != (1, 1):
            raise CheckpointError(
                f"{path}: a {model.in_chans}-in/{model.out_chans}-out channel U-Net; mrirecon's "
                "U-Net reconstructs magnitude images (1 channel in and out)"
            )
    load_state_strict(model.build(), state, path)  # every tensor fits the inferred config
    ckpt = Checkpoint(config=TrainConfig(mask=FASTMRI_MASK, model=model), model=state)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, ckpt)
    return ckpt


def pack_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], fp16: bool = True
) -> int:
    """Write a compact copy of a checkpoint: config, weights and validation record only.

    Optimiser, scheduler, scaler and RNG states are dropped (``--init`` starts a fresh
    optimiser anyway); floating-point weights are stored as fp16 unless ``fp16`` is False
    (loading casts them back to the model's float32).

    Args:
        checkpoint: a checkpoint file, run folder or ``pretrained:NAME``.
        out: the file to write (must not exist).
        fp16: store floating-point tensors as float16.

    Returns:
        Size of the written file in bytes.

    Raises:
        CheckpointError: unreadable checkpoint, or weights above the 25 MB shipping limit.
        ConfigError: ``out`` exists.
    """
    out = Path(out)
    _refuse_existing(out)
    src = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(src)
    weights = {
        k: (v.half() if fp16 and v.is_floating_point() else v).contiguous()
        for k, v in ckpt.model.items()
    }
    size = sum(v.numel() * v.element_size() for v in weights.values())
    if size > MAX_BYTES:
        raise CheckpointError(
            f"{src}: weights take {size / 2**20:.1f} MB, above the {MAX_BYTES // 2**20} MB "
            "limit for shipped models (use fp16 or a smaller model)"
        )
    packed = Checkpoint(
        config=ckpt.config,
        model=weights,
        epoch=ckpt.epoch,
        step=ckpt.step,
        best_ssim=ckpt.best_ssim,
        world_size=ckpt.world_size,
        data_root=ckpt.data_root,
        val_root=ckpt.val_root,
        val=ckpt.val,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, packed)
    return out.stat().st_size
