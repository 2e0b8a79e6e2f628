"""Revenue waterfall (per obligation and period) and remaining performance obligations with timing bands."""

from __future__ import annotations

from decimal import Decimal

from pssync.revenue.engine import EngineRun
from pssync.revenue.models import RightToInvoicePattern
from pssync.revenue.periods import add_months
from pssync.revenue.result.models import RpoLine, WaterfallRow
from pssync.revenue.result.support import dec


def waterfall_rows(run: EngineRun) -> list[WaterfallRow]:
    periods = run.periods.periods
    rows = []
    for outcome in run.contracts:
        for oid in outcome.obligation_order:
            amounts = {
                p.key: dec(own + adj, outcome.exponent)
                for p, own, adj in zip(
                    periods, outcome.own_amounts(oid), outcome.adjustment[oid], strict=True
                )
                if own + adj
            }
            rows.append(
                WaterfallRow(
                    contract_id=outcome.contract_id,
                    obligation_id=oid,
                    currency=outcome.currency,
                    amounts=amounts,
                    total=sum(amounts.values(), Decimal(0)),
                )
            )
    return rows


def rpo_lines(run: EngineRun) -> list[RpoLine]:
    """Price not yet recognised at as_of, banded by when the schedule expects it (12 / 24 months).

    Right-to-invoice obligations use the disclosure exemption; what is not scheduled (progress not dated
    yet) shows as timing not scheduled.
    """
    periods = run.periods.periods
    k0 = run.as_of_index
    one_year, two_years = add_months(run.as_of, 12), add_months(run.as_of, 24)
    lines = []
    for outcome in run.contracts:
        e = outcome.exponent
        for oid in outcome.obligation_order:
            track = outcome.tracks[oid]
            explained = track.explain(len(periods) - 1)
            exempt = bool(explained and isinstance(explained[0].obligation.pattern, RightToInvoicePattern))
            remaining = 0 if exempt else track.expected_total[k0] - outcome.reported[oid][k0]
            bands = [0, 0, 0]
            if not exempt:
                for k in range(k0 + 1, len(periods)):
                    amount = track.cumulative[k] - track.cumulative[k - 1]
                    end = periods[k].end
                    bands[0 if end <= one_year else 1 if end <= two_years else 2] += amount
            if not remaining and not any(bands):
                continue
            lines.append(
                RpoLine(
                    contract_id=outcome.contract_id,
                    obligation_id=oid,
                    currency=outcome.currency,
                    remaining=dec(remaining, e),
                    within_12_months=dec(bands[0], e),
                    months_13_to_24=dec(bands[1], e),
                    after_24_months=dec(bands[2], e),
                    timing_not_scheduled=dec(remaining - sum(bands), e),
                    exempt_right_to_invoice=exempt,
                )
            )
    return lines
