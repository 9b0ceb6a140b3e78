"""Benchmark: mrirecon CS vs sigpy's L1WaveletRecon on the same slices, in one run.

For every case (synthetic 320x320 single-coil, synthetic 15-coil 640x368, the real TU Graz
4-coil brain and the real 2-coil twix phantom) both methods reconstruct the same masked
k-space (fastMRI-seeded random masks) with the same relative lambda and the same number of
iterations:

- ours: ``mrirecon.cs.cs_reconstruct`` end to end (ESPIRiT on the rectangular ACS block,
  FISTA, batched over slices), default config (db4, 4 levels);
- sigpy: per slice ``EspiritCalib(calib_width=num_low, crop=0)`` + ``L1WaveletRecon``
  (db4 with zero padding, max level);
- ours with sigpy's maps (solver-only timing and solver parity).

It prints seconds per slice, the throughput ratio (sigpy / ours) and SSIMs against the
target (fastMRI volume SSIM), plus ours-vs-sigpy SSIM with identical maps.

    python scripts/bench_cs.py                 # full run (< ~10 min on 2 CPU cores)
    python scripts/bench_cs.py --quick         # a smoke run
    python scripts/bench_cs.py --device cuda   # ours on the GPU (sigpy stays on the CPU)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import NamedTuple

import h5py
import numpy as np
import torch

from mrirecon.cs.config import CSConfig
from mrirecon.cs.operators import sense_adjoint
from mrirecon.cs.recon import cs_reconstruct, solve_batch
from mrirecon.data.assets import asset_path
from mrirecon.data.masks import MaskSpec, eval_rng
from mrirecon.data.transforms import zero_filled
from mrirecon.fft import center_crop
from mrirecon.metrics import ssim
from mrirecon.synth.volumes import SynthConfig, make_volume


class Case(NamedTuple):
    name: str
    fname: str  # seeds the mask (fastMRI validation seeding)
    kspace: torch.Tensor  # (S, C, H, W)
    target: np.ndarray  # (S, h, w)
    multicoil: bool
    cf: float
    acc: float


def synthetic(slices: int, multicoil: bool) -> tuple[torch.Tensor, np.ndarray]:
    if multicoil:  # fastMRI brain/knee geometry: 640 x 368 k-space, 320 x 320 target
        cfg = SynthConfig(slices=slices, recon_size=(320, 320), coils=(15, 15), pad_prob=0.0)
    else:  # 320 x 320 single-coil k-space
        cfg = SynthConfig(
            slices=slices, recon_size=(320, 320), kspace_size=(320, 320), pad_prob=0.0
        )
    vol = make_volume(cfg, 0, multicoil)
    k = torch.from_numpy(vol.kspace)
    return (k if multicoil else k[:, None]), vol.target


def real(name: str) -> tuple[torch.Tensor, np.ndarray]:
    with h5py.File(asset_path(name), "r") as hf:
        return torch.from_numpy(hf["kspace"][()]), hf["reconstruction_rss"][()]


def cases(quick: bool) -> list[Case]:
    out = []
    k, t = synthetic(4 if quick else 8, multicoil=False)
    out.append(Case("synthetic single-coil 320x320", "bench_sc320.h5", k, t, False, 0.08, 4.0))
    k, t = synthetic(1 if quick else 2, multicoil=True)
    out.append(Case("synthetic 15-coil 640x368", "bench_mc15.h5", k, t, True, 0.08, 4.0))
    for fname, label in [
        ("tugraz_brain_t2_4ch.h5", "real TU Graz brain 4-coil 256x256"),
        ("twix_gre_phantom_2ch.h5", "real twix phantom 2-coil 160x160"),
    ]:
        k, t = real(fname)
        for cf, acc in [(0.08, 4.0), (0.04, 8.0)]:
            out.append(Case(label, fname, k, t, True, cf, acc))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(case: Case, iterations: int, device: torch.device, batch: int) -> dict:
    import sigpy.mri as mr

    spec = MaskSpec("random", (case.cf,), (case.acc,))
    m = spec.sample(case.kspace.shape[-1], eval_rng(case.fname))
    mask = torch.from_numpy(m.mask)
    k = case.kspace * mask
    crop = case.target.shape[-2:]
    cfg = CSConfig(iterations=iterations, batch_size=batch)
    lam = cfg.lam_for(case.acc)
    zf = zero_filled(k, mask, crop).numpy()

    # ours, end to end (maps included)
    cs_reconstruct(k[:1], mask, crop, cfg.replace(iterations=2), case.acc, device, case.multicoil)
    sync(device)
    t0 = time.perf_counter()
    ours = cs_reconstruct(k, mask, crop, cfg, case.acc, device, case.multicoil).numpy()
    t_ours = (time.perf_counter() - t0) / len(k)

    # sigpy, slice by slice, and ours on sigpy's maps
    t_cal = t_sig = 0.0
    ref, same_maps, all_maps = [], [], []
    for s in range(len(k)):
        ks = k[s].numpy()
        t0 = time.perf_counter()
        if case.multicoil:
            maps = mr.app.EspiritCalib(ks, calib_width=m.num_low, crop=0.0, show_pbar=False).run()
        else:
            maps = np.ones((1, *ks.shape[-2:]), dtype=np.complex64)
        t_cal += time.perf_counter() - t0
        maps_t = torch.from_numpy(np.asarray(maps, dtype=np.complex64))[None]
        lam_abs = lam * float(sense_adjoint(k[s : s + 1], maps_t, mask).abs().max())
        t0 = time.perf_counter()
        x = mr.app.L1WaveletRecon(ks, maps, lam_abs, max_iter=iterations, show_pbar=False).run()
        t_sig += time.perf_counter() - t0
        ref.append(np.abs(center_crop(np.asarray(x), crop)))
        all_maps.append(maps_t)
    maps_b = torch.cat(all_maps)
    sync(device)
    t0 = time.perf_counter()
    for s0 in range(0, len(k), batch):
        res = solve_batch(
            k[s0 : s0 + batch].to(device), mask, lam, cfg, maps=maps_b[s0 : s0 + batch]
        )
        same_maps.append(center_crop(res.image, crop).abs().cpu().numpy())
    sync(device)
    t_solver = (time.perf_counter() - t0) / len(k)
    ref_a, same = np.stack(ref).astype(np.float32), np.concatenate(same_maps)
    n = len(k)
    return {
        "slices": n,
        "t_ours": t_ours,
        "t_sigpy": (t_cal + t_sig) / n,
        "t_ours_solver": t_solver,
        "t_sigpy_solver": t_sig / n,
        "ssim_zf": ssim(case.target, zf),
        "ssim_ours": ssim(case.target, ours),
        "ssim_sigpy": ssim(case.target, ref_a),
        "ssim_ours_sigpy_maps": ssim(case.target, same),
        "ssim_parity": ssim(ref_a, same),
        "lam": lam,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="fewer slices and 30 iterations")
    p.add_argument("--iterations", type=int, default=None, help="default 100 (30 with --quick)")
    p.add_argument("--batch", type=int, default=8, help="slices per CS batch (ours)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    iterations = args.iterations or (30 if args.quick else 100)
    import pywt
    import sigpy

    print(
        f"# bench_cs: device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}), "
        f"torch threads={torch.get_num_threads()}, iterations={iterations}, batch={args.batch}\n"
        f"# torch {torch.__version__}, sigpy {sigpy.__version__}, pywt {pywt.__version__}, "
        f"numpy {np.__version__}, python {platform.python_version()}"
    )
    head = (
        f"{'case':36s} {'acc':>4s} {'n':>2s} | {'ours s/sl':>9s} {'sigpy s/sl':>10s} {'ratio':>6s} | "
        f"{'solver ours':>11s} {'sigpy':>7s} {'ratio':>6s} | {'SSIM zf':>7s} {'ours':>6s} "
        f"{'sigpy':>6s} {'ours@sp':>7s} {'parity':>6s}"
    )
    print(head)
    print("-" * len(head))
    start = time.perf_counter()
    for case in cases(args.quick):
        r = run_case(case, iterations, device, args.batch)
        print(
            f"{case.name:36s} {case.acc:4.0f} {r['slices']:2d} | {r['t_ours']:9.3f} "
            f"{r['t_sigpy']:10.3f} {r['t_sigpy'] / r['t_ours']:5.1f}x | {r['t_ours_solver']:11.3f} "
            f"{r['t_sigpy_solver']:7.3f} {r['t_sigpy_solver'] / r['t_ours_solver']:5.1f}x | "
            f"{r['ssim_zf']:7.4f} {r['ssim_ours']:6.4f} {r['ssim_sigpy']:6.4f} "
            f"{r['ssim_ours_sigpy_maps']:7.4f} {r['ssim_parity']:6.4f}",
            flush=True,
        )
    print(f"# total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
