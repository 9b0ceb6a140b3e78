"""Reconstruction methods as typed specs: zero-filled, l1-wavelet CS, U-Net and E2E-VarNet.

Each method is one module here with a frozen ``*Spec`` dataclass (its name, display
label, report tier, typed options, the settings that identify its outputs) that builds
the callable doing the work (:class:`~mrirecon.methods.base.ReconMethod`). :data:`METHODS`
lists them in report order (a spec's module loads on first use, so listing names stays
light); the CLI, ``compare`` and the report look methods up here and nowhere else, so
adding a method means adding its module and one entry below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrirecon.errors import ConfigError
from mrirecon.methods.base import MethodOptions, MethodSpec, ReconMethod, Volume

if TYPE_CHECKING:
    from mrirecon.methods.cs import CSSpec
    from mrirecon.methods.learned import checkpoint_kind
    from mrirecon.methods.unet import UnetSpec
    from mrirecon.methods.varnet import VarNetSpec
    from mrirecon.methods.zero_filled import ZeroFilledSpec

__all__ = [
    "METHODS",
    "SPECS",
    "specs",
    "MethodOptions",
    "MethodSpec",
    "ReconMethod",
    "Volume",
    "method_names",
    "spec_class",
    "make_spec",
    "with_noise_floor",
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

# Every method, in report order: (kind, module, spec class). The kinds are spelled here
# so that the CLI lists and checks them without importing a method (torch, the models):
# a spec's module loads on first use, and its class's ``kind`` must match
# (tests/test_startup.py checks).
METHODS: tuple[tuple[str, str, str], ...] = (
    ("zero-filled", "mrirecon.methods.zero_filled", "ZeroFilledSpec"),
    ("cs", "mrirecon.methods.cs", "CSSpec"),
    ("unet", "mrirecon.methods.unet", "UnetSpec"),
    ("varnet", "mrirecon.methods.varnet", "VarNetSpec"),
)

# Names this package gives on first use (PEP 562), from the module that defines them.
_LAZY: dict[str, str] = {
    **{cls: module for _, module, cls in METHODS},
    "CheckpointSpec": "mrirecon.methods.learned",
    "checkpoint_kind": "mrirecon.methods.learned",
}


def __getattr__(name: str) -> Any:
    if name == "SPECS":
        return specs()
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def specs() -> tuple[type[MethodSpec], ...]:
    """Every spec class, in report order (imports every method)."""
    return tuple(getattr(import_module(module), cls) for _, module, cls in METHODS)


def method_names() -> list[str]:
    """The ``--method`` names, in report order (imports no method)."""
    return [kind for kind, _, _ in METHODS]


def spec_class(name: str) -> type[MethodSpec]:
    """The spec class of a method name (``KIND`` or ``KIND@TAG``); ConfigError if unknown."""
    kind = name.split("@", 1)[0]
    for k, module, cls in METHODS:
        if k == kind:
            return getattr(import_module(module), cls)
    raise ConfigError(f"unknown method {name!r}; choose from {method_names()}")


def make_spec(name: str, options: MethodOptions | None = None) -> MethodSpec:
    """The spec of method ``name`` built from command-line options (None: no options)."""
    return spec_class(name).from_options(options or MethodOptions())


def with_noise_floor(specs: Sequence[MethodSpec], on: bool) -> tuple[MethodSpec, ...]:
    """The same methods with the target's noise floor (:mod:`mrirecon.noise_floor`) on or off
    for every one of them but zero-filled, so that a comparison is like for like.

    CS takes it as its ``noise_floor`` setting, a learned method as its ``noise_floor``
    option; zero-filled stays fastMRI's baseline (``|IFFT|`` / RSS, no floor).
    """
    from mrirecon.methods.cs import CSSpec
    from mrirecon.methods.learned import CheckpointSpec

    out: list[MethodSpec] = []
    for spec in specs:
        if isinstance(spec, CSSpec):
            spec = replace(spec, config=spec.config.replace(noise_floor=on))
        elif isinstance(spec, CheckpointSpec):
            spec = replace(spec, noise_floor=on)
        out.append(spec)
    return tuple(out)


def method_label(name: str) -> str:
    """Display name of a method, ``Label (tag)`` for ``KIND@TAG`` (the name itself for a
    method this version does not know)."""
    kind, _, tag = name.partition("@")
    label = next((s.label for s in specs() if s.kind == kind), kind)
    return f"{label} ({tag})" if tag else label


def _tier(name: str) -> int:
    kind = name.split("@", 1)[0]
    return next((s.tier for s in specs() if s.kind == kind), max(s.tier for s in specs()) + 1)


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
    known = [m for m in methods if any(s.kind == m.split("@", 1)[0] for s in specs())]
    if not known:
        return None
    first = min(known, key=_tier)
    return first if _tier(first) == min(s.tier for s in specs()) else None


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
    from mrirecon.methods.learned import CheckpointSpec, checkpoint_kind

    if names is None:
        kinds = [checkpoint_kind(c) for c in checkpoints] or ["unet"]
        names = ["zero-filled", "cs", *kinds]
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
    return _distinct(specs)


def _distinct(specs: Sequence[MethodSpec]) -> tuple[MethodSpec, ...]:
    """Tag learned methods of one kind by their checkpoints, so every name is distinct."""
    from mrirecon.methods.learned import CheckpointSpec, checkpoint_tag

    kinds = [s.kind for s in specs]
    out = []
    for s in specs:
        if isinstance(s, CheckpointSpec) and kinds.count(s.kind) > 1 and not s.tag:
            s = replace(s, tag=checkpoint_tag(s.checkpoint))
        out.append(s)
    names = [s.name for s in out]
    for i, s in enumerate(out):  # same tag twice: number them
        if names.count(s.name) > 1 and isinstance(s, CheckpointSpec):
            out[i] = replace(s, tag=f"{s.tag or 'model'}-{names[: i + 1].count(s.name)}")
    return tuple(out)
