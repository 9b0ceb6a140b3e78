"""PNG figures of the comparison report: image panels with error maps, and metric box plots.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global
backend switch), so they render headless and never touch a display.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, ParamSpec

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mrirecon.evaluate import VolumeScore
from mrirecon.methods import baseline_method, method_label
from mrirecon.metrics import volume_metrics

__all__ = ["PanelSlice", "panel_figure", "box_figure"]

METRIC_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)", "nmse": "NMSE"}
_DPI = 100
P = ParamSpec("P")


def _literal_text(draw: Callable[P, bytes]) -> Callable[P, bytes]:
    """Draw with every text taken literally: file and folder names are never parsed as
    mathtext or LaTeX (a name like ``$\\notacmd{$.h5`` would otherwise stop the report)."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> bytes:
        with rc_context({"text.parse_math": False, "text.usetex": False}):
            return draw(*args, **kwargs)

    return wrapper


class PanelSlice:
    """One slice to show: its target, every method's reconstruction and the mask.

    Attributes:
        title: e.g. ``"file1000.h5, slice 5"``.
        target: (h, w) reference image.
        recons: method -> (h, w) reconstruction (same crop as the target).
        mask: (W,) bool sampling mask, or None.
    """

    def __init__(
        self,
        title: str,
        target: np.ndarray,
        recons: Mapping[str, np.ndarray],
        mask: np.ndarray | None = None,
    ) -> None:
        self.title = title
        self.target = np.asarray(target, dtype=np.float32)
        self.recons = {k: np.asarray(v, dtype=np.float32) for k, v in recons.items()}
        for name, img in self.recons.items():
            if img.shape != self.target.shape:
                raise ValueError(
                    f"{title}: {name} image {img.shape} differs from the target {self.target.shape}"
                )
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)


class SliceScore(NamedTuple):
    ssim: float
    psnr: float


def slice_score(target: np.ndarray, recon: np.ndarray) -> SliceScore:
    """SSIM and PSNR of one slice (fastMRI definitions, data range = slice maximum)."""
    m = volume_metrics(target[None], recon[None])
    return SliceScore(m.ssim, m.psnr)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _error_scale(errors: Mapping[str, np.ndarray]) -> float:
    """Top of the shared error colour scale: the baseline's error's 99.5th percentile.

    Anchoring to the baseline (zero-filled; else to the smallest of the methods'
    percentiles) keeps the maps readable when one method fails badly; larger errors
    saturate.
    """
    base = baseline_method(list(errors))
    if base is not None:
        top = float(np.percentile(errors[base], 99.5))
    else:
        top = min(float(np.percentile(e, 99.5)) for e in errors.values())
    return top if top > 0 else max(float(e.max()) for e in errors.values()) or 1.0


