"""Design study for ``lam: auto``'s background prior (``auto.min_gain``, ``auto.prior``).

Never the benchmark's scans or seeds (scripts/bench_cs.py uses synthetic seeds 10-12 and
the real scans under their own file names as mask seeds). Cases, each at 4x and 8x with a
fastMRI-seeded random mask named after the case:

- synthetic single-coil volumes, seeds 0-9 and 13-22 (2 slices, 256 x 256);
- synthetic multi-coil volumes, seeds 0-5 (2 slices, 192 x 192, 4-8 coils);
- the real TU Graz and twix scans under three other mask seeds each.

Per case: the SSIM of the output (noise floor on, the default) at every lambda of
``AUTO_GRID`` against the target (the oracle reads it), and, through the package's own
``choose_lambda`` (pull and prior off), the cross-validation errors on the default grid
and the ACS image's background share. Then:

- the cross-validation gain, ``1 - least error / error at the smallest lambda``;
- the prior, a least-squares line of log(oracle lambda) on the background share, fitted on
  the single-coil cases whose gain is below ``--min-gain`` (the rule: multi-coil scans keep
  the cross-validation);
- the gap to the per-scan oracle (on bench_cs's 1e-4 ... 1e-2 grid) of the previous rule,
  of the rule with the prior, of the prior applied whatever the coil count, and of the
  prior given also every single-coil case with fewer than ``--min-columns`` held-out
  columns per fold (a candidate of the eleventh session, not adopted), the prior refitted
  without the case's scan (leave one scan out);
- the default with the folds' held-out errors summed (``auto.combine: sum``, the rule
  before the twenty-second session) instead of the median of the folds' votes;
- the default plus, on multi-coil scans, a constant log-lambda offset (mean oracle - choice
  over the other scans' multi-coil cases, shared or per acceleration; a candidate of the
  twelfth session, not adopted), also leave one scan out.

    python scripts/design_cs_prior.py --threads 1 --cache /tmp/design.pkl   # ~25 min
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cs import ORACLE_GRID, Scan, real, synthetic  # noqa: E402

from mrirecon.cs.auto import acs_background, choose_lambda, cv_slices, holdout_folds  # noqa: E402
from mrirecon.cs.config import AUTO_GRID, AutoLambdaConfig, CSConfig  # noqa: E402
from mrirecon.cs.espirit import espirit_maps  # noqa: E402
from mrirecon.cs.recon import solve_batch  # noqa: E402
from mrirecon.data.masks import MaskSpec, eval_rng  # noqa: E402
from mrirecon.fft import center_crop  # noqa: E402
from mrirecon.metrics import ssim  # noqa: E402
from mrirecon.noise_floor import floor_level  # noqa: E402

PAIRS = ((0.08, 4.0), (0.04, 8.0))
SC_SEEDS = (*range(10), *range(13, 23))
MC_SEEDS = tuple(range(6))
REAL = ("tugraz_brain_t2_4ch.h5", "twix_gre_phantom_2ch.h5")


class Case(NamedTuple):
    scan: str  # the scan (leave-one-scan-out groups)
    acc: float
    scores: np.ndarray  # SSIM per AUTO_GRID lambda
    gain: float  # cross-validation gain
    cv_best: float  # log lambda cross-validation chooses (the default: median of fold votes)
    cv_sum: float  # log lambda of least held-out error summed over folds (the rule before)
    background: float  # ACS image background share
    columns: float  # held-out columns per cross-validation fold


def design_scans() -> list[tuple[str, str, Scan]]:
    """(scan id, mask name, scan) of every case."""
    out = [(f"sc{i}", f"design_sc{i}.h5", synthetic(i, False, 2)) for i in SC_SEEDS]
    out += [(f"mc{i}", f"design_mc{i}.h5", synthetic(i, True, 2)) for i in MC_SEEDS]
    for name in REAL:
        scan = real(name)
        out += [(name, f"design_{s}_{name}", scan) for s in "abc"]
    return out


def run_case(scan_id: str, mask_name: str, scan: Scan, cf: float, acc: float) -> Case:
    m = MaskSpec("random", (cf,), (acc,)).sample(scan.kspace.shape[-1], eval_rng(mask_name))
    mask = torch.from_numpy(m.mask)
    k = scan.kspace * mask
    crop = scan.target.shape[-2:]
    cfg = CSConfig()
    n, s = len(AUTO_GRID), len(k)
    lams = torch.tensor(AUTO_GRID, dtype=torch.float32).repeat_interleave(s)
    maps = espirit_maps(k, mask, cfg.espirit).repeat(n, 1, 1, 1) if scan.multicoil else None
    res = solve_batch(k.repeat(n, 1, 1, 1), mask, lams, cfg, maps=maps, estimate_maps=False)
    imgs = center_crop(res.image, crop).abs().reshape(n, s, *crop).clamp_min(floor_level(k, mask))
    scores = np.array([ssim(scan.target, imgs[j].numpy()) for j in range(n)])
    raw = cfg.replace(auto=AutoLambdaConfig(shrink=0.0, min_gain=0.0))
    choice = choose_lambda(k, mask, raw, mask_name, acc, scan.multicoil, crop_rows=crop[0])
    errors = np.asarray(choice.cv_errors)  # summed over folds: their argmin is combine "sum"
    background = acs_background(k[cv_slices(s, cfg.auto.slices)], mask, crop[0])
    columns = float(np.mean([len(f) for f in holdout_folds(mask, cfg, mask_name)]))
    return Case(
        scan_id, acc, scores, 1.0 - errors.min() / errors[0], math.log(choice.lam),
        math.log(cfg.auto.grid[int(np.argmin(errors))]), background, columns,
    )  # fmt: skip


def gap(case: Case, log_lam: float) -> float:
    """Oracle minus the SSIM at a lambda (interpolated in log lambda on bench_cs's grid)."""
    grid = np.log(np.asarray(AUTO_GRID))
    idx = [AUTO_GRID.index(v) for v in ORACLE_GRID]
    x = float(np.clip(log_lam, grid[idx[0]], grid[idx[-1]]))
    return float(case.scores[idx].max() - np.interp(x, grid[idx], case.scores[idx]))


def oracle(case: Case) -> float:
    idx = [AUTO_GRID.index(v) for v in ORACLE_GRID]
    return math.log(ORACLE_GRID[int(np.argmax(case.scores[idx]))])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cache", type=Path, help="store / reuse the per-case results here")
    p.add_argument("--min-gain", type=float, default=CSConfig().auto.min_gain)
    p.add_argument(
        "--min-columns",
        type=float,
        default=10.0,
        help="also give the prior the single-coil cases with fewer held-out columns per fold",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cache and args.cache.exists():
        cases = pickle.loads(args.cache.read_bytes())
    else:
        cases = []
        for scan_id, mask_name, scan in design_scans():
            for cf, acc in PAIRS:
                cases.append(run_case(scan_id, mask_name, scan, cf, acc))
                c = cases[-1]
                print(f"{scan_id:26s} {acc:.0f}x gain {c.gain:.3f} bg {c.background:.3f} "
                      f"cv {math.exp(c.cv_best):.1e} oracle {math.exp(oracle(c)):.1e}", flush=True)  # fmt: skip
        if args.cache:
            args.cache.write_bytes(pickle.dumps(cases))
    cfg = CSConfig()
    # the rule: single-coil cases below the gain (multi-coil ones keep the cross-validation)
    for min_columns, extra in ((0.0, ""), (args.min_columns, f" or < {args.min_columns:g} held-out columns per fold")):  # fmt: skip
        fitted = _flat(cases, args.min_gain, False, min_columns)
        a, b = _fit_prior(fitted)
        print(f"prior on {len(fitted)} of {len(cases)} cases (single coil, gain < "
              f"{args.min_gain:g}{extra}): log lambda = {a:.4g} + {b:.4g} x background")  # fmt: skip
    for c in _flat(cases, args.min_gain, any_coils=True):
        if _single(c):
            continue
        print(f"  multi-coil, gain < {args.min_gain:g}: {c.scan} {c.acc:.0f}x (cv "
              f"{math.exp(c.cv_best):.1e}, oracle {math.exp(oracle(c)):.1e}, bg {c.background:.3f})")  # fmt: skip

    def pulled(c: Case, log_lam: float) -> float:
        """A cross-validated choice pulled ``auto.shrink`` of the way to the table."""
        return log_lam + cfg.auto.shrink * (math.log(cfg.lam_for(c.acc)) - log_lam)

    def previous(c: Case) -> float:
        return pulled(c, c.cv_best)

    def summed(c: Case) -> float:
        """As ``previous``, with the folds' errors summed (``auto.combine: sum``)."""
        return pulled(c, c.cv_sum)

    grid = np.log(np.asarray(cfg.auto.grid))

    def prior_rule(any_coils: bool, min_columns: float = 0.0, base=previous):
        fitted = _flat(cases, args.min_gain, any_coils, min_columns)

        def rule(c: Case) -> float:
            if not _decided(c, args.min_gain, any_coils, min_columns):
                return base(c)
            a, b = _fit_prior([q for q in fitted if q.scan != c.scan])
            return float(np.clip(a + b * c.background, grid[0], grid[-1]))

        return rule

    default = prior_rule(False)

    def mc_offset(per_acc: bool):
        """The default, plus (multi-coil) a log-lambda offset: the mean of oracle - choice
        over the other scans' multi-coil cases (of the same acceleration if ``per_acc``)."""

        def rule(c: Case) -> float:
            if _single(c):
                return default(c)
            fit = [q for q in cases if not _single(q) and q.scan != c.scan]
            fit = [q for q in fit if q.acc == c.acc] if per_acc else fit
            offset = float(np.mean([oracle(q) - previous(q) for q in fit]))
            return float(np.clip(previous(c) + offset, grid[0], grid[-1]))

        return rule

    for acc in (4.0, 8.0):
        mc = [c for c in cases if not _single(c) and c.acc == acc]
        d = [oracle(c) - previous(c) for c in mc]
        print(f"multi-coil {acc:.0f}x: oracle / choice = exp({np.mean(d):+.3f}) on average "
              f"(sd {np.std(d):.3f}; oracle above the choice in {sum(x > 0 for x in d)} of "
              f"{len(d)} cases)")  # fmt: skip
    rules = (("previous", previous), ("prior, single coil", default),
             ("default, folds summed", prior_rule(False, base=summed)),
             ("prior, any coils", prior_rule(True)),
             (f"sc, or < {args.min_columns:g} columns", prior_rule(False, args.min_columns)),
             ("default + mc offset", mc_offset(False)),
             ("default + mc offset/acc", mc_offset(True)))  # fmt: skip
    print("gap to the per-scan oracle, 4x / 8x (prior refitted without the case's scan):")
    print(f"  {'cases':18s}" + "".join(f"{name:>24s}" for name, _ in rules))
    for label, groups in (("all", ("sc", "mc", "tu", "tw")), ("single-coil", ("sc",)),
                          ("multi-coil + real", ("mc", "tu", "tw"))):  # fmt: skip
        row = []
        for _, rule in rules:
            gaps = []
            for acc in (4.0, 8.0):
                sel = [c for c in cases if c.acc == acc and c.scan[:2] in groups]
                gaps.append(np.mean([gap(c, rule(c)) for c in sel]))
            row.append(f"{gaps[0]:.4f} / {gaps[1]:.4f}")
        print(f"  {label:18s}" + "".join(f"{r:>24s}" for r in row))
    return 0


def _fit_prior(cases: list[Case]) -> tuple[float, float]:
    """(a, b) of the least-squares line log(oracle lambda) = a + b * background."""
    b, a = np.polyfit([c.background for c in cases], [oracle(c) for c in cases], 1)
    return float(a), float(b)


def _single(case: Case) -> bool:
    return case.scan.startswith("sc")


def _decided(case: Case, min_gain: float, any_coils: bool, min_columns: float = 0.0) -> bool:
    """Whether the prior decides a case: cross-validation gain below ``min_gain`` or (single
    coil) fewer than ``min_columns`` held-out columns per fold; single-coil only unless
    ``any_coils``."""
    few = _single(case) and case.columns < min_columns
    return (case.gain < min_gain or few) and (any_coils or _single(case))


def _flat(
    cases: list[Case], min_gain: float, any_coils: bool, min_columns: float = 0.0
) -> list[Case]:
    """The cases the prior decides (and is fitted on)."""
    return [c for c in cases if _decided(c, min_gain, any_coils, min_columns)]


if __name__ == "__main__":
    sys.exit(main())
