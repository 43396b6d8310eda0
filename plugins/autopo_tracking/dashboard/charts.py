"""Small SVG charts drawn on the server: the metrics page works offline, with no charting library."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 24, 28


def _number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def bar_chart(title: str, unit: str, points: Sequence[tuple[dt.date, float | None]], css_class: str = "bars") -> str:
    """One bar per date (a gap where there is no value), the largest value on the axis, each bar's
    value in its tooltip. The chart's title is its accessible name."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [value for _, value in points if value is not None]
    top = max(values, default=0.0) or 1.0
    slot = plot_w / max(len(points), 1)
    bar_w = max(slot * 0.7, 1.0)
    parts = [
        f'<svg class="chart {css_class}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<text class="chart-title" x="{LEFT}" y="14">{escape(title)}</text>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{_number(top)}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for n, (date, value) in enumerate(points):
        x = LEFT + n * slot + (slot - bar_w) / 2
        if value is not None:
            h = plot_h * value / top
            label = f"{date.isoformat()}: {_number(value)} {unit}"
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                f"<title>{escape(label)}</title></rect>"
            )
    if points:
        first, last = points[0][0], points[-1][0]
        parts.append(f'<text class="tick" x="{LEFT}" y="{HEIGHT - 8}">{first.isoformat()}</text>')
        parts.append(
            f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{last.isoformat()}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
