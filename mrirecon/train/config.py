"""Typed training configuration: YAML files, ``--set section.key=value`` overrides.

A config is a :class:`TrainConfig` of frozen dataclass sections, read by the package's
one config mechanism (:mod:`mrirecon.config`): an unknown section or key is an error
that lists the valid ones, and every value is converted to its field's type (so
``lr: 1e-3``, which YAML reads as a string, is a float here). Every numeric field is
range-checked, so NaN, non-positive accelerations or a negative clip never train. The
resolved config is written to each run folder and stored in every checkpoint, so a run
can always be rebuilt from its own record.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mrirecon.config import load_typed, parse_overrides, to_plain, typed_from_dict, write_yaml
from mrirecon.data.masks import MASKS, MaskSpec
from mrirecon.errors import ConfigError
from mrirecon.models.unet import UnetConfig
from mrirecon.models.varnet import VarNetConfig
from mrirecon.synth.corpus import CorpusConfig

__all__ = [
    "DataConfig",
    "MaskConfig",
    "OptimConfig",
    "SchedConfig",
    "LossConfig",
    "AugmentConfig",
    "RunConfig",
    "TrainConfig",
    "load_train_config",
    "train_config_from_dict",
    "train_config_to_dict",
    "override_train_config",
    "save_train_config",
]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "step", "cosine")
LOSSES = ("l1", "ssim", "mix")
AMP_MODES = ("auto", "bf16", "fp16", "none")
DEVICES = ("auto", "cpu", "cuda")


def _choice(section: str, name: str, value: str, options: Iterable[str]) -> None:
    if value not in options:
        raise ConfigError(f"{section}.{name}: unknown {value!r}; choose from {sorted(options)}")


def _need(ok: bool, section: str, name: str, value: Any, want: str) -> None:
    """Raise a one-line ConfigError ``section.name must be <want>`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{section}.{name} must be {want}, got {value!r}")


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class DataConfig:
    """Where the slices come from and how they are loaded.

    ``val_fraction`` holds out that share of the training volumes (by sorted file name,
    deterministic) when neither ``--val-root`` nor ``train``/``val`` sub-folders exist.
    ``max_train_slices``/``max_val_volumes`` (0 = all) cap the data for quick runs.

    ``corpus_slices`` > 0 trains on that many slices per epoch streamed from the
    domain-randomised corpus (:mod:`mrirecon.synth.corpus`; drawn as ``corpus`` says, keyed
    by ``run.seed``, the epoch and the index, so a resumed run sees the same data) and on no
    file. The data folder then only validates: ``--val-root``, else ``--data-root`` (its
    ``val/`` sub-folder if it has one), else nothing. Streamed slices vary in size, so a
    batch of more than one slice per process needs a fixed ``corpus.matrix`` (low = high).
    """

    num_workers: int = 0
    val_fraction: float = 0.2
    max_train_slices: int = 0
    max_val_volumes: int = 0
    corpus_slices: int = 0
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    def __post_init__(self) -> None:
        v = self.val_fraction
        _need(_finite(v) and 0.0 <= v < 1.0, "data", "val_fraction", v, "in [0, 1)")
        for name in ("num_workers", "max_train_slices", "max_val_volumes", "corpus_slices"):
            _need(getattr(self, name) >= 0, "data", name, getattr(self, name), ">= 0")


@dataclass(frozen=True)
class MaskConfig:
    """Undersampling used for training and validation (see :mod:`mrirecon.data.masks`)."""

    kind: str = "random"
    center_fractions: tuple[float, ...] = (0.08,)
    accelerations: tuple[float, ...] = (4.0,)

    def __post_init__(self) -> None:
        _choice("mask", "kind", self.kind, MASKS)
        for cf in self.center_fractions:
            _need(_finite(cf) and 0 < cf < 1, "mask", "center_fractions", cf, "in (0, 1)")
        for acc in self.accelerations:
            _need(_finite(acc) and acc >= 1, "mask", "accelerations", acc, "finite and >= 1")
        n_cf, n_acc = len(self.center_fractions), len(self.accelerations)
        if n_cf != n_acc or not n_acc:
            raise ConfigError(
                "mask.center_fractions and mask.accelerations must be non-empty and of equal "
                f"length, got {list(self.center_fractions)} and {list(self.accelerations)}"
            )

    def spec(self) -> MaskSpec:
        """The :class:`MaskSpec` these settings describe."""
        return MaskSpec(self.kind, self.center_fractions, self.accelerations)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser (Adam by default; Kingma & Ba, ICLR 2015) and gradient clipping.

    ``momentum``/``nesterov`` apply to SGD, ``momentum``/``alpha`` to RMSprop;
    ``grad_clip`` is the max global gradient 2-norm (0 = no clipping). ``trainable``
    names the parameters to train by prefix (e.g. ``[output_gate, gate_rows]`` to
    fine-tune a VarNet's output heads); the rest are frozen. Empty: train everything.
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
    trainable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _choice("optim", "name", self.name, OPTIMIZERS)
        for prefix in self.trainable:
            _need(bool(prefix.strip()), "optim", "trainable", self.trainable, "non-empty names")
        _need(_finite(self.lr) and self.lr > 0, "optim", "lr", self.lr, "> 0")
        _need(_finite(self.eps) and self.eps > 0, "optim", "eps", self.eps, "> 0")
        for b in self.betas:
            _need(_finite(b) and 0 <= b < 1, "optim", "betas", self.betas, "in [0, 1)")
        for name in ("weight_decay", "momentum", "grad_clip"):
            v = getattr(self, name)
            _need(_finite(v) and v >= 0, "optim", name, v, ">= 0 (0 = off)")
        a = self.alpha
        _need(_finite(a) and 0 <= a <= 1, "optim", "alpha", a, "in [0, 1]")
        if self.name == "sgd" and self.nesterov and self.momentum <= 0:
            raise ConfigError("optim.nesterov needs optim.momentum > 0")


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
        _need(self.warmup_steps >= 0, "sched", "warmup_steps", self.warmup_steps, ">= 0")
        _need(self.step_epochs >= 1, "sched", "step_epochs", self.step_epochs, ">= 1")
        _need(_finite(self.gamma) and self.gamma > 0, "sched", "gamma", self.gamma, "> 0")
        m = self.min_lr_factor
        _need(_finite(m) and 0 <= m <= 1, "sched", "min_lr_factor", m, "in [0, 1]")


@dataclass(frozen=True)
class LossConfig:
    """Training loss: ``l1`` on normalised images, ``ssim`` (1 - SSIM on de-normalised
    images; Wang et al., IEEE TIP 2004) or ``mix`` = l1_weight * L1 + ssim_weight * (1 - SSIM),
    plus ``noharm_weight`` times the do-no-harm hinge, the mean over slices of
    max(0, SSIM(zero-filled) - SSIM(output)) (:func:`mrirecon.train.losses.noharm_hinge`;
    0 = off), from epoch ``noharm_start_epoch`` (0-based) on. Added from the first step,
    it keeps a network that starts at zero-filled there (docs/benchmarks.md, "Nineteenth
    session"), so a recipe adds it late.
    """

    name: str = "l1"
    l1_weight: float = 1.0
    ssim_weight: float = 1.0
    noharm_weight: float = 0.0
    noharm_start_epoch: int = 0

    def __post_init__(self) -> None:
        _choice("loss", "name", self.name, LOSSES)
        for name in ("l1_weight", "ssim_weight", "noharm_weight"):
            v = getattr(self, name)
            _need(_finite(v) and v >= 0, "loss", name, v, ">= 0")
        start = self.noharm_start_epoch
        _need(isinstance(start, int) and start >= 0, "loss", "noharm_start_epoch", start, ">= 0")
        if self.name == "mix" and self.l1_weight + self.ssim_weight <= 0:
            raise ConfigError("loss.l1_weight + loss.ssim_weight must be > 0 for loss.name=mix")


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
        for name in ("hflip_p", "vflip_p", "rot90_p", "scale_p", "phase_p"):
            v = getattr(self, name)
            _need(_finite(v) and 0.0 <= v <= 1.0, "augment", name, v, "in [0, 1]")
        lo, hi = self.scale_range
        ok = _finite(lo, hi) and 0 < lo <= hi
        _need(ok, "augment", "scale_range", self.scale_range, "finite with 0 < lo <= hi")


@dataclass(frozen=True)
class RunConfig:
    """The loop: epochs, batch, seeding, precision, logging and validation cadence.

    ``batch_size`` is global (split over DDP ranks). ``amp`` ``auto`` is bf16 on CUDA and
    off on CPU; ``channels_last``/``compile`` are CUDA-only and ignored on CPU.
    ``snapshot_every`` N > 0 also keeps the weights of every N-th epoch as
    ``epoch-EEE.pt`` (EEE the epoch index, as in metrics.jsonl; no optimiser state), so that
    epochs other than the best by validation SSIM can be judged later; 0 keeps none.
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
    snapshot_every: int = 0
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        _choice("run", "device", self.device, DEVICES)
        _choice("run", "amp", self.amp, AMP_MODES)
        for name in ("epochs", "batch_size", "val_every", "log_every"):
            _need(getattr(self, name) >= 1, "run", name, getattr(self, name), ">= 1")
        _need(self.seed >= 0, "run", "seed", self.seed, ">= 0")
        n = self.num_log_images
        _need(n >= 0, "run", "num_log_images", n, ">= 0")
        n = self.snapshot_every
        _need(n >= 0, "run", "snapshot_every", n, ">= 0 (0: no snapshots)")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training config; each field is one YAML section."""

    data: DataConfig = field(default_factory=DataConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    model: UnetConfig | VarNetConfig = field(default_factory=UnetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, UnetConfig):  # VarNetConfig checks its own ranges
            _check_model(self.model)


def _check_model(m: UnetConfig) -> None:
    """Ranges of the U-Net ``model`` section (its class lives with the network)."""
    for name in ("in_chans", "out_chans", "chans", "num_pool_layers", "num_groups"):
        _need(getattr(m, name) >= 1, "model", name, getattr(m, name), ">= 1")
    d, s = m.drop_prob, m.negative_slope
    _need(_finite(d) and 0 <= d < 1, "model", "drop_prob", d, "in [0, 1)")
    _need(_finite(s) and s >= 0, "model", "negative_slope", s, ">= 0")
    if m.norm == "group" and m.chans % m.num_groups:
        raise ConfigError(
            f"model.num_groups {m.num_groups} must divide model.chans {m.chans} for group norm"
        )


def train_config_from_dict(raw: Mapping[str, Any] | None, source: str = "config") -> TrainConfig:
    """Build a validated :class:`TrainConfig` from nested dicts (missing keys = defaults).

    Raises:
        ConfigError: "<source>: reason" naming the key.
    """
    return typed_from_dict(TrainConfig, raw, source=source)


def train_config_to_dict(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dicts (tuples as lists), safe for YAML, JSON and ``torch.save``."""
    return to_plain(cfg)


def load_train_config(
    path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()
) -> TrainConfig:
    """Read a YAML config (None = all defaults) and apply ``--set section.key=value`` overrides.

    Raises:
        ConfigError: one line naming the file or the ``--set`` argument and the key.
    """
    return load_typed(TrainConfig, path, overrides)


def override_train_config(
    cfg: TrainConfig, overrides: Sequence[str], source: str = "config"
) -> TrainConfig:
    """``cfg`` with ``--set`` overrides applied (e.g. a stored run config on resume)."""
    return typed_from_dict(
        TrainConfig, train_config_to_dict(cfg), source=source, overrides=parse_overrides(overrides)
    )


def save_train_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    """Atomically write the resolved config as YAML (sections in schema order)."""
    write_yaml(train_config_to_dict(cfg), path)
