"""Inline SVG charts for the offline HTML reports: no JavaScript, no CDN, no plotting library.

Each function returns one ``<svg>`` element as a string, sized by a ``viewBox`` so it scales with
the page. Every text that reaches the SVG is HTML-escaped. The charts are deliberately few:

* :func:`histogram_svg` — counts over bins (the weight histogram, on a log10 weight axis);
* :func:`line_chart_svg` — one or more series of points, optional error bars, optional diagonal
  (reliability curves; ESS and k̂ against the clip level), optional vertical event markers and
  named x positions (the history page's run dates);
* :func:`interval_chart_svg` — a "forest plot" of estimates with intervals (leaderboards).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
WIDTH, HEIGHT = 640, 320
MARGIN = {"left": 64, "right": 16, "top": 34, "bottom": 46}


@dataclass
class Series:
    """Points of one line, with optional error bars (``low``/``high`` per point)."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None
    dashed: bool = False
    markers: bool = True
    color: str | None = None
    """The line's colour; None: the palette's colour of the series' position."""
    labels: Sequence[str] | None = None
    """A tooltip (``<title>``) per point, shown on hover."""


@dataclass(frozen=True)
class Marker:
    """A vertical marker at ``x`` (an event: a promotion, a missing run) with a short label
    above the plot and a longer ``title`` shown as its tooltip."""

    x: float
    label: str
    title: str = ""
    kind: str = "event"
    """Its CSS class, and its colour by :data:`MARKER_COLORS`."""


MARKER_COLORS = {"promotion": "#2ca02c", "gap": "#888888"}


@dataclass
class _Axes:
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    elements: list[str] = field(default_factory=list)

    def px(self, x: float) -> float:
        lo, hi = self.x_range
        span = (hi - lo) or 1.0
        return MARGIN["left"] + (x - lo) / span * (WIDTH - MARGIN["left"] - MARGIN["right"])

    def py(self, y: float) -> float:
        lo, hi = self.y_range
        span = (hi - lo) or 1.0
        return HEIGHT - MARGIN["bottom"] - (y - lo) / span * (
            HEIGHT - MARGIN["top"] - MARGIN["bottom"])


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _range(values: list[float], pad: float = 0.05) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi == lo:
        return lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
    extra = (hi - lo) * pad
    return lo - extra, hi + extra


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values between ``lo`` and ``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step) * step
    ticks, t = [], start
    while t <= hi + 1e-12 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


