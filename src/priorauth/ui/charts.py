"""The metrics page's chart: stacked bars of decisions per day, as server-rendered SVG."""

from __future__ import annotations

from html import escape
from typing import Any

COLORS = {"approved": "#17702f", "modified": "#0b5cad", "denied": "#b42318"}
LABELS = {"approved": "Approved", "modified": "Approved, modified", "denied": "Denied"}


def chart_svg(by_day: list[dict[str, Any]]) -> str:
    """Stacked bars of decisions per day; titles give exact numbers, a table beside it too."""
    width, height, left, bottom, top = 720, 240, 36, 36, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(d[k] for k in COLORS) for d in by_day), default=0) or 1
    bar = plot_w / max(len(by_day), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">Decisions per day, last {len(by_day)} days</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        'stroke="#333" />',
    ]
    for tick in sorted({0, peak // 2, peak}):
        y = top + plot_h - plot_h * tick / peak
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{tick}</text>'
        )
    for i, d in enumerate(by_day):
        x, y = left + i * bar, top + plot_h
        for k, color in COLORS.items():
            if not d[k]:
                continue
            h = plot_h * d[k] / peak
            y -= h
            out.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(d["date"])}: {d[k]} {LABELS[k].lower()}'
                "</title></rect>"
            )
        if i % 5 == 0 or i == len(by_day) - 1:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'font-size="11">{escape(d["date"][5:])}</text>'
            )
    out.append("</svg>")
    return "".join(out)
