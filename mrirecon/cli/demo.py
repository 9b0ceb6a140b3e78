"""``mrirecon demo [--out DIR]``: the whole pipeline offline, in minutes, on a laptop CPU.

1. Writes the embedded demo data (:func:`mrirecon.data.synth.demo_dataset`): simulated
   multi-coil training and held-out validation volumes plus the real TU Graz brain scan
   and a real phantom scan.
2. Trains the demo U-Net (``configs/demo.yaml``) on the training volumes (CUDA when
   available, else CPU).
3. Compares zero-filled, CS and U-Net at 4x and 8x on the validation volumes and the
   real scans, and writes metrics.csv, summary.md and report.html into DIR.

Every step reuses what an earlier run left in DIR: the data, a finished checkpoint (an
unfinished run is resumed) and finished reconstructions.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import mrirecon
from mrirecon.io import atomic_write

DATA_MARKER = ".demo-data.json"
DEMO_CONFIG = "demo.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="offline end-to-end demo: data, training, comparison report (a few minutes)",
        description="Build the embedded demo data, train the demo U-Net, compare zero-filled, "
        "CS and U-Net at 4x and 8x, and write metrics.csv and report.html into --out. "
        "Rerunning reuses the data, the finished checkpoint and finished reconstructions.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)"
    )
    p.add_argument(
        "--config", type=Path, default=None, help="training config (default: configs/demo.yaml)"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--accelerations", type=float, nargs="+", default=[4.0, 8.0], help="compare at these"
    )
    p.set_defaults(func=run)


def find_demo_config() -> Path:
    """configs/demo.yaml: in $MRIRECON_CONFIG_DIR, the package, or the source checkout."""
    here = Path(mrirecon.__file__).resolve().parent
    dirs = [Path(d) for d in (os.environ.get("MRIRECON_CONFIG_DIR"),) if d]
    dirs += [here / "configs", here.parent / "configs"]
    for d in dirs:
        if (d / DEMO_CONFIG).is_file():
            return d / DEMO_CONFIG
    raise ValueError(
        f"{DEMO_CONFIG}: not found in {', '.join(map(str, dirs))}; pass --config or set "
        "MRIRECON_CONFIG_DIR"
    )


def demo_data(root: Path):
    """The demo layout in ``root``, written once (a marker records a finished write)."""
    from mrirecon.data.synth import DemoLayout, demo_dataset

    marker = root / DATA_MARKER
    layout = DemoLayout(root / "train", root / "val", root / "real")
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text())
        except ValueError:
            meta = {}
        if meta.get("version") == mrirecon.__version__ and all(
            (root / f).is_file() for f in meta.get("files", [])
        ):
            print(f"[1/3] demo data: reusing {root}", flush=True)
            return layout
    t0 = time.perf_counter()
    layout = demo_dataset(root)
    files = sorted(str(p.relative_to(root)) for d in layout for p in Path(d).glob("*.h5"))
    with atomic_write(marker) as tmp:
        tmp.write_text(json.dumps({"version": mrirecon.__version__, "files": files}))
    print(
        f"[1/3] demo data: {len(files)} files in {root} ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return layout


def train_demo(cfg_path: Path, device: str, layout, run_dir: Path) -> Path:
    """Train (or resume, or reuse) the demo U-Net; returns its final checkpoint (last.pt).

    The final weights are used, not the best-on-validation ones, because the validation
    volumes are also the comparison's test volumes.
    """
    from mrirecon.train.checkpoint import load_checkpoint
    from mrirecon.train.config import load_config
    from mrirecon.train.fit import fit

    cfg = load_config(cfg_path, [f"run.device={device}"])
    last = run_dir / "last.pt"
    resume = False
    if last.is_file():
        ckpt = load_checkpoint(last)
        if int(ckpt["epoch"]) + 1 >= cfg.run.epochs:
            print(f"[2/3] U-Net: reusing finished checkpoint {last}", flush=True)
            return last
        resume = True
    t0 = time.perf_counter()
    print(
        f"[2/3] U-Net: training {cfg_path.name} ({cfg.run.epochs} epochs) in {run_dir}", flush=True
    )
    fit(cfg, layout.train_dir, run_dir, val_root=layout.val_dir, resume=resume)
    print(f"[2/3] U-Net: trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return last


def run(args: argparse.Namespace) -> int:
    from mrirecon import methods as _methods  # noqa: F401  (registers unet and cs)
    from mrirecon.compare import CompareConfig, fastmri_pairs, run_compare

    t0 = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = args.config or find_demo_config()
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available")
    layout = demo_data(out / "data")
    ckpt = train_demo(cfg_path, device, layout, out / "run")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    print(f"[3/3] compare at {', '.join(f'{a:g}x' for a in args.accelerations)}", flush=True)
    result = run_compare(
        CompareConfig(
            data=(layout.val_dir, layout.real_dir),
            out=out,
            checkpoint=ckpt,
            accelerations=tuple(args.accelerations),
            center_fractions=fastmri_pairs(args.accelerations, ()),
            device="cuda" if use_cuda else "cpu",
        )
    )
    print()
    print(result.summary)
    for what, why in result.failed:
        print(f"FAILED {what}: {why}")
    print(f"\nmetrics: {result.paths['metrics']}")
    print(f"report: {result.paths['html'].resolve()}")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return 0 if result.ok else 1
