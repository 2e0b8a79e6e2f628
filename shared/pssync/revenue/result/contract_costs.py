"""Contract cost assets (IFRS 15.91-104, ASC 340-40): capitalised, amortised, impaired; a separate asset.

Each cost is booked in the period of its date (or, recorded after that period closed, in the first open
period that saw it, like a bill). Then:
- expensed at once when it may not be capitalised (an obtaining cost that is not incremental, a fulfilment
  cost that enhances no resource, a cost not expected to be recovered) or when the one-year practical
  expedient applies (obtaining costs whose amortisation period ends within a year of the cost);
- otherwise capitalised and amortised on the pattern of the related obligations' revenue: cumulative
  amortisation = cost x revenue recognised / their price, rounded once per cumulative figure and never
  falling (a revenue reversal does not re-create an asset), so a commission paid after part of the service
  was transferred is partly expensed at once;
- each period, the contract's assets are tested together (15.101): an impairment loss is the carrying amount
  above the remaining consideration for the related goods (price not yet recognised) less the costs still to
  provide them (the latest CostsToProvideEstimate known); it is spread over the assets by carrying amount and
  never reversed. Amortisation then continues on what is left, on the same pattern.
Closed periods keep their figures: revenue and price come from what each period was reported with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from pydantic import BaseModel, ConfigDict

from pssync.money import ExactDecimal
from pssync.revenue.allocation import largest_remainder
from pssync.revenue.compiled import to_minor_units
from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import EARNED_AS_BILLED, ContractCost, CostsToProvideEstimate
from pssync.revenue.result.models import PeriodStatus
from pssync.revenue.result.support import dec, period_status

CAPITALISED = "capitalised: amortised on the pattern of the related revenue (IFRS 15.91/95, 15.99)"
EXPEDIENT = "expensed: amortisation period of one year or less (IFRS 15.94 practical expedient)"
NOT_INCREMENTAL = "expensed: not incremental, incurred whether or not the contract was obtained (IFRS 15.93)"
NO_RESOURCE = "expensed: a fulfilment cost that generates or enhances no resource (IFRS 15.95(b), 15.98)"
NOT_RECOVERABLE = "expensed: not expected to be recovered (IFRS 15.91, 15.95(c))"


class ContractCostLine(BaseModel):
    """One contract cost asset in one period: movements and closing carrying amount."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    cost_id: str
    kind: str
    period: str
    status: (
        PeriodStatus  # closed / open / forecast (after as_of: amortisation as scheduled, no impairment test)
    )
    currency: str
    treatment: str
    capitalised: ExactDecimal
    expensed: ExactDecimal
    amortisation: ExactDecimal
    impairment: ExactDecimal
    closing_carrying_amount: ExactDecimal


@dataclass(slots=True)
class _Asset:
    cost: ContractCost
    period: int  # index of the period it is booked in
    amount: int
    related: list[str]
    treatment: str
    amortised: int = 0  # cumulative
    impaired: int = 0  # cumulative
    # After an impairment, amortisation continues from (cumulative amortisation, progress) at that point.
    restart: tuple[int, Fraction] | None = None

    @property
    def carrying(self) -> int:
        return self.amount - self.amortised - self.impaired if self.treatment == CAPITALISED else 0


def contract_cost_lines(run: EngineRun) -> list[ContractCostLine]:
    costs = _costs_by_contract(run)
    lines: list[ContractCostLine] = []
    for outcome in run.contracts:
        known = costs.get(outcome.contract_id)
        if known:
            lines.extend(_contract_lines(run, outcome, *known))
    return lines


def _costs_by_contract(
    run: EngineRun,
) -> dict[str, tuple[list[tuple[int, ContractCost]], list[CostsToProvideEstimate]]]:
    found: dict[str, tuple[list[tuple[int, ContractCost]], list[CostsToProvideEstimate]]] = {}
    for index, event in enumerate(run.scenario.events):
        if isinstance(event, ContractCost | CostsToProvideEstimate) and event.known_from <= run.as_of:
            costs, estimates = found.setdefault(event.contract_id, ([], []))
            if isinstance(event, ContractCost):
                if event.on <= run.as_of:  # a cost dated later is not incurred yet
                    costs.append((index, event))
            else:
                estimates.append(event)
    return found


