"""Sales- and usage-based royalties (IFRS 15.B63): recognised at the later of the sale or usage and the
satisfaction of the obligation, never estimated, split over obligations when not solely attributable."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    PeriodClose,
    PointInTimePattern,
    RoyaltyReported,
    Scenario,
    run_scenario,
)

FAST = settings(max_examples=40, deadline=None)


def _royalty(royalty_id: str, on: date, amount: int | str, **extra: object) -> RoyaltyReported:
    return RoyaltyReported(
        id=royalty_id,
        contract_id="LIC",
        on=on,
        amount=D(amount),
        **extra,  # type: ignore[arg-type]
    )


def _franchise(events: list[object], as_of: date = date(2024, 12, 31)) -> Scenario:
    """IFRS 15 IE Example 57 in outline: a franchise licence (a right to access, satisfied over 2024) for a
    fixed 12,000 plus a royalty of 5 % of the franchisee's monthly sales."""
    franchise = ratable("franchise", 12_000, date(2024, 1, 1), date(2024, 12, 31))
    return Scenario(
        contracts=[contract("LIC", [franchise], 12_000)],
        events=events,  # type: ignore[arg-type]
        as_of=as_of,
    )


def test_royalty_on_a_franchise_is_revenue_when_the_sales_occur() -> None:
    """Sales of 40,000 in March and 60,000 in April: royalties 2,000 and 3,000 land in those months on top
    of the 1,000 a month of fixed fee; nothing is estimated ahead of the reports."""
    events = [
        _royalty("r-mar", date(2024, 3, 31), 2_000, description="5 % of March sales of 40,000"),
        _royalty("r-apr", date(2024, 4, 30), 3_000, description="5 % of April sales of 60,000"),
    ]
    revenue = run_scenario(_franchise(events)).period_revenue("LIC")

    assert revenue["2024-02"] == D("1000.00")
    assert revenue["2024-03"] == D("3000.00")
    assert revenue["2024-04"] == D("4000.00")
    assert revenue["2024-05"] == D("1000.00")


def test_nothing_is_recognised_before_the_report_is_known() -> None:
    events = [_royalty("r-mar", date(2024, 3, 31), 2_000, recorded_on=date(2024, 4, 10))]
    result = run_scenario(_franchise(events, as_of=date(2024, 4, 5)))

    assert result.recognised_to_date("LIC") == D("4000.00")  # four months of the fixed fee only


def test_report_after_the_period_closed_lands_in_the_first_open_period() -> None:
    events = [
        PeriodClose(id="close-mar", on=date(2024, 4, 5), period="2024-03"),
        _royalty("r-mar", date(2024, 3, 31), 2_000, recorded_on=date(2024, 4, 10)),
    ]
    revenue = run_scenario(_franchise(events)).period_revenue("LIC")

    assert revenue["2024-03"] == D("1000.00")  # closed figures are never rewritten
    assert revenue["2024-04"] == D("3000.00")  # 1,000 fee + the late 2,000


def test_royalty_for_sales_before_the_licence_transfers_waits_for_the_transfer() -> None:
    """A right-to-use licence transferred on 1 June; the customer's pre-orders in April carry a royalty of
    500: recognised in June, the later of the sale and the satisfaction."""
    licence = obligation("licence", 10_000, PointInTimePattern(satisfied_on=date(2024, 6, 1)))
    events = [_royalty("r-apr", date(2024, 4, 20), 500)]
    scenario = Scenario(
        contracts=[contract("LIC", [licence], 10_000)], events=events, as_of=date(2024, 12, 31)
    )
    revenue = run_scenario(scenario).period_revenue("LIC")

    assert revenue["2024-04"] == 0
    assert revenue["2024-06"] == D("10500.00")


def test_royalty_relating_to_two_obligations_is_split_by_ssp_and_each_waits_for_its_own() -> None:
    """The royalty relates to a licence (SSP 9,000, transferred 1 March) and to updates (SSP 3,000, from
    1 July): 1,000 of June usage splits 750 / 250; the licence's 750 in June, the updates' 250 in July."""
    licence = obligation("licence", 9_000, PointInTimePattern(satisfied_on=date(2024, 3, 1)))
    updates = ratable("updates", 3_000, date(2024, 7, 1), date(2024, 12, 31))
    events = [_royalty("r-jun", date(2024, 6, 30), 1_000)]
    scenario = Scenario(
        contracts=[contract("LIC", [licence, updates], 12_000)], events=events, as_of=date(2024, 12, 31)
    )
    result = run_scenario(scenario)

    assert result.period_revenue("LIC", "licence")["2024-06"] == D("750.00")
    assert result.period_revenue("LIC", "updates")["2024-06"] == 0
    assert result.period_revenue("LIC", "updates")["2024-07"] == D("500.00") + D("250.00")


def test_royalty_is_the_whole_price_of_a_licence_with_no_fixed_fee() -> None:
    licence = obligation("licence", 0, PointInTimePattern(satisfied_on=date(2024, 1, 1)))
    events = [_royalty("r1", date(2024, 2, 10), "123.45"), _royalty("r2", date(2024, 2, 20), "-23.45")]
    scenario = Scenario(contracts=[contract("LIC", [licence], 0)], events=events, as_of=date(2024, 3, 31))

    assert run_scenario(scenario).period_revenue("LIC")["2024-02"] == D("100.00")


@FAST
@given(
    reports=st.lists(
        st.tuples(st.integers(min_value=0, max_value=500), st.integers(min_value=-10_000, max_value=100_000)),
        max_size=8,
    ),
    transferred_on=st.integers(min_value=0, max_value=400),
)
def test_royalties_add_exactly_their_amounts_and_never_touch_the_fixed_price(
    reports: list[tuple[int, int]], transferred_on: int
) -> None:
    """Whatever the sale dates and amounts: lifetime revenue is the fixed price plus every royalty, no
    royalty is recognised before the licence transfers, and before any sale the schedule is the fixed
    price's alone."""
    start = date(2024, 1, 1)
    transfer = start + timedelta(days=transferred_on)
    licence = obligation("licence", 8_000, PointInTimePattern(satisfied_on=transfer))
    support = ratable("support", 2_000, start, date(2024, 12, 31))
    events = [
        _royalty(f"r{i}", start + timedelta(days=day), Decimal(cents) / 100)
        for i, (day, cents) in enumerate(reports)
    ]
    with_royalties = Scenario(
        contracts=[contract("LIC", [licence, support], 10_000)], events=events, as_of=date(2026, 1, 31)
    )
    result = run_scenario(with_royalties)
    without = run_scenario(with_royalties.model_copy(update={"events": []}))

    royalties = sum((Decimal(cents) / 100 for _, cents in reports), Decimal(0))
    assert result.recognised_to_date("LIC") == D(10_000) + royalties
    licence_revenue = result.period_revenue("LIC", "licence")
    first_sale = min((start + timedelta(days=day) for day, _ in reports), default=date.max)
    for period in result.periods:
        if period.end < transfer:
            assert licence_revenue[period.key] == 0
        if period.end < first_sale:  # before any sale the schedule is the fixed price's alone
            assert result.period_revenue("LIC")[period.key] == without.period_revenue("LIC")[period.key]
