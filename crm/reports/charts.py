"""Charts as inline SVG, drawn on the server from a report's figures: pure functions, no
I/O. Readable without colour: every bar carries its label and value as text, and bars
alternate hatching patterns as well as shades. `<title>` and `<desc>` give a screen reader
the chart's name and every figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH, VALUE_WIDTH = 640, 24, 8, 160, 80
CHAR_WIDTH = 7  # about one character of 12px text: the value and note beside a bar fit
PATTERNS = (
    ("solid", ""),
    ("diagonal", '<path d="M0,8 L8,0" stroke="#fff" stroke-width="2"/>'),
    ("dots", '<circle cx="4" cy="4" r="1.5" fill="#fff"/>'),
    ("horizontal", '<path d="M0,4 L8,4" stroke="#fff" stroke-width="2"/>'),
)
SHADES = ("#1f4e79", "#2e75b6", "#5b9bd5", "#9dc3e6")


def _text(value: object) -> str:
    return escape(str(value), {'"': "&quot;"})


def _defs(prefix: str) -> str:
    parts = []
    for i, (name, marks) in enumerate(PATTERNS):
        shade = SHADES[i % len(SHADES)]
        parts.append(
            f'<pattern id="{prefix}-{name}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{shade}"/>{marks}</pattern>'
        )
    return "<defs>" + "".join(parts) + "</defs>"


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float] | tuple[str, float, str]],
    unit: str = "",
    chart_id: str = "chart",
) -> str:
    """Horizontal bars, one per (label, value[, note]), scaled to the largest value; the
    note is written after the value."""
    bars = [(bar[0], bar[1], bar[2] if len(bar) > 2 else "") for bar in bars]
    largest = max((value for _, value, _ in bars), default=0) or 1
    written = max((len(f"{_figure(v, unit)} {n}".strip()) for _, v, n in bars), default=0)
    track = WIDTH - LABEL_WIDTH - max(VALUE_WIDTH, CHAR_WIDTH * written + 12)
    height = GAP + len(bars) * (BAR_HEIGHT + GAP) + 24
    figures = "; ".join(
        f"{label}: {_figure(value, unit)} {note}".strip() for label, value, note in bars
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{_text(title)}</title>',
        f'<desc id="{chart_id}-desc">{_text(figures)}</desc>',
        _defs(chart_id),
        f'<text x="0" y="16" font-size="14" font-weight="bold">{_text(title)}</text>',
    ]
    for i, (label, value, note) in enumerate(bars):
        y = 24 + GAP + i * (BAR_HEIGHT + GAP)
        width = max(0.0, value / largest * track)
        pattern = PATTERNS[i % len(PATTERNS)][0]
        middle = y + BAR_HEIGHT / 2 + 4
        out.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{middle}" text-anchor="end" '
            f'font-size="12">{_text(label)}</text>'
        )
        out.append(
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
            f'fill="url(#{chart_id}-{pattern})" stroke="#000" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{middle}" font-size="12">'
            f"{_text(f'{_figure(value, unit)} {note}'.strip())}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def funnel_chart(
    funnel: dict, chart_id: str = "funnel", label: Callable[[str], str] | None = None
) -> str:
    """The funnel report as bars of referrals reaching each stage, with the conversion
    from the stage before written beside each count; `label` names a stage."""
    bars = []
    for stage in funnel["stages"]:
        conversion = stage["conversion"]
        note = "" if conversion is None else f"({conversion:.0%} of the stage before)"
        name = label(stage["stage"]) if label else stage["stage"].replace("_", " ")
        bars.append((name, stage["reached"], note))
    return bar_chart("Referrals reaching each stage", bars, chart_id=chart_id)


def _figure(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text} {unit}".strip()
