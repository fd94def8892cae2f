"""A small SVG renderer for the replenishment picture: one panel per policy, stock
over the year, orders and deliveries marked, stock-out days in red.

Plain SVG written by hand (the venv holds no plotting library, and the picture
needs nothing one would add): axes, a polyline per panel, markers, bands.

>>> svg = render_svg([Series("x", [(0.0, 1.0), (86400.0, 2.0)], [0.0], [86400.0], [])],
...                  start=0.0, days=2, spans={}, seed=1)
>>> svg.startswith("<svg") and "polyline" in svg
True
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

DAY = 86_400.0
WIDTH, PANEL, TOP, LEFT, RIGHT, GAP = 1100, 170, 46, 56, 16, 34
SPAN_COLOURS = {"holiday": "#d9d9d9", "guests": "#ffd9a8", "slow shop": "#c9ddf2"}


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]  # (time, stock)
    orders: list[float]
    deliveries: list[float]
    stockout_days: list[int]


def render_svg(
    series: list[Series],
    *,
    start: float,
    days: int,
    spans: dict[str, list[tuple[int, int]]],
    seed: int,
) -> str:
    top = max((s for x in series for _, s in x.points), default=1.0) * 1.05 or 1.0
    height = TOP + len(series) * (PANEL + GAP) + 10
    plot_w = WIDTH - LEFT - RIGHT

    def x_of(t: float) -> float:
        return LEFT + (t - start) / (days * DAY) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">Coffee in the jar over '
        f"a simulated year (seed {seed}): ▲ order placed, ● delivered, red: stock-out day"
        "</text>",
    ]
    legend_x = LEFT
    for name, colour in SPAN_COLOURS.items():
        out.append(f'<rect x="{legend_x}" y="24" width="12" height="10" fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 16}" y="33">{escape(name)}</text>')
        legend_x += 90
    for index, s in enumerate(series):
        y0 = TOP + index * (PANEL + GAP) + 14

        def y_of(v: float, y0: float = y0) -> float:
            return y0 + PANEL - v / top * PANEL

        out.append(f'<text x="{LEFT}" y="{y0 - 4}" font-weight="bold">{escape(s.name)}</text>')
        for name, ranges in spans.items():
            colour = SPAN_COLOURS.get(name, "#eeeeee")
            for first, length in ranges:
                x1, x2 = x_of(start + first * DAY), x_of(start + (first + length) * DAY)
                out.append(
                    f'<rect x="{x1:.1f}" y="{y0}" width="{x2 - x1:.1f}" height="{PANEL}" '
                    f'fill="{colour}"/>'
                )
        for day in s.stockout_days:
            x1 = x_of(start + day * DAY)
            out.append(
                f'<rect x="{x1:.1f}" y="{y0}" width="{max(plot_w / days, 1.5):.1f}" '
                f'height="{PANEL}" fill="#e03030" opacity="0.55"/>'
            )
        out.append(
            f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL}" fill="none" '
            'stroke="#888"/>'
        )
        for grams in range(0, int(top) + 1, 500):
            y = y_of(grams)
            out.append(
                f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="#888"/>'
            )
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{grams} g</text>')
        for month in range(0, days + 1, 30):
            x = x_of(start + month * DAY)
            out.append(
                f'<line x1="{x:.1f}" y1="{y0 + PANEL}" x2="{x:.1f}" y2="{y0 + PANEL + 4}" '
                'stroke="#888"/>'
            )
            out.append(
                f'<text x="{x:.1f}" y="{y0 + PANEL + 15}" text-anchor="middle">day {month}</text>'
            )
        line = " ".join(f"{x_of(t):.1f},{y_of(v):.1f}" for t, v in s.points)
        out.append(f'<polyline points="{line}" fill="none" stroke="#1f5fa8" stroke-width="1"/>')
        for t in s.orders:
            x, y = x_of(t), y0 + 7
            out.append(
                f'<path d="M{x - 4:.1f},{y + 4:.1f} L{x + 4:.1f},{y + 4:.1f} '
                f'L{x:.1f},{y - 4:.1f} Z" fill="#2a8a2a"/>'
            )
        for t in s.deliveries:
            out.append(f'<circle cx="{x_of(t):.1f}" cy="{y0 + 18}" r="3" fill="#a05a00"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
