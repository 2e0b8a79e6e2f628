"""Termination of a contract: revenue recognised stays, the remaining price is not recognised, and the
balances settle (refund liability when the customer paid more than revenue)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    Concession,
    Invoice,
    ModificationFacts,
    ModificationTreatment,
    Payment,
    Scenario,
    Termination,
    UnitsDelivered,
    UnitsPattern,
    run_scenario,
)
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.result.termination import settlement

FAST = settings(max_examples=40, deadline=None)
CANCELLED = Termination(reason="customer cancelled for convenience")


def _support_cancelled(*, paid: int, billed: int, concession: Concession | None = None) -> Scenario:
    """A year of support for 12,000 from 1 January (1,000 a month, period basis), billed and paid up front
    as stated, cancelled with effect from 1 April: January-March earned 3,000 and stays; nothing after."""
    support = ratable("support", 12_000, date(2024, 1, 1), date(2024, 12, 31))
    original = contract("SUP", [support], 12_000)
    cancelled = contract(
        "SUP",
        [],
        3_000,
        version=2,
        effective=date(2024, 4, 1),
        termination=CANCELLED,
        modification=ModificationFacts(concession=concession) if concession else None,
    )
    events: list[Invoice | Payment] = [
        Invoice(id="inv", contract_id="SUP", on=date(2024, 1, 1), amount=D(billed))
    ]
    if paid:
        events.append(Payment(id="pay", contract_id="SUP", on=date(2024, 1, 15), amount=D(paid)))
    return Scenario(contracts=[original, cancelled], events=events, as_of=date(2024, 12, 31))


def test_cancelled_support_keeps_revenue_earned_and_owes_back_what_was_paid_beyond_it() -> None:
    result = run_scenario(_support_cancelled(paid=6_000, billed=6_000))

    revenue = result.period_revenue("SUP")
    assert [revenue[f"2024-{m:02d}"] for m in (1, 2, 3)] == [D("1000.00")] * 3
    assert all(revenue[f"2024-{m:02d}"] == 0 for m in range(4, 13))
    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.TERMINATION
    assert "customer cancelled for convenience" in modification.rationale
    [line] = result.terminations()
    assert (line.revenue_recognised, line.paid, line.refund_liability) == (
        D("3000.00"),
        D("6000.00"),
        D("3000.00"),
    )
    assert (line.still_to_invoice, line.invoices_to_credit, line.receivable_kept) == (0, 0, 0)
    assert line.terminated_on == date(2024, 4, 1)


def test_unpaid_bill_beyond_revenue_is_credited_and_earned_part_kept_as_receivable() -> None:
    """Billed 6,000 up front, nothing paid: 3,000 earned stays receivable, 3,000 of the bill is credited."""
    [line] = run_scenario(_support_cancelled(paid=0, billed=6_000)).terminations()

    assert line.receivable_kept == D("3000.00")
    assert line.invoices_to_credit == D("3000.00")
    assert line.refund_liability == 0


def test_work_performed_but_not_billed_is_still_to_invoice() -> None:
    [line] = run_scenario(_support_cancelled(paid=1_000, billed=1_000)).terminations()

    assert line.still_to_invoice == D("2000.00")
    assert line.refund_liability == 0


def test_credit_given_on_termination_reduces_revenue_on_the_termination_date() -> None:
    credit = Concession(amount=D(500), reason="poor response times in March")
    result = run_scenario(_support_cancelled(paid=6_000, billed=6_000, concession=credit))

    assert result.period_revenue("SUP")["2024-04"] == D("-500.00")
    [line] = result.terminations()
    assert line.revenue_recognised == D("2500.00")
    assert line.refund_liability == D("3500.00")


def test_version_after_a_termination_is_refused() -> None:
    scenario = _support_cancelled(paid=0, billed=1_000)
    revived = contract(
        "SUP",
        [ratable("support", 12_000, date(2024, 1, 1), date(2024, 12, 31))],
        12_000,
        version=3,
        effective=date(2024, 6, 1),
    )
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario.model_copy(update={"contracts": [*scenario.contracts, revived]}))
    assert refused.value.field == "contracts[2]"


def test_first_version_cannot_terminate() -> None:
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(
            Scenario(contracts=[contract("T", [], 0, termination=CANCELLED)], as_of=date(2024, 2, 1))
        )
    assert refused.value.field == "contracts[0].termination"


def test_termination_listing_obligations_and_version_without_obligations_are_invalid() -> None:
    support = ratable("support", 100, date(2024, 1, 1), date(2024, 12, 31))
    with pytest.raises(ValidationError, match="lists no obligations"):
        contract("T", [support], 100, version=2, termination=CANCELLED)
    with pytest.raises(ValidationError, match="at least one obligation"):
        contract("T", [], 100)


@FAST
@given(
    delivery_days=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=6),
    terminated_day=st.integers(min_value=1, max_value=330),
)
def test_terminated_revenue_is_what_deliveries_before_the_termination_earned(
    delivery_days: list[int], terminated_day: int
) -> None:
    """Whatever the delivery and termination dates: a terminated contract's lifetime revenue equals the
    revenue of the same contract with only the deliveries dated before the termination, and nothing is
    booked after the termination's period."""
    start = date(2024, 1, 1)
    products = obligation("p", 6_000, UnitsPattern(total_units=D(6)))
    original = contract("U", [products], 6_000)
    ended_on = start + timedelta(days=terminated_day)
    ended = contract("U", [], 0, version=2, effective=ended_on, termination=CANCELLED)
    deliveries = [
        UnitsDelivered(
            id=f"d{i}", contract_id="U", obligation_id="p", on=start + timedelta(days=d), units=D(1)
        )
        for i, d in enumerate(delivery_days)
    ]
    as_of = date(2025, 6, 30)
    terminated = run_scenario(Scenario(contracts=[original, ended], events=deliveries, as_of=as_of))
    before = [d for d in deliveries if d.on < ended_on]
    expected = (
        run_scenario(Scenario(contracts=[original], events=before, as_of=as_of)).recognised_to_date("U")
        if before
        else D(0)
    )

    assert terminated.recognised_to_date("U") == expected
    after = [p.key for p in terminated.periods if p.start > ended_on]
    assert all(terminated.period_revenue("U")[key] == 0 for key in after)


@FAST
@given(
    revenue=st.integers(min_value=0, max_value=10_000),
    billed=st.integers(min_value=0, max_value=10_000),
    paid=st.integers(min_value=0, max_value=10_000),
)
def test_settlement_reconciles_with_revenue_payments_and_the_open_receivable(
    revenue: int, billed: int, paid: int
) -> None:
    receivable, still_to_invoice, to_credit, refund = settlement(revenue, billed, paid)

    assert min(receivable, still_to_invoice, to_credit, refund) >= 0
    assert receivable + still_to_invoice - refund == revenue - paid
    assert receivable + to_credit == max(billed - paid, 0)
