"""Outputs of a run: schedule, journals, waterfall, RPO, contract balance rollforward, allocations.

The engine keeps integer arrays; the pydantic models here are built on demand, so a portfolio run does not pay
for one object per schedule cell unless a caller asks for the lines. Every line carries what explains it:
obligation, method, inputs, contract version and causing event.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict

from pssync.money import ExactDecimal, minor_unit
from pssync.revenue.engine import ContractOutcome, EngineRun, Segment, gc_paused
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import FxPolicy, RatablePattern, RightToInvoicePattern
from pssync.revenue.progress import Measure

PeriodStatus = Literal["closed", "open", "forecast"]
P = ParamSpec("P")
T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodInfo(_Out):
    key: str
    start: date
    end: date
    status: PeriodStatus
    closed_on: date | None = None


class ScheduleLine(_Out):
    contract_id: str
    legal_entity: str
    obligation_id: str
    period: str
    status: PeriodStatus
    currency: str
    amount: ExactDecimal  # revenue booked in the period: own + adjustment
    own_amount: ExactDecimal  # revenue earned in the period with the knowledge the period was reported with
    adjustment: ExactDecimal  # correction of earlier (closed) periods booked here
    cumulative: ExactDecimal
    functional_currency: str
    functional_amount: ExactDecimal
    method: str
    treatment: str
    inputs: str
    allocated: ExactDecimal
    contract_version: int
    causing_event_id: str


class JournalLine(_Out):
    account: Literal["revenue", "receivable", "contract_asset", "contract_liability", "cash", "fx_rounding"]
    debit: ExactDecimal
    credit: ExactDecimal


class JournalEntry(_Out):
    contract_id: str
    legal_entity: str
    period: str
    currency: str
    lines: list[JournalLine]
    functional_currency: str
    functional_lines: list[JournalLine] | None  # None when the functional currency is the transaction one
    explanation: str
    causing_event_ids: list[str]


class WaterfallRow(_Out):
    contract_id: str
    obligation_id: str
    currency: str
    amounts: dict[str, ExactDecimal]
    total: ExactDecimal


class RpoLine(_Out):
    contract_id: str
    obligation_id: str
    currency: str
    remaining: ExactDecimal
    within_12_months: ExactDecimal
    months_13_to_24: ExactDecimal
    after_24_months: ExactDecimal
    timing_not_scheduled: ExactDecimal
    exempt_right_to_invoice: bool


class RollforwardLine(_Out):
    contract_id: str
    period: str
    currency: str
    revenue: ExactDecimal
    billed: ExactDecimal
    paid: ExactDecimal
    opening_receivable: ExactDecimal
    closing_receivable: ExactDecimal
    opening_contract_asset: ExactDecimal
    closing_contract_asset: ExactDecimal
    opening_contract_liability: ExactDecimal
    closing_contract_liability: ExactDecimal


class AllocationLine(_Out):
    contract_id: str
    contract_version: int
    obligation_id: str
    currency: str
    ssp: ExactDecimal | None
    allocated: ExactDecimal
    method: str
    reason: str


class ModificationLine(_Out):
    contract_id: str
    contract_version: int
    effective_date: date
    treatment: str
    overridden: bool
    rationale: str
    prospective_obligations: list[str]
    catch_up_obligations: list[str]
    added_obligations: list[str]
    catch_up_amounts: dict[str, ExactDecimal]
    causing_event_id: str


class EntityPeriodTotal(_Out):
    legal_entity: str
    period: str
    functional_currency: str
    revenue: ExactDecimal


class RevenueReport(_Out):
    as_of: date
    periods: list[PeriodInfo]
    allocations: list[AllocationLine]
    modifications: list[ModificationLine]
    schedule: list[ScheduleLine]
    journals: list[JournalEntry]
    waterfall: list[WaterfallRow]
    rpo: list[RpoLine]
    rollforward: list[RollforwardLine]
    entity_totals: list[EntityPeriodTotal]


def _collector_paused(method: Callable[P, T]) -> Callable[P, T]:
    """Build report models with the cycle collector paused (they are acyclic; see engine.gc_paused): with a
    large portfolio alive, collections triggered by the new objects would rescan it again and again."""

    @functools.wraps(method)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        with gc_paused():
            return method(*args, **kwargs)

    return paused


def _progress_text(pattern: object, m: Measure, i: int) -> str:
    if isinstance(pattern, RatablePattern):
        unit = "days" if pattern.basis == "daily" else "periods"
        return f"{m.nums[i]}/{m.dens[i]} {unit} of {pattern.start}..{pattern.end} elapsed"
    if m.earned is not None:
        return f"earned to date {m.earned[i]} minor units"
    return f"progress {m.nums[i]}/{m.dens[i]}"


def _dec(units: int, exponent: int) -> Decimal:
    return Decimal(units).scaleb(-exponent)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (31, 30, 29, 28):
        if day.day <= candidate:
            try:
                return date(year, month, min(day.day, candidate))
            except ValueError:
                continue
    return date(year, month, 28)


class RevenueResult:
    """The outcome of `run_scenario`, with accessors in exact minor units and report builders."""

    def __init__(self, run: EngineRun) -> None:
        self.run = run
        self.as_of = run.as_of
        self.periods = run.periods.periods
        self._by_id = {c.contract_id: c for c in run.contracts}

    # -- small accessors (exact figures, handy for callers and tests)

    @property
    def contract_ids(self) -> list[str]:
        return list(self._by_id)

    def contract(self, contract_id: str) -> ContractOutcome:
        return self._by_id[contract_id]

    def period_index(self, period: str) -> int:
        return self.run.periods.position[period]

    def status(self, k: int) -> PeriodStatus:
        if self.run.closed_on[k] is not None:
            return "closed"
        return "open" if k <= self.run.as_of_index else "forecast"

    def period_revenue(self, contract_id: str, obligation_id: str | None = None) -> dict[str, Decimal]:
        """Revenue booked per period (own + adjustment; forecast after as_of), one obligation or all."""
        outcome = self._by_id[contract_id]
        ids = [obligation_id] if obligation_id else outcome.obligation_order
        totals = [0] * len(self.periods)
        for oid in ids:
            for k, (own, adj) in enumerate(
                zip(outcome.own_amounts(oid), outcome.adjustment[oid], strict=True)
            ):
                totals[k] += own + adj
        return {p.key: _dec(t, outcome.exponent) for p, t in zip(self.periods, totals, strict=True)}

    def revenue_between(
        self, contract_id: str, start: date, end: date, obligation_id: str | None = None
    ) -> Decimal:
        per_period = self.period_revenue(contract_id, obligation_id)
        return sum((per_period[p.key] for p in self.periods if start <= p.start and p.end <= end), Decimal(0))

    def allocated(self, contract_id: str, obligation_id: str) -> Decimal:
        """The obligation's price at as_of (allocated, plus revenue before a prospective modification)."""
        outcome = self._by_id[contract_id]
        return _dec(outcome.tracks[obligation_id].expected_total[self.run.as_of_index], outcome.exponent)

    def recognised_to_date(self, contract_id: str, obligation_id: str | None = None) -> Decimal:
        outcome = self._by_id[contract_id]
        ids = [obligation_id] if obligation_id else outcome.obligation_order
        k = self.run.as_of_index
        return _dec(sum(outcome.reported[o][k] for o in ids), outcome.exponent)

    # -- FX

    def functional_currency(self, outcome: ContractOutcome) -> str:
        return self.run.scenario.functional_currency.get(outcome.legal_entity, outcome.currency)

    @cached_property
    def _rates(self) -> dict[tuple[str, str], list[tuple[date, Decimal]]]:
        table: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
        for rate in self.run.scenario.fx_rates:
            table.setdefault((rate.base, rate.quote), []).append((rate.on, rate.rate))
            table.setdefault((rate.quote, rate.base), []).append((rate.on, Decimal(1) / rate.rate))
        for entries in table.values():
            entries.sort()
        return table

    def rate(self, base: str, quote: str, k: int) -> Decimal:
        if base == quote:
            return Decimal(1)
        entries = self._rates.get((base, quote), [])
        period = self.periods[k]
        if self.run.scenario.fx_policy is FxPolicy.PERIOD_AVERAGE:
            inside = [r for d, r in entries if period.start <= d <= period.end]
            if inside:
                return sum(inside, Decimal(0)) / len(inside)
        applicable = [r for d, r in entries if d <= period.end]
        if not applicable:
            raise RevenueRuleError(f"no {base}/{quote} rate on or before {period.end}", "fx_rates")
        return applicable[-1]

    def _convert(self, units: int, outcome: ContractOutcome, k: int) -> tuple[int, str]:
        functional = self.functional_currency(outcome)
        if functional == outcome.currency:
            return units, functional
        rate = self.rate(outcome.currency, functional, k)
        amount = (_dec(units, outcome.exponent) * rate).scaleb(minor_unit(functional))
        return int(amount.to_integral_value(rounding=ROUND_HALF_UP)), functional

    # -- reports

    def period_infos(self) -> list[PeriodInfo]:
        return [
            PeriodInfo(
                key=p.key, start=p.start, end=p.end, status=self.status(k), closed_on=self.run.closed_on[k]
            )
            for k, p in enumerate(self.periods)
        ]

    @staticmethod
    def _explainer(
        outcome: ContractOutcome,
    ) -> Callable[[str, int], tuple[Segment, Measure, int] | None]:
        """explain(obligation, period) for the knowledge each period was reported with, one measure per
        segment and track rather than one per line."""
        cache: dict[int, list[tuple[Segment, Measure, int] | None]] = {}

        def explain(oid: str, k: int) -> tuple[Segment, Measure, int] | None:
            track = outcome.knowledge_tracks[k].get(oid)
            if track is None:
                return None
            table = cache.get(id(track))
            if table is None:
                table = cache[id(track)] = track.explain_all()
            return table[k]

        return explain

    @_collector_paused
    def schedule(self, include_zero: bool = False) -> list[ScheduleLine]:
        lines = []
        for outcome in self.run.contracts:
            exponent = outcome.exponent
            explain = self._explainer(outcome)
            for oid in outcome.obligation_order:
                own, adjustment, reported = (
                    outcome.own_amounts(oid),
                    outcome.adjustment[oid],
                    outcome.reported[oid],
                )
                for k, period in enumerate(self.periods):
                    amount = own[k] + adjustment[k]
                    if not include_zero and not amount and not adjustment[k]:
                        continue
                    track = outcome.knowledge_tracks[k].get(oid)
                    explained = explain(oid, k)
                    if explained is None or track is None:
                        continue
                    segment, m, i = explained
                    inputs = m.inputs[i] if m.inputs else _progress_text(segment.obligation.pattern, m, i)
                    functional_units, functional = self._convert(amount, outcome, k)
                    lines.append(
                        ScheduleLine(
                            contract_id=outcome.contract_id,
                            legal_entity=outcome.legal_entity,
                            obligation_id=oid,
                            period=period.key,
                            status=self.status(k),
                            currency=outcome.currency,
                            amount=_dec(amount, exponent),
                            own_amount=_dec(own[k], exponent),
                            adjustment=_dec(adjustment[k], exponent),
                            cumulative=_dec(reported[k], exponent),
                            functional_currency=functional,
                            functional_amount=_dec(functional_units, minor_unit(functional)),
                            method=m.description,
                            treatment=segment.treatment,
                            inputs=inputs,
                            allocated=_dec(track.expected_total[k], exponent),
                            contract_version=segment.version.number,
                            causing_event_id=(m.causes[i] if m.causes else None)
                            or segment.version.contract.causing_event_id,
                        )
                    )
        return lines

    @staticmethod
    def _booked(outcome: ContractOutcome) -> list[int]:
        """Revenue booked per period for the whole contract (own + adjustment over obligations)."""
        booked = [0] * len(outcome.billed)
        for oid in outcome.obligation_order:
            for k, (own, adjustment) in enumerate(
                zip(outcome.own_amounts(oid), outcome.adjustment[oid], strict=True)
            ):
                booked[k] += own + adjustment
        return booked

    def _balances(self, outcome: ContractOutcome) -> list[tuple[int, int, int, int, int, int, int, int, int]]:
        """Per period up to as_of: revenue, billed, paid; opening/closing receivable, asset, liability."""
        rows = []
        receivable = net = 0
        booked = self._booked(outcome)
        for k in range(self.run.as_of_index + 1):
            revenue = booked[k]
            billed, paid = outcome.billed[k], outcome.paid[k]
            opening_receivable, opening_net = receivable, net
            receivable += billed - paid
            # Net contract position per contract: revenue ahead of billing is a contract asset, billing ahead
            # of revenue a contract liability (IFRS 15.105-107), never both for one contract.
            net += revenue - billed
            rows.append(
                (
                    revenue,
                    billed,
                    paid,
                    opening_receivable,
                    receivable,
                    max(opening_net, 0),
                    max(net, 0),
                    max(-opening_net, 0),
                    max(-net, 0),
                )
            )
        return rows

    @_collector_paused
    def rollforward(self) -> list[RollforwardLine]:
        lines = []
        for outcome in self.run.contracts:
            e = outcome.exponent
            for k, row in enumerate(self._balances(outcome)):
                if not any(row):
                    continue
                lines.append(
                    RollforwardLine(
                        contract_id=outcome.contract_id,
                        period=self.periods[k].key,
                        currency=outcome.currency,
                        revenue=_dec(row[0], e),
                        billed=_dec(row[1], e),
                        paid=_dec(row[2], e),
                        opening_receivable=_dec(row[3], e),
                        closing_receivable=_dec(row[4], e),
                        opening_contract_asset=_dec(row[5], e),
                        closing_contract_asset=_dec(row[6], e),
                        opening_contract_liability=_dec(row[7], e),
                        closing_contract_liability=_dec(row[8], e),
                    )
                )
        return lines

    @_collector_paused
    def journals(self) -> list[JournalEntry]:
        entries = []
        for outcome in self.run.contracts:
            e = outcome.exponent
            own_by_obligation = {oid: outcome.own_amounts(oid) for oid in outcome.obligation_order}
            explain = self._explainer(outcome)
            for k, row in enumerate(self._balances(outcome)):
                revenue, billed, paid = row[0], row[1], row[2]
                asset_change, liability_change = row[6] - row[5], row[8] - row[7]
                raw: list[tuple[str, int]] = [  # positive = debit
                    ("receivable", billed),
                    ("cash", paid),
                    ("receivable", -paid),
                    ("contract_asset", asset_change),
                    ("contract_liability", -liability_change),
                    ("revenue", -revenue),
                ]
                raw = [(account, amount) for account, amount in raw if amount]
                if not raw:
                    continue
                assert sum(amount for _, amount in raw) == 0, "journal must balance"
                functional = self.functional_currency(outcome)
                converted = [(account, self._convert(amount, outcome, k)[0]) for account, amount in raw]
                rounding = -sum(amount for _, amount in converted)
                if rounding:
                    converted.append(("fx_rounding", rounding))
                fe = minor_unit(functional)
                causes = list(outcome.billing_causes.get(k, []))
                for oid in outcome.obligation_order:
                    if own_by_obligation[oid][k] or outcome.adjustment[oid][k]:
                        explained = explain(oid, k)
                        if explained:
                            segment, m, i = explained
                            cause = (
                                m.causes[i] if m.causes else None
                            ) or segment.version.contract.causing_event_id
                            if cause not in causes:
                                causes.append(cause)
                entries.append(
                    JournalEntry(
                        contract_id=outcome.contract_id,
                        legal_entity=outcome.legal_entity,
                        period=self.periods[k].key,
                        currency=outcome.currency,
                        lines=[self._line(a, v, e) for a, v in raw],
                        functional_currency=functional,
                        functional_lines=(
                            None
                            if functional == outcome.currency
                            else [self._line(a, v, fe) for a, v in converted]
                        ),
                        explanation=(
                            f"revenue {_dec(revenue, e)}, billed {_dec(billed, e)}, paid {_dec(paid, e)}; "
                            f"net contract position {_dec(row[6] - row[8], e)} "
                            f"({'asset' if row[6] else 'liability' if row[8] else 'nil'})"
                        ),
                        causing_event_ids=causes,
                    )
                )
        return entries

    @staticmethod
    def _line(account: str, amount: int, exponent: int) -> JournalLine:
        value = _dec(abs(amount), exponent)
        zero = Decimal(0).scaleb(-exponent)
        return JournalLine(
            account=account,
            debit=value if amount > 0 else zero,
            credit=value if amount < 0 else zero,
        )

    @_collector_paused
    def waterfall(self) -> list[WaterfallRow]:
        rows = []
        for outcome in self.run.contracts:
            for oid in outcome.obligation_order:
                amounts = {
                    p.key: _dec(own + adj, outcome.exponent)
                    for p, own, adj in zip(
                        self.periods, outcome.own_amounts(oid), outcome.adjustment[oid], strict=True
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

    @_collector_paused
    def rpo(self) -> list[RpoLine]:
        k0 = self.run.as_of_index
        one_year, two_years = _add_months(self.as_of, 12), _add_months(self.as_of, 24)
        lines = []
        for outcome in self.run.contracts:
            e = outcome.exponent
            for oid in outcome.obligation_order:
                track = outcome.tracks[oid]
                explained = track.explain(len(self.periods) - 1)
                exempt = bool(
                    explained and isinstance(explained[0].obligation.pattern, RightToInvoicePattern)
                )
                remaining = 0 if exempt else track.expected_total[k0] - outcome.reported[oid][k0]
                bands = [0, 0, 0]
                if not exempt:
                    for k in range(k0 + 1, len(self.periods)):
                        amount = track.cumulative[k] - track.cumulative[k - 1]
                        end = self.periods[k].end
                        bands[0 if end <= one_year else 1 if end <= two_years else 2] += amount
                if not remaining and not any(bands):
                    continue
                lines.append(
                    RpoLine(
                        contract_id=outcome.contract_id,
                        obligation_id=oid,
                        currency=outcome.currency,
                        remaining=_dec(remaining, e),
                        within_12_months=_dec(bands[0], e),
                        months_13_to_24=_dec(bands[1], e),
                        after_24_months=_dec(bands[2], e),
                        timing_not_scheduled=_dec(remaining - sum(bands), e),
                        exempt_right_to_invoice=exempt,
                    )
                )
        return lines

    @_collector_paused
    def allocations(self) -> list[AllocationLine]:
        lines = []
        for outcome in self.run.contracts:
            seen: set[tuple[int, str]] = set()
            for oid in outcome.obligation_order:
                for _, segment in outcome.tracks[oid].pieces:
                    group = segment.group
                    key = (segment.version.number, oid)
                    if group is None or key in seen or oid not in group.rule.obligation_ids:
                        continue
                    seen.add(key)
                    ssp = segment.version.obligations[oid].ssp
                    lines.append(
                        AllocationLine(
                            contract_id=outcome.contract_id,
                            contract_version=segment.version.number,
                            obligation_id=oid,
                            currency=outcome.currency,
                            ssp=ssp,
                            allocated=_dec(group.at(segment.start)[oid], outcome.exponent),
                            method=f"{group.rule.method} ({segment.treatment})",
                            reason=group.rule.override_reason,
                        )
                    )
        return lines

    @_collector_paused
    def modifications(self) -> list[ModificationLine]:
        return [
            ModificationLine(
                contract_id=m.contract_id,
                contract_version=m.version,
                effective_date=m.effective_date,
                treatment=str(m.treatment),
                overridden=m.overridden,
                rationale=m.rationale,
                prospective_obligations=m.prospective,
                catch_up_obligations=m.catch_up,
                added_obligations=m.added,
                catch_up_amounts={
                    o: _dec(v, self._by_id[m.contract_id].exponent) for o, v in m.catch_up_amounts.items()
                },
                causing_event_id=m.causing_event_id,
            )
            for outcome in self.run.contracts
            for m in outcome.modifications
        ]

    @_collector_paused
    def entity_totals(self) -> list[EntityPeriodTotal]:
        totals: dict[tuple[str, str, str], int] = {}
        order: list[tuple[str, str, str]] = []
        for outcome in self.run.contracts:
            revenue = self.period_revenue(outcome.contract_id)
            for k, period in enumerate(self.periods):
                units = int(revenue[period.key].scaleb(outcome.exponent))
                if not units:
                    continue
                converted, functional = self._convert(units, outcome, k)
                key = (outcome.legal_entity, period.key, functional)
                if key not in totals:
                    order.append(key)
                totals[key] = totals.get(key, 0) + converted
        return [
            EntityPeriodTotal(
                legal_entity=entity,
                period=period,
                functional_currency=currency,
                revenue=_dec(totals[(entity, period, currency)], minor_unit(currency)),
            )
            for entity, period, currency in sorted(order)
        ]

    @_collector_paused
    def report(self) -> RevenueReport:
        return RevenueReport(
            as_of=self.as_of,
            periods=self.period_infos(),
            allocations=self.allocations(),
            modifications=self.modifications(),
            schedule=self.schedule(),
            journals=self.journals(),
            waterfall=self.waterfall(),
            rpo=self.rpo(),
            rollforward=self.rollforward(),
            entity_totals=self.entity_totals(),
        )
