"""Column undersampling masks as pure functions of (width, rng), plus seeding rules.

Every mask keeps a fully sampled centre of ``num_low = round(W * center_fraction)``
columns starting at ``(W - num_low + 1) // 2`` (fastMRI's convention) and samples the
rest of the phase-encode columns according to its kind:

- ``random``: each other column kept independently with probability
  ``(W / acc - num_low) / (W - num_low)``. Draws from the RNG exactly as
  ``fastmri.data.subsample.RandomMaskFunc`` does, so a fastMRI-seeded mask is
  identical bit for bit.
- ``equispaced``: truly equispaced columns every ``acc`` columns from a random offset
  (not fastMRI's rounded spacing, see fastMRI issue #54).
- ``equispaced_fraction``: spacing adjusted so that centre plus equispaced columns
  reach ``W / acc`` in total (fastMRI's ``EquispacedMaskFractionFunc`` rule).

Randomness is explicit: each function takes a ``np.random.RandomState``. Evaluation
masks use :func:`eval_rng` (seed = ``tuple(map(ord, fname))``, fastMRI's validation
seeding); training masks use :func:`train_rng` (a fresh, reproducible stream per
sample).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "MASKS",
    "Mask",
    "MaskSpec",
    "default_center_fraction",
    "pair_center_fractions",
    "center_mask",
    "eval_rng",
    "train_rng",
    "seeded_file_rng",
    "random_mask",
    "equispaced_mask",
    "equispaced_fraction_mask",
]


class Mask(NamedTuple):
    """A sampled column mask and how it was made.

    Attributes:
        mask: bool array (W,), True where a column is acquired.
        center_fraction: the centre fraction used.
        acceleration: the nominal acceleration used.
        num_low: number of fully sampled centre columns.
    """

    mask: np.ndarray
    center_fraction: float
    acceleration: float
    num_low: int


def _num_low(width: int, center_fraction: float, acceleration: float) -> int:
    if width < 2:
        raise ValueError(f"mask width must be at least 2, got {width}")
    if not 0.0 < center_fraction < 1.0:
        raise ValueError(f"center fraction must be in (0, 1), got {center_fraction}")
    if acceleration < 1.0:
        raise ValueError(f"acceleration must be >= 1, got {acceleration}")
    num_low = round(width * center_fraction)
    if num_low < 1:
        raise ValueError(
            f"center fraction {center_fraction} keeps no centre column of width {width}"
        )
    if num_low > width / acceleration:
        raise ValueError(
            f"center fraction {center_fraction} ({num_low} columns) exceeds the "
            f"{width / acceleration:.1f} columns that acceleration {acceleration} allows "
            f"for width {width}"
        )
    return num_low


def center_mask(width: int, num_low: int) -> np.ndarray:
    """The fully sampled centre: ``num_low`` columns from ``(W - num_low + 1) // 2``."""
    mask = np.zeros(width, dtype=bool)
    start = (width - num_low + 1) // 2
    mask[start : start + num_low] = True
    return mask


def random_mask(
    width: int, center_fraction: float, acceleration: float, rng: np.random.RandomState
) -> np.ndarray:
    """Random column mask (fastMRI ``RandomMaskFunc`` semantics and RNG draws).

    Args:
        width: number of phase-encode columns W.
        center_fraction: fraction of fully sampled centre columns.
        acceleration: nominal acceleration; met on average only.
        rng: the random state to draw from.

    Returns:
        bool array (W,).
    """
    num_low = _num_low(width, center_fraction, acceleration)
    prob = (width / acceleration - num_low) / (width - num_low)
    outer = rng.uniform(size=width) < prob
    return center_mask(width, num_low) | outer


def equispaced_mask(
    width: int, center_fraction: float, acceleration: float, rng: np.random.RandomState
) -> np.ndarray:
    """Truly equispaced mask: every ``acceleration``-th column from a random offset.

    The acceleration must be an integer so that the spacing is exact.

    Returns:
        bool array (W,).
    """
    num_low = _num_low(width, center_fraction, acceleration)
    step = int(round(acceleration))
    if abs(step - acceleration) > 1e-9:
        raise ValueError(f"equispaced masks need an integer acceleration, got {acceleration}")
    offset = int(rng.randint(0, step))
    mask = center_mask(width, num_low)
    mask[offset::step] = True
    return mask


def equispaced_fraction_mask(
    width: int, center_fraction: float, acceleration: float, rng: np.random.RandomState
) -> np.ndarray:
    """Equispaced mask whose spacing makes the total sampled fraction ``1 / acceleration``.

    The outer spacing is ``acc * (num_low - W) / (num_low * acc - W)``, positions rounded.

    Returns:
        bool array (W,).
    """
    num_low = _num_low(width, center_fraction, acceleration)
    if num_low * acceleration >= width:
        # The centre alone already reaches the sampling budget.
        return center_mask(width, num_low)
    spacing = acceleration * (num_low - width) / (num_low * acceleration - width)
    offset = int(rng.randint(0, max(1, round(spacing))))
    cols = np.around(np.arange(offset, width - 1, spacing)).astype(np.int64)
    mask = center_mask(width, num_low)
    mask[cols[cols < width]] = True
    return mask


MaskFn = Callable[[int, float, float, np.random.RandomState], np.ndarray]

