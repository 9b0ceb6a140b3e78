"""Benchmark: CS with ``lam: auto`` against a fixed-lambda grid and sigpy, in one run.

Part 1, quality (per scan and acceleration, fastMRI-seeded random masks, cf 0.08 at 4x and
0.04 at 8x; fastMRI volume SSIM against the file's target):

- ``grid``: ours at every lambda of ``ORACLE_GRID`` (one batched solve); the
  per-scan oracle is the best of them for that scan, the best fixed lambda the one of best
  mean over the scans of an acceleration; the NMSE oracle (a diagnostic) is the grid lambda
  of least NMSE for that scan, scored by SSIM: the best any error-energy criterion (such as
  the held-out k-space error of ``lam: auto``) could do on this grid;
- ``auto``: ``cs_reconstruct`` with the default config (``lam: auto``: k-space
  cross-validation, the target is never read) and its time, against ``fixed`` (the same
  with ``lam`` = the table's 1e-3);
- ``sigpy``: ``EspiritCalib`` + ``L1WaveletRecon`` at the same fixed relative lambda.

Ours outputs the magnitude raised to the target's noise floor (``noise_floor``, the
default; :mod:`mrirecon.noise_floor`); the same grid and auto are also scored as plain
``|x|`` (``noise_floor: false``), so the floor's share is visible. sigpy's output is its
plain magnitude.

Scans: the real TU Graz 4-coil brain and twix 2-coil phantom (mrirecon/data/assets) and
synthetic single- and multi-coil volumes (seeds not used while designing the rule).

Part 2, end to end as processes (start-up included) on 8 single-coil 256 x 256 slices:
``mrirecon reconstruct --method cs`` with ``lam`` fixed and ``auto`` against a Python
process that loops sigpy's ``L1WaveletRecon`` over the same masked slices.

    python scripts/bench_cs.py --threads 1            # the recorded run
    python scripts/bench_cs.py --threads 1 --quick    # a smoke run (fewer scans, 30 iterations)
    python scripts/bench_cs.py --threads 1 --e2e-only # part 2 alone (each timed 3x, least kept)
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import torch

from mrirecon.cs.config import AUTO_GRID, CSConfig
from mrirecon.cs.espirit import espirit_maps
from mrirecon.cs.operators import sense_adjoint
from mrirecon.cs.recon import solve_batch
from mrirecon.cs.volume import cs_reconstruct
from mrirecon.data.assets import asset_path
from mrirecon.data.masks import MaskSpec, eval_rng
from mrirecon.fft import center_crop
from mrirecon.metrics import nmse, ssim
from mrirecon.noise_floor import floor_level
from mrirecon.synth.kspace import write_volume
from mrirecon.synth.volumes import SynthConfig, make_volume

FIXED = 1e-3  # the fixed lambda timed and given to sigpy (the table before the noise floor)
# The fixed lambdas scored per scan (quarter-decade steps); the oracle and best fixed are on it.
ORACLE_GRID: tuple[float, ...] = AUTO_GRID[2:11]  # 1e-4 ... 1e-2
PAIRS = ((0.08, 4.0), (0.04, 8.0))


class Scan(NamedTuple):
    name: str  # seeds the mask (fastMRI validation seeding) and auto's held-out columns
    kspace: torch.Tensor  # (S, C, H, W)
    target: np.ndarray  # (S, h, w)
    multicoil: bool


class Row(NamedTuple):
    scan: str
    acc: float
    grid: np.ndarray  # SSIM per grid lambda (noise floor, the default)
    grid_plain: np.ndarray  # the same, plain |x|
    grid_nmse: np.ndarray  # NMSE per grid lambda (noise floor)
    auto_lam: float
    auto: float
    auto_plain: float
    t_auto: float
    t_fixed: float
    sigpy: float
    t_sigpy: float


def synthetic(index: int, multicoil: bool, slices: int) -> Scan:
    if multicoil:
        cfg = SynthConfig(slices=slices, recon_size=(192, 192), coils=(4, 8), pad_prob=0.0)
    else:
        cfg = SynthConfig(
            slices=slices, recon_size=(256, 256), kspace_size=(256, 256), pad_prob=0.0
        )
    vol = make_volume(cfg, index, multicoil)
    k = torch.from_numpy(vol.kspace)
    kind = "mc" if multicoil else "sc"
    return Scan(f"bench_{kind}{index}.h5", k if multicoil else k[:, None], vol.target, multicoil)


def real(fname: str) -> Scan:
    with h5py.File(asset_path(fname), "r") as hf:
        return Scan(fname, torch.from_numpy(hf["kspace"][()]), hf["reconstruction_rss"][()], True)


# --extended: more synthetic volumes, seeds never used by the benchmark or the design study
# (scripts/design_cs_prior.py uses single-coil 0-9 and 13-22, multi-coil 0-5).
EXTRA_SC, EXTRA_MC = range(23, 31), range(12, 16)


def scans(quick: bool) -> list[Scan]:
    out = [real("tugraz_brain_t2_4ch.h5"), real("twix_gre_phantom_2ch.h5")]
    out += [synthetic(i, False, 2) for i in range(10, 11 if quick else 13)]
    out += [synthetic(i, True, 1 if quick else 2) for i in range(10, 11 if quick else 12)]
    return out


def extra_scans() -> list[Scan]:
    return [synthetic(i, False, 2) for i in EXTRA_SC] + [synthetic(i, True, 2) for i in EXTRA_MC]


def run_scan(scan: Scan, cf: float, acc: float, iterations: int) -> Row:
    import sigpy.mri as mr

    m = MaskSpec("random", (cf,), (acc,)).sample(scan.kspace.shape[-1], eval_rng(scan.name))
    mask = torch.from_numpy(m.mask)
    k = scan.kspace * mask
    crop = scan.target.shape[-2:]
    grid = ORACLE_GRID
    cfg = CSConfig(iterations=iterations)
    s, n = len(k), len(grid)
    maps = espirit_maps(k, mask, cfg.espirit) if scan.multicoil else None
    lams = torch.tensor(grid, dtype=torch.float32).repeat_interleave(s)
    rep = None if maps is None else maps.repeat(n, 1, 1, 1)
    res = solve_batch(k.repeat(n, 1, 1, 1), mask, lams, cfg, maps=rep, estimate_maps=False)
    imgs = center_crop(res.image, crop).abs().reshape(n, s, *crop)
    floor = floor_level(k, mask)
    floored = imgs.clamp_min(floor).numpy()  # the default output (noise floor)
    scores = np.array([ssim(scan.target, floored[j]) for j in range(n)])
    plain = np.array([ssim(scan.target, imgs[j].numpy()) for j in range(n)])
    errs = np.array([nmse(scan.target, floored[j]) for j in range(n)])

    def timed(config: CSConfig):
        t0 = time.perf_counter()
        out = cs_reconstruct(k, mask, crop, config, acc, "cpu", scan.multicoil, scan.name)
        return out, time.perf_counter() - t0

    auto, t_auto = timed(cfg)
    _, t_fixed = timed(cfg.replace(lam=FIXED))
    # The floor does not enter the choice, and an auto output is the fixed-lambda output at
    # its recorded lambda, so one fixed solve gives the plain auto image (no second CV).
    auto_plain, _ = timed(cfg.replace(lam=auto.choice.lam, noise_floor=False))
    t0, ref = time.perf_counter(), []
    for i in range(s):
        ks = k[i].numpy()
        if scan.multicoil:
            sens = mr.app.EspiritCalib(ks, calib_width=m.num_low, crop=0.0, show_pbar=False).run()
        else:
            sens = np.ones((1, *ks.shape[-2:]), dtype=np.complex64)
        sens_t = torch.from_numpy(np.asarray(sens, dtype=np.complex64))[None]
        lam_abs = FIXED * float(sense_adjoint(k[i : i + 1], sens_t, mask).abs().max())
        x = mr.app.L1WaveletRecon(ks, sens, lam_abs, max_iter=iterations, show_pbar=False).run()
        ref.append(np.abs(center_crop(np.asarray(x), crop)))
    t_sigpy = time.perf_counter() - t0
    return Row(
        scan.name, acc, scores, plain, errs, auto.choice.lam, ssim(scan.target, auto.image.numpy()),
        ssim(scan.target, auto_plain.image.numpy()), t_auto, t_fixed, ssim(scan.target, np.stack(ref).astype(np.float32)), t_sigpy,
    )  # fmt: skip


SIGPY_LOOP = """
import sys, time, h5py, numpy as np, sigpy.mri as mr
path, lam_rel, iters = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "r") as hf:
    k, mask = hf["kspace"][()], hf["mask"][()].astype(bool)
