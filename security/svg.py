"""Charts as inline SVG, drawn on the server: no script, no external library, no inline CSS.

The admin's Content-Security-Policy (security/middleware/headers.py) has no 'unsafe-inline', so
the markup uses SVG presentation attributes (fill, stroke) and never a style attribute or a
<style> element. Hover text is a <title> child, which browsers show without any script.
Every text goes through format_html, so names from the database are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Colour-blind-safe palette (Okabe-Ito), then grey for "other".
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442")
OTHER_COLOUR = "#999999"
OK_COLOUR = "#009e73"

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 170, 12, 36
TICKS = 4


@dataclass(frozen=True)
class Series:
    """One stacked layer: its label, colour and one value per bucket."""

    label: str
    colour: str
    values: Sequence[int]


def colours(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per label: 'ok' green, 'other' grey, the rest from the palette."""
    palette = iter(PALETTE * 2)
    chosen = {}
    for label in labels:
        if label == "ok":
            chosen[label] = OK_COLOUR
        elif label == "other":
            chosen[label] = OTHER_COLOUR
        else:
            chosen[label] = next(c for c in palette if c != OK_COLOUR)
    return chosen


def _n(value: float) -> str:
    """A coordinate with one decimal: enough for a screen, short in the page."""
    return f"{value:.1f}"


def _svg(chart_id: str, title: str, height: int, body: SafeString) -> SafeString:
    return format_html(
        '<svg id="{}" class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="{}" height="{}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" '
        'font-size="11">{}</svg>',
        chart_id,
        title,
        WIDTH,
        height,
        WIDTH,
        height,
        body,
    )


def _nice_max(value: int) -> int:
    """The axis top: the value rounded up to 1, 2 or 5 times a power of ten."""
    if value <= TICKS:
        return TICKS
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _y_axis(top_value: int, plot_height: int) -> SafeString:
    lines = []
    for tick in range(TICKS + 1):
        value = top_value * tick // TICKS
        y = TOP + plot_height - plot_height * tick / TICKS
        lines.append((LEFT, _n(y), WIDTH - RIGHT, _n(y), LEFT - 4, _n(y + 4), value))
    return format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dddddd"/>'
        '<text x="{}" y="{}" text-anchor="end">{}</text>',
        lines,
    )


def _legend(series: Sequence[Series], totals: Sequence[int]) -> SafeString:
    x = WIDTH - RIGHT + 12
    return format_html_join(
        "",
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="{}" class="legend">{} ({})</text>',
        (
            (x, TOP + 16 * i, s.colour, x + 14, TOP + 16 * i + 9, s.label, total)
            for i, (s, total) in enumerate(zip(series, totals, strict=True))
        ),
    )


