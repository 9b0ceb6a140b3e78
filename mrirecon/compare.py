"""``mrirecon compare``: every method on identical masks, scored and reported.

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

import numpy as np

from mrirecon.data.dataset import list_h5, skipped_h5
from mrirecon.data.fastmri_h5 import read_output_mask
from mrirecon.data.masks import MaskSpec
from mrirecon.errors import ConfigError, DataError
from mrirecon.evaluate import VolumeScore, evaluate_folders
from mrirecon.io import atomic_write, check_writable
from mrirecon.methods import CSSpec, MethodSpec, ReconMethod, ZeroFilledSpec, with_noise_floor
from mrirecon.reconstruct import ReconJob, check_output_folder, reconstruct_folder
from mrirecon.report import ReportInputs, recon_dir, write_report

__all__ = ["CompareConfig", "CompareResult", "run_compare"]

SETTINGS_FILE = "compare.json"


@dataclass(frozen=True)
class CompareConfig:
    """What to compare.

    Attributes:
        data: folders of fastMRI files with targets (file names must be unique across them).
        out: report folder (not inside a data folder).
        methods: the methods' specs, in report order.
        mask: mask kind and (centre fraction, acceleration) pairs; each pair is one
            comparison, shared by all methods.
        seed: None: fastMRI per-file validation seeding; int: ``seeded_file_rng(seed, name)``.
        device: torch device string.
        panels: slices to draw as ``"FILE"`` (middle slice) or ``"FILE:SLICE"``; empty:
            the middle slice of the first file of each data folder.
        n_boot: bootstrap resamples.
        overwrite: redo reconstructions even when finished outputs exist.
        progress: show progress bars.
        noise_floor: every method but zero-filled raises its output to the target's noise
            floor (True) or none does (False), so the comparison is like for like
            (:func:`mrirecon.methods.with_noise_floor`; ``methods`` holds the result).
    """

    data: tuple[Path, ...]
    out: Path
    methods: tuple[MethodSpec, ...] = (ZeroFilledSpec(), CSSpec())
    mask: MaskSpec = field(default_factory=lambda: MaskSpec.paired("random", (4.0, 8.0)))
    seed: int | None = None
    device: str = "cpu"
    panels: tuple[str, ...] = ()
    n_boot: int = 10000
    overwrite: bool = False
    progress: bool = True
    noise_floor: bool = True

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("compare needs at least one data folder")
        object.__setattr__(self, "methods", with_noise_floor(self.methods, self.noise_floor))
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names) or not names:
            raise ConfigError(f"methods must be distinct and non-empty, got {names}")

    @property
    def accelerations(self) -> tuple[float, ...]:
        return self.mask.accelerations


@dataclass
class CompareResult:
    """What a comparison produced (``ignored``: ``*.h5`` entries of the data folders that
    are not readable files)."""

    rows: list[VolumeScore]
    failed: list[tuple[str, str]]
    ignored: list[tuple[Path, str]]
    paths: dict[str, Path]
    summary: str
    seconds: dict[tuple[str, float], float]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.rows)


def _settings(cfg: CompareConfig) -> dict[str, Any]:
    """What must match for finished outputs in ``out`` to be reused."""
    return {
        "data": [str(Path(d).resolve()) for d in cfg.data],
        "masks": [asdict(cfg.mask.single(i)) for i in range(len(cfg.accelerations))],
        "seed": cfg.seed,
        "methods": {m.name: m.settings() for m in cfg.methods},
    }


def _check_settings(cfg: CompareConfig, out: Path) -> dict[str, Any]:
    settings = json.loads(json.dumps(_settings(cfg)))  # tuples -> lists, as read back
    path = out / SETTINGS_FILE
    if path.is_file() and not cfg.overwrite:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            old_methods = old.get("methods") if isinstance(old.get("methods"), dict) else {}
            changed = [k for k in ("data", "masks", "seed") if old.get(k) != settings[k]]
            # A method not run now keeps its record, so a later run with it is still checked.
            changed += [
                f"{m} settings"
                for m, s in settings["methods"].items()
                if m in old_methods and old_methods[m] != s
            ]
            settings["methods"] = {**old_methods, **settings["methods"]}
            if changed:
                raise ConfigError(
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
            raise DataError(f"{folder}: no .h5 files found")
        for f in files:
            if f.name in seen:
                raise DataError(f"{f}: file name also in {seen[f.name]}; names must be unique")
            seen[f.name] = folder
        out.append((folder.name or str(folder), folder, files))
    labels = [x[0] for x in out]
    if len(set(labels)) != len(labels):  # two folders with the same name: use full paths
        out = [(str(folder), folder, files) for _, folder, files in out]
    return out


def _check_masks(recon_root: Path, cfg: CompareConfig, names: Sequence[str], acc: float) -> None:
    """Every method must have used the same mask for a file (the comparison is paired)."""
    for name in names:
        ref, ref_m = None, None
        for m in cfg.methods:
            p = recon_dir(recon_root, m.name, acc) / name
            if not p.is_file():
                continue
            mask = read_output_mask(p)
            if ref is None:
                ref, ref_m = mask, m.name
            elif mask is None or ref is None or not np.array_equal(mask, ref):
                raise DataError(
                    f"{p}: mask differs from the {ref_m} output of the same file; stale outputs "
                    "from another run? rerun with --overwrite"
                )


def run_compare(cfg: CompareConfig) -> CompareResult:
    """Reconstruct with every method and acceleration, score, and write the report.

    Returns:
        :class:`CompareResult` (``ok`` is False when a file failed for some method).

    Raises:
        MrireconError/OSError: unusable folders, options or checkpoint.
    """
    check_output_folder(cfg.out, cfg.data)
    out = check_writable(cfg.out)
    inputs = _inputs(cfg)
    settings = _check_settings(cfg, out)
    recon_root = out / "recon"
    rows: list[VolumeScore] = []
    failed: list[tuple[str, str]] = []
    seconds: dict[tuple[str, float], float] = {}
    built: dict[str, ReconMethod] = {}  # each method is loaded once, then reused
    for i, acc in enumerate(cfg.accelerations):
        mask = cfg.mask.single(i)
        for spec in cfg.methods:
            total = 0.0
            for _, folder, files in inputs:
                job = ReconJob(
                    input_dir=folder,
                    output_dir=recon_dir(recon_root, spec.name, acc),
                    method=spec,
                    mask=mask,
                    seed=cfg.seed,
                    device=cfg.device,
                    overwrite=cfg.overwrite,
                    files=tuple(files),
                    progress=cfg.progress,
                )
                if spec.name not in built:
                    built[spec.name] = spec.build()
                rep = reconstruct_folder(job, built[spec.name])
                total += rep.seconds
                failed += [(f"{p.name} ({spec.name}, {acc:g}x)", why) for p, why in rep.failed]
            seconds[(spec.name, acc)] = total
        for dataset, folder, files in inputs:
            names = [f.name for f in files]
            _check_masks(recon_root, cfg, names, acc)
            for spec in cfg.methods:
                res = evaluate_folders(folder, recon_dir(recon_root, spec.name, acc), files=names)
                failed += [(f"{n} ({spec.name}, {acc:g}x)", why) for n, why in res.errors]
                rows += [s._replace(method=spec.name, dataset=dataset) for s in res.scores]
    report_in = ReportInputs(
        out=out,
        rows=rows,
        methods=[m.name for m in cfg.methods],
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
    ignored = [x for folder in cfg.data for x in skipped_h5(folder)]
    return CompareResult(rows, failed, ignored, paths, summary, seconds)
