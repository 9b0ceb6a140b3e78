"""``mrirecon demo [--out DIR]``: the whole pipeline offline, in minutes, on a laptop CPU.

1. Writes the embedded demo data (:func:`mrirecon.synth.volumes.demo_dataset`): simulated
   multi-coil training and held-out validation volumes plus the real TU Graz brain scan
   and a real phantom scan.
2. Trains the demo U-Net (``configs/demo.yaml``) and the demo E2E-VarNet
   (``configs/demo_varnet.yaml``; ``--no-varnet`` skips it) on the training volumes (CUDA
   when available, else CPU).
3. Compares zero-filled, CS, the shipped pretrained models and the demo models at 4x and
   8x on the validation volumes and the real scans, and writes metrics.csv, summary.md and
   report.html into DIR.

Every step reuses what an earlier run left in DIR: the data, a finished checkpoint (an
unfinished run is resumed) and finished reconstructions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mrirecon.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser(
        "demo",
        help="offline end-to-end demo: data, training, comparison report (a few minutes)",
        description="Build the embedded demo data, train the demo U-Net and E2E-VarNet, "
        "compare zero-filled, CS and the learned models at 4x and 8x, and write metrics.csv "
        "and report.html into --out. Rerunning reuses the data, finished checkpoints and "
        "finished reconstructions.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)"
    )
    p.add_argument(
        "--config", type=Path, default=None, help="U-Net config (default: configs/demo.yaml)"
    )
    p.add_argument(
        "--varnet-config",
        type=Path,
        default=None,
        help="E2E-VarNet config (default: configs/demo_varnet.yaml)",
    )
    p.add_argument("--no-varnet", action="store_true", help="train and compare no demo VarNet")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--accelerations", type=float, nargs="+", default=[4.0, 8.0], help="compare at these"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Data, training and comparison, each reused when an earlier run finished it."""
    import torch

    from mrirecon.demo import (
        DEMO_VARNET_CONFIG,
        compare_demo,
        demo_data,
        find_demo_config,
        train_demo,
    )

    t0 = time.perf_counter()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA device is available")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = args.config or find_demo_config()
    layout = demo_data(out / "data")
    ckpt = train_demo(cfg_path, device, layout, out / "run")
    varnet = None
    if not args.no_varnet:
        varnet_cfg = args.varnet_config or find_demo_config(DEMO_VARNET_CONFIG)
        varnet = train_demo(varnet_cfg, device, layout, out / "run_varnet", label="VarNet")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    on = "cuda" if use_cuda else "cpu"
    result = compare_demo(out, layout, ckpt, args.accelerations, on, varnet=varnet)
    print()
    print(result.summary)
    for what, why in result.failed:
        print(f"FAILED {what}: {why}")
    print(f"\nmetrics: {result.paths['metrics']}")
    print(f"report: {result.paths['html'].resolve()}")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return 0 if result.ok else 1
