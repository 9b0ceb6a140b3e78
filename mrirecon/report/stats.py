"""Per-volume metric tables and paired statistics for the comparison report.

Methods are compared on the same volumes and masks, so differences are paired per volume:
the mean paired difference gets a percentile bootstrap 95% confidence interval (Efron &
Tibshirani, "An Introduction to the Bootstrap", 1993) and a two-sided Wilcoxon
signed-rank p-value (Wilcoxon, Biometrics Bulletin 1945; :func:`scipy.stats.wilcoxon`).
Where a statistic is undefined (fewer than two pairs, or all differences zero) it is
reported as ``n/a`` with the reason, never as a number.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import stats

from mrirecon.evaluate import METRICS, Stat, VolumeScore, stat, write_scores_csv

__all__ = [
    "REPORT_COLUMNS",
    "PairedDiff",
    "write_metrics_csv",
    "group_stats",
    "bootstrap_ci",
    "wilcoxon_p",
    "paired_difference",
    "paired_table",
]

# The columns of the report's metrics.csv.
REPORT_COLUMNS = ("file", "method", "acceleration", "nmse", "psnr", "ssim", "dataset")


class PairedDiff(NamedTuple):
    """Paired difference ``a - b`` of one metric over the volumes both methods scored.

    Attributes:
        a, b: method names.
        metric: ``ssim``, ``psnr`` or ``nmse``.
        acceleration: the acceleration compared.
        n: number of pairs.
        mean: mean difference (nan when n = 0).
        ci_low, ci_high: bootstrap 95% interval of the mean (nan when undefined).
        p_value: two-sided Wilcoxon signed-rank p (nan when undefined).
        note: why a statistic is undefined, else "".
    """

    a: str
    b: str
    metric: str
    acceleration: float
    n: int
    mean: float
    ci_low: float
    ci_high: float
    p_value: float
    note: str


def write_metrics_csv(path: str | os.PathLike[str], rows: Iterable[VolumeScore]) -> Path:
    """Write the report's per-volume table (:data:`REPORT_COLUMNS`), atomically.

    Read it back with :func:`mrirecon.evaluate.read_scores_csv`.
    """
    return write_scores_csv(path, rows, REPORT_COLUMNS)


def group_stats(
    rows: Iterable[VolumeScore], by_dataset: bool = False
) -> dict[tuple, dict[str, Stat]]:
    """Mean/std of every metric per (method, acceleration) or (dataset, method, acceleration).

    Returns:
        {key: {metric: Stat}} in first-seen order of the keys.
    """
    groups: dict[tuple, list[VolumeScore]] = defaultdict(list)
    for r in rows:
        key = (r.dataset, r.method, r.acceleration) if by_dataset else (r.method, r.acceleration)
        groups[key].append(r)
    return {k: {m: stat(getattr(r, m) for r in v) for m in METRICS} for k, v in groups.items()}


def bootstrap_ci(
    diffs: Sequence[float],
    rng: np.random.RandomState,
    n_boot: int = 10000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs``.

    Args:
        diffs: paired differences (n >= 2).
        rng: random state for the resamples.
        n_boot: number of resamples.
        level: coverage of the interval.

    Returns:
        (low, high).

    Raises:
        ValueError: fewer than two values.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 pairs, got {d.size}")
    idx = rng.randint(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def wilcoxon_p(diffs: Sequence[float]) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences.

    Zero differences are dropped (Wilcoxon's original rule); the exact null distribution
    is used for small samples without ties (scipy's ``method="auto"``).

    Returns:
        (p, "") or (nan, reason) when the test is undefined.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size < 2:
        return math.nan, f"n/a (n={d.size} < 2)"
    if not np.any(d != 0):
        return math.nan, "n/a (all differences are zero)"
    try:
        res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    except ValueError as exc:
        return math.nan, f"n/a ({exc})"
    p = float(res.pvalue)
    if not math.isfinite(p):
        return math.nan, "n/a (test undefined for these differences)"
    return p, ""


def paired_difference(
    rows: Sequence[VolumeScore],
    a: str,
    b: str,
    metric: str,
    acceleration: float,
    rng: np.random.RandomState,
    n_boot: int = 10000,
) -> PairedDiff:
    """Compare methods ``a`` and ``b`` on the volumes both scored at ``acceleration``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")
    va = {
        (r.dataset, r.file): getattr(r, metric)
        for r in rows
        if r.method == a and r.acceleration == acceleration
    }
    vb = {
        (r.dataset, r.file): getattr(r, metric)
        for r in rows
        if r.method == b and r.acceleration == acceleration
    }
    keys = sorted(set(va) & set(vb))
    d = np.asarray([va[k] - vb[k] for k in keys], dtype=np.float64)
    if d.size == 0:
        return PairedDiff(
            a, b, metric, acceleration, 0, math.nan, math.nan, math.nan, math.nan, "n/a (no pairs)"
        )
    p, note = wilcoxon_p(d)
    if d.size < 2:
        lo = hi = math.nan
    else:
        lo, hi = bootstrap_ci(d, rng, n_boot)
    return PairedDiff(a, b, metric, acceleration, int(d.size), float(d.mean()), lo, hi, p, note)


def paired_table(
    rows: Sequence[VolumeScore],
    pairs: Sequence[tuple[str, str]],
    accelerations: Sequence[float],
    seed: int = 0,
    n_boot: int = 10000,
) -> list[PairedDiff]:
    """:func:`paired_difference` for every pair, acceleration and metric.

    Each (pair, acceleration, metric) gets its own seeded random state, so a row does
    not depend on which other rows were computed.
    """
    out = []
    methods = {r.method for r in rows}
    for a, b in pairs:
        if a not in methods or b not in methods:
            continue
        for i, acc in enumerate(accelerations):
            for j, metric in enumerate(METRICS):
                rng = np.random.RandomState([seed & 0xFFFFFFFF, i, j])
                out.append(paired_difference(rows, a, b, metric, acc, rng, n_boot))
    return out
