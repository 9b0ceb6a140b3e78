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
from mrirecon.errors import ConfigError

__all__ = [
    "AUTO",
    "AutoLambdaConfig",
    "CSConfig",
    "EspiritConfig",
    "SOLVERS",
    "DEFAULT_LAMS",
    "load_cs_config",
    "cs_config_from_dict",
    "cs_config_to_dict",
    "save_cs_config",
]

# The top-level key of a CS YAML file (other top-level keys are records, e.g. ``tuning``).
CS_SECTION = "cs"

# Relative lambda per acceleration (log-log interpolated in between, clamped outside).
# Tuned with `mrirecon cs tune` on the real TU Graz 4-coil scan; see configs/cs_default.yaml
# (re-tuned with the noise floor: 1e-3 at both before it).
DEFAULT_LAMS: tuple[tuple[float, float], ...] = ((4.0, 1.778e-3), (8.0, 2.054e-3))

# Solvers of mrirecon.cs.solvers (named here so that a config loads without torch).
SOLVERS = ("fista", "fista-restart")

# ``lam: auto``: choose lambda per scan by k-space cross-validation (mrirecon.cs.auto).
AUTO = "auto"

# Quarter-decade relative lambdas 3.2e-5 ... 3.2e-2 around the table's ~1e-3 (13; the
# benchmark's oracle grid and the design studies are on it).
AUTO_GRID: tuple[float, ...] = tuple(float(f"{10 ** (-4.5 + i / 4):.4g}") for i in range(13))
# The lambdas cross-validation solves: every second one, half-decade steps (7: one batched
# solve per fold on one slice). With all 4 quarter folds held out in turn this costs what
# 13 lambdas x 2 folds did and was closer to the SSIM oracle (docs/benchmarks.md).
AUTO_CV_GRID: tuple[float, ...] = AUTO_GRID[::2]


