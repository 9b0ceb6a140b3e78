"""Typed training configuration: YAML files, ``--set section.key=value`` overrides.

A config is a :class:`TrainConfig` of frozen dataclass sections. Files and overrides are
checked against the schema: an unknown section or key is an error that lists the valid
ones, and every value is converted to its field's type (so ``lr: 1e-3``, which YAML
reads as a string, is a float here). The resolved config is written to each run folder
and stored in every checkpoint, so a run can always be rebuilt from its own record.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from mrirecon.data.masks import MASKS, MaskSpec
from mrirecon.models.unet import UnetConfig

__all__ = [
    "DataConfig",
    "MaskConfig",
    "OptimConfig",
    "SchedConfig",
    "LossConfig",
    "AugmentConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "save_config",
]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "step", "cosine")
LOSSES = ("l1", "ssim", "mix")
AMP_MODES = ("auto", "bf16", "fp16", "none")
DEVICES = ("auto", "cpu", "cuda")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _choice(section: str, name: str, value: str, options: typing.Iterable[str]) -> None:
    if value not in options:
        raise ValueError(f"{section}.{name}: unknown {value!r}; choose from {sorted(options)}")


@dataclass(frozen=True)
class DataConfig:
    """Where the slices come from and how they are loaded.

    ``val_fraction`` holds out that share of the training volumes (by sorted file name,
    deterministic) when neither ``--val-root`` nor ``train``/``val`` sub-folders exist.
    ``max_train_slices``/``max_val_volumes`` (0 = all) cap the data for quick runs.
    """

    num_workers: int = 0
    val_fraction: float = 0.2
    max_train_slices: int = 0
    max_val_volumes: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class MaskConfig:
    """Undersampling used for training and validation (see :mod:`mrirecon.data.masks`)."""

    kind: str = "random"
    center_fractions: tuple[float, ...] = (0.08,)
    accelerations: tuple[float, ...] = (4.0,)

    def __post_init__(self) -> None:
        _choice("mask", "kind", self.kind, MASKS)
        self.spec()  # validates the pairs

    def spec(self) -> MaskSpec:
        return MaskSpec(self.kind, self.center_fractions, self.accelerations)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser (Adam by default; Kingma & Ba, ICLR 2015) and gradient clipping.

    ``momentum``/``nesterov`` apply to SGD, ``momentum``/``alpha`` to RMSprop;
    ``grad_clip`` is the max global gradient 2-norm (0 = no clipping).
    """

    name: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    alpha: float = 0.99
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        _choice("optim", "name", self.name, OPTIMIZERS)
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class SchedConfig:
    """Learning-rate schedule, stepped once per optimiser step.

    ``warmup_steps`` of linear warm-up from 0, then ``step`` (multiply by ``gamma``
    every ``step_epochs`` epochs), ``cosine`` (to ``min_lr_factor * lr`` at the end of
    training; Loshchilov & Hutter, ICLR 2017) or ``none`` (constant).
    """

    name: str = "none"
    warmup_steps: int = 0
    step_epochs: int = 40
    gamma: float = 0.1
    min_lr_factor: float = 0.0

    def __post_init__(self) -> None:
        _choice("sched", "name", self.name, SCHEDULES)
        if self.warmup_steps < 0 or self.step_epochs < 1:
            raise ValueError("sched.warmup_steps must be >= 0 and sched.step_epochs >= 1")