def log10_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log10 axis (values are log10 of the data): decades, or 1-2-5 steps when the
    axis spans fewer than three decades."""
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    whole = [float(d) for d in decades if lo <= d <= hi]
    if len(whole) >= 3:
        return whole
    return [d + math.log10(m) for d in decades for m in (1, 2, 5)
            if lo <= d + math.log10(m) <= hi]


def _fmt_tick(value: float, log10_axis: bool = False) -> str:
    if log10_axis:
        v = 10 ** value
        return f"{v:.0e}" if v < 0.01 or v >= 1000 else f"{float(f'{v:.2g}'):g}"
    return f"{value:.3g}"


def _frame(axes: _Axes, title: str, x_label: str, y_label: str, log10_x: bool = False,
           x_ticks: Sequence[tuple[float, str]] | None = None) -> None:
    """Grid, axes, ticks and labels; ``x_ticks`` (position, text) replaces the numeric ones."""
    e = axes.elements
    left, bottom = MARGIN["left"], HEIGHT - MARGIN["bottom"]
    right, top = WIDTH - MARGIN["right"], MARGIN["top"]
    for t in nice_ticks(*axes.y_range):
        y = axes.py(t)
        e.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        e.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt_tick(t)}</text>')
    if x_ticks is None:
        x_ticks = [(t, _fmt_tick(t, log10_x)) for t in (
            log10_ticks(*axes.x_range) if log10_x else nice_ticks(*axes.x_range, count=6))]
    for t, text in x_ticks:
        x = axes.px(t)
        e.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" class="axis"/>')
        e.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">'
                 f'{escape(text)}</text>')
    e.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" class="axis"/>')
    e.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" class="axis"/>')
    e.append(f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" class="title">'
             f'{escape(title)}</text>')
    e.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
             f'{escape(x_label)}</text>')
    e.append(f'<text transform="translate(14 {(top + bottom) / 2}) rotate(-90)" '
             f'text-anchor="middle">{escape(y_label)}</text>')


def _legend(axes: _Axes, names: list[str], colors: Sequence[str | None] = ()) -> None:
    for j, name in enumerate(names):
        x, y = MARGIN["left"] + 10, MARGIN["top"] + 8 + 16 * j
        color = (colors[j] if j < len(colors) else None) or PALETTE[j % len(PALETTE)]
        axes.elements.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" '
                             f'fill="{color}"/><text x="{x + 15}" y="{y + 1}">'
                             f'{escape(name)}</text>')


def _svg(axes: _Axes, label: str) -> str:
    style = ("<style>text{font:11px sans-serif;fill:#222}.title{font-weight:bold;font-size:13px}"
             ".grid{stroke:#e4e4e4}.axis{stroke:#444}</style>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-label="{escape(label)}" class="chart">{style}'
            + "".join(axes.elements) + "</svg>")


def histogram_svg(
    edges: Sequence[float], counts: dict[str, Sequence[float]], *, title: str, x_label: str,
    y_label: str = "share of rows", log10_x: bool = False,
) -> str:
    """Overlaid step histograms: ``counts[name][j]`` rows in ``[edges[j], edges[j+1])``.

    Counts are shown as shares of each series' total so series of different sizes compare.
    With ``log10_x`` the edges are log10 values and the tick labels show ``10**edge``.
    """
    shares = {}
    for name, c in counts.items():
        total = sum(c) or 1.0
        shares[name] = [v / total for v in c]
    top = max((max(s) for s in shares.values() if s), default=1.0)
    axes = _Axes(_range([edges[0], edges[-1]], pad=0.0), (0.0, top * 1.1 or 1.0))
    _frame(axes, title, x_label, y_label, log10_x)
    for j, (_, s) in enumerate(shares.items()):
        color = PALETTE[j % len(PALETTE)]
        points = []
        for k, v in enumerate(s):
            points += [f"{axes.px(edges[k]):.1f},{axes.py(v):.1f}",
                       f"{axes.px(edges[k + 1]):.1f},{axes.py(v):.1f}"]
        axes.elements.append(f'<polyline points="{" ".join(points)}" fill="none" '
                             f'stroke="{color}" stroke-width="1.8" class="series"/>')
    _legend(axes, list(shares))
    return _svg(axes, title)


def line_chart_svg(
    series: list[Series], *, title: str, x_label: str, y_label: str, diagonal: bool = False,
    reference_y: float | None = None, log10_x: bool = False, markers: Sequence[Marker] = (),
    x_labels: Sequence[str] | None = None,
) -> str:
    """Lines with optional error bars; ``diagonal`` draws y = x, ``reference_y`` a level.

    ``markers`` draws vertical event markers; ``x_labels`` names the x positions 0, 1, …
    (ordinal categories such as run dates: the axis spans them, ticks carry the names).
    """
    xs = [v for s in series for v in _finite(s.x)]
    ys = [v for s in series for v in _finite(s.y)]
    ys += [v for s in series for v in _finite(s.low or [])]
    ys += [v for s in series for v in _finite(s.high or [])]
    if reference_y is not None:
        ys.append(reference_y)
    if diagonal:
        xs_ys = xs + ys
        axes = _Axes(_range(xs_ys), _range(xs_ys))
    else:
        named = None if x_labels is None else (-0.5, len(x_labels) - 0.5)
        axes = _Axes(named or _range(xs), _range(ys))
    _frame(axes, title, x_label, y_label, log10_x,
           None if x_labels is None else _named_ticks(x_labels))
    e = axes.elements
    _markers(axes, markers)
    if diagonal:
        lo, hi = axes.x_range
        e.append(f'<line x1="{axes.px(lo):.1f}" y1="{axes.py(lo):.1f}" x2="{axes.px(hi):.1f}" '
                 f'y2="{axes.py(hi):.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    if reference_y is not None:
        y = axes.py(reference_y)
        e.append(f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{y:.1f}" '
                 f'y2="{y:.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    for j, s in enumerate(series):
        color = s.color or PALETTE[j % len(PALETTE)]
        pts = [(float(a), float(b), k) for k, (a, b) in enumerate(zip(s.x, s.y, strict=True))
               if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        if not pts:
            continue
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        path = " ".join(f"{axes.px(a):.1f},{axes.py(b):.1f}" for a, b, _ in pts)
        e.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"'
                 f'{dash} class="series"/>')
        if s.low is not None and s.high is not None:
            for a, lo, hi in zip(s.x, s.low, s.high, strict=True):
                if all(v is not None and math.isfinite(v) for v in (a, lo, hi)):
                    e.append(f'<line x1="{axes.px(a):.1f}" x2="{axes.px(a):.1f}" '
                             f'y1="{axes.py(lo):.1f}" y2="{axes.py(hi):.1f}" stroke="{color}" '
                             f'stroke-width="1"/>')
        if s.markers:
            for a, b, k in pts:
                end = f"><title>{escape(s.labels[k])}</title></circle>" if s.labels else "/>"
                e.append(f'<circle cx="{axes.px(a):.1f}" cy="{axes.py(b):.1f}" r="3" '
                         f'fill="{color}"{end}')
    _legend(axes, [s.name for s in series], [s.color for s in series])
    return _svg(axes, title)


def _named_ticks(labels: Sequence[str], most: int = 8) -> list[tuple[float, str]]:
    """Ticks at 0, 1, … named by ``labels``; at most ``most`` of them, the last one always."""
    step = max(1, math.ceil(len(labels) / most))
    return [(float(k), labels[k]) for k in range(len(labels) - 1, -1, -step)][::-1]


def _markers(axes: _Axes, markers: Sequence[Marker]) -> None:
    """Vertical dotted lines across the plot, their labels above it, their titles as tooltips."""
    top, bottom = MARGIN["top"], HEIGHT - MARGIN["bottom"]
    for m in markers:
        x, color = axes.px(m.x), MARKER_COLORS.get(m.kind, "#666666")
        axes.elements.append(
            f'<g class="marker {escape(m.kind)}"><title>{escape(m.title or m.label)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="{color}" '
            f'stroke-width="1.5" stroke-dasharray="2 3"/><text x="{x:.1f}" y="{top - 3}" '
            f'text-anchor="middle" fill="{color}" style="font-size:9px">{escape(m.label)}'
            "</text></g>")


def interval_chart_svg(
    rows: list[tuple[str, float, float, float]], *, title: str, x_label: str,
    reference_x: float | None = None,
) -> str:
    """A forest plot: one row per ``(label, value, low, high)``, best first as given."""
    height = MARGIN["top"] + MARGIN["bottom"] + 18 * max(len(rows), 1)
    left = 230
    values = _finite([v for _, v, lo, hi in rows for v in (v, lo, hi)])
    if reference_x is not None:
        values.append(reference_x)
    lo_x, hi_x = _range(values)
    right = WIDTH - MARGIN["right"]

    def px(x: float) -> float:
        return left + (x - lo_x) / ((hi_x - lo_x) or 1.0) * (right - left)

    e = [f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" class="title">{escape(title)}</text>']
    bottom = height - MARGIN["bottom"]
    for t in nice_ticks(lo_x, hi_x, count=6):
        e.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{MARGIN["top"]}" y2="{bottom}" '
                 f'class="grid"/><text x="{px(t):.1f}" y="{bottom + 16}" text-anchor="middle">'
                 f'{_fmt_tick(t)}</text>')
    if reference_x is not None:
        e.append(f'<line x1="{px(reference_x):.1f}" x2="{px(reference_x):.1f}" '
                 f'y1="{MARGIN["top"]}" y2="{bottom}" stroke="#999" stroke-dasharray="4 3"/>')
    for j, (label, v, lo, hi) in enumerate(rows):
        y = MARGIN["top"] + 9 + 18 * j
        e.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>')
        if all(math.isfinite(t) for t in (v, lo, hi)):
            e.append(f'<line x1="{px(lo):.1f}" x2="{px(hi):.1f}" y1="{y}" y2="{y}" '
                     f'stroke="{PALETTE[0]}" stroke-width="2"/>')
        if math.isfinite(v):
            e.append(f'<circle cx="{px(v):.1f}" cy="{y}" r="3.5" fill="{PALETTE[1]}"/>')
    e.append(f'<text x="{(left + right) / 2}" y="{height - 8}" text-anchor="middle">'
             f'{escape(x_label)}</text>')
    style = ("<style>text{font:11px sans-serif;fill:#222}.title{font-weight:bold;font-size:13px}"
             ".grid{stroke:#e4e4e4}</style>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-label="{escape(title)}" class="chart">{style}' + "".join(e) + "</svg>")
