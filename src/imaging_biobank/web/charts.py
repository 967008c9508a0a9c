"""Charts as inline SVG, drawn on the server (no chart library, no script): horizontal bar
charts for categories, a column histogram for binned numbers. Each chart is an image with a
title and a text description of every value, so screen readers and text browsers get the
numbers too."""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 560
LABEL_WIDTH = 190
VALUE_WIDTH = 70
ROW = 24
BAR = 16


def _ident(title: str) -> str:
    return "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "x")


def _text(value: float, unit: str) -> str:
    shown = f"{value:g}" if isinstance(value, float) else f"{value:,}".replace(",", "\u202f")
    return f"{shown}{unit}"


def _clip(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _opening(title: str, summary: str, height: int) -> list[str]:
    """An accessible chart's opening: the svg element, its title and its text summary."""
    ident = _ident(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}" role="img"'
        f' aria-labelledby="{ident}-t {ident}-d">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(summary)}</desc>',
    ]


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    scale_max: float | None = None,
) -> Markup:
    """Categories as horizontal bars, longest first as given; ``unit`` follows each value
    (`` %``); ``scale_max`` fixes the full width (100 for shares)."""
    summary = "; ".join(f"{label}: {_text(value, unit)}" for label, value in rows) or "no data"
    height = max(1, len(rows)) * ROW + 8
    top = scale_max if scale_max is not None else max((v for _, v in rows), default=0)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = _opening(title, summary, height)
    if not rows:
        parts.append(f'<text x="0" y="{ROW - 8}" class="empty">No values recorded</text>')
    for i, (label, value) in enumerate(rows):
        y = 4 + i * ROW
        length = 0.0 if top <= 0 else span * min(value, top) / top
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 3}" text-anchor="end"'
            f' class="label">{escape(_clip(label))}<title>{escape(label)}</title></text>'
        )
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR}"'
            f' class="bar" fill="#3b6ea5"/>'
        )
        parts.append(
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + BAR - 3}"'
            f' class="value">{escape(_text(value, unit))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(title: str, bins: Sequence[tuple[str, int]], *, axis: str = "") -> Markup:
    """Counts of binned values as columns, bin labels beneath, ``axis`` naming the x axis."""
    summary = "; ".join(f"{label}: {_text(value, '')}" for label, value in bins) or "no data"
    height, base, top_margin = 220, 170, 20
    left = 40
    n = max(1, len(bins))
    slot = (WIDTH - left - 10) / n
    top = max((v for _, v in bins), default=0)
    parts = [
        *_opening(title, summary, height),
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" class="axis" stroke="#888"/>',
    ]
    if not bins:
        parts.append(f'<text x="{left}" y="{base - 10}" class="empty">No values recorded</text>')
    for i, (label, value) in enumerate(bins):
        x = left + i * slot
        h = 0.0 if top <= 0 else (base - top_margin) * value / top
        parts.append(
            f'<rect x="{x + 3:.1f}" y="{base - h:.1f}" width="{slot - 6:.1f}" height="{h:.1f}"'
            f' class="bar" fill="#3b6ea5"><title>{escape(label)}: {value}</title></rect>'
        )
        if value:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle"'
                f' class="value">{escape(_text(value, ""))}</text>'
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle"'
            f' class="label">{escape(label)}</text>'
        )
    if axis:
        parts.append(
            f'<text x="{(left + WIDTH) / 2:.1f}" y="{height - 8}" text-anchor="middle"'
            f' class="axis-label">{escape(axis)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
