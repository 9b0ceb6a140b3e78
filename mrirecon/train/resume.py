"""Where a run starts from: resume rules (which settings a continued run may change, and
its resolved config) and the weights a new run takes from ``--init``.

A resumed run must be the run it continues: its stored config decides everything that
shapes the weights. Only :data:`RESUME_MUTABLE` keys may differ (more epochs, logging,
snapshots, loader workers, which never change the numbers).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import torch

from mrirecon.errors import CheckpointError, ConfigError
from mrirecon.train.checkpoint import load_checkpoint, resolve_checkpoint
from mrirecon.train.config import (
    TrainConfig,
    load_train_config,
    override_train_config,
    train_config_to_dict,
)

__all__ = [
    "INIT_ADDABLE",
    "RESUME_MUTABLE",
    "InitWeights",
    "ResumePlan",
    "resume_config",
    "init_weights",
]

# Keys that may differ between a run's stored config and a resume request.
RESUME_MUTABLE = frozenset(
    {
        "run.epochs",
        "run.progress",
        "run.tensorboard",
        "run.log_every",
        "run.snapshot_every",
        "data.num_workers",
    }
)


class ResumePlan(NamedTuple):
    """How to continue a run: its config and the data folders it was trained on."""

    config: TrainConfig
    data_root: Path | None
    val_root: Path | None


def _flat(cfg: TrainConfig) -> dict[str, object]:
    return {f"{s}.{k}": v for s, sec in train_config_to_dict(cfg).items() for k, v in sec.items()}


def resume_config(
    run_dir: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    overrides: tuple[str, ...] | list[str] = (),
) -> ResumePlan:
    """The stored config of ``run_dir`` with overrides; a clear error if they change the run.

    Args:
        run_dir: the run folder (its last.pt is read).
        config: a YAML config to compare with the stored one (None = the stored one).
        overrides: ``--set section.key=value`` items.

    Returns:
        :class:`ResumePlan` with the checkpoint's data/val roots.

    Raises:
        ConfigError: the request changes a key outside :data:`RESUME_MUTABLE`.
        CheckpointError: last.pt is missing or unreadable.
    """
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    ckpt = load_checkpoint(last)
    if config is not None:
        requested = load_train_config(config, overrides)
    else:
        requested = override_train_config(ckpt.config, overrides, source=str(last))
    a, b = _flat(ckpt.config), _flat(requested)
    changed = sorted(k for k in a if a[k] != b[k] and k not in RESUME_MUTABLE)
    if changed:
        diff = ", ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in changed[:5])
        raise ConfigError(
            f"{run_dir}: --resume must keep the run's config, but these differ: {diff} "
            f"(only {', '.join(sorted(RESUME_MUTABLE))} may change)"
        )
    return ResumePlan(
        requested,
        Path(ckpt.data_root) if ckpt.data_root else None,
        Path(ckpt.val_root) if ckpt.val_root else None,
    )


# Model options that add a module (named like the option) and may be switched on at
# ``--init``: the new module starts from its own initialisation, every other weight comes
# from the checkpoint.
INIT_ADDABLE = frozenset({"output_gate", "output_mix", "gate_context", "gate_rows"})


class InitWeights(NamedTuple):
    """The ``--init`` weights and the prefixes of modules the config adds to them."""

    state: dict[str, torch.Tensor]
    added: tuple[str, ...]

    def complete(self, fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weights with the added modules taken from ``fresh`` (a new model's)."""
        extra = {k: v for k, v in fresh.items() if k.split(".")[0] in self.added}
        return {**extra, **self.state}


def init_weights(cfg: TrainConfig, init: str | os.PathLike[str]) -> InitWeights:
    """The weights of the ``--init`` checkpoint, checked against the config's model.

    A model option in :data:`INIT_ADDABLE` that the checkpoint lacks (or has off) may be
    on in the config: fine-tuning then adds that module, freshly initialised.

    Raises:
        CheckpointError: unreadable checkpoint, or a model (other than ``drop_prob``, a
            training-time setting) that differs from ``cfg.model``, naming the checkpoint.
    """
    ckpt = load_checkpoint(resolve_checkpoint(init))
    theirs, ours = asdict(ckpt.config.model), asdict(cfg.model)
    added = tuple(k for k in sorted(INIT_ADDABLE) if ours.get(k) is True and not theirs.get(k))
    diff = [
        f"{key} {theirs.get(key)!r} (config {ours[key]!r})"
        for key in ours
        if key != "drop_prob" and key not in added and theirs.get(key) != ours[key]
    ]
    if diff:
        raise CheckpointError(
            f"--init {init}: its model does not match the config's: {', '.join(diff)}; "
            "set them with --set model.KEY=VALUE"
        )
    return InitWeights(dict(ckpt.model), added)
