"""Typed configuration of the CS baseline and its YAML form.

Regularisation weights are relative: the solver normalises each slice by the maximum
magnitude of its zero-filled coil-combined image ``|A^H y|``, so ``lam`` (and ``tv``)
are fractions of that maximum and hold across intensity scales and scanners.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from mrirecon.cs.espirit import EspiritConfig
from mrirecon.cs.solvers import SOLVERS
from mrirecon.cs.wavelet import WAVELETS

__all__ = ["CSConfig", "DEFAULT_LAMS", "load_config", "save_config", "config_from_dict"]

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
            raise ValueError(f"unknown wavelet {self.wavelet!r}; choose from {sorted(WAVELETS)}")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; choose from {list(SOLVERS)}")
        if self.levels < 1 or self.iterations < 1 or self.power_iters < 1 or self.batch_size < 1:
            raise ValueError("levels, iterations, power_iters and batch_size must be >= 1")
        if not (self.tol >= 0 and math.isfinite(self.tol)):
            raise ValueError(f"tol must be >= 0, got {self.tol}")
        if self.lam is not None and not (self.lam > 0 and math.isfinite(self.lam)):
            raise ValueError(f"lambda must be > 0, got {self.lam}")
        if not (self.tv >= 0 and math.isfinite(self.tv)):
            raise ValueError(f"tv weight must be >= 0, got {self.tv}")
        lams = tuple(sorted((float(a), float(v)) for a, v in self.lams))
        if not lams or any(a <= 0 or not (v > 0 and math.isfinite(v)) for a, v in lams):
            raise ValueError(
                f"lams must be non-empty (acceleration > 0, lambda > 0), got {self.lams}"
            )
        object.__setattr__(self, "lams", lams)

    def lam_for(self, acceleration: float) -> float:
        """The relative lambda for an acceleration: ``lam`` if set, else interpolated."""
        if self.lam is not None:
            return self.lam
        if not acceleration > 0:
            raise ValueError(f"acceleration must be > 0, got {acceleration}")
        accs = [a for a, _ in self.lams]
        vals = [v for _, v in self.lams]
        if acceleration <= accs[0]:
            return vals[0]
        if acceleration >= accs[-1]:
            return vals[-1]
        for (a0, v0), (a1, v1) in zip(self.lams, self.lams[1:], strict=False):
            if a0 <= acceleration <= a1:
                f = math.log(acceleration / a0) / math.log(a1 / a0)
                return math.exp(math.log(v0) + f * math.log(v1 / v0))
        raise AssertionError("unreachable")  # pragma: no cover

    def replace(self, **changes: Any) -> CSConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


def config_to_dict(config: CSConfig) -> dict[str, Any]:
    """Plain, YAML-friendly dict of a config."""
    d = asdict(config)
    d["lams"] = {float(a): float(v) for a, v in config.lams}
    return d


def config_from_dict(d: dict[str, Any], where: str = "config") -> CSConfig:
    """Build a :class:`CSConfig` from a (YAML) dict; unknown keys are errors."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(CSConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: unknown CS option(s) {unknown}; known: {sorted(known)}")
    kw = dict(d)
    if "espirit" in kw:
        esp = kw["espirit"] or {}
        eknown = {f.name for f in fields(EspiritConfig)}
        bad = sorted(set(esp) - eknown)
        if bad:
            raise ValueError(f"{where}: unknown espirit option(s) {bad}; known: {sorted(eknown)}")
        kw["espirit"] = EspiritConfig(**esp)
    if "lams" in kw:
        lams = kw["lams"]
        if isinstance(lams, dict):
            lams = list(lams.items())
        kw["lams"] = tuple((float(a), float(v)) for a, v in lams)
    try:
        return CSConfig(**kw)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> CSConfig:
    """Read a CS config YAML (top-level key ``cs``, or the options at top level)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if isinstance(data, dict) and "cs" in data:
        data = data["cs"]
    try:
        return config_from_dict(data or {}, where=str(path))
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def save_config(
    config: CSConfig, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> None:
    """Write a config as YAML under ``cs:`` (plus optional extra top-level keys)."""
    doc: dict[str, Any] = {"cs": config_to_dict(config)}
    if extra:
        doc.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
