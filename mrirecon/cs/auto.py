"""``lam: auto``: the l1-wavelet weight chosen per scan by k-space cross-validation.

The target is never read. For a volume, on a few central slices:

1. the acquired columns outside the ACS block are split at random into disjoint held-out
   subsets (``auto.holdout`` of them each; the RNG is seeded from the file name, so the
   choice is the same on every run; by default all 4 quarters, so every such column is
   held out once);
2. for each of ``auto.folds`` subsets the lambda grid (7 half-decade steps by default) is
   solved as one batch on the remaining columns (ESPIRiT maps come from the ACS block,
   which is never held out, so they are estimated once);
3. each solution predicts the held-out columns, ``F S x``; the prediction error of each
   column is taken back along the readout (a 1-D inverse FFT) and only the rows of the
   output crop are kept (a readout-oversampled scan's outer rows, cropped away in the
   output, are mostly noise and would otherwise weigh as much as the anatomy); the
   squared error of each column is weighted by its distance from the k-space centre to
   the power ``auto.weight_power`` (energy falls off with frequency) and summed over
   columns, coils and slices;
4. each fold votes for its grid lambda of least error, and the median of the votes (in
   log lambda; ``auto.combine: median``) is the cross-validated choice: with ~5 held-out
   columns per fold at 8x one fold's minimum can sit decades away from the others', and
   the median ignores it where a sum of the folds' errors follows it (``auto.combine:
   sum``, the rule before; docs/benchmarks.md, "Twenty-second session");
5. that choice is pulled ``auto.shrink`` of the way (in log lambda)
   towards the per-acceleration table, because one scan's held-out error is a noisy
   estimate (measured in docs/benchmarks.md: cross-validation alone did not beat the best
   fixed lambda, with the pull it did);
6. unless, on a single-coil scan, the cross-validation is uninformative: when no
   lambda's held-out error (summed over folds) is ``auto.min_gain`` below the smallest
   lambda's (a CS fill of random outer columns is no better than none, as on most
   single-coil scans at 8x), the choice is an image prior instead, ``exp(a + b *
   background)``, the background share of the ACS block's low-resolution image
   (:func:`acs_background`; a sparser image wants a stronger weight), fitted on
   single-coil design scans (docs/benchmarks.md). Multi-coil
   scans always keep the cross-validated choice: where their held-out error is flat the
   prior, fitted on single-coil images, was measured far off (a real 2-channel phantom
   at 8x: the prior 1e-4, the oracle 1e-2, the flat cross-validation 3e-2).

The cross-validation solves use one central slice by default. The volume is then solved
from zero like any fixed lambda, so its output is exactly the fixed-lambda reconstruction
at the recorded lambda (a warm start from the cross-validation solution saved no time at
a fixed iteration count, and it moved the 100-iteration solution: -0.003 SSIM on average
on the design cases at 8x, up to -0.023 on one).

A scan whose acquired non-ACS columns are too few to hold any out gets the table's
lambda and a one-line warning naming the file.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import NamedTuple

import numpy as np
import torch

from mrirecon.cs.config import CSConfig
from mrirecon.cs.espirit import acs_bounds, espirit_maps
from mrirecon.cs.operators import sense_forward
from mrirecon.cs.recon import solve_batch
from mrirecon.fft import crop_slices, ifft2c, ifft_readout, rss

__all__ = [
    "LambdaChoice",
    "AutoLambdaWarning",
    "acs_background",
    "choose_lambda",
    "cv_slices",
    "holdout_folds",
]


class AutoLambdaWarning(UserWarning):
    """``lam: auto`` could not cross-validate a scan and used the table's lambda."""


class LambdaChoice(NamedTuple):
    """The relative lambda a scan is reconstructed with, and how it was chosen.

    Attributes:
        lam: the relative lambda.
        rule: "fixed", "table", "auto" (cross-validated), "auto-prior" (single coil,
            cross-validation uninformative: the background prior) or "auto-fallback"
            (the table's, too few columns to cross-validate).
        cv_errors: held-out prediction error per ``config.auto.grid`` lambda, summed over
            folds ("auto", "auto-prior").
        slices: the slice indices cross-validated ("auto", "auto-prior").
        background: the ACS image's background share ("auto-prior" only).
    """

    lam: float
    rule: str
    cv_errors: tuple[float, ...] = ()
    slices: tuple[int, ...] = ()
    background: float | None = None


