"""Run records: a JSONL metrics log (always), TensorBoard (when importable), progress bar.

Only rank 0 writes; other ranks get inert objects so call sites need no rank checks.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MetricsLog", "TensorBoard", "image_grid", "progress"]


class MetricsLog:
    """Append-only JSON-lines log: one object per line with ``kind`` and ``time``."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None

    def write(self, kind: str, **fields: Any) -> None:
        """Append one record (non-finite floats become null)."""
        if self.path is None:
            return
        rec = {"kind": kind, "time": round(time.time(), 3), **fields}
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in rec.items()
        }
        with self.path.open("a") as fh:
            fh.write(json.dumps(clean) + "\n")


def read_metrics(path: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl, optionally only one ``kind`` (``step``, ``epoch``...)."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            if kind is None or rec.get("kind") == kind:
                out.append(rec)
    return out


class TensorBoard:
    """SummaryWriter wrapper; inert when disabled, not rank 0 or tensorboard is missing."""

    def __init__(self, log_dir: str | os.PathLike[str] | None, enabled: bool) -> None:
        self.writer = None
        if log_dir is None or not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            return
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log the finite values at ``step``."""
        if self.writer is None:
            return
        for key, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log a (H, W) image in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HW")

    def close(self) -> None:
        """Flush and close the writer."""
        if self.writer is not None:
            self.writer.close()


def image_grid(zero_filled: np.ndarray, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Side by side ZF | output | target | 5x |error|, scaled by the target max: (h, 4w) in [0, 1]."""
    scale = float(target.max()) or 1.0
    err = np.abs(output - target) * 5.0
    panels = [zero_filled, output, target, err]
    return np.clip(np.concatenate([p / scale for p in panels], axis=1), 0.0, 1.0).astype(np.float32)


def progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (off when not wanted, stderr is not a terminal or tqdm is missing)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        enabled = False
    if not enabled or not sys.stderr.isatty():
        return _NoBar()
    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass
