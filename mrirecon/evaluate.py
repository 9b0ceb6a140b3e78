"""Score a folder of reconstructions against a folder of targets, as fastMRI's evaluate.py.

Each target file is paired with the prediction of the same name. Both volumes are
centre-cropped by :func:`eval_crop` to (min(h, w), w), h x w the target size (fastMRI's
evaluate rule; a no-op for 320x320 targets), then scored with
:func:`mrirecon.metrics.volume_metrics`.

This module also owns the per-volume score: :class:`VolumeScore`, its one CSV writer
and reader (:func:`write_scores_csv`, :func:`read_scores_csv`) and the mean and
sample standard deviation of a metric (:func:`stat`), shared by the comparison report.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mrirecon.data.dataset import inspect_file, list_h5, skipped_h5
from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction, read_target
from mrirecon.errors import DataError
from mrirecon.fft import center_crop
from mrirecon.io import write_csv_rows
from mrirecon.metrics import volume_metrics

__all__ = [
    "METRICS",
    "EVALUATE_COLUMNS",
    "VolumeScore",
    "FolderScores",
    "Stat",
    "stat",
    "eval_crop",
    "evaluate_folders",
    "summarize",
    "format_summary",
    "write_scores_csv",
    "read_scores_csv",
]

METRICS = ("ssim", "psnr", "nmse")
# How each column of a score table is written; text columns are the ones a user's file
# or folder names can reach.
_NUMBER_COLUMNS = {"acceleration": "{:g}", "nmse": "{:.8g}", "psnr": "{:.8g}", "ssim": "{:.8g}"}
_TEXT_COLUMNS = ("file", "method", "dataset", "acquisition")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_REQUIRED_COLUMNS = ("file", "acceleration", "nmse", "psnr", "ssim")
# The columns of ``mrirecon evaluate --csv`` (the comparison report writes its own set).
EVALUATE_COLUMNS = ("file", "acquisition", "acceleration", "nmse", "psnr", "ssim")


class VolumeScore(NamedTuple):
    """The metrics of one volume, reconstructed by one method at one acceleration.

    Attributes:
        file: the file name.
        method: the method ("" when not known, as in ``mrirecon evaluate``).
        acceleration: the acceleration (nan when not known).
        nmse, psnr, ssim: fastMRI's metrics of the volume.
        dataset: the data folder's label in a comparison, else "".
        acquisition: the file's ``acquisition`` attribute, else "".
    """

    file: str
    method: str
    acceleration: float
    nmse: float
    psnr: float
    ssim: float
    dataset: str = ""
    acquisition: str = ""


@dataclass(frozen=True)
class FolderScores:
    """The outcome of :func:`evaluate_folders`.

    Attributes:
        scores: one per scored volume.
        missing: targets without a prediction.
        extra: predictions without a target.
        errors: (file, reason) for files that could not be scored.
        skipped: (path, reason) for ``*.h5`` entries of either folder that are not files.
    """

    scores: tuple[VolumeScore, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[Path, str], ...] = ()

    @property
    def ok(self) -> bool:
        """True when every target was scored."""
        return not (self.missing or self.errors) and bool(self.scores)


class Stat(NamedTuple):
    """Mean and sample standard deviation (ddof 1; 0 for a single value) over n volumes."""

    n: int
    mean: float
    std: float


def stat(values: Iterable[float]) -> Stat:
    """The :class:`Stat` of some values (nan mean and std for none)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return Stat(0, math.nan, math.nan)
    return Stat(int(arr.size), float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0)


def eval_crop(image: np.ndarray, target_shape: Sequence[int]) -> np.ndarray:
    """Centre-crop ``image`` (..., H, W) as the evaluation crops a target of this shape.

    The crop is (min(h, w), w) for an (..., h, w) target: fastMRI's evaluate rule.

    Raises:
        DataError: the image is smaller than the crop.
    """
    h, w = target_shape[-2:]
    size = (min(w, h), w)
    if image.shape[-2] < size[0] or image.shape[-1] < size[1]:
        raise DataError(f"image {image.shape[-2:]} does not cover the target {(h, w)}")
    return center_crop(image, size)


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _score(tpath: Path, ppath: Path, target_key: str | None) -> VolumeScore:
    inspect_file(tpath)  # the same door check as reconstruct, before any large read
    gt, tattrs = read_target(tpath, target_key)
    pred = read_reconstruction(ppath)
    pattrs = read_attrs(ppath)
    if gt.shape[0] != pred.shape[0]:
        raise DataError(f"{ppath}: {pred.shape[0]} slices but the target has {gt.shape[0]}")
    try:
        pred_c = eval_crop(pred, gt.shape)
    except DataError as exc:
        raise DataError(f"{ppath}: prediction {exc}") from None
    gt_c = eval_crop(gt, gt.shape)
    if not np.any(gt_c):
        raise DataError(f"{tpath}: target is all zeros; NMSE and PSNR are undefined for it")
    m = volume_metrics(gt_c, pred_c)
    acc = pattrs.get("acceleration", tattrs.get("acceleration", ""))
    return VolumeScore(
        file=tpath.name,
        method="",
        acceleration=float(acc) if acc not in ("", None) else math.nan,
        nmse=m.nmse,
        psnr=m.psnr,
        ssim=m.ssim,
        acquisition=_text(tattrs.get("acquisition", pattrs.get("acquisition", ""))),
    )


