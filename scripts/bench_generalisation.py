"""Generalisation benchmark: every method on real scans that no training corpus may use.

Scores zero-filled, CS, every shipped pretrained model (``pretrained:unet-generalist``
first; or the ``--checkpoint`` models instead) and optionally a demo-trained model
(``--demo``) at 4x and 8x, with fastMRI-seeded random masks (fastMRI's centre fraction
0.32 / acceleration), on held-out real scans:

- ``tugraz_t2``: the TU Graz in-vivo T2 brain, 4 coils, real k-space (package asset);
- ``twix_phantom``: the Siemens GRE phantom, 2 coils, real k-space (package asset);
- ``mpl_s1045``: matplotlib's sample MRI (sagittal T1 head, ``sample_data/s1045.ima.gz``);
- ``dipy_t1_skullstripped``: dipy's ``t1_coronal_slice.npy`` (exactly zero background);
- ``dipy_b0``: three slices of dipy's ``S0_10slices.nii.gz`` (b=0 EPI brain);
- ``dipy_piesno``: three slices of dipy's ``test_piesno.nii.gz`` (noisy diffusion brain).

The matplotlib image comes from the installed matplotlib; the dipy files are read from the
dipy wheel itself (``pip download dipy --no-deps``, never dipy's network fetchers). The
magnitude images get k-space as real scans would: fastMRI's 2x readout oversampling, a
smooth random phase, loop-coil sensitivities (or one coil, ESC target) and noise, each
from a fixed seed. All scoring goes through the package: the method specs,
:func:`mrirecon.reconstruct.reconstruct_folder` and :func:`mrirecon.evaluate.evaluate_folders`.

    python scripts/bench_generalisation.py                          # ZF, CS, shipped model
    python scripts/bench_generalisation.py --checkpoint runs/x --demo runs/demo --markdown t.md
    python scripts/bench_generalisation.py --no-cs --work /tmp/bench  # keep/reuse outputs
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib
import numpy as np

from mrirecon.data.assets import asset_path
from mrirecon.data.masks import MaskSpec
from mrirecon.evaluate import VolumeScore, evaluate_folders
from mrirecon.methods import CheckpointSpec, CSSpec, MethodSpec, UnetSpec, ZeroFilledSpec
from mrirecon.models.registry import shipped_models
from mrirecon.reconstruct import ReconJob, reconstruct_folder
from mrirecon.synth.from_magnitude import MagnitudeScan, scan_from_magnitude
from mrirecon.synth.kspace import write_volume

DIPY = "dipy==1.12.1"
DIPY_FILES = "dipy/data/files/"
GENERALIST = "unet-generalist"


@dataclass(frozen=True)
class Method:
    """A column of the table: a key (output folder), a label and the spec that runs it."""

    key: str
    label: str
    spec: MethodSpec


def dipy_wheel(cache: Path) -> Path:
    """The dipy wheel in ``cache``, downloaded there with pip (no dependencies) if absent."""
    found = sorted(cache.glob("dipy-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", DIPY, "--no-deps", "--only-binary=:all:"]
        subprocess.run([*cmd, "-d", str(cache)], check=True, capture_output=True)
        found = sorted(cache.glob("dipy-*.whl"))
    if not found:
        raise FileNotFoundError(f"{cache}: pip download {DIPY} left no wheel")
    return found[-1]


def wheel_array(wheel: Path, name: str) -> np.ndarray:
    """An image shipped in dipy's wheel (``.npy`` or NIfTI), without installing dipy."""
    import nibabel  # optional dependency (``pip install mrirecon[nifti]``)

    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(DIPY_FILES + name)
    if name.endswith(".npy"):
        return np.load(io.BytesIO(data), allow_pickle=False)
    raw = gzip.decompress(data) if name.endswith(".gz") else data
    return np.asarray(nibabel.Nifti1Image.from_bytes(raw).dataobj)


