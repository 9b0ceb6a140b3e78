"""Score a folder of reconstructions against a folder of targets, as fastMRI's evaluate.py.

Each target file is paired with the prediction of the same name. Both volumes are
centre-cropped to (w, w), w the target width (fastMRI's evaluate rule; a no-op for
320x320 targets), then scored with :func:`mrirecon.metrics.volume_metrics`.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from mrirecon.data.dataset import TARGET_KEYS, list_h5
from mrirecon.fft import center_crop
from mrirecon.io import read_attrs, read_reconstruction, write_csv_rows
from mrirecon.metrics import volume_metrics

__all__ = ["VolumeScore", "EvalResult", "evaluate_folders", "summarize", "write_csv", "read_target"]

CSV_FIELDS = ("file", "acquisition", "acceleration", "nmse", "psnr", "ssim")


class VolumeScore(NamedTuple):
    """One row of the per-volume table."""

    file: str
    acquisition: str
    acceleration: float
    nmse: float
    psnr: float
    ssim: float


@dataclass
class EvalResult:
    scores: list[VolumeScore] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # targets without a prediction
    extra: list[str] = field(default_factory=list)  # predictions without a target
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.errors) and bool(self.scores)


def read_target(path: Path, key: str | None = None) -> tuple[np.ndarray, dict]:
    """A file's target volume (S, h, w) and attributes; ``key`` None picks rss, then esc."""
    try:
        with h5py.File(path, "r") as hf:
            keys = [key] if key else [TARGET_KEYS[True], TARGET_KEYS[False]]
            found = next((k for k in keys if k in hf), None)
            if found is None:
                raise ValueError(f"{path}: no target dataset ({' or '.join(keys)})")
            data = np.asarray(hf[found][()], dtype=np.float32)
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in hf.attrs.items()}
    except OSError:
        raise ValueError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None
    if data.ndim != 3:
        raise ValueError(f"{path}: target must be (S, h, w), got shape {data.shape}")
    return data, attrs


def _eval_crop(path: Path, target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = target.shape[-1]
    size = (min(w, target.shape[-2]), w)
    if pred.shape[-2] < size[0] or pred.shape[-1] < size[1]:
        raise ValueError(
            f"{path}: prediction {pred.shape[1:]} does not cover the target {target.shape[1:]}"
        )
    return center_crop(target, size), center_crop(pred, size)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def evaluate_folders(
    targets: str | os.PathLike[str],
    predictions: str | os.PathLike[str],
    target_key: str | None = None,
    files: Sequence[str] | None = None,
) -> EvalResult:
    """Score every target file that has a prediction of the same name.

    Args:
        targets: folder of fastMRI files holding targets.
        predictions: folder of submission files (dataset ``reconstruction``).
        target_key: ``reconstruction_rss``/``reconstruction_esc``; None picks per file.
        files: restrict to these file names.

    Returns:
        per-volume scores plus the missing, extra and failed files.
    """
    tdir, pdir = Path(targets), Path(predictions)
    tfiles = {p.name: p for p in list_h5(tdir)}
    pfiles = {p.name: p for p in list_h5(pdir)}
    names = sorted(files) if files is not None else sorted(tfiles)
    result = EvalResult()
    result.extra = sorted(set(pfiles) - set(tfiles))
    for name in names:
        if name not in pfiles:
            result.missing.append(name)
            continue
        try:
            gt, tattrs = read_target(tfiles[name], target_key)
            pred = read_reconstruction(pfiles[name])
            pattrs = read_attrs(pfiles[name])
            if gt.shape[0] != pred.shape[0]:
                raise ValueError(
                    f"{pfiles[name]}: {pred.shape[0]} slices but the target has {gt.shape[0]}"
                )
            gt_c, pred_c = _eval_crop(pfiles[name], gt, pred)
            m = volume_metrics(gt_c, pred_c)
        except ValueError as exc:
            result.errors.append((name, str(exc)))
            continue
        acc = pattrs.get("acceleration", tattrs.get("acceleration", float("nan")))
        result.scores.append(
            VolumeScore(
                name,
                _text(tattrs.get("acquisition", pattrs.get("acquisition", ""))),
                float(acc) if acc not in ("", None) else float("nan"),
                m.nmse,
                m.psnr,
                m.ssim,
            )
        )
    return result


def _mean_std(values: Iterable[float]) -> tuple[float, float]:
    arr = np.asarray(list(values), dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(arr.mean()), std


def summarize(
    scores: Sequence[VolumeScore],
) -> list[tuple[str, int, dict[str, tuple[float, float]]]]:
    """Mean and sample std of each metric: overall, per acquisition, per acceleration.

    Returns:
        rows of (group label, number of volumes, {metric: (mean, std)}).
    """
    groups: dict[str, list[VolumeScore]] = defaultdict(list)
    for s in scores:
        groups["all"].append(s)
        if s.acquisition:
            groups[f"acquisition={s.acquisition}"].append(s)
        if not math.isnan(s.acceleration):
            groups[f"acceleration={s.acceleration:g}"].append(s)
    rows = []
    for label, members in groups.items():
        if label != "all" and len(members) == len(scores) and len(groups) > 1:
            continue  # a group equal to "all" adds nothing
        stats = {m: _mean_std(getattr(s, m) for s in members) for m in ("nmse", "psnr", "ssim")}
        rows.append((label, len(members), stats))
    return rows


def format_summary(scores: Sequence[VolumeScore]) -> str:
    """The summary as a fixed-width text table (mean +- std over volumes)."""
    lines = [f"{'group':<28} {'n':>3} {'NMSE':>19} {'PSNR':>15} {'SSIM':>17}"]
    for label, n, st in summarize(scores):
        lines.append(
            f"{label:<28} {n:>3} {st['nmse'][0]:>9.4f} +- {st['nmse'][1]:<6.4f}"
            f" {st['psnr'][0]:>6.2f} +- {st['psnr'][1]:<5.2f}"
            f" {st['ssim'][0]:>7.4f} +- {st['ssim'][1]:<6.4f}"
        )
    return "\n".join(lines)


def write_csv(path: str | os.PathLike[str], scores: Sequence[VolumeScore]) -> Path:
    """Write the per-volume table atomically."""
    return write_csv_rows(
        path,
        CSV_FIELDS,
        (
            [
                s.file,
                s.acquisition,
                f"{s.acceleration:g}",
                f"{s.nmse:.8g}",
                f"{s.psnr:.8g}",
                f"{s.ssim:.8g}",
            ]
            for s in scores
        ),
    )
