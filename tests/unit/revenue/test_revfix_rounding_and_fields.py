"""Issue 11 items 8 and 9 beyond time entries: royalties round their running total, never each report, and a
bad amount or obligation on an event is refused naming the event's field (`events[i].amount`), not a bare
`amount` or nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    ContractCost,
    CostsToProvideEstimate,
    Event,
    Invoice,
    Payment,
    PointInTimePattern,
    RevenueRuleError,
    RoyaltyReported,
    Scenario,
    run_scenario,
)
from pssync.revenue.stream import write_report

START = date(2024, 1, 1)


def _licences(reports: list[RoyaltyReported]) -> Scenario:
    """Two licences of equal SSP transferred on 1 January; every royalty relates to both."""
    first = obligation("first", 500, PointInTimePattern(satisfied_on=START))
    second = obligation("second", 500, PointInTimePattern(satisfied_on=START))
    return Scenario(
        contracts=[contract("LIC", [first, second], 1_000)], events=reports, as_of=date(2024, 12, 31)
    )


def _royalty(royalty_id: str, on: date, amount: Decimal) -> RoyaltyReported:
    return RoyaltyReported(id=royalty_id, contract_id="LIC", on=on, amount=amount)


def test_two_one_cent_royalties_over_two_equal_licences_give_one_cent_each() -> None:
    reports = [_royalty("r1", date(2024, 2, 3), D("0.01")), _royalty("r2", date(2024, 2, 17), D("0.01"))]
    result = run_scenario(_licences(reports))

    assert result.period_revenue("LIC", "first")["2024-02"] == D("0.01")
    assert result.period_revenue("LIC", "second")["2024-02"] == D("0.01")


@settings(max_examples=60, deadline=None)
@given(
    reports=st.lists(
        st.tuples(st.integers(0, 300), st.integers(-500, 5_000), st.integers(0, 100)),
        min_size=1,
        max_size=6,
    ),
)
def test_splitting_a_royalty_report_in_two_never_changes_any_obligations_revenue(
    reports: list[tuple[int, int, int]],
) -> None:
    """The same sales reported as one amount or as two parts on the same day (`part` percent of it first)
    give every obligation the same revenue in every period."""
    whole, split = [], []
    for n, (day, cents, part) in enumerate(reports):
        on = START + timedelta(days=day)
        amount = Decimal(cents) / 100
        first_part = (Decimal(cents) * part // 100) / 100
        whole.append(_royalty(f"r{n}", on, amount))
        split.append(_royalty(f"r{n}a", on, first_part))
        split.append(_royalty(f"r{n}b", on, amount - first_part))
    one, two = run_scenario(_licences(whole)), run_scenario(_licences(split))

    for oid in ("first", "second"):
        assert one.period_revenue("LIC", oid) == two.period_revenue("LIC", oid)


def _support(events: list[Event]) -> Scenario:
    support = ratable("support", 1_200, START, date(2024, 12, 31))
    other = contract("AAA", [ratable("a", 10, START, date(2024, 1, 31))], 10)
    return Scenario(
        contracts=[other, contract("C", [support], 1_200)], events=events, as_of=date(2024, 3, 31)
    )


FINER_THAN_A_CENT = [
    Invoice(id="bad-invoice", contract_id="C", on=date(2024, 2, 1), amount=D("1.001")),
    Payment(id="bad-payment", contract_id="C", on=date(2024, 2, 1), amount=D("1.001")),
    RoyaltyReported(id="bad-royalty", contract_id="C", on=date(2024, 2, 1), amount=D("1.001")),
    ContractCost(id="bad-cost", contract_id="C", on=date(2024, 2, 1), amount=D("1.001"), kind="obtain"),
    CostsToProvideEstimate(id="bad-estimate", contract_id="C", on=date(2024, 2, 1), amount=D("1.001")),
]


@pytest.mark.parametrize("bad", FINER_THAN_A_CENT, ids=lambda e: e.type)
def test_an_amount_finer_than_the_minor_unit_is_refused_naming_the_event(bad: Event) -> None:
    fine = Invoice(id="ok", contract_id="C", on=date(2024, 1, 5), amount=D("10.00"))
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(_support([fine, bad]))

    assert refused.value.field == "events[1].amount"
    assert bad.id in refused.value.reason and "1.001" in refused.value.reason


def test_the_stream_names_the_bad_amount_in_the_whole_file(tmp_path: Path) -> None:
    other = Invoice(id="aaa", contract_id="AAA", on=date(2024, 1, 5), amount=D("10"))
    bad = Payment(id="p", contract_id="C", on=date(2024, 2, 1), amount=D("0.005"))
    text = _support([other, bad]).model_dump_json()

    with pytest.raises(RevenueRuleError) as refused:
        write_report(text, "csv", tmp_path / "report.csv")

    assert refused.value.field == "events[1].amount"
    assert list(tmp_path.iterdir()) == []


def test_a_royalty_naming_an_obligation_not_yet_in_the_contract_on_its_date_is_refused_naming_it() -> None:
    """`updates` is added by version 2 from 1 July; a royalty for March sales cannot relate to it."""
    licence = obligation("licence", 9_000, PointInTimePattern(satisfied_on=START))
    updates = ratable("updates", 3_000, date(2024, 7, 1), date(2024, 12, 31))
    v1 = contract("LIC", [licence], 9_000)
    v2 = contract("LIC", [licence, updates], 12_000, version=2, effective=date(2024, 7, 1))
    early = RoyaltyReported(
        id="r-mar", contract_id="LIC", on=date(2024, 3, 31), amount=D(100), obligation_ids=["updates"]
    )
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(Scenario(contracts=[v1, v2], events=[early], as_of=date(2024, 12, 31)))

    assert refused.value.field == "events[0].obligation_ids"
    assert "updates" in refused.value.reason and "version 1" in refused.value.reason
