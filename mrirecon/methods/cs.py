"""The compressed-sensing method: l1-wavelet CS (Lustig, Donoho & Pauly, MRM 2007).

The solver, coil maps and lambda rule live in :mod:`mrirecon.cs`; this module adapts
them to the batch loop and records the lambda each output was made with. Only the typed
config is imported here; the solver (torch) loads when a volume is reconstructed, so
naming the method (``--help``) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mrirecon.config import parse_overrides
from mrirecon.cs.config import CSConfig, cs_config_to_dict, load_cs_config
from mrirecon.errors import ConfigError
from mrirecon.methods.base import TIER_CLASSICAL, MethodOptions, Volume

if TYPE_CHECKING:
    import numpy as np
    import torch

    from mrirecon.cs.auto import LambdaChoice

__all__ = ["CSSpec", "CSMethod"]


class CSMethod:
    """l1-wavelet CS with the settings of a :class:`CSSpec`."""

    def __init__(self, spec: CSSpec) -> None:
        self.spec = spec
        self._choice: LambdaChoice | None = None
        self._floor: float | None = None

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        from mrirecon.cs.volume import cs_reconstruct

        # A file's own mask has no nominal acceleration (0): the mask's own W / sampled is used.
        acc = volume.mask_info.acceleration or None
        res = cs_reconstruct(
            volume.kspace,
            volume.mask,
            volume.crop,
            self.spec.config,
            acceleration=acc,
            device=device,
            multicoil=volume.info.multicoil,
            name=volume.info.fname,
        )
        self._choice, self._floor = res.choice, res.floor
        return res.image.numpy()

    def provenance(self) -> dict[str, Any]:
        c, choice = self.spec.config, self._choice
        return {
            "cs_lambda": choice.lam if choice is not None else "",
            "cs_lambda_rule": _rule_text(c, choice),
            "cs_iterations": c.iterations,
            "cs_tol": c.tol,
            "cs_wavelet": c.wavelet,
            "cs_levels": c.levels,
            "cs_solver": c.solver,
            "cs_tv": c.tv,
            "cs_espirit": str(c.espirit),
            "cs_noise_floor": _floor_text(c, self._floor),
        }


def _floor_text(config: CSConfig, floor: float | None) -> str:
    """The noise floor the output was raised to, in words (mrirecon.noise_floor)."""
    if not config.noise_floor:
        return "off"
    return "on" if floor is None else f"{floor:.4g} (estimated from the k-space)"


def _rule_text(config: CSConfig, choice: LambdaChoice | None) -> str:
    """How the recorded lambda was chosen, in words (shown in the compare report)."""
    table = f"per-acceleration {list(config.lams)}"
    if choice is None or choice.rule == "fixed":
        return "fixed" if isinstance(config.lam, float) else table
    if choice.rule == "auto":
        a = config.auto
        return (
            f"auto: k-space cross-validation ({a.folds} x {a.holdout:g} held out, "
            f"{len(a.grid)} lambdas {a.grid[0]:g}..{a.grid[-1]:g}, {a.combine} of folds, "
            f"shrink {a.shrink:g})"
        )
    if choice.rule == "auto-prior":
        a, b = config.auto.prior
        return (
            f"auto: single-coil k-space cross-validation uninformative (gain < {config.auto.min_gain:g}); "
            f"background prior exp({a:g} + {b:g} x {choice.background:.3f})"
        )
    if choice.rule == "auto-fallback":
        return f"auto fell back to {table} (too few columns to hold out)"
    return table


@dataclass(frozen=True)
class CSSpec:
    """``--method cs [--cs-config FILE]``: l1-wavelet CS.

    Attributes:
        config: the resolved CS settings.
        source: the config file they came from ("" = defaults), for provenance.
    """

    config: CSConfig = field(default_factory=CSConfig)
    source: str = ""

    kind: ClassVar[str] = "cs"
    label: ClassVar[str] = "CS (l1-wavelet)"
    tier: ClassVar[int] = TIER_CLASSICAL
    shown_attrs: ClassVar[tuple[str, ...]] = (
        "cs_lambda",
        "cs_lambda_rule",
        "cs_iterations",
        "cs_tol",
        "cs_wavelet",
        "cs_levels",
        "cs_solver",
        "cs_tv",
        "cs_espirit",
        "cs_noise_floor",
    )

    @classmethod
    def from_options(cls, options: MethodOptions) -> CSSpec:
        config = load_cs_config(options.cs_config, options.cs_overrides, flag="--cs-set")
        source = "" if options.cs_config is None else str(Path(options.cs_config))
        if options.noise_floor is not None:
            overrides = parse_overrides(options.cs_overrides, flag="--cs-set")
            set_here = any(o.key == "noise_floor" for o in overrides)
            if set_here and config.noise_floor != options.noise_floor:
                flag = "--noise-floor" if options.noise_floor else "--no-noise-floor"
                raise ConfigError(
                    f"{flag} conflicts with --cs-set noise_floor={str(config.noise_floor).lower()}"
                )
            config = config.replace(noise_floor=options.noise_floor)
        return cls(config, source)

    @property
    def name(self) -> str:
        return self.kind

    def settings(self) -> dict[str, Any]:
        return {"cs": cs_config_to_dict(self.config)}

    def build(self) -> CSMethod:
        return CSMethod(self)
