"""Principal versus agent for rebilled expenses and subcontracted work (IFRS 15.B34-B38, IE Examples 45-48):
revenue gross as principal, net of the supplier's cost as agent."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    ModificationFacts,
    Rebill,
    RebillablePattern,
    Scenario,
    TimeEntry,
    run_scenario,
)

FAST = settings(max_examples=40, deadline=None)
PRINCIPAL = RebillablePattern(
    role="principal",
    rationale="we direct the subcontractor, answer for the work and set the price (B37(a), (c))",
)
AGENT = RebillablePattern(
    role="agent", rationale="the supplier fulfils and sets the price; we arrange and earn a fee (B37)"
)


def _rebill(rebill_id: str, on: date, billed: int | str, cost: int | str) -> Rebill:
    return Rebill(
        id=rebill_id, contract_id="PS", obligation_id="rebills", on=on, billed=D(billed), cost=D(cost)
    )


def _engagement(pattern: RebillablePattern, events: list[Rebill]) -> Scenario:
    advisory = ratable("advisory", 12_000, date(2024, 1, 1), date(2024, 12, 31))
    rebills = obligation("rebills", None, pattern)
    return Scenario(
        contracts=[contract("PS", [advisory, rebills], 12_000)],
        events=events,
        as_of=date(2024, 12, 31),
    )


def test_example_46_subcontracted_maintenance_as_principal_is_revenue_gross() -> None:
    """IE238A-238G in outline: the firm promises the service and has a subcontractor perform it; it
    controls the service first, so it is principal: the 10,000 billed is revenue and the subcontractor's
    8,000 a cost; the fixed-price advisory work is untouched (1,000 a month)."""
    result = run_scenario(_engagement(PRINCIPAL, [_rebill("sub", date(2024, 3, 10), 10_000, 8_000)]))

    assert result.period_revenue("PS", "rebills")["2024-03"] == D(10_000)
    assert result.period_revenue("PS", "advisory")["2024-03"] == D(1_000)
    assert result.recognised_to_date("PS") == D(22_000)


def test_example_45_arranging_for_a_supplier_as_agent_is_revenue_net() -> None:
    """IE231-IE238 in outline: the firm arranges for a supplier to provide goods at the supplier's price and
    keeps a 10 % commission: of 1,000 billed, revenue is 100."""
    result = run_scenario(_engagement(AGENT, [_rebill("goods", date(2024, 5, 2), 1_000, 900)]))

    assert result.period_revenue("PS", "rebills")["2024-05"] == D(100)


def test_travel_rebilled_at_cost_earns_nothing_as_agent_and_its_amount_as_principal() -> None:
    travel = [_rebill("t1", date(2024, 2, 5), "812.40", "812.40"), _rebill("t2", date(2024, 2, 9), 95, 95)]

    assert run_scenario(_engagement(AGENT, travel)).recognised_to_date("PS") == D(12_000)
    assert run_scenario(_engagement(PRINCIPAL, travel)).recognised_to_date("PS") == D("12907.40")


def test_rebilled_amounts_are_outside_a_modification_price_like_time_and_materials() -> None:
    """A change order on 1 July restates the advisory price; the 10,000 rebilled before it is the rebills
    obligation's own consideration and is not deducted from the price still to allocate."""
    advisory = ratable("advisory", 12_000, date(2024, 1, 1), date(2024, 12, 31))
    rebills = obligation("rebills", None, PRINCIPAL)
    original = contract("PS", [advisory, rebills], 12_000)
    amended = contract(
        "PS",
        [ratable("advisory", 18_000, date(2024, 1, 1), date(2024, 12, 31)), rebills],
        18_000,
        version=2,
        effective=date(2024, 7, 1),
        modification=ModificationFacts(),
    )
    events = [_rebill("sub", date(2024, 3, 10), 10_000, 8_000)]
    result = run_scenario(Scenario(contracts=[original, amended], events=events, as_of=date(2024, 12, 31)))

    assert result.recognised_to_date("PS") == D(18_000) + D(10_000)


def test_rebill_to_an_obligation_that_is_not_rebillable_is_refused() -> None:
    advisory = ratable("advisory", 12_000, date(2024, 1, 1), date(2024, 12, 31))
    event = Rebill(
        id="x", contract_id="PS", obligation_id="advisory", on=date(2024, 2, 1), billed=D(1), cost=D(1)
    )
    with pytest.raises(ValidationError, match="not a rebillable obligation"):
        Scenario(contracts=[contract("PS", [advisory], 12_000)], events=[event])


def test_time_entries_do_not_earn_on_a_rebillable_obligation() -> None:
    time = TimeEntry(id="t", contract_id="PS", obligation_id="rebills", on=date(2024, 2, 1), hours=D(10))
    scenario = _engagement(AGENT, [])
    result = run_scenario(scenario.model_copy(update={"events": [time]}))

    assert result.recognised_to_date("PS") == D(12_000)


@FAST
@given(
    items=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=365),
            st.integers(min_value=0, max_value=1_000_000),
            st.integers(min_value=0, max_value=1_000_000),
        ),
        max_size=10,
    )
)
def test_gross_less_net_is_the_suppliers_cost_whatever_the_items(items: list[tuple[int, int, int]]) -> None:
    start = date(2024, 1, 1)
    events = [
        _rebill(f"r{i}", start + timedelta(days=day), Decimal(billed) / 100, Decimal(cost) / 100)
        for i, (day, billed, cost) in enumerate(items)
    ]
    gross = run_scenario(_engagement(PRINCIPAL, events)).recognised_to_date("PS", "rebills")
    net = run_scenario(_engagement(AGENT, events)).recognised_to_date("PS", "rebills")

    assert gross - net == sum((Decimal(cost) / 100 for _, _, cost in items), Decimal(0))
    assert gross == sum((Decimal(billed) / 100 for _, billed, _ in items), Decimal(0))
