"""The comparison report: metrics.csv, summary.md, PNG figures and a self-contained report.html.

- :mod:`mrirecon.report.stats`: per-volume rows, mean/std, paired bootstrap CIs and
  Wilcoxon tests.
- :mod:`mrirecon.report.figures`: image panels with error maps, box plots.
- :mod:`mrirecon.report.tables`: the tables for Markdown, HTML and the terminal.
- :mod:`mrirecon.report.html`: the HTML page.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrirecon import __version__
from mrirecon.data.fastmri_h5 import read_attrs
from mrirecon.evaluate import VolumeScore
from mrirecon.io import atomic_write
from mrirecon.methods import baseline_method, comparison_pairs, method_label, spec_class
from mrirecon.report.figures import box_figure, panel_figure
from mrirecon.report.html import Figure, render_html
from mrirecon.report.panels import choose_slices, load_panel
from mrirecon.report.stats import paired_table, write_metrics_csv
from mrirecon.report.tables import Table, markdown, md_text, mean_table, paired_diff_table, text

__all__ = ["ReportInputs", "write_report", "recon_dir"]

FILES = {
    "metrics": "metrics.csv",
    "summary": "summary.md",
    "html": "report.html",
}


@dataclass
class ReportInputs:
    """Everything the report shows.

    Attributes:
        out: report folder.
        rows: per-volume scores.
        methods: methods in display order.
        accelerations: accelerations in display order.
        datasets: (label, folder) of the input folders.
        recon_root: folder holding ``<method>/<acc>x/`` reconstructions.
        panels: requested panel slices (``FILE`` or ``FILE:SLICE``), empty = automatic.
        settings: the run's settings (shown as provenance).
        failed: (what, reason) of files that could not be reconstructed or scored.
        seconds: (method, acceleration) -> reconstruction seconds of this run.
        n_boot: bootstrap resamples.
    """

    out: Path
    rows: list[VolumeScore]
    methods: Sequence[str]
    accelerations: Sequence[float]
    datasets: Sequence[tuple[str, Path]]
    recon_root: Path
    panels: Sequence[str] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    failed: Sequence[tuple[str, str]] = ()
    seconds: dict[tuple[str, float], float] = field(default_factory=dict)
    n_boot: int = 10000


def recon_dir(recon_root: Path, method: str, acceleration: float) -> Path:
    """Where ``compare`` keeps one method's reconstructions at one acceleration:
    ``recon_root/<method>/<acc>x`` (``4x``, ``2.5x``)."""
    return Path(recon_root) / method / f"{acceleration:g}x"


def _provenance(inp: ReportInputs) -> list[tuple[str, str]]:
    meta = [
        ("Data", ", ".join(f"{d} ({folder})" for d, folder in inp.datasets)),
        ("Volumes", str(len({(r.dataset, r.file) for r in inp.rows}))),
    ]
    for m in inp.settings.get("masks", []):
        meta.append(
            (f"Mask {m['accelerations'][0]:g}x",
             f"{m['kind']}, centre fraction {m['center_fractions'][0]:g}")
        )  # fmt: skip
    seed = inp.settings.get("seed")
    meta.append(
        ("Mask seeding", "fastMRI per-file (name) seed" if seed is None else f"seed {seed}")
    )
    for method in inp.methods:
        folder = recon_dir(inp.recon_root, method, inp.accelerations[0])
        files = sorted(folder.glob("*.h5")) if folder.is_dir() else []
        if not files:
            continue
        attrs = read_attrs(files[0])
        shown = spec_class(method).shown_attrs
        meta += [(f"{method_label(method)} {k}", _fmt(attrs[k])) for k in shown if k in attrs]
    meta.append(("Software", f"mrirecon {__version__}, Python {platform.python_version()}"))
    meta.append(("Written", time.strftime("%Y-%m-%d %H:%M:%S %Z")))
    return meta


def _fmt(value: Any) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _timing_table(inp: ReportInputs) -> Table:
    counts: dict[tuple[str, float], int] = {}
    for r in inp.rows:
        counts[(r.method, r.acceleration)] = counts.get((r.method, r.acceleration), 0) + 1
    out = []
    for acc in inp.accelerations:
        for m in inp.methods:
            sec = inp.seconds.get((m, acc))
            if sec is None:
                continue
            n = counts.get((m, acc), 0)
            per = f"{sec / n:.2f}" if n and sec > 0 else "n/a"
            out.append((f"{acc:g}x", method_label(m), str(n), f"{sec:.1f}", per))
    note = "Wall time of this run including file I/O; 0 s means finished outputs were reused."
    return Table(
        "Reconstruction time",
        ("Acceleration", "Method", "Volumes", "Seconds", "s/volume"),
        out,
        note,
    )


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return path


def _write_text(path: Path, data: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(data, encoding="utf-8")
    return path


def write_report(inp: ReportInputs) -> tuple[dict[str, Path], str]:
    """Write metrics.csv, summary.md, figures/*.png and report.html into ``inp.out``.

    Returns:
        (name -> path of every file written, the summary as terminal text).
    """
    out = Path(inp.out)
    paths: dict[str, Path] = {"metrics": write_metrics_csv(out / FILES["metrics"], inp.rows)}
    methods = list(inp.methods)
    pairs = comparison_pairs(methods)
    diffs = paired_table(inp.rows, pairs, inp.accelerations, n_boot=inp.n_boot)
    tables = [mean_table(inp.rows, methods)]
    if len({r.dataset for r in inp.rows}) > 1:
        tables.append(mean_table(inp.rows, methods, by_dataset=True))
    tables.append(paired_diff_table(diffs))
    tables.append(_timing_table(inp))
    warnings = [f"FAILED {what}: {why}" for what, why in inp.failed]
    if not inp.rows:
        warnings.append("No volume could be scored.")

    figures: list[tuple[str, list[Figure]]] = []
    if inp.rows:
        chosen = choose_slices(inp.rows, inp.datasets, inp.panels)
        panel_figs = []
        for acc in inp.accelerations:
            dirs = {m: recon_dir(inp.recon_root, m, acc) for m in methods}
            scored = {(r.dataset, r.file) for r in inp.rows if r.acceleration == acc}
            slices = [load_panel(d, p, s, dirs) for d, p, s in chosen if (d, p.name) in scored]
            if not slices:
                continue
            png = panel_figure(slices, methods, f"{acc:g}x undersampling")
            rel = f"figures/panel_{acc:g}x.png"
            paths[f"panel_{acc:g}x"] = _write_bytes(out / rel, png)
            base = baseline_method(methods)
            base = "smallest" if base is None else method_label(base).lower()
            caption = (
                f"{acc:g}x: target and reconstructions (top; one grey scale per row) and absolute "
                "error maps (bottom; one colour scale per row, saturating at the 99.5th "
                f"percentile of the {base} error). Titles: SSIM/PSNR of the slice."
            )
            panel_figs.append(Figure(caption, png, rel))
        figures.append(("Example slices", panel_figs))
        box_figs = []
        for metric in ("ssim", "psnr"):
            png = box_figure(inp.rows, methods, inp.accelerations, metric)
            rel = f"figures/box_{metric}.png"
            paths[f"box_{metric}"] = _write_bytes(out / rel, png)
            cap = f"Per-volume {metric.upper()} by method; grey lines join the same volume."
            box_figs.append(Figure(cap, png, rel))
        figures.append(("Per-volume distributions", box_figs))

    meta = _provenance(inp)
    title = "mrirecon comparison: " + " vs ".join(method_label(m) for m in methods)
    md = [f"# {md_text(title)}", ""]
    md += [f"- **{md_text(k)}**: {md_text(v)}" for k, v in meta] + [""]
    md += [f"**{md_text(w)}**\n" for w in warnings]
    md += [markdown(t) for t in tables]
    for heading, figs in figures:
        md.append(f"## {heading}\n")
        md += [f"![{md_text(f.caption)}]({f.file})\n" for f in figs]
    paths["summary"] = _write_text(out / FILES["summary"], "\n".join(md))
    links = [("metrics.csv", FILES["metrics"]), ("summary.md", FILES["summary"])]
    page = render_html(title, meta, tables, figures, links, warnings)
    paths["html"] = _write_text(out / FILES["html"], page)
    summary = "\n\n".join(
        text(t) for t in tables[:1] + [t for t in tables if t.title == "Paired differences"]
    )
    return paths, summary