def evaluate_folders(
    targets: str | os.PathLike[str],
    predictions: str | os.PathLike[str],
    target_key: str | None = None,
    files: Sequence[str] | None = None,
) -> FolderScores:
    """Score every target file that has a prediction of the same name.

    Args:
        targets: folder of fastMRI files holding targets.
        predictions: folder of submission files (dataset ``reconstruction``).
        target_key: ``reconstruction_rss``/``reconstruction_esc``; None picks per file.
        files: restrict to these file names.

    Returns:
        per-volume scores plus the missing, extra, failed and skipped files.
    """
    tfiles = {p.name: p for p in list_h5(targets)}
    pfiles = {p.name: p for p in list_h5(predictions)}
    names = sorted(files) if files is not None else sorted(tfiles)
    scores, missing, errors = [], [], []
    for name in names:
        if name not in pfiles:
            missing.append(name)
            continue
        try:
            scores.append(_score(tfiles[name], pfiles[name], target_key))
        except (DataError, OSError) as exc:
            errors.append((name, str(exc)))
    extra = sorted(set(pfiles) - set(tfiles))
    skipped = tuple(skipped_h5(targets) + skipped_h5(predictions))
    return FolderScores(tuple(scores), tuple(missing), tuple(extra), tuple(errors), skipped)


def summarize(scores: Sequence[VolumeScore]) -> list[tuple[str, dict[str, Stat]]]:
    """Mean and sample std of each metric: overall, per acquisition, per acceleration.

    Returns:
        rows of (group label, {metric: Stat}).
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
        rows.append((label, {m: stat(getattr(s, m) for s in members) for m in METRICS}))
    return rows


def format_summary(scores: Sequence[VolumeScore]) -> str:
    """The summary as a fixed-width text table (mean +- std over volumes)."""
    lines = [f"{'group':<28} {'n':>3} {'NMSE':>19} {'PSNR':>15} {'SSIM':>17}"]
    for label, st in summarize(scores):
        lines.append(
            f"{label:<28} {st['nmse'].n:>3} {st['nmse'].mean:>9.4f} +- {st['nmse'].std:<6.4f}"
            f" {st['psnr'].mean:>6.2f} +- {st['psnr'].std:<5.2f}"
            f" {st['ssim'].mean:>7.4f} +- {st['ssim'].std:<6.4f}"
        )
    return "\n".join(lines)


def _cell(score: VolumeScore, column: str) -> str:
    value = getattr(score, column)
    if column in _NUMBER_COLUMNS:
        return _NUMBER_COLUMNS[column].format(value)
    text = str(value)
    # A spreadsheet runs a cell starting with one of these as a formula (CSV injection,
    # OWASP); a leading quote makes it text. Numbers are never text, so stay numbers.
    return "'" + text if text.startswith(_FORMULA_START) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def write_scores_csv(
    path: str | os.PathLike[str],
    scores: Iterable[VolumeScore],
    columns: Sequence[str] = EVALUATE_COLUMNS,
) -> Path:
    """Write a per-volume score table atomically (parent folders created).

    Text cells that a spreadsheet would run as a formula (starting with ``= + - @``,
    tab or carriage return) get a leading ``'``; :func:`read_scores_csv` removes it.

    Args:
        path: the .csv file.
        scores: one row each.
        columns: the :class:`VolumeScore` fields to write, in order.

    Returns:
        the written path.
    """
    unknown = [c for c in columns if c not in VolumeScore._fields]
    if unknown:
        raise ValueError(f"unknown score columns {unknown}; choose from {VolumeScore._fields}")
    return write_csv_rows(path, columns, ([_cell(s, c) for c in columns] for s in scores))


def read_scores_csv(path: str | os.PathLike[str]) -> list[VolumeScore]:
    """Read a table written by :func:`write_scores_csv` (absent text columns read as "").

    Raises:
        DataError: the file lacks a required column or holds a non-number in a metric.
    """
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(_REQUIRED_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: not a score table (missing {', '.join(sorted(missing))})")
        try:
            return [
                VolumeScore(
                    **{c: _uncell(d.get(c) or "") for c in _TEXT_COLUMNS},
                    **{c: float(d[c]) for c in _NUMBER_COLUMNS},
                )
                for d in reader
            ]
        except ValueError as exc:
            raise DataError(f"{path}: line {reader.line_num}: {exc}") from None
