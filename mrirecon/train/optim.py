"""Optimisers and learning-rate schedules named by the config.

Schedules are one ``LambdaLR`` stepped once per optimiser step, so warm-up, step decay
and cosine decay compose and the scheduler state is a single counter (exact on resume).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from mrirecon.errors import ConfigError
from mrirecon.train.config import OptimConfig, SchedConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "trainable_parameters"]


def trainable_parameters(
    model: torch.nn.Module, prefixes: tuple[str, ...]
) -> list[torch.nn.Parameter]:
    """The parameters to train: all, or those named by ``prefixes`` (the rest are frozen).

    A prefix matches a parameter name equal to it or starting with it and a dot, so
    ``output_gate`` selects ``output_gate.layers.0.weight`` but not ``output_gates.x``.

    Raises:
        ConfigError: a prefix that names no parameter of the model.
    """
    if not prefixes:
        return list(model.parameters())
    names = dict(model.named_parameters())
    matches = {p: {n for n in names if n == p or n.startswith(p + ".")} for p in prefixes}
    unknown = [p for p, found in matches.items() if not found]
    if unknown:
        raise ConfigError(
            f"optim.trainable: {', '.join(unknown)} names no parameter of the model "
            f"(its top-level modules: {', '.join(sorted({n.split('.')[0] for n in names}))})"
        )
    chosen = set().union(*matches.values())
    for name, param in names.items():
        param.requires_grad_(name in chosen)
    return [param for name, param in names.items() if name in chosen]


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig
) -> torch.optim.Optimizer:
    """Adam (default), AdamW, SGD (momentum / Nesterov) or RMSprop from ``cfg``."""
    params = list(params)
    if cfg.name == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    if cfg.name == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=cfg.lr,
            alpha=cfg.alpha,
            eps=cfg.eps,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
    raise ConfigError(f"optim.name: unknown {cfg.name!r}")


def lr_factor(cfg: SchedConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of the base learning rate after ``step`` optimiser steps.

    Args:
        cfg: the schedule.
        step: optimiser steps taken so far (0 for the first step).
        steps_per_epoch: steps in one epoch (for step decay).
        total_steps: steps of the whole run (end of the cosine).

    Returns:
        the factor in [0, 1].
    """
    if step < cfg.warmup_steps:
        return (step + 1) / (cfg.warmup_steps + 1)
    if cfg.name == "step":
        return cfg.gamma ** (step // max(1, cfg.step_epochs * steps_per_epoch))
    if cfg.name == "cosine":
        span = max(1, total_steps - cfg.warmup_steps)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedConfig, steps_per_epoch: int, epochs: int
) -> LambdaLR:
    """A per-step ``LambdaLR`` implementing ``cfg`` for ``epochs`` of ``steps_per_epoch``."""
    total = steps_per_epoch * epochs
    fn: Callable[[int], float] = lambda step: lr_factor(cfg, step, steps_per_epoch, total)  # noqa: E731
    return LambdaLR(optimizer, fn)
