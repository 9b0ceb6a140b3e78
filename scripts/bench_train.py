#!/usr/bin/env python
"""Training throughput: mrirecon's U-Net + loop vs fastMRI's reference U-Net, one run.

Ours: ``mrirecon.models.Unet`` (GroupNorm) trained by ``mrirecon.train.loop.train_one_epoch``
(L1 loss, Adam, per-step loss/grad-norm reduction and NaN check). On CUDA it uses bf16
autocast, channels_last and ``torch.compile``; on CPU plain fp32 eager (those options are
CUDA-only in the trainer too).
Reference: ``fastmri.models.Unet`` (InstanceNorm, fp32, eager) in a minimal loop with the
same optimiser (Adam, lr 1e-3) and loss (L1).

Both see the same random (N, 1, H, W) batches. Rounds alternate ours/reference so that
load from other processes hits both alike; the best round of each is reported.

    python scripts/bench_train.py            # 320x320, batch 1 and 8, chans 32 and 64
    python scripts/bench_train.py --quick    # 128x128, batch 1 and 8, chans 32
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time

import torch
import torch.nn.functional as F

from mrirecon.models import UnetConfig
from mrirecon.train.config import LossConfig, OptimConfig, SchedConfig
from mrirecon.train.loop import TrainContext, train_one_epoch
from mrirecon.train.losses import build_loss
from mrirecon.train.optim import build_optimizer, build_scheduler
from mrirecon.train.runtime import Runtime


class Batch:
    """The fields of a UnetSample batch that the training step reads."""

    def __init__(self, n: int, size: int, gen: torch.Generator) -> None:
        self.image = torch.randn(n, 1, size, size, generator=gen)
        self.target = self.image + 0.1 * torch.randn(n, 1, size, size, generator=gen)
        self.mean = torch.zeros(n)
        self.std = torch.ones(n)
        self.max_value = torch.zeros(n)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float:
    return (
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    )


def make_ours(chans: int, rt: Runtime, steps: int):
    torch.manual_seed(0)
    net = UnetConfig(chans=chans).build()
    net = net.to(
        rt.device,
        memory_format=torch.channels_last if rt.channels_last else torch.contiguous_format,
    )
    fwd = torch.compile(net) if rt.compile else net
    opt = build_optimizer(net.parameters(), OptimConfig())
    sched = build_scheduler(opt, SchedConfig(), steps, 10**6)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=False)
    loss_fn = build_loss(LossConfig())

    ctx = TrainContext(fwd, opt, sched, scaler, loss_fn, rt, log_every=10**9, show_progress=False)

    def run(batches: list[Batch]) -> None:
        train_one_epoch(ctx, batches, epoch=0, global_step=0)

    return run


def make_reference(chans: int, device: torch.device):
    from fastmri.models import Unet as FastmriUnet

    torch.manual_seed(0)
    net = FastmriUnet(in_chans=1, out_chans=1, chans=chans, num_pool_layers=4, drop_prob=0.0).to(
        device
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def run(batches: list[Batch]) -> None:
        net.train()
        for b in batches:
            image, target = b.image.to(device), b.target.to(device)
            loss = F.l1_loss(net(image), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def timed(run, batches: list[Batch], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    run(batches)
    _sync(device)
    return sum(b.image.shape[0] for b in batches) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128x128, chans 32 only, fewer steps")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--chans", type=int, nargs="+", default=None)
    ap.add_argument("--steps", type=int, default=None, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="CUDA: skip torch.compile")
    ap.add_argument(
        "--threads", type=int, default=0, help="CPU intra-op threads (0: torch default)"
    )
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    size = args.size or (128 if args.quick else 320)
    chans_list = args.chans or ([32] if args.quick else [32, 64])
    steps = args.steps or ((20 if cuda else 2) if args.quick else (50 if cuda else 3))
    rt = Runtime(
        device=device,
        amp_dtype=torch.bfloat16 if cuda else None,
        channels_last=cuda,
        compile=cuda and not args.no_compile,
    )
    if cuda:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = (
            f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        )
    print(f"device: {name}; torch {torch.__version__}; {size}x{size}; timed steps/round {steps}")
    print(
        f"ours: GroupNorm U-Net + mrirecon loop, amp={rt.amp_dtype}, channels_last={rt.channels_last}, "
        f"compile={rt.compile}; reference: fastmri.models.Unet InstanceNorm fp32 eager; Adam + L1"
    )
    header = f"{'chans':>5} {'batch':>5} {'ours sl/s':>10} {'ref sl/s':>10} {'ratio':>6} {'ours GiB':>9} {'ref GiB':>8}"
    print(header)
    print("-" * len(header))
    gen = torch.Generator().manual_seed(0)
    for chans, batch in itertools.product(chans_list, args.batches):
        batches = [Batch(batch, size, gen) for _ in range(steps)]
        warm = batches[: 3 if rt.compile else 1]
        makers = {
            "ours": lambda: make_ours(chans, rt, steps),  # noqa: B023
            "ref": lambda: make_reference(chans, device),  # noqa: B023
        }
        rates: dict[str, list[float]] = {"ours": [], "ref": []}
        peak: dict[str, float] = {}
        if cuda:  # one model on the GPU at a time, so each peak is its own
            for label, maker in makers.items():
                _peak_reset(device)
                run = maker()
                run(warm)  # warm-up (and compilation)
                rates[label] = [timed(run, batches, device) for _ in range(args.rounds)]
                peak[label] = _peak_gib(device)
                del run
        else:  # alternate rounds so that load from other processes hits both alike
            runs = {label: maker() for label, maker in makers.items()}
            for run in runs.values():
                run(warm)
            for _ in range(args.rounds):
                for label, run in runs.items():
                    rates[label].append(timed(run, batches, device))
            peak = {"ours": float("nan"), "ref": float("nan")}
            del runs
        ours, ref = max(rates["ours"]), max(rates["ref"])
        print(
            f"{chans:>5} {batch:>5} {ours:>10.2f} {ref:>10.2f} {ours / ref:>6.2f} "
            f"{peak['ours']:>9.2f} {peak['ref']:>8.2f}",
            flush=True,
        )
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
