"""The portfolio's revenue figures as known at a cut-off: each contract read and measured exactly as
`pssync contract show` does (`ops.contract_view`: the as-of view, the engine versions, every delivery-fact
collector, one engine run), then added up per currency in exact minor units.

Pure over the VersionStore port: the CLI passes the DynamoDB store and the contract ids it scanned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pssync.model.contract import ContractTerms, TimeAndMaterials
from pssync.money import Money, RoundingPolicy, from_minor, to_minor
from pssync.ops.contract_view import DECIDED_BY, Cutoff, KnownAt, delivery_facts, run_engine
from pssync.ops.finance_report.metrics import MetricSamples
from pssync.ops.finance_report.model import (
    Balances,
    CurrencySection,
    ExceptionAging,
    FinanceReport,
    NotMeasured,
    OpenException,
    PeriodColumn,
    RollforwardRow,
    RpoSummary,
    WaterfallLine,
    WaterfallSeries,
)
from pssync.ports import VersionStore
from pssync.revenue import RevenueRuleError
from pssync.revenue.result import RevenueResult
from pssync.workflows.amendment import engine_versions
from pssync.workflows.provision import CONTRACT

# The chart stacks this many obligations by size and draws the rest as one series, so a portfolio of
# a thousand contracts still has a legend a person can read; the table below it lists every one.
CHART_SERIES = 6
# Sums of engine figures are exact; the policy only brings zero and whole amounts to the currency's scale.
SCALE = RoundingPolicy.HALF_EVEN
ROLLFORWARD_FIELDS = (
    "revenue",
    "billed",
    "paid",
    "opening_receivable",
    "closing_receivable",
    "opening_contract_asset",
    "closing_contract_asset",
    "opening_contract_liability",
    "closing_contract_liability",
)
RPO_FIELDS = ("remaining", "within_12_months", "months_13_to_24", "after_24_months", "timing_not_scheduled")


def _money(minor: int, currency: str) -> Money:
    return Money(amount=from_minor(minor, currency), currency=currency).rounded(SCALE)


@dataclass
class _Totals:
    """One currency's figures in integer minor units while contracts are added."""

    currency: str
    contracts: int = 0
    periods: dict[str, PeriodColumn] = field(default_factory=dict)
    lines: list[tuple[str, str, str, str, dict[str, int]]] = field(default_factory=list)
    rollforward: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    rpo: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    exempt: int = 0
    recognised: int = 0
    billed: int = 0
    collected: int = 0
    receivable: int = 0
    asset: int = 0
    liability: int = 0

    def minor(self, amount: Decimal) -> int:
        return to_minor(amount, self.currency)

    def add(self, terms: ContractTerms, result: RevenueResult) -> None:
        contract_id, customer = terms.contract_id, terms.customer.name
        descriptions = {o.obligation_id: o.description for o in terms.obligations}
        self.contracts += 1
        for info in result.period_infos():
            self.periods.setdefault(
                info.key, PeriodColumn(key=info.key, start=info.start, end=info.end, status=info.status)
            )
        for row in result.waterfall():
            if row.contract_id == contract_id:
                amounts = {period: self.minor(amount) for period, amount in row.amounts.items()}
                self.lines.append(
                    (
                        contract_id,
                        customer,
                        row.obligation_id,
                        descriptions.get(row.obligation_id, ""),
                        amounts,
                    )
                )
        last: Any = None
        for line in result.rollforward_totals():
            if line.contract_id != contract_id:
                continue
            period = self.rollforward[line.period]
            for name in ROLLFORWARD_FIELDS:
                period[name] += self.minor(getattr(line, name))
            self.billed += self.minor(line.billed)
            self.collected += self.minor(line.paid)
            last = line
        if last is not None:
            self.receivable += self.minor(last.closing_receivable)
            self.asset += self.minor(last.closing_contract_asset)
            self.liability += self.minor(last.closing_contract_liability)
        for rpo in result.rpo():
            if rpo.contract_id != contract_id:
                continue
            for name in RPO_FIELDS:
                self.rpo[name] += self.minor(getattr(rpo, name))
        self.recognised += self.minor(result.recognised_to_date(contract_id))
        # The engine lists no RPO line for an exempt obligation (nothing remaining is disclosed), so the
        # obligations using the expedient are counted from the terms.
        self.exempt += sum(isinstance(o.recognition, TimeAndMaterials) for o in terms.obligations)

    def section(self) -> CurrencySection:
        c = self.currency
        periods = sorted(self.periods.values(), key=lambda p: (p.start, p.key))
        order = [p.key for p in periods]
        by_obligation: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for _, _, obligation_id, _, amounts in self.lines:
            for period, minor in amounts.items():
                by_obligation[obligation_id][period] += minor
        ranked = sorted(by_obligation, key=lambda o: (-abs(sum(by_obligation[o].values())), o))
        shown, rest = ranked[:CHART_SERIES], ranked[CHART_SERIES:]
        if len(rest) == 1:  # one more series costs nothing and names the obligation
            shown, rest = ranked, []
        groups = [(o, by_obligation[o]) for o in shown]
        if rest:
            other: dict[str, int] = defaultdict(int)
            for o in rest:
                for period, minor in by_obligation[o].items():
                    other[period] += minor
            groups.append((f"other obligations ({len(rest)})", other))
        series = [
            WaterfallSeries(
                label=label,
                amounts={p: _money(amounts[p], c) for p in order if amounts.get(p)},
                total=_money(sum(amounts.values()), c),
            )
            for label, amounts in groups
        ]
        lines = [
            WaterfallLine(
                contract_id=contract_id,
                customer=customer,
                obligation_id=obligation_id,
                description=description,
                amounts={p: _money(amounts[p], c) for p in order if p in amounts},
                total=_money(sum(amounts.values()), c),
            )
            for contract_id, customer, obligation_id, description, amounts in sorted(
                self.lines, key=lambda line: (line[0], line[2])
            )
        ]
        rollforward = [
            RollforwardRow(
                period=p,
                revenue=_money(self.rollforward[p]["revenue"], c),
                billed=_money(self.rollforward[p]["billed"], c),
                collected=_money(self.rollforward[p]["paid"], c),
                opening_receivable=_money(self.rollforward[p]["opening_receivable"], c),
                closing_receivable=_money(self.rollforward[p]["closing_receivable"], c),
                opening_contract_asset=_money(self.rollforward[p]["opening_contract_asset"], c),
                closing_contract_asset=_money(self.rollforward[p]["closing_contract_asset"], c),
                opening_contract_liability=_money(self.rollforward[p]["opening_contract_liability"], c),
                closing_contract_liability=_money(self.rollforward[p]["closing_contract_liability"], c),
            )
            for p in order
            if p in self.rollforward
        ]
        return CurrencySection(
            currency=c,
            contracts=self.contracts,
            periods=periods,
            waterfall=series,
            waterfall_lines=lines,
            waterfall_total=_money(sum(sum(a.values()) for *_, a in self.lines), c),
            balances=Balances(
                recognised_to_date=_money(self.recognised, c),
                billed_to_date=_money(self.billed, c),
                collected_to_date=_money(self.collected, c),
                receivable=_money(self.receivable, c),
                contract_asset=_money(self.asset, c),
                contract_liability=_money(self.liability, c),
            ),
            rollforward=rollforward,
            rpo=RpoSummary(
                **{name: _money(self.rpo[name], c) for name in RPO_FIELDS},
                exempt_obligations=self.exempt,
            ),
        )