def _contract_lines(
    run: EngineRun,
    outcome: ContractOutcome,
    costs: list[tuple[int, ContractCost]],
    estimates: list[CostsToProvideEstimate],
) -> list[ContractCostLine]:
    e = outcome.exponent
    policy = run.scenario.contract_costs
    assets = []
    for index, cost in sorted(costs, key=lambda c: (c[1].on, c[1].id)):
        related = _related(outcome, cost, index)
        k = _booking_period(run, cost)
        if k is None:
            continue
        try:
            amount = to_minor_units(cost.amount, e)
        except RevenueRuleError as error:
            raise RevenueRuleError(error.reason, f"events[{index}].amount") from None
        treatment = _treatment(cost, policy.one_year_expedient, _benefit_end(run, outcome, cost, related))
        assets.append(_Asset(cost, k, amount, related, treatment))
    lines = []
    last = len(run.periods.periods) - 1
    for k in range(min((a.period for a in assets), default=last + 1), last + 1):
        movements = {}
        for asset in assets:
            if asset.period > k:
                continue
            before = asset.amortised
            if asset.treatment == CAPITALISED:
                asset.amortised = _amortised(run, outcome, asset, k)
            movements[asset.cost.id] = asset.amortised - before
        in_force = [a for a in assets if a.period <= k]
        losses = _impairment(run, outcome, in_force, estimates, k) if k <= run.as_of_index else {}
        for asset in assets:
            if asset.period > k:
                continue
            loss = losses.get(asset.cost.id, 0)
            if loss:
                asset.impaired += loss
                asset.restart = (asset.amortised, _pattern(run, outcome, asset, k))
            booked_now = asset.period == k
            amortisation = movements[asset.cost.id]
            if not (booked_now or amortisation or loss or asset.carrying):
                continue
            capitalised = asset.amount if booked_now and asset.treatment == CAPITALISED else 0
            expensed = asset.amount if booked_now and asset.treatment != CAPITALISED else 0
            lines.append(
                ContractCostLine(
                    contract_id=outcome.contract_id,
                    cost_id=asset.cost.id,
                    kind=asset.cost.kind,
                    period=run.periods.periods[k].key,
                    status=period_status(run, k),
                    currency=outcome.currency,
                    treatment=asset.treatment,
                    capitalised=dec(capitalised, e),
                    expensed=dec(expensed, e),
                    amortisation=dec(amortisation, e),
                    impairment=dec(loss, e),
                    closing_carrying_amount=dec(asset.carrying, e),
                )
            )
    return lines


def _related(outcome: ContractOutcome, cost: ContractCost, index: int) -> list[str]:
    """The obligations whose revenue pattern the asset follows; right-to-invoice ones have no price to
    measure a pattern against, so a cost relating only to them is refused."""
    named = cost.obligation_ids or outcome.obligation_order
    related = [o for o in named if o in outcome.tracks and not _right_to_invoice(outcome, o)]
    if not related:
        raise RevenueRuleError(
            f"contract cost {cost.id} relates to no obligation with an allocated price (time and "
            "materials earns as invoiced and has no pattern to amortise against): name the obligations it "
            "relates to",
            f"events[{index}].obligation_ids",
        )
    return related


def _right_to_invoice(outcome: ContractOutcome, oid: str) -> bool:
    pieces = outcome.tracks[oid].pieces
    return bool(pieces) and isinstance(pieces[-1][1].obligation.pattern, EARNED_AS_BILLED)


def _booking_period(run: EngineRun, cost: ContractCost) -> int | None:
    """The cost's period, or the first open one that saw it when it was recorded after a close."""
    k = run.periods.index_of(cost.on)
    recorded = cost.known_from.toordinal()
    knowledge = [c.toordinal() if c is not None else run.as_of.toordinal() for c in run.closed_on]
    while k < len(knowledge) and knowledge[k] < recorded:
        k += 1
    return k if k < len(knowledge) else None


def _treatment(cost: ContractCost, expedient: bool, benefit_end: date | None) -> str:
    if not cost.recoverable:
        return NOT_RECOVERABLE
    if cost.kind == "obtain":
        if not cost.incremental:
            return NOT_INCREMENTAL
        if expedient and benefit_end is not None and benefit_end < _one_year_after(cost.on):
            return EXPEDIENT
        return CAPITALISED
    return CAPITALISED if cost.enhances_resources else NO_RESOURCE


def _one_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28) + timedelta(days=1)


