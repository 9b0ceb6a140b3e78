"""report.html: one self-contained page (figures embedded as base64 PNG data URIs).

The page references no external resource. Its only links are relative links to files
the comparison wrote next to it (metrics.csv, summary.md, the figure PNGs), so the
folder can be moved or archived as a whole.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import NamedTuple

from mrirecon.report.tables import Table

__all__ = ["Figure", "render_html"]


class Figure(NamedTuple):
    """An embedded figure: caption, PNG bytes and the relative path of its file copy."""

    caption: str
    png: bytes
    file: str


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1300px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
td:nth-child(-n+3), th:nth-child(-n+3) { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; font-family: monospace; word-break: break-all; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
p.note { font-size: 0.88em; color: #555; max-width: 60em; }
.warn { color: #a40000; }
"""


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return (
        f"<h2>{html.escape(t.title)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>\n{note}"
    )


def _figure_html(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    cap = html.escape(f.caption)
    return (
        f'<figure>\n<img alt="{cap}" src="data:image/png;base64,{data}">\n'
        f'<figcaption>{cap} (<a href="{html.escape(f.file)}">{html.escape(f.file)}</a>)'
        "</figcaption>\n</figure>"
    )


def render_html(
    title: str,
    meta: Sequence[tuple[str, str]],
    tables: Sequence[Table],
    figures: Sequence[tuple[str, Sequence[Figure]]],
    links: Sequence[tuple[str, str]] = (),
    warnings: Sequence[str] = (),
) -> str:
    """The whole report page.

    Args:
        title: page heading.
        meta: (name, value) pairs describing the run (data, masks, checkpoint hash, ...).
        tables: tables in display order.
        figures: (section heading, figures) in display order.
        links: (text, relative path) of files written next to the page.
        warnings: lines shown prominently (failed files, missing methods).

    Returns:
        the HTML text.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head>\n<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>\n</head>\n<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if links:
        parts.append(
            "<p>Files: "
            + " · ".join(f'<a href="{html.escape(p)}">{html.escape(t)}</a>' for t, p in links)
            + "</p>"
        )
    parts.append('<dl class="meta">')
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in meta]
    parts.append("</dl>")
    for w in warnings:
        parts.append(f'<p class="warn">{html.escape(w)}</p>')
    parts += [_table_html(t) for t in tables]
    for heading, figs in figures:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts += [_figure_html(f) for f in figs]
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)