@dataclass(frozen=True)
class LossConfig:
    """Training loss: ``l1`` on normalised images, ``ssim`` (1 - SSIM on de-normalised
    images; Wang et al., IEEE TIP 2004) or ``mix`` = l1_weight * L1 + ssim_weight * (1 - SSIM).
    """

    name: str = "l1"
    l1_weight: float = 1.0
    ssim_weight: float = 1.0

    def __post_init__(self) -> None:
        _choice("loss", "name", self.name, LOSSES)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of fully sampled k-space before masking (training only).

    Each op fires with its probability: horizontal/vertical flips, a 90-degree rotation
    (square images only; non-square images get 180 degrees), an intensity scale drawn
    log-uniformly from ``scale_range`` and a global random phase.
    """

    enabled: bool = False
    hflip_p: float = 0.5
    vflip_p: float = 0.0
    rot90_p: float = 0.0
    scale_p: float = 0.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    phase_p: float = 0.0

    def __post_init__(self) -> None:
        for f in ("hflip_p", "vflip_p", "rot90_p", "scale_p", "phase_p"):
            if not 0.0 <= getattr(self, f) <= 1.0:
                raise ValueError(f"augment.{f} must be in [0, 1], got {getattr(self, f)}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"augment.scale_range must be 0 < lo <= hi, got {self.scale_range}")


@dataclass(frozen=True)
class RunConfig:
    """The loop: epochs, batch, seeding, precision, logging and validation cadence.

    ``batch_size`` is global (split over DDP ranks). ``amp`` ``auto`` is bf16 on CUDA and
    off on CPU; ``channels_last``/``compile`` are CUDA-only and ignored on CPU.
    """

    epochs: int = 10
    batch_size: int = 1
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    deterministic: bool = False
    val_every: int = 1
    log_every: int = 10
    num_log_images: int = 2
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        _choice("run", "device", self.device, DEVICES)
        _choice("run", "amp", self.amp, AMP_MODES)
        if self.epochs < 1 or self.batch_size < 1 or self.val_every < 1 or self.log_every < 1:
            raise ValueError("run.epochs, batch_size, val_every and log_every must be >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training config; each field is one YAML section."""

    data: DataConfig = field(default_factory=DataConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    model: UnetConfig = field(default_factory=UnetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    run: RunConfig = field(default_factory=RunConfig)


def _coerce(where: str, tp: Any, value: Any) -> Any:
    """Convert ``value`` to the annotated type ``tp`` or raise a one-line ValueError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(where, args[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            value = [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(where, args[0], v) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {list(value)}")
        return tuple(_coerce(where, a, v) for a, v in zip(args, value, strict=True))
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                return value.lower() in _TRUE
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}") from None
    raise ValueError(f"{where}: unsupported type {tp}")


def _reject_unknown(raw: dict[str, Any], cls: type) -> tuple[str, list[str]] | None:
    """(first unknown key, valid field names) if ``raw`` has a key ``cls`` lacks, else None."""
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(valid))
    return (unknown[0], valid) if unknown else None


def _section_from_dict(cls: type, name: str, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"section {name!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    bad = _reject_unknown(raw, cls)
    if bad is not None:
        raise ValueError(
            f"unknown key {name}.{bad[0]}; valid keys in {name!r}: {', '.join(bad[1])}"
        )
    kwargs = {k: _coerce(f"{name}.{k}", hints[k], v) for k, v in raw.items()}
    return cls(**kwargs)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from nested dicts (missing keys = defaults)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    hints = typing.get_type_hints(TrainConfig)
    bad = _reject_unknown(raw, TrainConfig)
    if bad is not None:
        raise ValueError(f"unknown config section {bad[0]!r}; valid sections: {', '.join(bad[1])}")
    return TrainConfig(**{k: _section_from_dict(hints[k], k, v) for k, v in raw.items()})


def config_to_dict(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dicts (tuples as lists), safe for YAML, JSON and ``torch.save``."""

    def plain(v: Any) -> Any:
        return [plain(x) for x in v] if isinstance(v, tuple | list) else v

    return {
        f.name: {k: plain(v) for k, v in dataclasses.asdict(getattr(cfg, f.name)).items()}
        for f in fields(cfg)
    }


def apply_overrides(raw: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a raw config dict."""
    out = {k: dict(v or {}) for k, v in (raw or {}).items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        out.setdefault(section, {})[name] = yaml.safe_load(value) if value.strip() else ""
    return out


def load_config(
    path: str | os.PathLike[str] | None, overrides: typing.Sequence[str] = ()
) -> TrainConfig:
    """Read a YAML config (None = all defaults) and apply ``--set`` overrides.

    Raises:
        ValueError: "<path>: reason" for unreadable YAML, unknown keys or bad values.
    """
    raw: Any = {}
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ValueError(f"{path}: no such config file") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a config must be a mapping of sections")
    try:
        return config_from_dict(apply_overrides(raw, overrides))
    except ValueError as exc:
        raise ValueError(f"{path or '--set'}: {exc}") from None


def save_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML (sections in schema order)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