MASKS: dict[str, MaskFn] = {
    "random": random_mask,
    "equispaced": equispaced_mask,
    "equispaced_fraction": equispaced_fraction_mask,
}


@dataclass(frozen=True)
class MaskSpec:
    """Which masks to draw: a kind and one or more (centre fraction, acceleration) pairs.

    One pair is chosen per call, uniformly, from the same RNG that then draws the mask
    (fastMRI's order of draws).
    """

    kind: str = "random"
    center_fractions: tuple[float, ...] = (0.08,)
    accelerations: tuple[float, ...] = (4.0,)

    def __post_init__(self) -> None:
        if self.kind not in MASKS:
            raise ValueError(f"unknown mask type {self.kind!r}; choose from {sorted(MASKS)}")
        if len(self.center_fractions) != len(self.accelerations) or not self.accelerations:
            raise ValueError(
                "center_fractions and accelerations must be non-empty and of equal length, got "
                f"{list(self.center_fractions)} and {list(self.accelerations)}"
            )
        cfs = tuple(float(c) for c in self.center_fractions)
        accs = tuple(float(a) for a in self.accelerations)
        for cf, acc in zip(cfs, accs, strict=True):
            if not (math.isfinite(acc) and acc >= 1.0):
                raise ValueError(f"acceleration must be a number >= 1, got {acc}")
            if not (math.isfinite(cf) and 0.0 < cf < 1.0):
                raise ValueError(f"center fraction must be a number in (0, 1), got {cf}")
        object.__setattr__(self, "center_fractions", cfs)
        object.__setattr__(self, "accelerations", accs)

    @classmethod
    def paired(
        cls, kind: str, accelerations: Sequence[float], center_fractions: Sequence[float] = ()
    ) -> MaskSpec:
        """A spec from command-line lists, paired by :func:`pair_center_fractions`."""
        cfs = pair_center_fractions(accelerations, center_fractions)
        return cls(kind, cfs, tuple(float(a) for a in accelerations))

    def single(self, i: int) -> MaskSpec:
        """The spec of the i-th (centre fraction, acceleration) pair alone."""
        return MaskSpec(self.kind, (self.center_fractions[i],), (self.accelerations[i],))

    def check_width(self, width: int) -> None:
        """Raise ValueError if any configured pair cannot be satisfied for ``width``."""
        for cf, acc in zip(self.center_fractions, self.accelerations, strict=True):
            _num_low(width, cf, acc)

    def sample(self, width: int, rng: np.random.RandomState) -> Mask:
        """Draw one mask of ``width`` columns.

        Args:
            width: number of phase-encode columns W.
            rng: the random state; consumed as fastMRI's MaskFunc would.

        Returns:
            the sampled :class:`Mask`.
        """
        choice = rng.randint(len(self.center_fractions))
        cf, acc = self.center_fractions[choice], self.accelerations[choice]
        mask = MASKS[self.kind](width, cf, acc, rng)
        return Mask(mask, cf, acc, round(width * cf))


def fname_seed(fname: str) -> tuple[int, ...]:
    """fastMRI's validation seed for a file: the code points of its name (with .h5)."""
    return tuple(map(ord, fname))


def eval_rng(fname: str) -> np.random.RandomState:
    """The random state for a file's evaluation mask (same mask on every slice and run)."""
    return np.random.RandomState(fname_seed(fname))


def train_rng(seed: int, epoch: int, index: int) -> np.random.RandomState:
    """A fresh random state per training sample, reproducible from (seed, epoch, index).

    Deriving the stream from the sample's coordinates, not from a worker's running
    state, makes masks independent of the number of workers and exact on resume.
    """
    return np.random.RandomState([seed & 0xFFFFFFFF, epoch, index])


def seeded_file_rng(seed: int, fname: str) -> np.random.RandomState:
    """A user-seeded evaluation mask stream for one file, keyed by its name.

    Keyed by name (CRC-32) rather than folder position, so adding or removing files
    never changes another file's mask.
    """
    return np.random.RandomState([seed & 0xFFFFFFFF, zlib.crc32(fname.encode())])


def default_center_fraction(acceleration: float) -> float:
    """fastMRI's centre fraction for an acceleration: 0.32 / acc (4x: 0.08, 8x: 0.04)."""
    return 0.32 / float(acceleration)


def pair_center_fractions(
    accelerations: Sequence[float], center_fractions: Sequence[float] = ()
) -> tuple[float, ...]:
    """One centre fraction per acceleration: as given (one each, or one for all), or,
    when none is given, fastMRI's pairing :func:`default_center_fraction`.

    This is the one place where command lines and configs pair the two lists.
    """
    accs = [float(a) for a in accelerations]
    cfs = [float(c) for c in center_fractions]
    if not accs:
        raise ValueError("give at least one acceleration")
    if any(not (math.isfinite(a) and a >= 1.0) for a in accs):
        bad = next(a for a in accs if not (math.isfinite(a) and a >= 1.0))
        raise ValueError(f"acceleration must be a number >= 1, got {bad}")
    if not cfs:
        return tuple(default_center_fraction(a) for a in accs)
    if len(cfs) == 1:
        return tuple(cfs * len(accs))
    if len(cfs) != len(accs):
        raise ValueError(
            f"got {len(cfs)} centre fractions for {len(accs)} accelerations; give one or one each"
        )
    return tuple(cfs)
