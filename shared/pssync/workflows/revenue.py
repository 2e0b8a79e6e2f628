"""The workflows' revenue step: the canonical contract mapped onto the revenue engine's input.

The engine (pssync.revenue) computes allocation and the schedule; this module only translates the
commercial terms the CRM stated into the engine's explicit inputs, and the result into the stored schedule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation
from pssync.model.contract import (
    ContractTerms,
    InputCost,
    InputHours,
    MilestoneBilling,
    OutputMilestones,
    PerformanceObligation,
    PointInTime,
    Ratable,
    RatableBasis,
    TimeAndMaterials,
    TimeAndMaterialsBilling,
)
from pssync.money import Money
from pssync.revenue import result as engine_result
from pssync.revenue.models import RecognitionPattern


class ScheduleLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    obligation_id: str
    period: str  # YYYY-MM, or the 4-4-5 period label
    amount: Money
    method: str
    contract_version: int
    caused_by_event_id: str


class RevenueSchedule(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    currency: str
    allocations: dict[str, Money]
    lines: list[ScheduleLine]
    unscheduled: dict[str, Money]  # allocated, awaiting delivery events (progress, milestones, time)

    def periods(self) -> list[str]:
        return sorted({line.period for line in self.lines})

    def total(self) -> Decimal:
        return sum((line.amount.amount for line in self.lines), Decimal(0))


def _milestone_weights(
    terms: ContractTerms, obligation_id: str, milestone_ids: list[str]
) -> dict[str, Decimal]:
    """Milestones weigh what they bill when the billing names them; otherwise equally."""
    billed = {
        m.milestone_id: m.amount.amount
        for term in terms.billing
        if isinstance(term, MilestoneBilling)
        for m in term.milestones
        if m.obligation_id in (None, obligation_id)
    }
    if all(billed.get(m, Decimal(0)) > 0 for m in milestone_ids):
        return {m: billed[m] for m in milestone_ids}
    return {m: Decimal(1) for m in milestone_ids}


def _hourly_rate(terms: ContractTerms, obligation_id: str) -> Decimal:
    for term in terms.billing:
        if isinstance(term, TimeAndMaterialsBilling) and term.obligation_id in (None, obligation_id):
            return term.rate_card[0].hourly_rate.amount
    raise BusinessRuleViolation(
        f"obligation {obligation_id} is time and materials but no T&M billing term gives its rate",
        code="master_data_invalid",
    )


def _pattern(terms: ContractTerms, obligation: PerformanceObligation) -> RecognitionPattern:
    match obligation.recognition:
        case PointInTime(expected_on=expected_on):
            # The booking schedule plans recognition on the expected transfer date; the delivery event
            # (obligation satisfied) moves it when control actually transfers.
            return engine.PointInTimePattern(satisfied_on=expected_on)
        case Ratable(start=start, end=end, basis=basis):
            return engine.RatablePattern(
                start=start, end=end, basis="daily" if basis is RatableBasis.DAILY else "period"
            )
        case InputHours(estimated_hours=hours):
            return engine.InputHoursPattern(estimated_total_hours=hours)
        case InputCost(estimated_cost=cost):
            return engine.InputCostPattern(estimate_at_completion=cost.amount)
        case OutputMilestones(milestone_ids=ids):
            weights = _milestone_weights(terms, obligation.obligation_id, ids)
            return engine.MilestonePattern(
                milestones=[engine.Milestone(id=m, weight=weights[m]) for m in ids]
            )
        case TimeAndMaterials():
            return engine.RightToInvoicePattern(rate_per_hour=_hourly_rate(terms, obligation.obligation_id))
    raise BusinessRuleViolation(f"unsupported recognition pattern on {obligation.obligation_id}")


@dataclass(frozen=True)
class EngineVersion:
    """A recorded contract version with what the engine needs beyond its terms."""

    version: int
    terms: ContractTerms
    caused_by_event_id: str
    effective_date: str | None = None  # an amendment's effective date; version 1 starts with the contract
    modification: dict[str, Any] | None = None  # canonical ModificationFacts of an amendment


def _modification(facts: dict[str, Any] | None) -> engine.ModificationFacts | None:
    if facts is None:
        return None
    override = facts.get("override")
    return engine.ModificationFacts(
        added_goods_distinct=facts.get("added_goods_distinct", True),
        priced_at_ssp=facts.get("priced_at_ssp"),
        remaining_distinct=facts.get("remaining_distinct") or {},
        override=engine.ModificationTreatment(override) if override else None,
        rationale=facts.get("rationale"),
    )


def to_engine_contract(item: EngineVersion) -> engine.RevenueContract:
    terms = item.terms
    obligations = [
        engine.PerformanceObligation(
            id=o.obligation_id,
            description=o.description,
            ssp=o.standalone_selling_price.amount,
            ssp_range=(
                engine.SspRange(low=o.ssp_range[0].amount, high=o.ssp_range[1].amount)
                if o.ssp_range
                else None
            ),
            pattern=_pattern(terms, o),
        )
        for o in terms.obligations
    ]
    return engine.RevenueContract(
        contract_id=terms.contract_id,
        version=item.version,
        legal_entity=terms.legal_entity.code,
        currency=terms.currency,
        effective_date=date.fromisoformat(item.effective_date) if item.effective_date else terms.start_date,
        causing_event_id=item.caused_by_event_id,
        fixed_price=terms.transaction_price.amount,
        obligations=obligations,
        modification=_modification(item.modification) if item.version > 1 else None,
    )


def calendar_for(terms: ContractTerms) -> engine.CalendarSpec:
    four_four_five = any(
        isinstance(o.recognition, Ratable) and o.recognition.basis is RatableBasis.FOUR_FOUR_FIVE
        for o in terms.obligations
    )
    return engine.CalendarSpec(kind="4-4-5") if four_four_five else engine.CalendarSpec()


def classify_and_schedule(
    versions: list[EngineVersion],
    *,
    events: Sequence[engine.Event] = (),
    as_of: date | None = None,
) -> tuple[RevenueSchedule, engine_result.ModificationLine | None]:
    """The schedule after the latest version, and how the engine classified that version's modification.

    `events` are delivery facts the engine measures progress from (approved time), known as of `as_of`.
    """
    latest = versions[-1]
    terms = latest.terms
    try:
        result = engine.schedule_for(
            to_engine_contract(latest),
            previous_versions=[to_engine_contract(v) for v in versions[:-1]],
            events=events,
            calendar=calendar_for(terms),
            as_of=as_of,
        )
    except engine.RevenueRuleError as error:
        raise BusinessRuleViolation(
            f"revenue engine refused the contract: {error}", code="revenue_rule"
        ) from None
    currency = terms.currency
    # Each obligation's allocation as of its latest version (a separate-contract modification allocates
    # only the added obligations; the others keep the allocation they had).
    allocations = {
        a.obligation_id: Money(amount=a.allocated, currency=currency)
        for a in sorted(result.allocations(), key=lambda a: a.contract_version)
        if a.obligation_id in {o.obligation_id for o in terms.obligations}
    }
    lines = [
        ScheduleLine(
            obligation_id=line.obligation_id,
            period=line.period,
            amount=Money(amount=line.amount, currency=currency),
            method=line.method,
            contract_version=latest.version,
            caused_by_event_id=latest.caused_by_event_id,
        )
        for line in result.schedule()
    ]
    scheduled: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        scheduled[line.obligation_id] += line.amount.amount
    unscheduled = {
        oid: Money(amount=money.amount - scheduled[oid], currency=currency)
        for oid, money in allocations.items()
        if money.amount != scheduled[oid]
    }
    schedule = RevenueSchedule(
        contract_id=terms.contract_id,
        currency=currency,
        allocations=allocations,
        lines=lines,
        unscheduled=unscheduled,
    )
    modification = next((m for m in result.modifications() if m.contract_version == latest.version), None)
    return schedule, modification


def revenue_schedule_for(
    terms: ContractTerms, *, contract_version: int, caused_by_event_id: str
) -> RevenueSchedule:
    """The schedule of a single (booking) version."""
    schedule, _ = classify_and_schedule([EngineVersion(contract_version, terms, caused_by_event_id)])
    return schedule
