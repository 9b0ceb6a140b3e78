"""``mrirecon compare``: zero-filled, CS and U-Net on identical masks, scored and reported.

For every acceleration one :class:`~mrirecon.data.masks.MaskSpec` and one seeding rule
(fastMRI's per-file validation seed by default) are shared by all methods, so each file
is undersampled by exactly the same mask for every method; this is checked on the
written outputs. Each (method, acceleration) is a :func:`mrirecon.reconstruct.reconstruct_folder`
run into ``OUT/recon/<method>/<acc>x/`` (resumable: finished files are kept), then
scored with :func:`mrirecon.evaluate.evaluate_folders`. The report (metrics.csv,
summary.md, figures, report.html) is written by :mod:`mrirecon.report`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mrirecon.data.dataset import list_h5
from mrirecon.data.masks import MaskSpec
from mrirecon.evaluate import evaluate_folders
from mrirecon.io import atomic_write, check_writable
from mrirecon.reconstruct import METHODS, ReconJob, file_hash, reconstruct_folder
from mrirecon.report import ReportInputs, Row, write_report

__all__ = ["CompareConfig", "CompareResult", "run_compare", "default_center_fraction"]

METHOD_ORDER = ("zero-filled", "cs", "unet")
SETTINGS_FILE = "compare.json"


def default_center_fraction(acceleration: float) -> float:
    """fastMRI's pairing of centre fraction and acceleration: 0.32 / acc (4x: 0.08, 8x: 0.04)."""
    return 0.32 / float(acceleration)


@dataclass(frozen=True)
class CompareConfig:
    """What to compare.

    Attributes:
        data: folders of fastMRI files with targets (file names must be unique across them).
        out: report folder.
        checkpoint: U-Net checkpoint (needed when ``unet`` is among ``methods``).
        accelerations: accelerations to compare at.
        center_fractions: one per acceleration; empty uses :func:`default_center_fraction`.
        mask_kind: mask type (see :data:`mrirecon.data.masks.MASKS`).
        seed: None: fastMRI per-file validation seeding; int: ``train_rng(seed, 0, index)``.
        methods: reconstruct methods to run, in report order.
        device: torch device string.
        cs_config: YAML file of CS settings (None: the CS defaults).
        cs_options: CS settings overriding the file (e.g. ``{"iterations": 20}``).
        panels: slices to draw as ``"FILE"`` (middle slice) or ``"FILE:SLICE"``; empty:
            the middle slice of the first file of each data folder.
        n_boot: bootstrap resamples.
        overwrite: redo reconstructions even when finished outputs exist.
        progress: show progress bars.
    """

    data: tuple[Path, ...]
    out: Path
    checkpoint: Path | None = None
    accelerations: tuple[float, ...] = (4.0, 8.0)
    center_fractions: tuple[float, ...] = ()
    mask_kind: str = "random"
    seed: int | None = None
    methods: tuple[str, ...] = METHOD_ORDER
    device: str = "cpu"
    cs_config: Path | None = None
    cs_options: dict[str, Any] = field(default_factory=dict)
    panels: tuple[str, ...] = ()
    n_boot: int = 10000
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("compare needs at least one data folder")
        if not self.accelerations:
            raise ValueError("compare needs at least one acceleration")
        if self.center_fractions and len(self.center_fractions) != len(self.accelerations):
            raise ValueError(
                f"got {len(self.center_fractions)} centre fractions for "
                f"{len(self.accelerations)} accelerations; give one each (or none)"
            )
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; choose from {sorted(METHODS)}")
        if len(set(self.methods)) != len(self.methods) or not self.methods:
            raise ValueError(f"methods must be distinct and non-empty, got {list(self.methods)}")
        if "unet" in self.methods and self.checkpoint is None:
            raise ValueError("compare with the unet method needs --checkpoint")

    def spec(self, i: int) -> MaskSpec:
        """The mask spec of the i-th acceleration (shared by all methods)."""
        acc = self.accelerations[i]
        cf = self.center_fractions[i] if self.center_fractions else default_center_fraction(acc)
        return MaskSpec(self.mask_kind, (cf,), (acc,))

    def method_options(self, method: str) -> dict[str, Any]:
        if method == "unet":
            return {"checkpoint": self.checkpoint}
        if method == "cs":
            opts = dict(self.cs_options)
            if self.cs_config is not None:
                opts["config_path"] = self.cs_config
            return opts
        return {}


@dataclass
class CompareResult:
    """What a comparison produced."""

    rows: list[Row]
    failed: list[tuple[str, str]]
    paths: dict[str, Path]
    summary: str
    seconds: dict[tuple[str, float], float]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.rows)


def acc_dir(acc: float) -> str:
    """Folder name of an acceleration: ``4x``, ``2.5x``."""
    return f"{acc:g}x"


def _settings(cfg: CompareConfig) -> dict[str, Any]:
    """What must match for finished outputs in ``out`` to be reused."""
    return {
        "data": [str(Path(d).resolve()) for d in cfg.data],
        "masks": [asdict(cfg.spec(i)) for i in range(len(cfg.accelerations))],
        "seed": cfg.seed,
        "checkpoint_sha256": (
            file_hash(_ckpt_file(cfg.checkpoint))
            if cfg.checkpoint and "unet" in cfg.methods
            else None
        ),
        "cs": {
            k: (file_hash(v) if k == "config_path" else str(v))
            for k, v in sorted(cfg.method_options("cs").items())
        }
        if "cs" in cfg.methods
        else None,
    }