ones = np.ones((1, *k.shape[-2:]), dtype=np.complex64)
for s in k * mask:
    scale = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(s), norm="ortho"))).max()
    mr.app.L1WaveletRecon(s[None], ones, lam_rel * scale, max_iter=iters, show_pbar=False).run()
"""


def end_to_end(iterations: int, threads: int | None, repeats: int = 1) -> dict[str, float]:
    """Seconds per process: mrirecon reconstruct (fixed, auto) vs a sigpy loop.

    Each is run ``repeats`` times in turn; the least time of each is kept (the least is
    the one least disturbed by other work on the machine)."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cfg = SynthConfig(slices=8, recon_size=(256, 256), kspace_size=(256, 256), pad_prob=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        write_volume(src / "e2e_sc.h5", make_volume(cfg, 20, False))
        base = [sys.executable, "-m", "mrirecon", "reconstruct", "--method", "cs", "--input",
                str(src), "--accelerations", "4", "--no-progress", "--cs-set",
                f"iterations={iterations}"]  # fmt: skip
        times: dict[str, float] = {}

        def timed(label: str, cmd: list[str]) -> None:
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times[label] = min(times.get(label, math.inf), time.perf_counter() - t0)

        for _ in range(repeats):
            for label, lam in (("fixed", str(FIXED)), ("auto", "auto")):
                out = Path(tmp) / label
                shutil.rmtree(out, ignore_errors=True)
                timed(label, [*base, "--output", str(out), "--cs-set", f"lam={lam}"])
            # sigpy on exactly the masked k-space mrirecon used (its output stores the mask)
            masked = Path(tmp) / "masked.h5"
            if not masked.exists():
                with (
                    h5py.File(src / "e2e_sc.h5") as hf,
                    h5py.File(Path(tmp) / "fixed/e2e_sc.h5") as ho,
                ):
                    k, mask = hf["kspace"][()], ho["mask"][()]
                with h5py.File(masked, "w") as hf:
                    hf["kspace"], hf["mask"] = k, mask
            timed(
                "sigpy",
                [sys.executable, "-c", SIGPY_LOOP, str(masked), str(FIXED), str(iterations)],
            )
    return times


