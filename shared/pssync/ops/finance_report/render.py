"""The finance report as one self-contained HTML page: inline CSS, the chart as inline SVG, no script and
no external resource (a Content-Security-Policy forbids loading any), every value escaped.

Figures a reader (or a test) checks carry `data-figure` / `data-currency` attributes beside their text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from string import Template
from typing import Any

from pssync.money import Money
from pssync.ops.finance_report.chart import waterfall_svg
from pssync.ops.finance_report.markup import Html, join, tag, text
from pssync.ops.finance_report.metrics import duration
from pssync.ops.finance_report.model import CurrencySection, FinanceReport, RollforwardRow

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1b1f24; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #57606a; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { padding: 3px 6px; border-bottom: 1px solid #eaeef2; }
th { text-align: left; background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #d0d7de; }
.forecast-col { color: #6e7781; font-style: italic; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .label { color: #57606a; font-size: 12px; }
.card .value { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
svg.waterfall { max-width: 100%; height: auto; }
svg .grid { stroke: #eaeef2; }
svg .zero { stroke: #57606a; }
svg .cutoff { stroke: #57606a; stroke-dasharray: 4 3; }
svg .axis { font-size: 11px; fill: #57606a; }
svg .legend { font-size: 11px; fill: #1b1f24; }
svg rect.forecast { opacity: 0.45; }
.ok { color: #1a7f37; }
.bad { color: #cf222e; font-weight: 600; }
.slot { border: 2px dashed #d0d7de; padding: 8px 12px; }
.empty { color: #57606a; }
.scroll { overflow-x: auto; }
nav a { margin-right: 12px; }
"""
PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$style</style>
</head>
<body>
$body
</body>
</html>
""")


def amount(money: Money) -> str:
    return f"{money.amount:,}"


def figure(money: Money, name: str, element: str = "td", css: str = "num") -> Html:
    return tag(element, amount(money), class_=css, data_figure=name, data_currency=money.currency)


def _table(
    head: Sequence[object], rows: Sequence[Sequence[object]], numeric_from: int = 1, **attrs: object
) -> Html:
    header = tag(
        "tr", *(tag("th", h, class_="num" if i >= numeric_from else None) for i, h in enumerate(head))
    )
    body = [
        row
        if isinstance(row, Html)
        else tag("tr", *(c if isinstance(c, Html) else tag("td", c) for c in row))
        for row in rows
    ]
    return tag("div", tag("table", tag("thead", header), tag("tbody", *body), **attrs), class_="scroll")


def _num(value: object) -> Html:
    return tag("td", value, class_="num")


def _cards(section: CurrencySection) -> Html:
    b, c = section.balances, section.currency
    cards = [
        ("Recognised to date", b.recognised_to_date, "recognised_to_date"),
        ("Billed to date", b.billed_to_date, "billed_to_date"),
        ("Collected to date", b.collected_to_date, "collected_to_date"),
        ("Receivable", b.receivable, "receivable"),
        ("Contract asset", b.contract_asset, "contract_asset"),
        ("Contract liability", b.contract_liability, "contract_liability"),
        ("Remaining performance obligations", section.rpo.remaining, "rpo_remaining"),
        ("Revenue scheduled, all periods", section.waterfall_total, "waterfall_total"),
    ]
    return tag(
        "div",
        *(
            tag(
                "div",
                tag("div", f"{label} ({c})", class_="label"),
                figure(money, name, element="div", css="value num"),
                class_="card",
            )
            for label, money, name in cards
        ),
        class_="cards",
    )


def _waterfall_table(section: CurrencySection) -> Html:
    periods = section.periods
    head = ["obligation", *(p.key + (" (f)" if p.status == "forecast" else "") for p in periods), "total"]
    rows: list[Sequence[object]] = [
        [
            s.label,
            *(_num(amount(s.amounts[p.key]) if p.key in s.amounts else "") for p in periods),
            _num(amount(s.total)),
        ]
        for s in section.waterfall
    ]
    totals = [figure(section.period_total(p.key), f"waterfall_period:{p.key}") for p in periods]
    rows.append(
        Html(
            tag(
                "tr",
                tag("td", "total"),
                *totals,
                figure(section.waterfall_total, "waterfall_sum"),
                class_="total",
            )
        )
    )
    return _table(head, rows, class_="waterfall-table")


def _lines_table(section: CurrencySection) -> Html:
    periods = section.periods
    head = ["contract", "customer", "obligation", *(p.key for p in periods), "total"]
    rows = [
        [
            line.contract_id,
            line.customer,
            f"{line.obligation_id}: {line.description}" if line.description else line.obligation_id,
            *(_num(amount(line.amounts[p.key]) if p.key in line.amounts else "") for p in periods),
            _num(amount(line.total)),
        ]
        for line in section.waterfall_lines
    ]
    return tag(
        "details",
        tag("summary", f"Every contract obligation ({len(rows)} lines)"),
        _table(head, rows, numeric_from=3, class_="lines-table"),
    )


def _identity(row: RollforwardRow) -> Html:
    holds = (
        row.receivable_moves() == row.closing_receivable
        and row.net_position_moves() == row.closing_net_position()
    )
    return tag("td", "✓" if holds else "≠ does not roll forward", class_="ok" if holds else "bad")


def _rollforward(section: CurrencySection) -> Html:
    head = [
        "period", "opening receivable", "+ billed", "\u2212 collected", "closing receivable",
        "opening asset", "opening liability", "+ revenue", "\u2212 billed", "closing asset",
        "closing liability", "rolls forward",
    ]  # fmt: skip
    rows = [
        [
            r.period,
            _num(amount(r.opening_receivable)),
            _num(amount(r.billed)),
            _num(amount(r.collected)),
            _num(amount(r.closing_receivable)),
            _num(amount(r.opening_contract_asset)),
            _num(amount(r.opening_contract_liability)),
            _num(amount(r.revenue)),
            _num(amount(r.billed)),
            _num(amount(r.closing_contract_asset)),
            _num(amount(r.closing_contract_liability)),
            _identity(r),
        ]
        for r in section.rollforward
    ]
    return join(
        [
            tag(
                "p",
                "Receivable: opening + billed - collected = closing. Contract asset and liability are one "
                "net position per contract (IFRS 15.105-107): opening (asset - liability) + revenue - billed "
                "= closing (asset - liability).",
                class_="meta",
            ),
            _table(head, rows, class_="rollforward-table"),
        ]
    )


def _rpo(section: CurrencySection) -> Html:
    r = section.rpo
    head = ["", "≤ 12 months", "13-24 months", "> 24 months", "timing not scheduled", "total"]
    row = [
        "remaining performance obligations",
        figure(r.within_12_months, "rpo_within_12_months"),
        figure(r.months_13_to_24, "rpo_13_to_24_months"),
        figure(r.after_24_months, "rpo_after_24_months"),
        figure(r.timing_not_scheduled, "rpo_not_scheduled"),
        figure(r.remaining, "rpo_total"),
    ]
    note = (
        f"{r.exempt_obligations} right-to-invoice (T&M) obligation(s) use the practical expedient "
        "(ASC 606-10-50-14(b) / IFRS 15.121(b)) and are not included."
    )
    return join([_table(head, [row], class_="rpo-table"), tag("p", note, class_="meta")])


def _section(section: CurrencySection) -> Html:
    c = section.currency
    return tag(
        "section",
        tag("h2", f"{c}: {section.contracts} contract(s)"),
        _cards(section),
        tag("h3", "Revenue waterfall by period and obligation"),
        tag("div", waterfall_svg(section), class_="chart"),
        _waterfall_table(section),
        _lines_table(section),
        tag("h3", "Contract balances and their rollforward"),
        _rollforward(section),
        tag("h3", "Remaining performance obligations by timing band"),
        _rpo(section),
        id=f"currency-{c}",
        data_currency=c,
    )


def reconciliation_section(rows: Sequence[Mapping[str, Any]] | None) -> Html:
    """The reconciliation slot: rows from `pssync.ops.reconcile` as plain dicts, columns in the order their
    keys first appear. Nothing here interprets them, so the reconciliation owns its columns."""
    if rows is None:
        body: Html = tag(
            "p",
            "Not connected: this report was built without reconciliation rows (pssync reconcile).",
            class_="empty",
        )
    elif not rows:
        body = tag("p", "No reconciliation rows.", class_="empty")
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        body = _table(
            columns,
            [[("" if row.get(col) is None else row.get(col)) for col in columns] for row in rows],
            numeric_from=len(columns),
            class_="reconciliation-table",
        )
    return tag("section", tag("h2", "Reconciliation"), tag("div", body, class_="slot"), id="reconciliation")


def _exceptions(report: FinanceReport) -> Html:
    if not report.exceptions:
        return tag(
            "section", tag("h2", "Open exceptions"), tag("p", "None open.", class_="empty"), id="exceptions"
        )
    aging = _table(
        ["stage", "cause", "open", "oldest"],
        [
            [
                a.stage,
                a.cause,
                _num(a.count),
                _num("" if a.oldest_seconds is None else duration(a.oldest_seconds)),
            ]
            for a in report.exception_aging
        ],
        numeric_from=2,
        class_="aging-table",
    )
    every = _table(
        ["age", "store", "stage", "cause", "event type", "event id", "contract / record", "parked at (UTC)"],
        [
            [
                _num("" if e.age_seconds is None else duration(e.age_seconds)),
                e.store,
                e.stage,
                e.cause,
                e.event_type or "",
                e.event_id or "",
                e.contract_id or "",
                "" if e.parked_at is None else e.parked_at.strftime("%Y-%m-%d %H:%M:%S"),
            ]
            for e in report.exceptions
        ],
        numeric_from=99,
        class_="exceptions-table",
    )
    return tag(
        "section",
        tag("h2", f"Open exceptions ({len(report.exceptions)})"),
        tag("h3", "Aging by stage and cause"),
        aging,
        tag("h3", "Every open exception, oldest first"),
        every,
        tag(
            "p",
            "Replay with pssync dlq replay <queue> (filters by cause, event type, age, id).",
            class_="meta",
        ),
        id="exceptions",
    )


def _metrics(report: FinanceReport) -> Html:
    return tag(
        "section",
        tag("h2", "Business metrics"),
        _table(
            ["metric", "value", "samples", "how it is measured"],
            [[m.name, m.value, _num(m.samples), m.basis] for m in report.metrics],
            numeric_from=99,
            class_="metrics-table",
        ),
        id="metrics",
    )


def _not_measured(report: FinanceReport) -> Html:
    if not report.not_measured and not report.not_in_force:
        return Html("")
    items = [tag("li", f"{n.contract_id}: {n.reason}") for n in report.not_measured]
    if report.not_in_force:
        items.append(
            tag(
                "li",
                f"{report.not_in_force} contract(s) start after {report.measured_on}: nothing to measure",
            )
        )
    return tag("section", tag("h2", "Contracts not in the figures"), tag("ul", *items), id="not-measured")


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def render(report: FinanceReport) -> str:
    nav = tag(
        "nav",
        *(tag("a", s.currency, href=f"#currency-{s.currency}") for s in report.sections),
        tag("a", "reconciliation", href="#reconciliation"),
        tag("a", "exceptions", href="#exceptions"),
        tag("a", "metrics", href="#metrics"),
    )
    body = join(
        [
            tag("h1", "pssync finance report"),
            tag(
                "p",
                f"As known at {_stamp(report.as_of)} (decided by {report.decided_by}); revenue measured on "
                f"{report.measured_on}; generated {_stamp(report.generated_at)}. One section per currency: "
                "amounts are never converted.",
                class_="meta",
            ),
            nav,
            *(_section(s) for s in report.sections),
            tag("p", "No contract recorded by the cut-off.", class_="empty") if not report.sections else "",
            _not_measured(report),
            reconciliation_section(report.reconciliation),
            _exceptions(report),
            _metrics(report),
        ]
    )
    return PAGE.substitute(
        csp=text(CSP), title=text(f"pssync finance report as of {report.measured_on}"), style=STYLE, body=body
    )