@dataclass(frozen=True)
class EspiritConfig:
    """ESPIRiT parameters (sigpy's defaults except ``crop``; rectangular calibration region).

    Attributes:
        kernel_width: calibration kernel size (kernel_width along both axes, clipped to
            half the calibration region along each axis).
        threshold: keep singular vectors with sigma > threshold * sigma_max.
        crop: zero the maps where the top eigenvalue is <= crop (0 = never). sigpy's default is
            0.95; the default here is 0 (maps everywhere) because zeroing the image
            outside the support costs SSIM against RSS targets, whose background holds
            noise (real TU Graz scan, 4x: oracle coil combination 0.934 at crop 0 vs 0.756
            at 0.95; CS 0.793 vs 0.751).
        max_calib_rows: use at most this many central readout rows (0 = all rows). The
            singular-value threshold is relative to the largest, while the noise singular
            values grow with the number of rows: on a noisy scan with 384 readout rows
            (2x oversampled) every row let noise into the signal subspace and the maps
            came out as noise (oracle coil combination SSIM 0.57 vs 0.84, CS 0.10 vs
            0.61 at 4x). 24-96 rows all fix it; 64 scored best over 16 design cases
            (docs/benchmarks.md, CS section).
        downsample: evaluate the eigenproblem on a grid this many times coarser and
            interpolate bilinearly (1 = exact, on every pixel; 0 = automatic, a grid of
            about 128 x 128 points, since the maps are smooth).
    """

    kernel_width: int = 6
    threshold: float = 0.02
    crop: float = 0.0
    max_calib_rows: int = 64
    downsample: int = 0

    def __post_init__(self) -> None:
        if self.kernel_width < 2:
            raise ValueError(f"espirit kernel_width must be >= 2, got {self.kernel_width}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"espirit threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 <= self.crop < 1.0:
            raise ValueError(f"espirit crop must be in [0, 1), got {self.crop}")
        if self.max_calib_rows < 0 or self.downsample < 0:
            raise ValueError("espirit max_calib_rows must be >= 0 and downsample >= 0")


@dataclass(frozen=True)
class AutoLambdaConfig:
    """How ``lam: auto`` chooses lambda per scan (k-space cross-validation).

    Attributes:
        grid: relative lambdas cross-validated (solved as one batch).
        folds: held-out subsets tried (each a disjoint ``holdout`` share of the acquired
            columns outside the ACS block).
        combine: how the folds decide: "median" (the median over folds of each fold's
            least-error log lambda, robust to one fold's noisy minimum; the default since
            the twenty-second session, docs/benchmarks.md) or "sum" (the grid lambda of
            least error summed over folds, the rule before it).
        holdout: share of those columns held out per fold.
        slices: central slices of a volume cross-validated (one lambda per volume).
        iterations: solver iterations of the cross-validation solves (None = the
            reconstruction's own; fewer measured worse: unconverged small-lambda
            solutions predict held-out columns badly, which pushes the choice up).
        shrink: pull of the choice towards the per-acceleration table, in log lambda
            (0 = the grid lambda of least held-out error, 1 = the table's); 0.5 measured
            best (docs/benchmarks.md).
        weight_power: a held-out column's error is weighted by its distance from the
            k-space centre to this power (0 = unweighted; energy falls off with
            frequency, so the innermost held-out columns dominate an unweighted sum).
        min_gain: on a single-coil scan, the cross-validation is trusted when its least
            held-out error is at least this share below that of the grid's smallest
            lambda. Below it no lambda predicts the held-out columns measurably better
            (at 8x nearly always), and the choice is ``prior`` instead. Multi-coil scans
            always keep the cross-validated choice.
        prior: (a, b): the lambda of an uninformative cross-validation,
            ``exp(a + b * background)``, with ``background`` the share of the ACS
            block's low-resolution image below 5% of its maximum (sparser images want a
            stronger weight); fitted on single-coil design scans (docs/benchmarks.md),
            clipped to ``grid``.
    """

    grid: tuple[float, ...] = AUTO_CV_GRID
    folds: int = 4
    combine: str = "median"
    holdout: float = 0.25
    slices: int = 1
    iterations: int | None = None
    shrink: float = 0.5
    weight_power: float = 0.5
    min_gain: float = 0.01
    prior: tuple[float, float] = (-9.586, 5.011)

    def __post_init__(self) -> None:
        grid = tuple(sorted(float(v) for v in self.grid))
        if not grid or not all(v > 0 and math.isfinite(v) for v in grid):
            raise ConfigError(f"auto.grid must hold lambdas > 0, got {self.grid}")
        object.__setattr__(self, "grid", grid)
        if not 0 < self.holdout <= 0.5:
            raise ConfigError(f"auto.holdout must be in (0, 0.5], got {self.holdout}")
        if not 1 <= self.folds <= round(1 / self.holdout):
            raise ConfigError(
                f"auto.folds must be in 1..{round(1 / self.holdout)} (1 / holdout), got {self.folds}"
            )
        if self.combine not in ("median", "sum"):
            raise ConfigError(f"auto.combine must be 'median' or 'sum', got {self.combine!r}")
        if self.slices < 1:
            raise ConfigError(f"auto.slices must be >= 1, got {self.slices}")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"auto.iterations must be >= 1 (or null), got {self.iterations}")
        if not 0 <= self.shrink <= 1:
            raise ConfigError(f"auto.shrink must be in [0, 1], got {self.shrink}")
        if not 0 <= self.weight_power <= 4:
            raise ConfigError(f"auto.weight_power must be in [0, 4], got {self.weight_power}")
        if not 0 <= self.min_gain < 1:
            raise ConfigError(f"auto.min_gain must be in [0, 1), got {self.min_gain}")
        prior = tuple(float(v) for v in self.prior)
        if len(prior) != 2 or not all(math.isfinite(v) for v in prior):
            raise ConfigError(f"auto.prior must be two finite numbers (a, b), got {self.prior}")
        object.__setattr__(self, "prior", prior)


