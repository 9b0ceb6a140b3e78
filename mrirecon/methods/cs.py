"""The compressed-sensing method: l1-wavelet CS (Lustig, Donoho & Pauly, MRM 2007).

The solver, coil maps and lambda rule live in :mod:`mrirecon.cs`; this module adapts
them to the batch loop and records the lambda each output was made with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mrirecon.cs.config import CSConfig, cs_config_to_dict, load_cs_config
from mrirecon.methods.base import TIER_CLASSICAL, MethodOptions, Volume

__all__ = ["CSSpec", "CSMethod"]


class CSMethod:
    """l1-wavelet CS with the settings of a :class:`CSSpec`."""

    def __init__(self, spec: CSSpec) -> None:
        self.spec = spec
        self._lam: float | None = None

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        from mrirecon.cs.recon import cs_reconstruct, resolve_lambda

        # A file's own mask has no nominal acceleration (0): the mask's own W / sampled is used.
        acc = volume.mask_info.acceleration or None
        config = self.spec.config
        self._lam = resolve_lambda(config, volume.mask, acc)
        out = cs_reconstruct(
            volume.kspace,
            volume.mask,
            volume.crop,
            config,
            acceleration=acc,
            device=device,
            multicoil=volume.info.multicoil,
        )
        return out.numpy().astype(np.float32, copy=False)

    def provenance(self) -> dict[str, Any]:
        c = self.spec.config
        return {
            "cs_lambda": self._lam if self._lam is not None else "",
            "cs_lambda_rule": "fixed" if c.lam is not None else f"per-acceleration {list(c.lams)}",
            "cs_iterations": c.iterations,
            "cs_tol": c.tol,
            "cs_wavelet": c.wavelet,
            "cs_levels": c.levels,
            "cs_solver": c.solver,
            "cs_tv": c.tv,
            "cs_espirit": str(c.espirit),
        }


@dataclass(frozen=True)
class CSSpec:
    """``--method cs [--cs-config FILE]``: l1-wavelet CS.

    Attributes:
        config: the resolved CS settings.
        source: the config file they came from ("" = defaults), for provenance.
    """

    config: CSConfig = field(default_factory=CSConfig)
    source: str = ""

    name: ClassVar[str] = "cs"
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
    )

    @classmethod
    def from_options(cls, options: MethodOptions) -> CSSpec:
        config = load_cs_config(options.cs_config, options.cs_overrides, flag="--cs-set")
        source = "" if options.cs_config is None else str(Path(options.cs_config))
        return cls(config, source)

    def settings(self) -> dict[str, Any]:
        return {"cs": cs_config_to_dict(self.config)}

    def build(self) -> CSMethod:
        return CSMethod(self)
