"""The run report: its content (``report.json``) and its renderings (Markdown, offline HTML).

``content`` builds the report dict and its verdict; ``render`` turns it into ``report.md`` and
``report.html``; ``plots`` draws the inline SVG charts (no JavaScript, no CDN). This part imports
no ``release``.
"""

from is_core.report.content import (
    build_report,
    metrics_table,
    verdict,
    weight_profile,
    weight_profile_from_file,
)
from is_core.report.render import render_html, render_markdown

__all__ = [
    "build_report",
    "metrics_table",
    "render_html",
    "render_markdown",
    "verdict",
    "weight_profile",
    "weight_profile_from_file",
]