@dataclass(frozen=True)
class Portfolio:
    sections: list[CurrencySection]
    not_measured: list[NotMeasured]
    not_in_force: int


def measure_portfolio(
    store: VersionStore, contract_ids: Iterable[str], cutoff: Cutoff, samples: MetricSamples | None = None
) -> Portfolio:
    """Each contract recorded by the cut-off, measured by the engine on the cut-off date.

    One as-of view per contract, dropped after it: the portfolio is never held in memory, only its sums
    and one waterfall line per contract obligation.
    """
    totals: dict[str, _Totals] = {}
    not_measured: list[NotMeasured] = []
    not_in_force = 0
    for contract_id in sorted(set(contract_ids)):
        known = KnownAt(store, cutoff)
        history = known.history(CONTRACT, contract_id)
        if not history:
            continue  # booked after the cut-off
        if samples is not None:
            samples.add(known, contract_id)
        try:
            versions = engine_versions(known, contract_id, len(history))
            events = delivery_facts(known, contract_id, versions[-1])
            result = run_engine(versions, events, cutoff.on)
        except RevenueRuleError as error:  # the engine refuses the terms or a fact: shown, not dropped
            not_measured.append(NotMeasured(contract_id=contract_id, reason=str(error)))
            continue
        if result is None:
            not_in_force += 1
            continue
        terms = versions[-1].terms
        bucket = totals.setdefault(terms.currency, _Totals(terms.currency))
        bucket.add(terms, result)
    return Portfolio(
        sections=[totals[c].section() for c in sorted(totals)],
        not_measured=not_measured,
        not_in_force=not_in_force,
    )


def exception_aging(exceptions: Sequence[OpenException]) -> list[ExceptionAging]:
    """By workflow stage and cause, oldest first: where work is stuck, and why."""
    groups: dict[tuple[str, str], list[OpenException]] = defaultdict(list)
    for exception in exceptions:
        groups[(exception.stage, exception.cause)].append(exception)
    aging = [
        ExceptionAging(
            stage=stage,
            cause=cause,
            count=len(members),
            oldest_seconds=max((m.age_seconds for m in members if m.age_seconds is not None), default=None),
        )
        for (stage, cause), members in groups.items()
    ]
    return sorted(aging, key=lambda a: (-(a.oldest_seconds or 0), a.stage, a.cause))


def build_report(
    store: VersionStore,
    contract_ids: Iterable[str],
    cutoff: Cutoff,
    *,
    generated_at: datetime,
    exceptions: Sequence[OpenException] = (),
    reconciliation: Sequence[Mapping[str, Any]] | None = None,
) -> FinanceReport:
    samples = MetricSamples()
    portfolio = measure_portfolio(store, contract_ids, cutoff, samples)
    ordered = sorted(exceptions, key=lambda e: (-(e.age_seconds or 0), e.store, e.message_id))
    return FinanceReport(
        as_of=cutoff.instant,
        measured_on=cutoff.on,
        generated_at=generated_at,
        decided_by=DECIDED_BY,
        sections=portfolio.sections,
        not_measured=portfolio.not_measured,
        not_in_force=portfolio.not_in_force,
        exceptions=ordered,
        exception_aging=exception_aging(ordered),
        metrics=samples.metrics(ordered),
        reconciliation=None if reconciliation is None else [dict(row) for row in reconciliation],
    )
