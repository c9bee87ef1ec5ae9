"""Self-contained HTML pages: inline CSS and SVG, no script, no external resource.

A report must open from a file on a laptop without network (or be attached to an e-mail), so
nothing here references a URL. Every value is escaped; only SVG produced by
:mod:`is_core.report.plots` is inserted verbatim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1040px;
padding:24px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid #d6d6d6;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.verdict{background:#f5f9ff;border-left:4px solid #1f77b4;padding:10px 14px;margin:12px 0}
.verdict.bad{background:#fff6f5;border-left-color:#d62728}
.verdict.good{background:#f4fbf4;border-left-color:#2ca02c}
.note{color:#555;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{width:100%;max-width:640px;height:auto;border:1px solid #eee}
code{background:#f4f4f4;padding:0 3px}
"""


def format_value(value: Any, digits: int = 4) -> str:
    """Numbers with ``digits`` significant decimals (scientific when tiny or huge)."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          headers: dict[str, str] | None = None, digits: int = 4, css_class: str = "") -> str:
    """An HTML table of ``rows`` (dicts); ``columns`` picks and orders the keys."""
    if not rows:
        return '<p class="note">(no rows)</p>'
    columns = list(columns or rows[0].keys())
    headers = headers or {}
    head = "".join(f"<th>{escape(headers.get(c, c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(format_value(r.get(c), digits))}</td>" for c in columns)
        + "</tr>" for r in rows)
    cls = f' class="{escape(css_class)}"' if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def paragraph(text: str, css_class: str = "") -> str:
    cls = f' class="{escape(css_class)}"' if css_class else ""
    return f"<p{cls}>{escape(text)}</p>"


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    """An ``<h2>`` section; ``parts`` are already-rendered HTML fragments."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{escape(title)}</h2>" + "".join(parts) + "</section>"


def charts(*svgs: str) -> str:
    """Lay SVG charts out side by side (wrapping)."""
    return '<div class="charts">' + "".join(svgs) + "</div>"


def page(title: str, *parts: str, subtitle: str = "") -> str:
    """A complete HTML5 document with inline CSS and no external references."""
    sub = f'<p class="note">{escape(subtitle)}</p>' if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{sub}" + "".join(parts) + "</body></html>\n"
    )
