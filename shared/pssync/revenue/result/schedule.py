"""The revenue schedule: one line per contract, obligation and period, with what explains the figure."""

from __future__ import annotations

from collections.abc import Callable

from pssync.money import minor_unit
from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.result.models import PeriodInfo, ScheduleLine
from pssync.revenue.result.support import Explained, cause, dec, explainer, period_status, progress_text


def period_infos(run: EngineRun) -> list[PeriodInfo]:
    return [
        PeriodInfo(
            key=p.key, start=p.start, end=p.end, status=period_status(run, k), closed_on=run.closed_on[k]
        )
        for k, p in enumerate(run.periods.periods)
    ]


def schedule_lines(run: EngineRun, fx: FxConverter, include_zero: bool = False) -> list[ScheduleLine]:
    """Lines with revenue or an adjustment (every period with `include_zero`) once the obligation exists."""
    lines: list[ScheduleLine] = []
    for outcome in run.contracts:
        explain = explainer(outcome)
        for oid in outcome.obligation_order:
            lines.extend(_obligation_lines(run, fx, outcome, oid, explain, include_zero))
    return lines


def _obligation_lines(
    run: EngineRun,
    fx: FxConverter,
    outcome: ContractOutcome,
    oid: str,
    explain: Callable[[str, int], Explained | None],
    include_zero: bool,
) -> list[ScheduleLine]:
    exponent = outcome.exponent
    own, adjustment, reported = outcome.own_amounts(oid), outcome.adjustment[oid], outcome.reported[oid]
    lines = []
    for k, period in enumerate(run.periods.periods):
        amount = own[k] + adjustment[k]
        if not include_zero and not amount and not adjustment[k]:
            continue
        track = outcome.knowledge_tracks[k].get(oid)
        explained = explain(oid, k)
        if explained is None or track is None:
            continue
        segment, m, i = explained
        inputs = m.inputs[i] if m.inputs else progress_text(segment.obligation.pattern, m, i)
        functional_units, functional = fx.convert(amount, outcome, k)
        lines.append(
            ScheduleLine(
                contract_id=outcome.contract_id,
                legal_entity=outcome.legal_entity,
                obligation_id=oid,
                period=period.key,
                status=period_status(run, k),
                currency=outcome.currency,
                amount=dec(amount, exponent),
                own_amount=dec(own[k], exponent),
                adjustment=dec(adjustment[k], exponent),
                cumulative=dec(reported[k], exponent),
                functional_currency=functional,
                functional_amount=dec(functional_units, minor_unit(functional)),
                method=m.description,
                treatment=segment.treatment,
                inputs=inputs,
                allocated=dec(track.expected_total[k], exponent),
                contract_version=segment.version.number,
                causing_event_id=cause(explained),
            )
        )
    return lines
