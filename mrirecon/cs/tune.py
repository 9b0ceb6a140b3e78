"""Search the relative l1-wavelet weight for the best mean SSIM on validation slices.

For every (centre fraction, acceleration) pair, each volume gets its fastMRI-seeded
evaluation mask (:func:`mrirecon.data.masks.eval_rng`, as in ``mrirecon reconstruct``),
coil maps are estimated once, and lambda is scored on a log grid refined around the
best value by geometric midpoints. The score is the mean over volumes of fastMRI's
volume SSIM (data range = the volume maximum), on a few central slices per volume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from mrirecon.cs.config import CSConfig
from mrirecon.cs.espirit import espirit_maps
from mrirecon.cs.recon import solve_batch
from mrirecon.data.dataset import SliceDataset, VolumeInfo, scan_folder
from mrirecon.data.header import recon_crop
from mrirecon.data.masks import MaskSpec, eval_rng
from mrirecon.data.transforms import zero_filled
from mrirecon.errors import ConfigError, DataError
from mrirecon.fft import center_crop
from mrirecon.metrics import ssim
from mrirecon.noise_floor import floor_level

__all__ = ["TuneResult", "tune_lambda", "DEFAULT_GRID", "central_slices"]

DEFAULT_GRID: tuple[float, ...] = tuple(float(v) for v in np.geomspace(1e-4, 1e-2, 9))


class TuneResult(NamedTuple):
    """Best lambda per acceleration, every score measured, and the data used.

    Attributes:
        lams: {acceleration: best relative lambda}.
        scores: {acceleration: {lambda: mean SSIM}}.
        zero_filled: {acceleration: mean zero-filled SSIM} for reference.
        volumes: file names used.
        slices: slice indices used per volume.
    """

    lams: dict[float, float]
    scores: dict[float, dict[float, float]]
    zero_filled: dict[float, float]
    volumes: list[str]
    slices: list[list[int]]


def central_slices(num_slices: int, count: int) -> list[int]:
    """Up to ``count`` slice indices spread over the central 40 % of a volume."""
    if num_slices <= count:
        return list(range(num_slices))
    pos = np.linspace(0.3 * (num_slices - 1), 0.7 * (num_slices - 1), count)
    return sorted({int(round(p)) for p in pos})


class _Case(NamedTuple):
    kspace: torch.Tensor  # (n, C, H, W) masked
    mask: torch.Tensor
    maps: torch.Tensor | None
    target: np.ndarray  # (n, h, w)
    maxval: float
    crop: tuple[int, int]
    floor: float  # the output's noise floor (mrirecon.noise_floor; 0 = off)


def _load(ds: SliceDataset, vol: int, slices: list[int]) -> tuple[torch.Tensor, np.ndarray, float]:
    first = ds.index.index((vol, slices[0]))
    raws = [ds.raw_slice(first + s - slices[0]) for s in slices]
    info: VolumeInfo = ds.volumes[vol]
    k = torch.from_numpy(np.stack([r.kspace for r in raws]))
    target = np.stack([r.target for r in raws]).astype(np.float32)
    maxval = float(info.attrs.get("max", 0.0) or 0.0) or float(target.max())
    return k, target, maxval


def tune_lambda(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    config: CSConfig | None = None,
    pairs: Sequence[tuple[float, float]] = ((0.08, 4.0), (0.04, 8.0)),
    mask_type: str = "random",
    slices_per_volume: int = 3,
    max_volumes: int = 4,
    grid: Sequence[float] = DEFAULT_GRID,
    refine: int = 2,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Find the relative lambda with the best mean SSIM for each acceleration.

    Args:
        data: folder of fastMRI files with targets (or a list of files).
        config: base CS settings (iterations, wavelet, ESPIRiT ...); None = defaults.
        pairs: (centre fraction, acceleration) pairs to tune.
        mask_type: mask kind (:data:`mrirecon.data.masks.MASKS`).
        slices_per_volume: central slices scored per volume.
        max_volumes: at most this many volumes (the first in sorted order).
        grid: initial lambda grid (positive values).
        refine: rounds of geometric-midpoint refinement around the best lambda.
        device: where to reconstruct.
        log: optional progress callback.

    Returns:
        :class:`TuneResult`.
    """
    config = config or CSConfig()
    grid = sorted({float(v) for v in grid})
    if not grid or grid[0] <= 0 or not all(math.isfinite(v) for v in grid):
        raise ConfigError(f"lambda grid must hold positive finite values, got {grid}")
    if slices_per_volume < 1 or max_volumes < 1 or refine < 0:
        raise ConfigError(
            f"slices per volume ({slices_per_volume}) and volumes ({max_volumes}) must be >= 1, "
            f"refine ({refine}) >= 0"
        )
    infos, _ = scan_folder(data)
    infos = [i for i in infos if i.target_key is not None][:max_volumes]
    if not infos:
        raise DataError(f"{data}: no files with targets to tune on")
    say = log or (lambda _msg: None)
    device = torch.device(device)
    ds = SliceDataset(infos)
    chosen = [central_slices(i.num_slices, slices_per_volume) for i in infos]
    loaded = [_load(ds, v, s) for v, s in enumerate(chosen)]
    result = TuneResult({}, {}, {}, [i.fname for i in infos], chosen)
    for cf, acc in pairs:
        spec = MaskSpec(mask_type, (cf,), (acc,))
        cases, zf_scores = [], []
        for info, (k, target, maxval) in zip(infos, loaded, strict=True):
            spec.check_width(k.shape[-1])
            mask = torch.from_numpy(spec.sample(k.shape[-1], eval_rng(info.fname)).mask)
            km = (k * mask).to(device)
            maps = espirit_maps(km, mask, config.espirit) if info.multicoil else None
            crop = recon_crop(k.shape[-1], target.shape[-2:])
            zf = zero_filled(km, mask.to(device), crop, multicoil=True).cpu().numpy()
            zf_scores.append(ssim(target, zf, maxval))
            floor = floor_level(km, mask) if config.noise_floor else 0.0
            cases.append(_Case(km, mask, maps, target, maxval, crop, floor))
        result.zero_filled[acc] = float(np.mean(zf_scores))
        say(f"{acc:g}x (cf {cf:g}): zero-filled SSIM {result.zero_filled[acc]:.4f}")

        scores: dict[float, float] = {}

        def score(lam: float, cases: list[_Case] = cases, scores: dict = scores) -> float:
            if lam not in scores:
                vals = []
                for c in cases:
                    out = solve_batch(
                        c.kspace, c.mask, lam, config, maps=c.maps, estimate_maps=False
                    )
                    rec = center_crop(out.image, c.crop).abs().clamp_min(c.floor).cpu().numpy()
                    vals.append(ssim(c.target, rec, c.maxval))
                scores[lam] = float(np.mean(vals))
                say(f"  lambda {lam:.3g}: SSIM {scores[lam]:.4f}")
            return scores[lam]

        for lam in grid:
            score(lam)
        for _ in range(refine):
            lams = sorted(scores)
            i = max(range(len(lams)), key=lambda j: scores[lams[j]])
            for j in (i - 1, i + 1):
                if 0 <= j < len(lams):
                    score(math.sqrt(lams[i] * lams[j]))
        best = max(scores, key=lambda v: scores[v])
        result.lams[acc] = best
        result.scores[acc] = dict(sorted(scores.items()))
        say(f"{acc:g}x: best lambda {best:.3g} (SSIM {scores[best]:.4f})")
    return result


def tuned_config(config: CSConfig, result: TuneResult) -> CSConfig:
    """``config`` with its per-acceleration lambdas replaced by the tuned ones."""
    table = dict(config.lams)
    table.update(result.lams)
    return config.replace(lam=None, lams=tuple(sorted(table.items())))


def tuning_record(result: TuneResult, data: str | Path, pairs, mask_type: str) -> dict:
    """A YAML-friendly record of how the lambdas were tuned."""
    return {
        "tuning": {
            "data": str(data),
            "mask_type": mask_type,
            "pairs": [[float(c), float(a)] for c, a in pairs],
            "volumes": result.volumes,
            "slices": result.slices,
            "zero_filled_ssim": {float(a): round(v, 5) for a, v in result.zero_filled.items()},
            "ssim": {
                float(a): {float(f"{lam:.4g}"): round(s, 5) for lam, s in sc.items()}
                for a, sc in result.scores.items()
            },
        }
    }