@dataclass(frozen=True)
class CSConfig:
    """How to run the l1-wavelet CS reconstruction.

    Attributes:
        wavelet: orthonormal wavelet name (:data:`mrirecon.cs.wavelet.WAVELETS`).
        levels: wavelet decomposition levels (the image is zero-padded to a multiple
            of ``2**levels`` where needed).
        iterations: maximum solver iterations.
        tol: stop early when every slice's relative change is below tol (0 = never).
        lam: relative l1-wavelet weight: a number (fixed), "auto" (chosen per scan by
            k-space cross-validation, :mod:`mrirecon.cs.auto`) or None (per acceleration
            from ``lams``).
        lams: ((acceleration, lam), ...) defaults, interpolated in log-log (also the
            fallback of "auto" and what it is pulled towards).
        auto: how "auto" cross-validates.
        tv: relative isotropic TV weight (0 = off; > 0 switches to the Condat-Vu solver).
        solver: "fista" or "fista-restart" (adaptive momentum restart).
        power_iters: power iterations for the Lipschitz constant L (the step is 1/L with
            L = min(1.02 x estimate, max_px sum_c |S_c|^2), the latter an upper bound).
        espirit: coil-sensitivity estimation parameters (multi-coil only).
        batch_size: slices reconstructed together.
        seed: seed of the power iteration's random start vector.
        noise_floor: raise the output magnitude to at least the mean magnitude of the
            target's pure noise, estimated from the scan's k-space where it holds only
            noise (:mod:`mrirecon.noise_floor`): the background level of a noisy RSS or ESC
            target, which soft-thresholding removes (False = the plain ``|x|``).
    """

    wavelet: str = "db4"
    levels: int = 4
    iterations: int = 100
    tol: float = 0.0
    # str first: the config loader coerces to the first type, and "auto" is not a float.
    lam: str | float | None = AUTO
    lams: tuple[tuple[float, float], ...] = DEFAULT_LAMS
    auto: AutoLambdaConfig = field(default_factory=AutoLambdaConfig)
    tv: float = 0.0
    solver: str = "fista"
    power_iters: int = 10
    espirit: EspiritConfig = field(default_factory=EspiritConfig)
    batch_size: int = 8
    seed: int = 0
    noise_floor: bool = True

    def __post_init__(self) -> None:
        from mrirecon.cs.wavelet import WAVELETS  # the filter tables live with torch code

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
        object.__setattr__(self, "lam", _parse_lam(self.lam))
        if not (self.tv >= 0 and math.isfinite(self.tv)):
            raise ConfigError(f"tv weight must be >= 0, got {self.tv}")
        lams = tuple(sorted((float(a), float(v)) for a, v in self.lams))
        finite = all(math.isfinite(a) and math.isfinite(v) for a, v in lams)
        if not lams or not finite or any(a <= 0 or v <= 0 for a, v in lams):
            raise ConfigError(
                f"lams must be non-empty (acceleration > 0, lambda > 0), got {self.lams}"
            )
        object.__setattr__(self, "lams", lams)

    @property
    def auto_lambda(self) -> bool:
        """True when lambda is chosen per scan (``lam: auto``)."""
        return self.lam == AUTO

    def lam_for(self, acceleration: float) -> float:
        """The relative lambda for an acceleration: ``lam`` if a number, else the table's
        (interpolated; for "auto" the value cross-validation falls back to)."""
        if isinstance(self.lam, float):
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


def _parse_lam(value: str | float | None) -> str | float | None:
    """``lam`` as "auto", None or a float > 0 (YAML and --set give numbers as text)."""
    if value is None or value == AUTO:
        return value
    try:
        lam = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"lam: expected a number > 0, '{AUTO}' or null (per-acceleration lams), got {value!r}"
        ) from None
    if not math.isfinite(lam):
        raise ConfigError(f"lam: expected a finite number (lambda must be > 0), got {value}")
    if lam <= 0:
        raise ConfigError(f"lam: lambda must be > 0, got {value}")
    return lam


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