def _middle(volume: np.ndarray, n: int = 3) -> np.ndarray:
    """n middle axial slices of an (X, Y, Z[, 1]) volume, as (n, rows, cols)."""
    v = np.squeeze(volume).astype(np.float64)
    mid = v.shape[2] // 2
    return np.rot90(v[:, :, mid - n // 2 : mid - n // 2 + n], axes=(0, 1)).transpose(2, 0, 1)


def matplotlib_s1045() -> np.ndarray:
    """matplotlib's sample MRI slice, (1, 256, 256)."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "s1045.ima.gz"
    with gzip.open(path) as fh:
        return np.frombuffer(fh.read(), np.uint16).reshape(1, 256, 256).astype(np.float64)


# name -> (loader of magnitude slices from the dipy wheel or None, simulation, source).
SIMULATED: dict[str, tuple[Callable[[Path | None], np.ndarray], MagnitudeScan, str]] = {
    "mpl_s1045": (
        lambda _: matplotlib_s1045(),
        MagnitudeScan(8, 0.01, 11),
        "matplotlib s1045.ima.gz",
    ),
    "dipy_t1_skullstripped": (
        lambda whl: wheel_array(whl, "t1_coronal_slice.npy")[None],
        MagnitudeScan(1, 0.0, 12),
        f"{DIPY} t1_coronal_slice.npy",
    ),
    "dipy_b0": (
        lambda whl: _middle(wheel_array(whl, "S0_10slices.nii.gz")),
        MagnitudeScan(4, 0.005, 13),
        f"{DIPY} S0_10slices.nii.gz",
    ),
    "dipy_piesno": (
        lambda whl: _middle(wheel_array(whl, "test_piesno.nii.gz")),
        MagnitudeScan(1, 0.0, 14),
        f"{DIPY} test_piesno.nii.gz",
    ),
}
REAL = {"tugraz_t2": "tugraz_brain_t2_4ch.h5", "twix_phantom": "twix_gre_phantom_2ch.h5"}


def build_scans(folder: Path, names: Sequence[str], wheel: Path | None) -> list[Path]:
    """Write the named held-out scans as fastMRI files into ``folder`` (kept if present)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        path = folder / f"{name}.h5"
        if not path.exists():
            if name in REAL:
                path.write_bytes(asset_path(REAL[name]).read_bytes())
            else:
                load, sim, source = SIMULATED[name]
                if wheel is None and name.startswith("dipy"):
                    raise FileNotFoundError(f"{name}: needs the dipy wheel")
                write_volume(path, scan_from_magnitude(load(wheel), sim, source))
        out.append(path)
    return out


def score(
    scans: Path, out: Path, methods: Sequence[Method], accelerations: Sequence[float], device: str
) -> dict[tuple[str, float, str], VolumeScore]:
    """Reconstruct and score every scan: {(method key, acceleration, scan): score}."""
    results = {}
    for acc in accelerations:
        mask = MaskSpec.paired("random", [acc])
        for m in methods:
            folder = out / m.key / f"{acc:g}x"
            job = ReconJob(scans, folder, m.spec, mask, device=device, progress=False)
            report = reconstruct_folder(job)
            for path, why in report.failed:
                print(f"FAILED {m.key} {acc:g}x {path.name}: {why}", file=sys.stderr)
            for s in evaluate_folders(scans, folder).scores:
                results[(m.key, acc, Path(s.file).stem)] = s
    return results


def table(
    results: dict[tuple[str, float, str], VolumeScore],
    methods: Sequence[Method],
    accelerations: Sequence[float],
    scans: Sequence[str],
) -> str:
    """Markdown: per-scan SSIM and PSNR of each method, a mean row per acceleration, and
    "do no harm" (the worst per-scan SSIM gain of each model over zero-filled)."""
    head = [f"{m.label} SSIM" for m in methods] + [f"{m.label} PSNR" for m in methods]
    lines = ["| scan | accel | " + " | ".join(head) + " |", "|---|---" + "|---:" * len(head) + "|"]
    for acc in accelerations:
        rows = [s for s in scans if all((m.key, acc, s) in results for m in methods)]
        for s in rows:
            ssim = [f"{results[(m.key, acc, s)].ssim:.4f}" for m in methods]
            psnr = [f"{results[(m.key, acc, s)].psnr:.2f}" for m in methods]
            lines.append(f"| {s} | {acc:g}x | " + " | ".join(ssim + psnr) + " |")
        if rows:
            ssim = [
                f"{np.mean([results[(m.key, acc, s)].ssim for s in rows]):.4f}" for m in methods
            ]
            psnr = [
                f"{np.mean([results[(m.key, acc, s)].psnr for s in rows]):.2f}" for m in methods
            ]
            lines.append(f"| **mean** | {acc:g}x | " + " | ".join(ssim + psnr) + " |")
    models = [m for m in methods if isinstance(m.spec, CheckpointSpec)]
    if models and methods[0].key == "zf":
        lines.append("")
        for m in models:
            for acc in accelerations:
                gains = {
                    s: results[(m.key, acc, s)].ssim - results[("zf", acc, s)].ssim
                    for s in scans
                    if (m.key, acc, s) in results and ("zf", acc, s) in results
                }
                if gains:
                    worst = min(gains, key=gains.__getitem__)
                    lines.append(
                        f"do no harm, {m.label} {acc:g}x: min SSIM - ZF = {gains[worst]:+.4f} "
                        f"({worst}){'' if gains[worst] >= -0.01 else '  ** below -0.01 **'}"
                    )
    return "\n".join(lines)


def methods_from(args: argparse.Namespace) -> list[Method]:
    """The columns: zero-filled, CS (unless --no-cs), each model (its checkpoint's kind
    decides the method), the demo model."""
    from mrirecon.methods import checkpoint_kind, method_label, spec_class, with_noise_floor

    methods = [Method("zf", "ZF", ZeroFilledSpec())]
    if not args.no_cs:
        methods.append(Method("cs", "CS", CSSpec()))
    checkpoints = list(args.checkpoint)
    if not checkpoints:  # every shipped model, the generalist U-Net first
        names = sorted((m.name for m in shipped_models()), key=lambda n: (n != GENERALIST, n))
        checkpoints = [f"pretrained:{n}" for n in names]
    for i, checkpoint in enumerate(checkpoints):
        kind = checkpoint_kind(checkpoint)
        label = method_label(kind)
        key = "model" if i == 0 else f"model{i + 1}"
        methods.append(Method(key, label, spec_class(kind)(Path(checkpoint))))
    if args.demo is not None:
        methods.append(Method("demo", "demo U-Net", UnetSpec(Path(args.demo))))
    # Like for like, as compare: every column but ZF with the target's noise floor, or none.
    specs = with_noise_floor([m.spec for m in methods], args.noise_floor)
    return [replace(m, spec=spec) for m, spec in zip(methods, specs, strict=True)]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--checkpoint",
        nargs="+",
        default=[],
        help="models to score, U-Net or VarNet (default: every shipped pretrained model)",
    )
    p.add_argument("--demo", help="a demo-trained model to score too")
    p.add_argument("--accelerations", type=float, nargs="+", default=[4.0, 8.0])
    p.add_argument("--scans", nargs="+", default=[*REAL, *SIMULATED], help="subset of scans")
    p.add_argument("--no-cs", action="store_true", help="leave CS out (the slow column)")
    p.add_argument(
        "--noise-floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="every column but ZF raised to the target's noise floor (default), or none",
    )
    p.add_argument("--work", type=Path, help="keep scans and outputs here (reruns reuse them)")
    p.add_argument("--wheels", type=Path, default=Path.home() / ".cache" / "mrirecon" / "wheels")
    p.add_argument("--device", default="cpu")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = p.parse_args(argv)
    unknown = sorted(set(args.scans) - set(REAL) - set(SIMULATED))
    if unknown:
        p.error(f"unknown scans {unknown}; choose from {[*REAL, *SIMULATED]}")
    needs_dipy = any(s.startswith("dipy") for s in args.scans)
    wheel = dipy_wheel(args.wheels) if needs_dipy else None
    methods = methods_from(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        build_scans(work / "scans", args.scans, wheel)
        results = score(work / "scans", work / "recon", methods, args.accelerations, args.device)
    text = table(results, methods, args.accelerations, args.scans)
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
