"""What every reconstruction method shares: the volume it receives and the two protocols.

A method is described by a :class:`MethodSpec`, a small frozen dataclass that names the
method, holds its typed options (a checkpoint, a CS config, ...), reports the settings
that identify its outputs, and builds the :class:`ReconMethod` that does the work. The
batch loop (:mod:`mrirecon.reconstruct`), ``compare`` and the report only ever talk to
these two protocols, so a new method is one spec and one module in this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

if TYPE_CHECKING:  # annotations only: naming a method (--help) must not load torch
    import numpy as np
    import torch

    from mrirecon.data.dataset import VolumeInfo
    from mrirecon.data.masks import Mask

__all__ = ["Volume", "ReconMethod", "MethodSpec", "MethodOptions", "TIER_BASELINE"]

# Tiers order methods in reports and decide which pairs are compared:
# each method is compared with the methods of the highest lower tier present.
TIER_BASELINE, TIER_CLASSICAL, TIER_LEARNED = 0, 1, 2


class Volume(NamedTuple):
    """One volume ready to reconstruct.

    Attributes:
        info: the file's description.
        kspace: complex64 tensor (S, C, H, W), already masked.
        mask: bool tensor (W,), the columns used.
        crop: (h, w) output size.
        mask_info: how the mask was made.
    """

    info: VolumeInfo
    kspace: torch.Tensor
    mask: torch.Tensor
    crop: tuple[int, int]
    mask_info: Mask


class MethodOptions(NamedTuple):
    """The method options a command line can give; each spec takes what it needs.

    Attributes:
        checkpoint: a training checkpoint or run folder (learned methods).
        cs_config: a CS YAML config (the CS method).
        cs_overrides: ``KEY=VALUE`` CS settings that replace the config's.
        batch_size: slices per forward pass (learned methods).
        noise_floor: raise the output to the target's noise floor
            (:mod:`mrirecon.noise_floor`): True or False for every method but zero-filled
            (CS's ``noise_floor`` setting included); None = each method's default (CS: its
            config's, on by default; learned methods: off).
    """

    checkpoint: Path | None = None
    cs_config: Path | None = None
    cs_overrides: tuple[str, ...] = ()
    batch_size: int = 8
    noise_floor: bool | None = None


class ReconMethod(Protocol):
    """A built method: one masked volume in, (S, h, w) float32 magnitude out."""

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray: ...

    def provenance(self) -> dict[str, Any]:
        """Attributes describing the last reconstruction (stored in its output file)."""
        ...


class MethodSpec(Protocol):
    """A typed description of a method: its name, options and how to build it.

    Class attributes:
        kind: the ``--method`` name.
        label: display name in reports.
        tier: :data:`TIER_BASELINE`, classical (1) or learned (2) (report order and pairs).
        shown_attrs: provenance attributes the report shows for this method.
    """

    kind: ClassVar[str]
    label: ClassVar[str]
    tier: ClassVar[int]
    shown_attrs: ClassVar[tuple[str, ...]]

    @property
    def name(self) -> str:
        """This method's name: its kind, or ``KIND@TAG`` for one of several learned
        methods of one kind (output folder, ``method`` attribute, report column)."""
        ...

    @classmethod
    def from_options(cls, options: MethodOptions) -> MethodSpec:
        """The spec for command-line options; ConfigError if a needed one is missing."""
        ...

    def settings(self) -> dict[str, Any]:
        """JSON-able settings that identify this method's outputs (for reruns and reports)."""
        ...

    def build(self) -> ReconMethod:
        """Load what the method needs (weights, config) and return it ready to run."""
        ...
