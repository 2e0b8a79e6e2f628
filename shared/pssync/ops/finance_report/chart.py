"""The revenue waterfall as an inline SVG, drawn here in Python: a stacked bar per period, one segment per
obligation series, positive revenue above the axis and reversals (negative catch-ups) below it. Forecast
periods (after the cut-off) are drawn lighter. No script, no external resource."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from pssync.ops.finance_report.markup import Html, join, tag
from pssync.ops.finance_report.model import CurrencySection

# Colour-blind-safe palette (Okabe-Ito), one per series; the "other" series takes grey.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
WIDTH, HEIGHT = 960, 360
LEFT, RIGHT, TOP, BOTTOM = 96, 16, 16, 56
TICKS = 5


def nice_step(span: Decimal, ticks: int = TICKS) -> Decimal:
    """A 1, 2 or 5 times a power of ten step that divides `span` into about `ticks` intervals."""
    if span <= 0:
        return Decimal(1)
    raw = span / ticks
    power = Decimal(10) ** raw.adjusted()
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power  # not reached: raw < 10 * power by construction


def _label(amount: Decimal) -> str:
    """Axis labels in thousands or millions: the table carries the exact figures."""
    size = abs(amount)
    if size >= 1_000_000:
        return f"{amount / 1_000_000:,.1f}M"
    if size >= 1_000:
        return f"{amount / 1_000:,.0f}k"
    return f"{amount:,.0f}"


def colour(index: int, label: str) -> str:
    return PALETTE[-1] if label.startswith("other obligations") else PALETTE[index % (len(PALETTE) - 1)]


def waterfall_svg(section: CurrencySection) -> Html:
    periods = section.periods
    if not periods or not section.waterfall:
        return tag("p", "No revenue scheduled.", class_="empty")
    highs, lows = [], []
    for p in periods:
        values = [s.amounts[p.key].amount for s in section.waterfall if p.key in s.amounts]
        highs.append(sum((v for v in values if v > 0), Decimal(0)))
        lows.append(sum((v for v in values if v < 0), Decimal(0)))
    step = nice_step(max(highs) - min(lows))
    # Decimal's // truncates toward zero: round the axis ends outward explicitly.
    top = (max(highs) / step).to_integral_value(ROUND_CEILING) * step if max(highs) > 0 else step
    bottom = (min(lows) / step).to_integral_value(ROUND_FLOOR) * step
    plot_h = HEIGHT - TOP - BOTTOM
    plot_w = WIDTH - LEFT - RIGHT

    def y(value: Decimal) -> float:
        return TOP + float((top - value) / (top - bottom)) * plot_h

    band = plot_w / len(periods)
    bar_w = max(band * 0.7, 1.0)
    parts: list[Html] = []
    tick = bottom
    while tick <= top:
        parts.append(
            tag("line", x1=LEFT, x2=WIDTH - RIGHT, y1=f"{y(tick):.1f}", y2=f"{y(tick):.1f}", class_="grid")
        )
        parts.append(
            tag("text", _label(tick), x=LEFT - 8, y=f"{y(tick) + 4:.1f}", text_anchor="end", class_="axis")
        )
        tick += step
    label_every = max(1, len(periods) // 16)  # keep period labels from overlapping on long schedules
    for i, p in enumerate(periods):
        x = LEFT + i * band + (band - bar_w) / 2
        above = below = Decimal(0)
        forecast = p.status == "forecast"
        for n, s in enumerate(section.waterfall):
            money = s.amounts.get(p.key)
            if money is None or not money.amount:
                continue
            amount = money.amount
            start = above if amount > 0 else below
            end = start + amount
            if amount > 0:
                above = end
            else:
                below = end
            y1, y2 = sorted((y(start), y(end)))
            parts.append(
                tag(
                    "rect",
                    tag(
                        "title",
                        f"{s.label} · {p.key}{' (forecast)' if forecast else ''}: {amount:,} "
                        f"{section.currency}",
                    ),
                    x=f"{x:.1f}",
                    y=f"{y1:.1f}",
                    width=f"{bar_w:.1f}",
                    height=f"{max(y2 - y1, 0.5):.1f}",
                    fill=colour(n, s.label),
                    class_="bar forecast" if forecast else "bar",
                    data_series=s.label,
                    data_period=p.key,
                    data_amount=str(amount),
                )
            )
        if i % label_every == 0:
            parts.append(
                tag(
                    "text",
                    p.key,
                    x=f"{LEFT + i * band + band / 2:.1f}",
                    y=HEIGHT - BOTTOM + 16,
                    text_anchor="middle",
                    class_="axis forecast-label" if forecast else "axis",
                )
            )
    parts.append(
        tag(
            "line",
            x1=LEFT,
            x2=WIDTH - RIGHT,
            y1=f"{y(Decimal(0)):.1f}",
            y2=f"{y(Decimal(0)):.1f}",
            class_="zero",
        )
    )
    first_forecast = next((i for i, p in enumerate(periods) if p.status == "forecast"), None)
    if first_forecast is not None:
        x = LEFT + first_forecast * band
        parts.append(tag("line", x1=f"{x:.1f}", x2=f"{x:.1f}", y1=TOP, y2=HEIGHT - BOTTOM, class_="cutoff"))
        parts.append(tag("text", "forecast →", x=f"{x + 4:.1f}", y=TOP + 12, class_="axis"))
    legend = [
        tag(
            "g",
            tag(
                "rect",
                x=LEFT + (i % 4) * 210,
                y=HEIGHT - 26 + (i // 4) * 14,
                width=10,
                height=10,
                fill=colour(i, s.label),
            ),
            tag(
                "text",
                f"{s.label} ({s.total.amount:,})",
                x=LEFT + (i % 4) * 210 + 14,
                y=HEIGHT - 17 + (i // 4) * 14,
                class_="legend",
            ),
        )
        for i, s in enumerate(section.waterfall)
    ]
    rows = (len(section.waterfall) + 3) // 4
    return tag(
        "svg",
        tag("title", f"Revenue waterfall in {section.currency} by period and obligation"),
        join(parts),
        join(legend),
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {WIDTH} {HEIGHT + 14 * max(rows - 1, 0)}",
        width=WIDTH,
        height=HEIGHT + 14 * max(rows - 1, 0),
        role="img",
        class_="waterfall",
        data_currency=section.currency,
    )
