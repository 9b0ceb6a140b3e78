"""The report's tables as plain (header, rows) data, rendered as Markdown or fixed-width text.

One table model feeds summary.md, report.html and the terminal, so the three never
disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

from mrirecon.evaluate import METRICS, VolumeScore
from mrirecon.methods import method_label
from mrirecon.report.stats import PairedDiff, group_stats

__all__ = ["Table", "mean_table", "paired_diff_table", "markdown", "md_text", "text"]

_HEAD = {"ssim": "SSIM", "psnr": "PSNR (dB)", "nmse": "NMSE"}
_DIGITS = {"ssim": 4, "psnr": 2, "nmse": 4}


class Table(NamedTuple):
    """A titled table of strings."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""


def _num(x: float, digits: int) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _pm(mean: float, std: float, digits: int, n: int) -> str:
    if n < 2:  # no spread from a single volume
        return _num(mean, digits)
    return f"{_num(mean, digits)} ± {_num(std, digits)}"


def _order(methods: Sequence[str], present: set[str]) -> list[str]:
    return [m for m in methods if m in present] + sorted(present - set(methods))


def mean_table(
    rows: Sequence[VolumeScore], methods: Sequence[str], by_dataset: bool = False
) -> Table:
    """Mean ± sample std over volumes per acceleration and method (and dataset)."""
    st = group_stats(rows, by_dataset=by_dataset)
    accs = sorted({r.acceleration for r in rows})
    order = _order(methods, {r.method for r in rows})
    datasets = sorted({r.dataset for r in rows}) if by_dataset else [None]
    out = []
    for ds in datasets:
        for acc in accs:
            for m in order:
                key = (ds, m, acc) if by_dataset else (m, acc)
                if key not in st:
                    continue
                s = st[key]
                cells = [f"{acc:g}x", method_label(m), str(s["ssim"].n)]
                cells += [_pm(s[k].mean, s[k].std, _DIGITS[k], s[k].n) for k in METRICS]
                out.append(tuple(([ds] if by_dataset else []) + cells))
    header = (
        (("Dataset",) if by_dataset else ())
        + ("Acceleration", "Method", "n")
        + tuple(_HEAD[k] for k in METRICS)
    )
    title = "Per dataset" if by_dataset else "Mean ± std over volumes"
    note = "± is the sample standard deviation (ddof=1) over volumes; none is shown for n = 1."
    return Table(title, header, out, note)


def paired_diff_table(diffs: Sequence[PairedDiff]) -> Table:
    """Mean paired difference, bootstrap 95% CI and Wilcoxon p per comparison."""
    out = []
    for d in diffs:
        digits = _DIGITS[d.metric] + 1
        ci = (
            "n/a"
            if not math.isfinite(d.ci_low)
            else f"[{_num(d.ci_low, digits)}, {_num(d.ci_high, digits)}]"
        )
        if math.isfinite(d.p_value):
            p = f"{d.p_value:.3g}"
        else:
            p = d.note or "n/a"
        if not math.isfinite(d.ci_low) and d.n < 2:
            ci = f"n/a (n={d.n} < 2)"
        out.append(
            (f"{d.acceleration:g}x", f"{method_label(d.a)} − {method_label(d.b)}", _HEAD[d.metric], str(d.n),
             _num(d.mean, digits), ci, p)
        )  # fmt: skip
    header = (
        "Acceleration",
        "Difference",
        "Metric",
        "n",
        "Mean",
        "95% CI (bootstrap)",
        "Wilcoxon p",
    )
    note = (
        "Paired per volume (same file, same mask). CI: percentile bootstrap of the mean "
        "difference (10,000 resamples); p: two-sided Wilcoxon signed-rank test "
        "(scipy.stats.wilcoxon; exact for small n, where the smallest attainable p is "
        "2 / 2^n, e.g. 0.25 for n = 3). Positive SSIM/PSNR and negative NMSE differences "
        "favour the first method."
    )
    return Table("Paired differences", header, out, note)


def md_text(s: str) -> str:
    """Text made literal for Markdown: anything that could open an HTML tag or entity is
    escaped (a folder named ``<svg onload=...>`` stays text in any renderer), and
    Markdown's emphasis, link and table characters are backslash-escaped."""
    s = re.sub(r"&(?=#?\w+;)", "&amp;", str(s))
    s = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", s)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", s)


def markdown(table: Table, level: int = 2) -> str:
    """The table as a GitHub-flavoured Markdown section."""
    lines = [f"{'#' * level} {md_text(table.title)}", ""]
    lines.append("| " + " | ".join(md_text(h) for h in table.header) + " |")
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", md_text(table.note)]
    return "\n".join(lines) + "\n"


def text(table: Table) -> str:
    """The table in fixed-width columns for a terminal."""
    widths = [max(len(h), *(len(r[i]) for r in table.rows)) if table.rows else len(h)
              for i, h in enumerate(table.header)]  # fmt: skip
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [table.title, fmt.format(*table.header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*row) for row in table.rows]
    return "\n".join(lines)
