"""Server-side SVG charts: readable without JavaScript, printable, no chart library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

_ROW = 34
_LABEL = 260
_WIDTH = 760
_TOP = 28


@dataclass(frozen=True, slots=True)
class Bar:
    """One row: a measured value against its limit (both in the same unit)."""

    label: str
    value: float | None  # None: nothing measured yet
    limit: float
    unit: str


def turnaround_chart(bars: Sequence[Bar], title: str) -> str:
    """Horizontal bars of each value with its limit drawn as a line; over the limit is red."""
    span = max([b.limit for b in bars] + [b.value or 0.0 for b in bars] + [1.0]) * 1.1
    plot = _WIDTH - _LABEL - 20
    height = _TOP + _ROW * len(bars) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" class="chart" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for index, bar in enumerate(bars):
        y = _TOP + index * _ROW
        limit_x = _LABEL + plot * bar.limit / span
        parts.append(f'<text x="0" y="{y + 17}" class="chart-label">{escape(bar.label)}</text>')
        parts.append(
            f'<rect x="{_LABEL}" y="{y + 4}" width="{plot}" height="20" class="chart-track"/>'
        )
        if bar.value is None:
            text = "no answers yet"
        else:
            width = max(plot * bar.value / span, 2.0)
            over = " chart-over" if bar.value > bar.limit else ""
            parts.append(
                f'<rect x="{_LABEL}" y="{y + 4}" width="{width:.1f}" height="20" '
                f'class="chart-bar{over}"/>'
            )
            text = f"median {bar.value:g} of {bar.limit:g} {bar.unit}"
        parts.append(
            f'<line x1="{limit_x:.1f}" y1="{y}" x2="{limit_x:.1f}" y2="{y + 28}" '
            'class="chart-limit"/>'
        )
        parts.append(
            f'<text x="{_LABEL + 6}" y="{y + 19}" class="chart-value">{escape(text)}</text>'
        )
    legend_y = _TOP + _ROW * len(bars) + 16
    parts.append(
        f'<text x="{_LABEL}" y="{legend_y}" class="chart-legend">bar: median turnaround; '
        "line: regulated deadline</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