def _nominal(mask: torch.Tensor, acceleration: float | None) -> float:
    """The nominal acceleration, or (None or 0: a file's own mask) W / sampled columns."""
    if not acceleration:
        acceleration = mask.numel() / float(mask.sum())
    if not (acceleration > 0 and math.isfinite(acceleration)):
        raise ValueError(f"acceleration must be > 0, got {acceleration}")
    return acceleration


def cv_slices(num_slices: int, count: int) -> list[int]:
    """Up to ``count`` distinct slice indices around the middle of a volume."""
    if num_slices <= count:
        return list(range(num_slices))
    pos = (num_slices - 1) * np.linspace(0.3, 0.7, count + 2)[1:-1]  # one slice: the middle
    return sorted({int(round(p)) for p in pos})


def holdout_folds(mask: torch.Tensor, config: CSConfig, name: str) -> list[np.ndarray]:
    """The held-out column subsets of a mask (empty when there are too few columns).

    Args:
        mask: bool (W,) acquired columns.
        config: ``config.auto`` gives the held-out share and the number of folds.
        name: the file name; seeds the RNG so the folds are the same on every run.

    Returns:
        ``config.auto.folds`` disjoint int arrays of column indices, or [] when fewer than
        one column per subset is acquired outside the ACS block.
    """
    acquired = np.flatnonzero(mask.cpu().numpy())
    # The ACS block is never held out: it calibrates the coil maps (none without a centre).
    c0, c1 = acs_bounds(mask) if bool(mask[mask.shape[-1] // 2]) else (0, 0)
    outside = acquired[(acquired < c0) | (acquired >= c1)]
    splits = round(1 / config.auto.holdout)
    if len(outside) < splits:
        return []
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    perm = rng.permutation(outside)
    return [np.sort(perm[f::splits]) for f in range(config.auto.folds)]


def choose_lambda(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    config: CSConfig,
    name: str,
    acceleration: float | None = None,
    multicoil: bool | None = None,
    device: torch.device | str = "cpu",
    crop_rows: int | None = None,
) -> LambdaChoice:
    """The relative lambda to reconstruct a volume with, per ``config.lam``.

    Args:
        kspace: complex (S, C, H, W) masked k-space.
        mask: bool (W,) acquired columns.
        config: ``lam`` a number (used as is), None (the ``lams`` table) or "auto".
        name: the file name (seeds the held-out columns; named in warnings).
        acceleration: the nominal acceleration for the table (None or 0: the mask's own).
        multicoil: ESPIRiT maps (True) or single coil (False); None = C > 1.
        device: where to solve.
        crop_rows: readout rows of the output crop; the held-out error is measured on
            them (None = all rows).

    Returns:
        :class:`LambdaChoice`.
    """
    if isinstance(config.lam, float):
        return LambdaChoice(config.lam, "fixed")
    table = config.lam_for(_nominal(mask, acceleration))
    if not config.auto_lambda:
        return LambdaChoice(table, "table")
    folds = holdout_folds(mask, config, name)
    if not folds:
        warnings.warn(
            f"{name}: too few acquired columns outside the ACS block to cross-validate lambda; "
            f"using the per-acceleration lambda {table:.4g}",
            AutoLambdaWarning,
            stacklevel=2,
        )
        return LambdaChoice(table, "auto-fallback")
    device = torch.device(device)
    slices = cv_slices(kspace.shape[0], config.auto.slices)
    k = kspace[slices].to(device, torch.complex64) * mask.to(device)
    use_maps = multicoil if multicoil is not None else k.shape[1] > 1
    maps = espirit_maps(k, mask, config.espirit) if use_maps else None
    per_fold = np.stack([_fold_errors(k, mask, maps, held, config, crop_rows) for held in folds])
    errors = per_fold.sum(axis=0)
    log_grid = np.log(np.asarray(config.auto.grid))
    errs = tuple(float(e) for e in errors)
    if not use_maps and errors.min() > (1.0 - config.auto.min_gain) * errors[0]:
        background = acs_background(k, mask, crop_rows)
        a, b = config.auto.prior
        lam = math.exp(float(np.clip(a + b * background, log_grid[0], log_grid[-1])))
        return LambdaChoice(float(f"{lam:.4g}"), "auto-prior", errs, tuple(slices), background)
    if config.auto.combine == "median":
        best = float(np.median(log_grid[np.argmin(per_fold, axis=1)]))
    else:
        best = float(log_grid[int(np.argmin(errors))])
    lam = math.exp(best + config.auto.shrink * (math.log(table) - best))
    return LambdaChoice(float(f"{lam:.4g}"), "auto", errs, tuple(slices))


def _fold_errors(
    k: torch.Tensor,
    mask: torch.Tensor,
    maps: torch.Tensor | None,
    held: np.ndarray,
    config: CSConfig,
    crop_rows: int | None = None,
) -> np.ndarray:
    """Weighted held-out error per grid lambda for one fold."""
    n, _, h, w = k.shape
    rows = crop_slices((h, w), (min(crop_rows or h, h), w))[0]
    held_t = torch.from_numpy(held).to(k.device)
    train = mask.to(k.device).clone()
    train[held_t] = False
    dist = np.abs(held - w // 2).astype(np.float64)
    weight = torch.from_numpy((dist**config.auto.weight_power).astype(np.float32)).to(k.device)
    grid = config.auto.grid
    per = max(1, config.batch_size // n)  # lambdas per solve, so a solve holds ~batch_size slices
    errors = []
    for g0 in range(0, len(grid), per):
        lams = grid[g0 : g0 + per]
        reps = len(lams)
        lam_t = torch.tensor(lams, dtype=torch.float32).repeat_interleave(n)
        kk = k.repeat(reps, 1, 1, 1)
        mm = None if maps is None else maps.repeat(reps, 1, 1, 1)
        res = solve_batch(
            kk, train, lam_t, config, maps=mm, estimate_maps=False,
            iterations=config.auto.iterations or config.iterations,
        )  # fmt: skip
        pred = sense_forward(res.image, mm, train.new_ones(w))[..., held_t]
        diff = pred - kk[..., held_t]  # (reps * n, C, H, held)
        if rows != slice(0, h):  # all rows: the orthonormal FFT keeps the sum (Parseval)
            diff = ifft_readout(diff, rows)  # the error in the output's rows
        col_err = diff.abs().square().sum(dim=(1, 2))  # (reps * n, held)
        errors += (col_err @ weight).reshape(reps, n).sum(dim=1).tolist()
    return np.asarray(errors)


def acs_background(
    kspace: torch.Tensor, mask: torch.Tensor, crop_rows: int | None = None, level: float = 0.05
) -> float:
    """Share of the ACS block's low-resolution image that is background.

    The image of the ACS columns alone (root-sum-of-squares over coils, the output's rows)
    is thresholded at ``level`` of each slice's maximum; more background means a sparser
    image, which wants a stronger l1-wavelet weight (docs/benchmarks.md).

    Without a sampled centre column (no ACS block) the zero-filled image is used.

    Args:
        kspace: complex (S, C, H, W) masked k-space.
        mask: bool (W,) acquired columns.
        crop_rows: readout rows of the output crop (None = all rows).
        level: the background threshold, relative to each slice's maximum.

    Returns:
        the background share in [0, 1], averaged over slices.
    """
    low = kspace * mask.to(kspace.device)
    if bool(mask[mask.shape[-1] // 2]):
        c0, c1 = acs_bounds(mask)
        low = torch.zeros_like(kspace)
        low[..., c0:c1] = kspace[..., c0:c1]
    h, w = kspace.shape[-2:]
    image = rss(ifft2c(low))[:, crop_slices((h, w), (min(crop_rows or h, h), w))[0]]
    peak = image.flatten(1).amax(dim=1).clamp_min(torch.finfo(image.dtype).tiny)
    return float((image < level * peak[:, None, None]).float().mean())