@_literal_text
def panel_figure(slices: Sequence[PanelSlice], methods: Sequence[str], heading: str) -> bytes:
    """Target and reconstructions (top row) with absolute error maps (bottom row) per slice.

    All images of a slice share one grey window (0 to the 99.5th percentile of the
    target) and all error maps of a slice share one colour scale (0 to the 99.5th
    percentile of the zero-filled error, see :func:`_error_scale`), so columns can be
    compared by eye.

    Args:
        slices: the slices to show, one pair of rows each.
        methods: method names in column order (each must be in every slice's recons).
        heading: figure title.

    Returns:
        PNG bytes.
    """
    if not slices:
        raise ValueError("panel_figure needs at least one slice")
    ncol = 1 + len(methods)
    fig = Figure(figsize=(2.6 * ncol + 0.6, 5.5 * len(slices) + 0.5))
    grid = fig.add_gridspec(2 * len(slices), ncol + 1, width_ratios=[1] * ncol + [0.06])
    for s, sl in enumerate(slices):
        missing = [m for m in methods if m not in sl.recons]
        if missing:
            raise ValueError(f"{sl.title}: no reconstruction for {', '.join(missing)}")
        vmax = float(np.percentile(sl.target, 99.5)) or float(sl.target.max()) or 1.0
        errors = {m: np.abs(sl.recons[m] - sl.target) for m in methods}
        emax = _error_scale(errors)
        top, bottom = 2 * s, 2 * s + 1
        ax = fig.add_subplot(grid[top, 0])
        ax.imshow(sl.target, cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(f"Target\n{sl.title}", fontsize=9)
        _off(ax)
        ax = fig.add_subplot(grid[bottom, 0])
        if sl.mask is not None:
            ax.imshow(np.broadcast_to(sl.mask, (sl.mask.size // 2 or 1, sl.mask.size)),
                      cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")  # fmt: skip
            ax.set_title(f"Mask: {int(sl.mask.sum())}/{sl.mask.size} columns", fontsize=9)
        else:
            ax.set_axis_off()
        _off(ax)
        im = None
        for c, m in enumerate(methods, start=1):
            score = slice_score(sl.target, sl.recons[m])
            ax = fig.add_subplot(grid[top, c])
            ax.imshow(sl.recons[m], cmap="gray", vmin=0, vmax=vmax)
            ax.set_title(
                f"{method_label(m)}\nSSIM {score.ssim:.3f}  PSNR {score.psnr:.2f} dB", fontsize=9
            )
            _off(ax)
            ax = fig.add_subplot(grid[bottom, c])
            im = ax.imshow(errors[m], cmap="inferno", vmin=0, vmax=emax)
            ax.set_title(f"|{method_label(m)} - target|", fontsize=9)
            _off(ax)
        if im is not None:
            fig.colorbar(im, cax=fig.add_subplot(grid[bottom, ncol]))
    fig.suptitle(heading, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return _png(fig)


@_literal_text
def box_figure(
    rows: Sequence[VolumeScore],
    methods: Sequence[str],
    accelerations: Sequence[float],
    metric: str = "ssim",
) -> bytes:
    """Box plots of a per-volume metric for each method, one panel per acceleration.

    Each volume is also drawn as a point, joined across methods by a thin line (the
    comparison is paired); marker shapes tell the datasets apart.

    Returns:
        PNG bytes.
    """
    datasets = sorted({r.dataset for r in rows})
    markers = dict(zip(datasets, "osD^v<>p*h", strict=False))
    fig = Figure(figsize=(1.6 + 1.9 * len(methods) * len(accelerations), 4.2))
    axes = fig.subplots(1, len(accelerations), squeeze=False, sharey=True)[0]
    for ax, acc in zip(axes, accelerations, strict=True):
        sub = [r for r in rows if r.acceleration == acc]
        values = [[getattr(r, metric) for r in sub if r.method == m] for m in methods]
        pos = np.arange(1, len(methods) + 1)
        if any(values):
            ax.boxplot([v if v else [np.nan] for v in values], positions=pos, widths=0.5,
                       showfliers=False, medianprops={"color": "black"})  # fmt: skip
        vols = sorted({(r.dataset, r.file) for r in sub})
        for k, (ds, f) in enumerate(vols):
            ys = [next((getattr(r, metric) for r in sub if r.method == m and r.file == f
                        and r.dataset == ds), np.nan) for m in methods]  # fmt: skip
            jitter = (k / max(len(vols) - 1, 1) - 0.5) * 0.2
            ax.plot(pos + jitter, ys, color="0.6", lw=0.6, zorder=1)
            ax.scatter(pos + jitter, ys, s=16, marker=markers.get(ds, "o"), zorder=2,
                       color=[f"C{i}" for i in range(len(methods))])  # fmt: skip
        ax.set_xticks(pos, [method_label(m) for m in methods], fontsize=9)
        ax.set_title(f"{acc:g}x", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(METRIC_LABELS.get(metric, metric))
    if len(datasets) > 1:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker=markers[d], color="0.3", ls="", label=d) for d in datasets]
        fig.legend(
            handles=handles, loc="lower center", ncol=len(datasets), fontsize=8, frameon=False
        )
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    else:
        fig.tight_layout()
    return _png(fig)
