"""U-Net training: typed config, plain PyTorch loop, checkpoints, DDP via torchrun.

Public entry points: :func:`mrirecon.train.fit.fit` (a whole run), :func:`train_one_epoch`,
:func:`validate`, :func:`load_train_config`, :func:`load_checkpoint` (a typed
:class:`Checkpoint`), :func:`load_model` and :func:`checkpoint_hash` (the ``fit``
submodule is not re-exported so that its name stays the module).
Submodules are imported lazily so that ``mrirecon.train.checkpoint`` (used by the
reconstruct command) does not pull in the data loader stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "load_train_config": "config",
    "train_config_from_dict": "config",
    "train_config_to_dict": "config",
    "Checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "load_checkpoint": "checkpoint",
    "checkpoint_hash": "checkpoint",
    "TrainContext": "loop",
    "train_one_epoch": "loop",
    "validate": "loop",
    "NonFiniteLossError": "loop",
    "KspaceAugment": "augment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mrirecon.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mrirecon.train' has no attribute {name!r}")
