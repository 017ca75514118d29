"""The turnaround chart: one bar per service, the deadline as a line, over it in red."""

from __future__ import annotations

from exchange._hazmat.xml import parse
from exchange.console.svg import Bar, turnaround_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_lines_and_overruns() -> None:
    """Each row has a deadline line; a median over its deadline is drawn as an overrun."""
    chart = turnaround_chart(
        [
            Bar("tree-felling-permit", 3, 14, "calendar days"),
            Bar("land-plot-info", 7, 5, "working days"),
            Bar("signage-project", None, 20, "working days"),
            Bar("<script>", 1, 2, "days"),
        ],
        "Turnaround",
    )
    root = parse(chart.encode(), max_size=1 << 20)
    bars = [r for r in root.iter(f"{SVG}rect") if "chart-bar" in r.get("class", "")]
    assert [b.get("class") for b in bars] == ["chart-bar", "chart-bar chart-over", "chart-bar"]
    assert len(list(root.iter(f"{SVG}line"))) == 4
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "no answers yet" in texts
    assert "<script>" in texts  # escaped in the markup, text again when parsed
    assert "<script>" not in chart