def _ckpt_file(path: Path) -> Path:
    from mrirecon.train.checkpoint import resolve_checkpoint

    return resolve_checkpoint(path)


def _check_settings(cfg: CompareConfig, out: Path) -> dict[str, Any]:
    settings = json.loads(json.dumps(_settings(cfg)))  # tuples -> lists, as read back
    path = out / SETTINGS_FILE
    if path.is_file() and not cfg.overwrite:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            # checkpoint/cs are None when that method is not run: only compare recorded ones,
            # and keep the old record so a later run with the method is still checked.
            optional = ("checkpoint_sha256", "cs")
            changed = [
                k
                for k in settings
                if old.get(k) != settings[k]
                and not (k in optional and (old.get(k) is None or settings[k] is None))
            ]
            for k in optional:
                if settings[k] is None:
                    settings[k] = old.get(k)
            if changed:
                raise ValueError(
                    f"{out}: holds a comparison made with different {', '.join(changed)}; "
                    "use another --out or --overwrite"
                )
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2))
    return settings


def _inputs(cfg: CompareConfig) -> list[tuple[str, Path, list[Path]]]:
    """(dataset label, folder, files) per data folder; file names must be unique overall."""
    out, seen = [], {}
    for folder in cfg.data:
        folder = Path(folder)
        files = list_h5(folder)
        if not files:
            raise ValueError(f"{folder}: no .h5 files found")
        for f in files:
            if f.name in seen:
                raise ValueError(f"{f}: file name also in {seen[f.name]}; names must be unique")
            seen[f.name] = folder
        out.append((folder.name or str(folder), folder, files))
    labels = [x[0] for x in out]
    if len(set(labels)) != len(labels):  # two folders with the same name: use full paths
        out = [(str(folder), folder, files) for _, folder, files in out]
    return out


def _read_mask(path: Path) -> np.ndarray | None:
    with h5py.File(path, "r") as hf:
        return np.asarray(hf["mask"][()], dtype=bool) if "mask" in hf else None


def _check_masks(recon_root: Path, cfg: CompareConfig, names: Sequence[str], acc: float) -> None:
    """Every method must have used the same mask for a file (the comparison is paired)."""
    for name in names:
        ref, ref_m = None, None
        for m in cfg.methods:
            p = recon_root / m / acc_dir(acc) / name
            if not p.is_file():
                continue
            mask = _read_mask(p)
            if ref is None:
                ref, ref_m = mask, m
            elif mask is None or ref is None or not np.array_equal(mask, ref):
                raise RuntimeError(
                    f"{p}: mask differs from the {ref_m} output of the same file; stale outputs "
                    "from another run? rerun with --overwrite"
                )


def run_compare(cfg: CompareConfig) -> CompareResult:
    """Reconstruct with every method and acceleration, score, and write the report.

    Returns:
        :class:`CompareResult` (``ok`` is False when a file failed for some method).

    Raises:
        ValueError/OSError: unusable folders, options or checkpoint.
    """
    out = check_writable(cfg.out)
    inputs = _inputs(cfg)
    settings = _check_settings(cfg, out)
    recon_root = out / "recon"
    rows: list[Row] = []
    failed: list[tuple[str, str]] = []
    seconds: dict[tuple[str, float], float] = {}
    for i, acc in enumerate(cfg.accelerations):
        spec = cfg.spec(i)
        for method in cfg.methods:
            dest = recon_root / method / acc_dir(acc)
            total = 0.0
            for _, folder, files in inputs:
                job = ReconJob(
                    input_dir=folder,
                    output_dir=dest,
                    method=method,
                    mask=spec,
                    seed=cfg.seed,
                    device=cfg.device,
                    overwrite=cfg.overwrite,
                    files=tuple(files),
                    method_options=cfg.method_options(method),
                    progress=cfg.progress,
                )
                rep = reconstruct_folder(job)
                total += rep.seconds
                failed += [(f"{p.name} ({method}, {acc:g}x)", why) for p, why in rep.failed]
            seconds[(method, acc)] = total
        for dataset, folder, files in inputs:
            names = [f.name for f in files]
            _check_masks(recon_root, cfg, names, acc)
            for method in cfg.methods:
                res = evaluate_folders(folder, recon_root / method / acc_dir(acc), files=names)
                failed += [(f"{n} ({method}, {acc:g}x)", why) for n, why in res.errors]
                rows += [
                    Row(s.file, method, acc, s.nmse, s.psnr, s.ssim, dataset) for s in res.scores
                ]
    report_in = ReportInputs(
        out=out,
        rows=rows,
        methods=cfg.methods,
        accelerations=cfg.accelerations,
        datasets=[(d, folder) for d, folder, _ in inputs],
        recon_root=recon_root,
        panels=cfg.panels,
        settings=settings,
        failed=failed,
        seconds=seconds,
        n_boot=cfg.n_boot,
    )
    paths, summary = write_report(report_in)
    return CompareResult(rows, failed, paths, summary, seconds)


def fastmri_pairs(accelerations: Sequence[float], center_fractions: Sequence[float]) -> tuple:
    """Centre fractions for the accelerations: as given (one each, or one for all) or fastMRI's."""
    accs = [float(a) for a in accelerations]
    cfs = [float(c) for c in center_fractions]
    if not cfs:
        return tuple(default_center_fraction(a) for a in accs)
    if len(cfs) == 1:
        return tuple(cfs * len(accs))
    if len(cfs) != len(accs):
        raise ValueError(
            f"got {len(cfs)} centre fractions for {len(accs)} accelerations; give one or one each"
        )
    return tuple(cfs)
