"""Benchmark ``mrirecon reconstruct`` end to end: throughput and peak memory vs number of files.

Every measurement runs ``reconstruct_folder`` (file reads, masking, the method, atomic
writes of submission files) in a fresh Python process, so peaks are independent:

- throughput: volumes/s and slices/s of the whole loop, including file I/O;
- peak memory: the process's peak resident set (``VmHWM`` from /proc/self/status), the
  part of it added by the loop (peak minus the resident set after imports and model
  load), and ``torch.cuda.max_memory_allocated`` on CUDA.

The memory check runs the same method on 10 and on 100 files (copies of one small
volume, renamed) and prints the ratio of the peaks: streaming volume by volume keeps it
at ~1.0. Zero-filled is the I/O-bound reference row: the time the loop costs without a
model.

Usage::

    python scripts/bench_reconstruct.py                    # defaults below (CPU; +CUDA if present)
    python scripts/bench_reconstruct.py --counts 10 100 --cs-files 4 --slices 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def vm_kib(key: str) -> int:
    """A /proc/self/status field in KiB (VmHWM = peak RSS, VmRSS = current); 0 if unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) if key == "VmHWM" else 0


def make_data(folder: Path, count: int, slices: int, coils: int, seed: int = 0) -> Path:
    """``count`` copies of one synthetic multi-coil volume (128 x 128 recon, 256 x 144 k-space)."""
    from mrirecon.synth.volumes import SynthConfig, synthesize

    src_dir = folder / "_src"
    if not src_dir.is_dir():
        cfg = SynthConfig(seed=seed, num_singlecoil=0, num_multicoil=1, slices=slices,
                          coils=(coils, coils), pad_prob=0.0, prefix="bench")  # fmt: skip
        synthesize(src_dir, cfg)
    (src,) = sorted(src_dir.glob("*.h5"))
    out = folder / f"n{count}"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        dst = out / f"bench_{i:04d}.h5"
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
    return out


def make_checkpoint(path: Path, chans: int, pools: int) -> Path:
    """An untrained U-Net checkpoint in the training format (speed does not depend on weights)."""
    import torch

    from mrirecon.train.checkpoint import Checkpoint, save_checkpoint
    from mrirecon.train.config import train_config_from_dict

    cfg = train_config_from_dict({"model": {"chans": chans, "num_pool_layers": pools}})
    torch.manual_seed(0)
    net = cfg.model.build()
    save_checkpoint(path, Checkpoint(config=cfg, model=net.state_dict()))
    return path


def worker(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    import torch

    from mrirecon.methods import MethodOptions, make_spec
    from mrirecon.reconstruct import ReconJob, reconstruct_folder

    options = MethodOptions(
        checkpoint=Path(args.checkpoint) if args.method == "unet" else None,
        cs_overrides=(f"iterations={args.cs_iterations}",) if args.method == "cs" else (),
    )
    spec = make_spec(args.method, options)
    job = ReconJob(Path(args.input), Path(args.output), method=spec, device=args.device,
                   progress=False)  # fmt: skip
    # Warm up (model load, kernels, allocator) on one file outside the timed run.
    first = sorted(Path(args.input).glob("*.h5"))[:1]
    warm_dir = Path(args.output).with_name(Path(args.output).name + "_warm")
    reconstruct_folder(ReconJob(Path(args.input), warm_dir, method=spec, device=args.device,
                                progress=False, files=tuple(first)))  # fmt: skip
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = vm_kib("VmRSS")
    t0 = time.perf_counter()
    rep = reconstruct_folder(job)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    if rep.failed:
        raise SystemExit(f"benchmark run failed: {rep.failed[:2]}")
    res = {
        "method": args.method,
        "device": args.device,
        "files": len(rep.written),
        "slices": rep.slices,
        "seconds": sec,
        "peak_rss_mib": vm_kib("VmHWM") / 1024,
        "base_rss_mib": base / 1024,
        "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20
        if args.device.startswith("cuda")
        else None,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(res))


def measure(method: str, device: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--method", method, "--device", device,
           "--input", str(data), "--output", str(out), "--checkpoint", str(args.checkpoint),
           "--cs-iterations", str(args.cs_iterations)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({method}, {device}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def row(r: dict) -> str:
    cuda = f"{r['cuda_peak_mib']:.0f}" if r["cuda_peak_mib"] is not None else "-"
    return (
        f"| {r['method']} | {r['device']} | {r['files']} | {r['slices']} | {r['seconds']:.2f} | "
        f"{r['files'] / r['seconds']:.2f} | {r['slices'] / r['seconds']:.1f} | "
        f"{r['peak_rss_mib']:.0f} | {r['peak_rss_mib'] - r['base_rss_mib']:.0f} | {cuda} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--counts", type=int, nargs="+", default=[10, 100], help="files per run")
    p.add_argument("--slices", type=int, default=4, help="slices per volume")
    p.add_argument("--coils", type=int, default=8)
    p.add_argument("--chans", type=int, default=32, help="U-Net channels (fastMRI: 32)")
    p.add_argument("--pools", type=int, default=4)
    p.add_argument("--cs-files", type=int, default=2, help="files for the CS rows")
    p.add_argument("--cs-iterations", type=int, default=100)
    p.add_argument("--workdir", type=Path, default=None)
    # worker mode (internal)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--method", default="unet", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--input", default="", help=argparse.SUPPRESS)
    p.add_argument("--output", default="", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_recon_"))
    args.checkpoint = make_checkpoint(work / "unet.pt", args.chans, args.pools)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")  # fmt: skip
    print(f"volumes: {args.slices} slices x {args.coils} coils, k-space 256 x 144, recon 128 x 128; "
          f"U-Net chans {args.chans}, {args.pools} pools; CS {args.cs_iterations} iterations")  # fmt: skip
    print()
    header = ("| method | device | files | slices | seconds | volumes/s | slices/s | peak RSS MiB "
              "| loop RSS MiB | CUDA peak MiB |")  # fmt: skip
    print(header)
    print("|" + "---|" * 10)
    results: dict[tuple[str, str, int], dict] = {}
    plan = [("zero-filled", "cpu", n) for n in args.counts]
    plan += [("unet", d, n) for d in devices for n in args.counts]
    plan += [("cs", d, args.cs_files) for d in devices]
    for method, device, n in plan:
        data = make_data(work, n, args.slices, args.coils)
        out = work / f"out_{method}_{device}_{n}"
        shutil.rmtree(out, ignore_errors=True)
        r = measure(method, device, data, out, args)
        results[(method, device, n)] = r
        print(row(r), flush=True)
    print()
    lo, hi = min(args.counts), max(args.counts)
    for method, device in [("zero-filled", "cpu")] + [("unet", d) for d in devices]:
        a, b = results[(method, device, lo)], results[(method, device, hi)]
        line = (f"{method}/{device}: peak RSS {hi} files / {lo} files = "
                f"{b['peak_rss_mib'] / a['peak_rss_mib']:.3f}")  # fmt: skip
        if a["cuda_peak_mib"]:
            line += f"; CUDA peak ratio {b['cuda_peak_mib'] / a['cuda_peak_mib']:.3f}"
        print(line)
    zf = results[("zero-filled", "cpu", hi)]
    un = results[("unet", "cpu", hi)]
    print(f"unet/cpu slices/s vs zero-filled (I/O-bound reference): "
          f"{un['slices'] / un['seconds']:.1f} vs {zf['slices'] / zf['seconds']:.1f} "
          f"(ratio {(un['slices'] / un['seconds']) / (zf['slices'] / zf['seconds']):.3f})")  # fmt: skip
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