def summarise(rows: list[Row], label: str = "") -> None:
    """Print the mean SSIM per acceleration over ``rows`` (oracle, auto, fixed, sigpy)."""
    grid = ORACLE_GRID
    print(
        f"\n# mean SSIM per acceleration{label} (grid: " + ", ".join(f"{v:g}" for v in grid) + ")"
    )
    for acc in sorted({r.acc for r in rows}):
        sel = [r for r in rows if r.acc == acc]
        table = np.stack([r.grid for r in sel])
        best = int(table.mean(0).argmax())
        oracle = float(table.max(1).mean())
        # The SSIM at each scan's least-NMSE grid lambda: an error-energy criterion's limit.
        by_nmse = float(np.mean([r.grid[int(r.grid_nmse.argmin())] for r in sel]))
        auto = float(np.mean([r.auto for r in sel]))
        sig = float(np.mean([r.sigpy for r in sel]))
        t_a, t_f = sum(r.t_auto for r in sel), sum(r.t_fixed for r in sel)
        plain = np.stack([r.grid_plain for r in sel])
        oracle_p, auto_p = float(plain.max(1).mean()), float(np.mean([r.auto_plain for r in sel]))
        best_p = int(plain.mean(0).argmax())
        print(
            f"{acc:.0f}x ({len(sel)} scans): oracle {oracle:.4f}, auto {auto:.4f} "
            f"(oracle - auto {oracle - auto:+.4f}), best fixed {grid[best]:g} "
            f"{table.mean(0)[best]:.4f}, fixed {FIXED:g} {table.mean(0)[grid.index(FIXED)]:.4f}, "
            f"sigpy {FIXED:g} {sig:.4f}; NMSE oracle {by_nmse:.4f} (oracle - NMSE oracle "
            f"{oracle - by_nmse:+.4f}); time auto {t_a:.1f} s vs fixed {t_f:.1f} s "
            f"({t_a / t_f:.1f}x)\n    plain |x| (noise_floor: false): oracle {oracle_p:.4f}, "
            f"auto {auto_p:.4f} (oracle - auto {oracle_p - auto_p:+.4f}), best fixed "
            f"{grid[best_p]:g} {plain.mean(0)[best_p]:.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer scans and 30 iterations")
    p.add_argument("--iterations", type=int, default=None, help="default 100 (30 with --quick)")
    p.add_argument("--threads", type=int, default=None, help="torch / OpenMP threads")
    p.add_argument("--skip-e2e", action="store_true", help="quality part only")
    p.add_argument("--e2e-only", action="store_true", help="end-to-end part only")
    p.add_argument("--repeats", type=int, default=3, help="end-to-end runs of each (least kept)")
    p.add_argument(
        "--extended",
        action="store_true",
        help=f"also synthetic single-coil seeds {EXTRA_SC.start}-{EXTRA_SC.stop - 1} and "
        f"multi-coil {EXTRA_MC.start}-{EXTRA_MC.stop - 1} (means for the main scans and all)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    iterations = args.iterations or (30 if args.quick else 100)
    import pywt
    import sigpy

    print(
        f"# bench_cs: {platform.machine()} CPU, torch threads={torch.get_num_threads()}, "
        f"iterations={iterations}; torch {torch.__version__}, sigpy {sigpy.__version__}, "
        f"pywt {pywt.__version__}, numpy {np.__version__}, python {platform.python_version()}"
    )
    grid = ORACLE_GRID
    start = time.perf_counter()
    rows = []
    print(f"{'scan':28s} {'acc':>3s} | {'oracle':>13s} | {'auto':>13s} | {'ssim@1e-3':>9s} "
          f"{'sigpy':>6s} | {'plain: oracle':>13s} {'auto':>6s} {'@1e-3':>6s} | "
          f"{'t auto':>6s} {'fixed':>6s} {'sigpy':>6s} | {'NMSE oracle':>13s}")  # fmt: skip
    main_scans = [] if args.e2e_only else scans(args.quick)
    extra = extra_scans() if args.extended and not args.e2e_only else []
    for scan in main_scans + extra:
        for cf, acc in PAIRS:
            r = run_scan(scan, cf, acc, iterations)
            rows.append(r)
            j, e = int(r.grid.argmax()), int(r.grid_nmse.argmin())
            print(
                f"{r.scan:28s} {acc:3.0f} | {grid[j]:.2g} {r.grid[j]:.4f} | {r.auto_lam:.2g} "
                f"{r.auto:.4f} | {r.grid[grid.index(FIXED)]:9.4f} {r.sigpy:6.4f} | "
                f"{r.grid_plain.max():13.4f} {r.auto_plain:6.4f} "
                f"{r.grid_plain[grid.index(FIXED)]:6.4f} | {r.t_auto:6.2f} {r.t_fixed:6.2f} {r.t_sigpy:6.2f} | "
                f"{grid[e]:.2g} {r.grid[e]:.4f}",
                flush=True,
            )
    if rows:
        summarise(rows)
    if rows and extra:
        names = {scan.name for scan in main_scans}
        summarise([r for r in rows if r.scan in names], " main scans")
    if rows:
        print(f"# quality part {time.perf_counter() - start:.0f} s")
    if not args.skip_e2e:
        t = end_to_end(iterations, args.threads, args.repeats)
        print(
            f"# end to end, 8 single-coil 256x256 slices, {iterations} iterations, least of "
            f"{args.repeats}: "
            f"mrirecon fixed {t['fixed']:.1f} s, auto {t['auto']:.1f} s, sigpy loop "
            f"{t['sigpy']:.1f} s -> sigpy/fixed {t['sigpy'] / t['fixed']:.1f}x, "
            f"sigpy/auto {t['sigpy'] / t['auto']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