def _benefit_end(
    run: EngineRun, outcome: ContractOutcome, cost: ContractCost, related: list[str]
) -> date | None:
    """Stated, else the end of the period in which the related revenue reaches its price (as known at
    as_of, forecast included); None when the schedule never gets there (progress not yet measured), so the
    expedient cannot be shown to apply and the cost is capitalised."""
    if cost.benefit_ends_on is not None:
        return cost.benefit_ends_on
    tracks = [outcome.tracks[o] for o in related]
    for k, period in enumerate(run.periods.periods):
        if all(t.cumulative[k] >= t.expected_total[k] for t in tracks):
            return period.end
    return None


def _pattern(run: EngineRun, outcome: ContractOutcome, asset: _Asset, k: int) -> Fraction:
    """How much of the asset's benefit period is behind at period k's end: the related revenue's progress,
    or, with a stated `benefit_ends_on` (anticipated renewals reach past the contract), the days elapsed
    from the cost to that date (straight line: the goods of renewals are not in the scenario)."""
    end = asset.cost.benefit_ends_on
    if end is None:
        return _progress(run, outcome, asset.related, k)
    elapsed = (run.periods.periods[k].end - asset.cost.on).days + 1
    span = (end - asset.cost.on).days + 1
    return min(max(Fraction(elapsed, span), Fraction(0)), Fraction(1)) if span > 0 else Fraction(1)


def _progress(run: EngineRun, outcome: ContractOutcome, related: list[str], k: int) -> Fraction:
    """Revenue recognised / price of the related obligations, as period k was reported (0..1)."""
    tracks = outcome.knowledge_tracks[k]
    price = sum(tracks[o].expected_total[k] for o in related if o in tracks)
    earned = sum(outcome.reported[o][k] for o in related)
    if price <= 0:
        return Fraction(0)
    return min(max(Fraction(earned, price), Fraction(0)), Fraction(1))


def _amortised(run: EngineRun, outcome: ContractOutcome, asset: _Asset, k: int) -> int:
    progress = _pattern(run, outcome, asset, k)
    if asset.restart is None:
        target = _round(asset.amount * progress)
    else:
        base, at = asset.restart
        left = asset.amount - base - asset.impaired
        target = base + (_round(left * (progress - at) / (1 - at)) if at < 1 else 0)
    return min(max(asset.amortised, target), asset.amount - asset.impaired)


def _impairment(
    run: EngineRun,
    outcome: ContractOutcome,
    assets: list[_Asset],
    estimates: list[CostsToProvideEstimate],
    k: int,
) -> dict[str, int]:
    """The loss of period k per asset: the carrying amount above remaining consideration less costs to
    provide, for the contract's capitalised assets together, spread by carrying amount."""
    held = [a for a in assets if a.carrying > 0]
    if not held:
        return {}
    related = sorted({o for a in held for o in a.related})
    tracks = outcome.knowledge_tracks[k]
    remaining = sum(tracks[o].expected_total[k] - outcome.reported[o][k] for o in related if o in tracks)
    to_provide = _costs_to_provide(run, outcome, related, estimates, k)
    carrying = sum(a.carrying for a in held)
    loss = min(carrying, max(carrying - (remaining - to_provide), 0))
    if not loss:
        return {}
    shares = largest_remainder(loss, [a.carrying for a in held])
    return {a.cost.id: share for a, share in zip(held, shares, strict=True) if share}


def _costs_to_provide(
    run: EngineRun,
    outcome: ContractOutcome,
    related: list[str],
    estimates: list[CostsToProvideEstimate],
    k: int,
) -> int:
    """The latest estimate dated by period k's end and known when period k was reported. An estimate states
    the costs still to incur after the end of its own period; until the next one, it runs down with the
    related revenue (costs are taken to be incurred as the goods are provided), so a stale estimate does not
    impair the asset again each period."""
    period_end = run.periods.periods[k].end
    cut = run.closed_on[k] or run.as_of
    seen = sorted(
        (e for e in estimates if e.on <= period_end and e.known_from <= cut), key=lambda e: (e.on, e.id)
    )
    if not seen:
        return 0
    latest = seen[-1]
    amount = to_minor_units(latest.amount, outcome.exponent)
    then = _progress(run, outcome, related, run.periods.index_of(latest.on))
    if then >= 1:
        return 0
    return _round(amount * (1 - _progress(run, outcome, related, k)) / (1 - then))


def _round(value: Fraction) -> int:
    """Half away from zero to the minor unit (values here are non-negative)."""
    return int((value * 2 + 1) // 2)


__all__ = ["ContractCostLine", "contract_cost_lines"]
