#!/usr/bin/env python
"""E2E-VarNet memory and speed: mrirecon's VarNet vs fastmri.models.VarNet, one run.

Three variants see the same masked k-space, the same weights (fastMRI's, loaded into
ours with ``norm="instance"``) and the same loss (mean of the cropped RSS output):

- ``fastmri``: ``fastmri.models.VarNet`` (real/imaginary last-dim tensors), fp32;
- ``ours``: ``mrirecon.models.varnet.VarNet``, fp32 (bf16 autocast on CUDA with ``--amp``);
- ``ours+ckpt``: the same with per-cascade activation checkpointing.

Each variant runs in a fresh subprocess. Activation memory of one forward+backward pass is
reported two ways: ``saved MiB``, the bytes autograd keeps for the backward pass (each
storage counted once, weights excluded; exact and the same on any device), and on CUDA the
``max_memory_allocated`` rise during the pass (which also counts temporaries and the
recomputation of a checkpointed cascade). Time is the best of
``--repeats`` passes. Outputs are checked equal to fastMRI's (max relative difference).

    python scripts/bench_varnet.py --threads 1                          # CPU: 4 cascades, 4 coils, 128x128
    python scripts/bench_varnet.py --device cuda --cascades 12 --coils 15 --height 640 --width 368
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import torch


def _inputs(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, args.coils, args.height, args.width)
    k = torch.complex(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))
    mask = torch.rand(args.width, generator=gen) < 0.25
    c = args.width // 2
    mask[c - args.width // 25 : c + args.width // 25] = True  # fully sampled centre
    return k * mask, mask


def _models(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.nn.Module]:
    from fastmri.models import VarNet as FastmriVarNet

    from mrirecon.models.varnet import VarNetConfig

    torch.manual_seed(0)
    ref = FastmriVarNet(num_cascades=args.cascades, chans=args.chans, pools=args.pools,
                        sens_chans=args.sens_chans, sens_pools=args.pools)  # fmt: skip
    cfg = VarNetConfig(num_cascades=args.cascades, chans=args.chans, pools=args.pools,
                       sens_chans=args.sens_chans, sens_pools=args.pools, norm="instance",
                       checkpointing=args.variant == "ours+ckpt")  # fmt: skip
    ours = cfg.build()
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def worker(args: argparse.Namespace) -> None:
    """One variant in this process; prints one JSON line."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    k, mask = _inputs(args)
    ref, ours = _models(args)
    net = (ref if args.variant == "fastmri" else ours).to(device).train()
    k, mask = k.to(device), mask.to(device)
    use_amp = args.amp and device.type == "cuda" and args.variant != "fastmri"

    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        # Bytes kept alive for backward: each storage counted once.
        st = t.untyped_storage()
        saved[st.data_ptr()] = st.nbytes()
        return t

    def step() -> torch.Tensor:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                if args.variant == "fastmri":
                    out = net(torch.view_as_real(k), mask.reshape(1, 1, 1, -1, 1).expand(
                        k.shape[0], 1, 1, -1, 1))  # fmt: skip
                else:
                    out = net(k, mask)
        out.float().mean().backward()
        net.zero_grad(set_to_none=True)
        return out.detach().float()

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    step()  # the measured pass for memory
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    saved_bytes = sum(b for ptr, b in saved.items() if ptr not in weights)
    peak = float("nan")
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    with torch.no_grad():
        ref_out = ref.to(device)(torch.view_as_real(k), mask.reshape(1, 1, 1, -1, 1).expand(
            k.shape[0], 1, 1, -1, 1))  # fmt: skip
        our_out = ours.to(device)(k, mask)
    diff = float((our_out - ref_out).abs().max() / ref_out.abs().max())
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"variant": args.variant, "saved_mib": saved_bytes / 2**20,
                      "peak_mib": peak, "seconds": best, "max_rel_diff_vs_fastmri": diff}))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cascades", type=int, default=4)
    p.add_argument("--chans", type=int, default=18)
    p.add_argument("--sens-chans", type=int, default=8)
    p.add_argument("--pools", type=int, default=4)
    p.add_argument("--coils", type=int, default=4)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--amp", action="store_true", help="bf16 autocast for ours (CUDA only)")
    p.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        worker(args)
        return
    rows = {}
    for variant in ("fastmri", "ours", "ours+ckpt"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(f"{variant} failed:\n{proc.stderr[-2000:]}")
        rows[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    dev = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor()
    print(f"# VarNet {args.cascades} cascades, chans {args.chans}, {args.coils} coils, "
          f"{args.height}x{args.width}, batch {args.batch}, {args.device} ({dev}), "
          f"{args.threads} thread(s), torch {torch.__version__}")  # fmt: skip
    print(f"{'variant':<10} {'saved MiB':>10} {'fastmri/ours':>12} {'CUDA peak MiB':>14} "
          f"{'fastmri/ours':>12} {'s/step':>8} {'speed vs fastmri':>17} {'max rel diff':>13}")  # fmt: skip
    ref = rows["fastmri"]
    for v, r in rows.items():
        print(f"{v:<10} {r['saved_mib']:>10.1f} {ref['saved_mib'] / r['saved_mib']:>11.2f}x "
              f"{r['peak_mib']:>14.1f} {ref['peak_mib'] / r['peak_mib']:>11.2f}x "
              f"{r['seconds']:>8.3f} {ref['seconds'] / r['seconds']:>16.2f}x "
              f"{r['max_rel_diff_vs_fastmri']:>13.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
