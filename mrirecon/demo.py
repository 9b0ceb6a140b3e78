"""The offline demo's steps: demo data, demo training, and the comparison.

Every step reuses what an earlier run left behind: the data (a marker records a finished
write), a finished checkpoint (an unfinished run is resumed) and finished
reconstructions. ``mrirecon demo`` (:mod:`mrirecon.cli.demo`) only wires them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import mrirecon
from mrirecon.errors import ConfigError
from mrirecon.io import atomic_write

if TYPE_CHECKING:  # the data, training and compare stacks are imported only to run
    from mrirecon.compare import CompareResult
    from mrirecon.synth.volumes import DemoLayout

__all__ = [
    "DATA_MARKER",
    "DEMO_CONFIG",
    "DEMO_VARNET_CONFIG",
    "find_demo_config",
    "demo_data",
    "train_demo",
    "compare_demo",
]

DATA_MARKER = ".demo-data.json"
DEMO_CONFIG = "demo.yaml"
DEMO_VARNET_CONFIG = "demo_varnet.yaml"


def find_demo_config(name: str = DEMO_CONFIG) -> Path:
    """configs/NAME (default demo.yaml): in $MRIRECON_CONFIG_DIR, the package, or the
    source checkout.

    Raises:
        ConfigError: no folder holds it.
    """
    here = Path(mrirecon.__file__).resolve().parent
    dirs = [Path(d) for d in (os.environ.get("MRIRECON_CONFIG_DIR"),) if d]
    dirs += [here / "configs", here.parent / "configs"]
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise ConfigError(
        f"{name}: not found in {', '.join(map(str, dirs))}; pass --config or set "
        "MRIRECON_CONFIG_DIR"
    )


def demo_data(root: Path) -> DemoLayout:
    """The demo layout in ``root``, written once (a marker records a finished write).

    Args:
        root: the data folder (train/, val/ and real/ go inside).

    Returns:
        the :class:`~mrirecon.synth.volumes.DemoLayout`.
    """
    from mrirecon.synth.volumes import DemoLayout, demo_dataset

    marker = root / DATA_MARKER
    layout = DemoLayout(root / "train", root / "val", root / "real")
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text())
        except ValueError:
            meta = {}
        files = meta.get("files", []) if isinstance(meta, dict) else []
        if (
            isinstance(meta, dict)
            and meta.get("version") == mrirecon.__version__
            and all((root / f).is_file() for f in files)
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


def train_demo(
    cfg_path: Path,
    device: str,
    layout: DemoLayout | None,
    run_dir: Path,
    label: str = "U-Net",
) -> Path:
    """Train (or resume, or reuse) a demo model; returns its final checkpoint (last.pt).

    The final weights are used, not the best-on-validation ones, because the validation
    volumes are also the comparison's test volumes.

    Args:
        cfg_path: the training config.
        device: ``auto``, ``cpu`` or ``cuda`` (``run.device``).
        layout: the demo data (unused when a finished checkpoint is reused).
        run_dir: the run folder.
        label: the model's name in progress lines (the config decides what it is).

    Returns:
        the path of last.pt.
    """
    from mrirecon.train.checkpoint import load_checkpoint
    from mrirecon.train.config import load_train_config
    from mrirecon.train.fit import fit

    cfg = load_train_config(cfg_path, [f"run.device={device}"])
    last = run_dir / "last.pt"
    resume = False
    if last.is_file():
        if load_checkpoint(last).epoch + 1 >= cfg.run.epochs:
            print(f"[2/3] {label}: reusing finished checkpoint {last}", flush=True)
            return last
        resume = True
    if layout is None:
        raise ConfigError(f"{run_dir}: no finished checkpoint and no demo data to train on")
    t0 = time.perf_counter()
    print(
        f"[2/3] {label}: training {cfg_path.name} ({cfg.run.epochs} epochs) in {run_dir}",
        flush=True,
    )
    fit(cfg, layout.train_dir, run_dir, val_root=layout.val_dir, resume=resume)
    print(f"[2/3] {label}: trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return last


GENERALIST = "unet-generalist"
VARNET_GENERALIST = "varnet-generalist"


def compare_demo(
    out: Path,
    layout: DemoLayout,
    checkpoint: Path,
    accelerations: Sequence[float],
    device: str,
    varnet: Path | None = None,
) -> CompareResult:
    """Compare zero-filled, CS, the shipped generalist U-Net and VarNet (when this
    installation has them) and the demo-trained U-Net (and VarNet) on the validation
    volumes and the real scans.

    Args:
        out: the demo folder (metrics.csv, summary.md and report.html go here).
        layout: the demo data.
        checkpoint: the demo U-Net.
        accelerations: compare at these (fastMRI's centre fraction for each).
        device: ``cpu`` or ``cuda``.
        varnet: the demo VarNet (None: none was trained).

    Returns:
        the comparison's result.
    """
    from mrirecon.compare import CompareConfig, run_compare
    from mrirecon.data.masks import MaskSpec
    from mrirecon.methods import CSSpec, MethodSpec, UnetSpec, VarNetSpec, ZeroFilledSpec
    from mrirecon.models.registry import PREFIX, shipped_models

    shipped = {m.name for m in shipped_models()}
    methods: list[MethodSpec] = [ZeroFilledSpec(), CSSpec()]
    if GENERALIST in shipped:
        methods.append(UnetSpec(Path(PREFIX + GENERALIST), tag="pretrained"))
    methods.append(UnetSpec(checkpoint, tag="demo"))
    if VARNET_GENERALIST in shipped:
        methods.append(VarNetSpec(Path(PREFIX + VARNET_GENERALIST), tag="pretrained"))
    if varnet is not None:
        methods.append(VarNetSpec(varnet, tag="demo"))
    print(f"[3/3] compare at {', '.join(f'{a:g}x' for a in accelerations)}", flush=True)
    return run_compare(
        CompareConfig(
            data=(layout.val_dir, layout.real_dir),
            out=out,
            methods=tuple(methods),
            mask=MaskSpec.paired("random", accelerations),
            device=device,
        )
    )