def stacked_bars(
    chart_id: str, title: str, buckets: Sequence[datetime], series: Sequence[Series], fmt: str
) -> SafeString:
    """Bars per time bucket, one stacked layer per series; `fmt` formats the bucket labels."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    stack_totals = [sum(s.values[i] for s in series) for i in range(len(buckets))]
    top_value = _nice_max(max(stack_totals, default=0))
    slot = plot_width / max(len(buckets), 1)
    bar = max(slot * 0.8, 1)
    rects = []
    for i, bucket in enumerate(buckets):
        base = 0
        for s in series:
            value = s.values[i]
            if not value:
                continue
            height = plot_height * value / top_value
            y = TOP + plot_height - plot_height * base / top_value - height
            hover = f"{bucket:{fmt}} {s.label}: {value}"
            rects.append(
                (_n(LEFT + i * slot), _n(y), _n(bar), _n(height), s.colour, s.label, hover)
            )
            base += value
    body = format_html(
        "{}{}{}{}{}",
        _y_axis(top_value, plot_height),
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" '
            'data-series="{}"><title>{}</title></rect>',
            rects,
        ),
        _x_labels(buckets, slot, fmt),
        _legend(series, [sum(s.values) for s in series]),
        _empty_note(not rects, plot_height),
    )
    return _svg(chart_id, title, HEIGHT, body)


def _x_labels(buckets: Sequence[datetime], slot: float, fmt: str) -> SafeString:
    every = max(1, len(buckets) // 8)
    return format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_n(LEFT + i * slot + slot / 2), HEIGHT - BOTTOM + 16, f"{bucket:{fmt}}")
            for i, bucket in enumerate(buckets)
            if i % every == 0
        ),
    )


def _empty_note(empty: bool, plot_height: int) -> SafeString:
    if not empty:
        return mark_safe("")
    x, y = LEFT + (WIDTH - LEFT - RIGHT) / 2, TOP + plot_height / 2
    return format_html(
        '<text x="{}" y="{}" text-anchor="middle" fill="#666666">No requests</text>', _n(x), _n(y)
    )


def horizontal_bars(chart_id: str, title: str, rows: Sequence[tuple[str, int]]) -> SafeString:
    """One labelled bar per row (label, count), longest scale first as given."""
    row_height, label_width = 20, 260
    height = TOP + BOTTOM + row_height * max(len(rows), 1)
    top_value = _nice_max(max((count for _, count in rows), default=0))
    span = WIDTH - label_width - 60
    bars = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="14" fill="{}" data-series="{}">'
        "<title>{}: {}</title></rect>"
        '<text x="{}" y="{}">{}</text>',
        (
            (
                label_width - 6,
                TOP + i * row_height + 11,
                label,
                label_width,
                TOP + i * row_height,
                _n(span * count / top_value),
                PALETTE[0],
                label,
                label,
                count,
                _n(label_width + span * count / top_value + 4),
                TOP + i * row_height + 11,
                count,
            )
            for i, (label, count) in enumerate(rows)
        ),
    )
    note = format_html(
        '<text x="{}" y="{}" fill="#666666">No key was used in this range</text>', label_width, 24
    )
    return _svg(chart_id, title, height, bars if rows else note)


@dataclass(frozen=True)
class Mark:
    """One expiry on the timeline."""

    lane: str
    label: str
    when: datetime


def timeline(
    chart_id: str,
    title: str,
    lanes: Sequence[str],
    marks: Sequence[Mark],
    start: datetime,
    end: datetime,
    now: datetime,
) -> SafeString:
    """One lane per kind, a dot per expiry on a time axis from start to end, a line at now."""
    lane_height, label_width = 28, 150
    height = TOP + BOTTOM + lane_height * len(lanes)
    span = WIDTH - label_width - 20
    total = (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        return label_width + span * (moment - start).total_seconds() / total

    lane_y = {lane: TOP + i * lane_height + lane_height / 2 for i, lane in enumerate(lanes)}
    lane_rows = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end">{}</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dddddd"/>',
        (
            (label_width - 6, _n(y + 4), lane, label_width, _n(y), WIDTH - 20, _n(y))
            for lane, y in lane_y.items()
        ),
    )
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="5" fill="{}" data-lane="{}">'
        "<title>{}: {} ({})</title></circle>",
        (
            (
                _n(x_of(mark.when)),
                _n(lane_y[mark.lane]),
                PALETTE[3] if mark.when <= now else PALETTE[0],
                mark.lane,
                mark.lane,
                mark.label,
                f"{mark.when:%Y-%m-%d}",
            )
            for mark in marks
        ),
    )
    axis_y = height - BOTTOM + 16
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (
                _n(x_of(start + (end - start) * i / 4)),
                axis_y,
                f"{start + (end - start) * i / 4:%Y-%m-%d}",
            )
            for i in range(5)
        ),
    )
    now_line = format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333333" stroke-dasharray="4 3"/>'
        '<text x="{}" y="{}" text-anchor="middle">now</text>',
        _n(x_of(now)),
        TOP,
        _n(x_of(now)),
        height - BOTTOM,
        _n(x_of(now)),
        height - BOTTOM + 28,
    )
    return _svg(chart_id, title, height, format_html("{}{}{}{}", lane_rows, ticks, now_line, dots))
