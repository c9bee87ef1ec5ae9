"""The run report: its content (``report.json``) and its renderings (Markdown, offline HTML).

``content`` builds the report dict and its verdict; ``render`` turns it into ``report.md`` and
``report.html``; ``plots`` draws the inline SVG charts (no JavaScript, no CDN); ``history``
reads every run date's report into one row per date and ``history_page`` draws them as
``<output_root>/index.html``. This part imports no ``release``.
"""

from is_core.report.content import (
    build_report,
    metrics_table,
    verdict,
    weight_profile,
    weight_profile_from_file,
)
from is_core.report.history import HistoryRow, history_table, read_history, render_history_text
from is_core.report.history_page import render_history_html, write_history_page
from is_core.report.render import render_html, render_markdown

__all__ = [
    "HistoryRow",
    "build_report",
    "history_table",
    "metrics_table",
    "read_history",
    "render_history_html",
    "render_history_text",
    "render_html",
    "render_markdown",
    "verdict",
    "weight_profile",
    "weight_profile_from_file",
    "write_history_page",
]
