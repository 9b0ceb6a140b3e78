#!/usr/bin/env python3
"""Loader throughput: mrirecon SliceDataset + UnetTransform vs fastmri SliceDataset + UnetDataTransform.

Both read the same fastMRI-format files (synthetic, 640x368 k-space, 320x320 targets, real
ISMRMRD header), draw the same fastMRI-seeded 4x random masks, and produce the same
normalised zero-filled image (checked here). Prints slices/s of each and the ratio.

    python scripts/bench_loader.py [--slices 8] [--repeats 3] [--workers 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_files(root: Path, slices: int) -> dict[str, Path]:
    from mrirecon.synth.volumes import SynthConfig, synthesize

    out = {}
    for name, n_sc, n_mc in (("singlecoil", 2, 0), ("multicoil", 0, 2)):
        cfg = SynthConfig(
            seed=7,
            num_singlecoil=n_sc,
            num_multicoil=n_mc,
            slices=slices,
            recon_size=(320, 320),
            coils=(15, 15),
            pad_prob=0.0,
            prefix=f"bench_{name}",
        )
        folder = root / name
        synthesize(folder, cfg)
        out[name] = folder
    return out


def iterate(ds, workers: int) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, shuffle=False)
    t0 = time.perf_counter()
    n = 0
    for _ in loader:
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=8, help="slices per volume (2 volumes per kind)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (DataLoader workers run with 1; also keeps timings stable on a shared machine)",
    )
    args = ap.parse_args()

    import fastmri
    from fastmri.data import SliceDataset as FMSliceDataset
    from fastmri.data.subsample import RandomMaskFunc
    from fastmri.data.transforms import UnetDataTransform

    from mrirecon import __version__
    from mrirecon.data.dataset import SliceDataset
    from mrirecon.data.masks import MaskSpec
    from mrirecon.data.transforms import UnetTransform

    torch.set_num_threads(args.threads)
    print(
        f"device: CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    print(
        f"versions: mrirecon {__version__}, fastmri {fastmri.__version__}, torch {torch.__version__}, numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_files(Path(tmp), args.slices)
        for challenge, folder in folders.items():
            ref = FMSliceDataset(
                root=folder,
                challenge=challenge,
                transform=UnetDataTransform(
                    challenge, mask_func=RandomMaskFunc([0.08], [4]), use_seed=True
                ),
            )
            ours = SliceDataset(
                folder, transform=UnetTransform(MaskSpec("random", (0.08,), (4,)), mode="eval")
            )
            diff = max(
                float((ours[i].image[0] - ref[i].image).abs().max()) for i in range(len(ours))
            )
            r_ref = [iterate(ref, args.workers) for _ in range(args.repeats)]
            r_ours = [iterate(ours, args.workers) for _ in range(args.repeats)]
            best_ref, best_ours = max(r_ref), max(r_ours)
            shape = "x".join(map(str, ours.volumes[0].kspace_shape[1:]))
            print(
                f"{challenge:<10} kspace {shape:<14} fastmri {best_ref:7.1f} slices/s | "
                f"mrirecon {best_ours:7.1f} slices/s | ratio {best_ours / best_ref:5.2f}x | "
                f"max |image diff| {diff:.1e}"
            )
            ours.close()


if __name__ == "__main__":
    main()
