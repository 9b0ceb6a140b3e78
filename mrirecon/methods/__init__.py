"""Reconstruction methods as typed specs: zero-filled, l1-wavelet CS, U-Net and E2E-VarNet.

Each method is one module here with a frozen ``*Spec`` dataclass (its name, display
label, report tier, typed options, the settings that identify its outputs) that builds
the callable doing the work (:class:`~mrirecon.methods.base.ReconMethod`). :data:`SPECS`
lists them in report order; the CLI, ``compare`` and the report look methods up here
and nowhere else, so adding a method means adding its module and one entry below.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mrirecon.errors import ConfigError
from mrirecon.methods.base import MethodOptions, MethodSpec, ReconMethod, Volume
from mrirecon.methods.cs import CSSpec
from mrirecon.methods.learned import CheckpointSpec, checkpoint_kind
from mrirecon.methods.unet import UnetSpec
from mrirecon.methods.varnet import VarNetSpec
from mrirecon.methods.zero_filled import ZeroFilledSpec

__all__ = [
    "SPECS",
    "MethodOptions",
    "MethodSpec",
    "ReconMethod",
    "Volume",
    "method_names",
    "spec_class",
    "make_spec",
    "specs_for",
    "checkpoint_kind",
    "method_label",
    "comparison_pairs",
    "baseline_method",
    "CSSpec",
    "UnetSpec",
    "VarNetSpec",
    "ZeroFilledSpec",
]

# Every method, in report order.
SPECS: tuple[type[MethodSpec], ...] = (ZeroFilledSpec, CSSpec, UnetSpec, VarNetSpec)


def method_names() -> list[str]:
    """The ``--method`` names, in report order."""
    return [s.name for s in SPECS]


def spec_class(name: str) -> type[MethodSpec]:
    """The spec class of a method name; ConfigError naming the choices if unknown."""
    for s in SPECS:
        if s.name == name:
            return s
    raise ConfigError(f"unknown method {name!r}; choose from {method_names()}")


def make_spec(name: str, options: MethodOptions | None = None) -> MethodSpec:
    """The spec of method ``name`` built from command-line options (None: no options)."""
    return spec_class(name).from_options(options or MethodOptions())


def method_label(name: str) -> str:
    """Display name of a method (the name itself for one this version does not know)."""
    return next((s.label for s in SPECS if s.name == name), name)


def _tier(name: str) -> int:
    return next((s.tier for s in SPECS if s.name == name), max(s.tier for s in SPECS) + 1)


def comparison_pairs(methods: Sequence[str]) -> list[tuple[str, str]]:
    """The paired comparisons a report makes: each method against every method of the
    highest lower tier present (U-Net vs CS and CS vs zero-filled; U-Net vs zero-filled
    when CS was not run).
    """
    pairs = []
    for a in sorted(methods, key=lambda m: -_tier(m)):
        below = [_tier(b) for b in methods if _tier(b) < _tier(a)]
        if below:
            pairs += [(a, b) for b in methods if _tier(b) == max(below)]
    return pairs


def baseline_method(methods: Sequence[str]) -> str | None:
    """The reference method among ``methods``: the first of the lowest tier, when that tier
    is the baseline tier (zero-filled), else None."""
    known = [m for m in methods if any(s.name == m for s in SPECS)]
    if not known:
        return None
    first = min(known, key=_tier)
    return first if _tier(first) == min(s.tier for s in SPECS) else None


def specs_for(
    names: Sequence[str] | None, options: MethodOptions, checkpoints: Sequence[Path] = ()
) -> tuple[MethodSpec, ...]:
    """The specs of a comparison: each learned method takes the next checkpoint in order.

    Args:
        names: methods in report order; None: zero-filled, CS and one learned method per
            checkpoint, of the kind its config holds (a U-Net when none is given).
        options: the other method options.
        checkpoints: learned methods' checkpoints, in the order of their methods.

    Raises:
        ConfigError: unknown methods, or checkpoints without a learned method.
    """
    if names is None:
        kinds = [checkpoint_kind(c) for c in checkpoints] or [UnetSpec.name]
        names = [ZeroFilledSpec.name, CSSpec.name, *kinds]
    left = list(checkpoints)
    specs = []
    for name in names:
        cls = spec_class(name)
        opts = options
        if issubclass(cls, CheckpointSpec):
            opts = options._replace(checkpoint=left.pop(0) if left else None)
        specs.append(cls.from_options(opts))
    if left:
        raise ConfigError(
            f"--checkpoint {left[0]}: more checkpoints than learned methods in --methods"
        )
    return tuple(specs)
