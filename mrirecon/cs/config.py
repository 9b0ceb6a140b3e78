"""Typed configuration of the CS baseline and its YAML form.

Regularisation weights are relative: the solver normalises each slice by the maximum
magnitude of its zero-filled coil-combined image ``|A^H y|``, so ``lam`` (and ``tv``)
are fractions of that maximum and hold across intensity scales and scanners.

Files are read by the package's one config mechanism (:mod:`mrirecon.config`): the
options sit under a top-level ``cs:`` key (or at the top level), ``lams`` is written as
a mapping ``{acceleration: lambda}``, and ``--set``-style overrides use dotted keys
(``iterations=20``, ``espirit.kernel_width=6``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mrirecon.config import load_typed, to_plain, typed_from_dict, write_yaml
from mrirecon.cs.espirit import EspiritConfig
from mrirecon.cs.solvers import SOLVERS
from mrirecon.cs.wavelet import WAVELETS
from mrirecon.errors import ConfigError

__all__ = [
    "CSConfig",
    "DEFAULT_LAMS",
    "load_cs_config",
    "cs_config_from_dict",
    "cs_config_to_dict",
    "save_cs_config",
]

# The top-level key of a CS YAML file (other top-level keys are records, e.g. ``tuning``).
CS_SECTION = "cs"

# Relative lambda per acceleration (log-log interpolated in between, clamped outside).
# Tuned with `mrirecon cs tune` on the real TU Graz 4-coil scan; see configs/cs_default.yaml.
DEFAULT_LAMS: tuple[tuple[float, float], ...] = ((4.0, 1e-3), (8.0, 1e-3))


@dataclass(frozen=True)
class CSConfig:
    """How to run the l1-wavelet CS reconstruction.

    Attributes:
        wavelet: orthonormal wavelet name (:data:`mrirecon.cs.wavelet.WAVELETS`).
        levels: wavelet decomposition levels (the image is zero-padded to a multiple
            of ``2**levels`` where needed).
        iterations: maximum solver iterations.
        tol: stop early when every slice's relative change is below tol (0 = never).
        lam: relative l1-wavelet weight; None = per-acceleration default from ``lams``.
        lams: ((acceleration, lam), ...) defaults, interpolated in log-log.
        tv: relative isotropic TV weight (0 = off; > 0 switches to the Condat-Vu solver).
        solver: "fista" or "fista-restart" (adaptive momentum restart).
        power_iters: power iterations for the Lipschitz constant L (the step is 1/L with
            L = min(1.02 x estimate, max_px sum_c |S_c|^2), the latter an upper bound).
        espirit: coil-sensitivity estimation parameters (multi-coil only).
        batch_size: slices reconstructed together.
        seed: seed of the power iteration's random start vector.
    """

    wavelet: str = "db4"
    levels: int = 4
    iterations: int = 100
    tol: float = 0.0
    lam: float | None = None
    lams: tuple[tuple[float, float], ...] = DEFAULT_LAMS
    tv: float = 0.0
    solver: str = "fista"
    power_iters: int = 10
    espirit: EspiritConfig = field(default_factory=EspiritConfig)
    batch_size: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.wavelet not in WAVELETS:
            raise ConfigError(
                f"wavelet: unknown wavelet {self.wavelet!r}; choose from {sorted(WAVELETS)}"
            )
        if self.solver not in SOLVERS:
            raise ConfigError(
                f"solver: unknown solver {self.solver!r}; choose from {list(SOLVERS)}"
            )
        for name in ("levels", "iterations", "power_iters", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if not (self.tol >= 0 and math.isfinite(self.tol)):
            raise ConfigError(f"tol must be >= 0, got {self.tol}")
        if self.lam is not None and not (self.lam > 0 and math.isfinite(self.lam)):
            raise ConfigError(f"lam: lambda must be > 0, got {self.lam}")
        if not (self.tv >= 0 and math.isfinite(self.tv)):
            raise ConfigError(f"tv weight must be >= 0, got {self.tv}")
        lams = tuple(sorted((float(a), float(v)) for a, v in self.lams))
        finite = all(math.isfinite(a) and math.isfinite(v) for a, v in lams)
        if not lams or not finite or any(a <= 0 or v <= 0 for a, v in lams):
            raise ConfigError(
                f"lams must be non-empty (acceleration > 0, lambda > 0), got {self.lams}"
            )
        object.__setattr__(self, "lams", lams)

    def lam_for(self, acceleration: float) -> float:
        """The relative lambda for an acceleration: ``lam`` if set, else interpolated."""
        if self.lam is not None:
            return self.lam
        if not (acceleration > 0 and math.isfinite(acceleration)):
            raise ConfigError(f"acceleration must be > 0, got {acceleration}")
        if acceleration <= self.lams[0][0]:
            return self.lams[0][1]
        for (a0, v0), (a1, v1) in zip(self.lams, self.lams[1:], strict=False):
            if acceleration <= a1:  # a0 < acceleration: interpolate in log-log
                f = math.log(acceleration / a0) / math.log(a1 / a0)
                return math.exp(math.log(v0) + f * math.log(v1 / v0))
        return self.lams[-1][1]  # above the table: clamped

    def replace(self, **changes: Any) -> CSConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


def cs_config_to_dict(config: CSConfig) -> dict[str, Any]:
    """Plain, YAML-friendly dict of a config (``lams`` as ``{acceleration: lambda}``)."""
    d = to_plain(config)
    d["lams"] = {float(a): float(v) for a, v in config.lams}
    return d


def cs_config_from_dict(d: Mapping[str, Any] | None, source: str = "CS config") -> CSConfig:
    """Build a :class:`CSConfig` from a (YAML) mapping; unknown keys are errors.

    Raises:
        ConfigError: "<source>: reason" naming the key.
    """
    return typed_from_dict(CSConfig, d, source=source)


def load_cs_config(
    path: str | os.PathLike[str] | None, overrides: Sequence[str] = (), *, flag: str = "--set"
) -> CSConfig:
    """Read a CS config YAML (None = defaults) and apply ``key=value`` overrides.

    Args:
        path: a YAML file with the options under ``cs:`` (or at the top level), or None.
        overrides: e.g. ``["iterations=20", "espirit.kernel_width=6"]``.
        flag: the option name that carried the overrides, for error messages.

    Returns:
        the validated :class:`CSConfig`.

    Raises:
        ConfigError: one line naming the file or the override and the key.
    """
    return load_typed(CSConfig, path, overrides, flag=flag, section=CS_SECTION)


def save_cs_config(
    config: CSConfig, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
) -> None:
    """Atomically write a config as YAML under ``cs:`` (plus optional extra top-level keys)."""
    doc: dict[str, Any] = {CS_SECTION: cs_config_to_dict(config)}
    if extra:
        doc.update(extra)
    write_yaml(doc, path)
