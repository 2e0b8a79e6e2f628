"""Contract costs (IFRS 15.91-104, ASC 340-40): IFRS 15 IE Examples 36 and 37, the one-year practical
expedient, amortisation on the revenue pattern, impairment; invariants over generated cases."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    ContractCost,
    ContractCostPolicy,
    CostsToProvideEstimate,
    PeriodClose,
    RightToInvoicePattern,
    Scenario,
    run_scenario,
)
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.result import ContractCostLine

FAST = settings(max_examples=30, deadline=None)


def _cost(cost_id: str, amount: int | str, kind: str = "obtain", **extra: object) -> ContractCost:
    return ContractCost(
        id=cost_id,
        contract_id="C",
        on=extra.pop("on", date(2024, 1, 1)),  # type: ignore[arg-type]
        amount=D(amount),
        kind=kind,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _by_cost(lines: list[ContractCostLine]) -> dict[str, list[ContractCostLine]]:
    grouped: dict[str, list[ContractCostLine]] = defaultdict(list)
    for line in lines:
        grouped[line.cost_id].append(line)
    return grouped


def _consulting(years: int, price: int, events: list[object], **scenario: object) -> Scenario:
    service = ratable("consulting", price, date(2024, 1, 1), date(2024 + years - 1, 12, 31))
    return Scenario(
        contracts=[contract("C", [service], price)],
        events=events,  # type: ignore[arg-type]
        as_of=date(2024, 12, 31),
        **scenario,  # type: ignore[arg-type]
    )


def test_example_36_only_the_commission_is_an_asset() -> None:
    """IE189-191: a 5-year consulting contract won with legal due-diligence fees 15,000, travel 25,000 and
    sales commissions 10,000; a discretionary supervisor bonus of 5,000 depends on annual targets. Only the
    commission is incremental: an asset of 10,000, amortised with the service (2,000 a year here); the
    other 45,000 are expensed when incurred."""
    events = [
        _cost("legal", 15_000, incremental=False, description="external due-diligence legal fees"),
        _cost("travel", 25_000, incremental=False, description="travel to deliver the proposal"),
        _cost("commission", 10_000, description="sales employees' commission"),
        _cost("bonus", 5_000, incremental=False, description="discretionary supervisor bonus"),
    ]
    lines = _by_cost(run_scenario(_consulting(5, 500_000, events)).contract_costs())

    assert sum(line.expensed for key in ("legal", "travel", "bonus") for line in lines[key]) == D(45_000)
    assert all(line.capitalised == 0 for key in ("legal", "travel", "bonus") for line in lines[key])
    commission = lines["commission"]
    assert commission[0].capitalised == D(10_000)
    in_2024 = [line for line in commission if line.period.startswith("2024")]
    assert sum(line.amortisation for line in in_2024) == D(2_000)
    assert in_2024[-1].closing_carrying_amount == D(8_000)
    assert commission[-1].period == "2028-12"
    assert commission[-1].closing_carrying_amount == 0
    assert commission[-1].status == "forecast"


def test_example_37_set_up_costs_that_enhance_resources_are_an_asset_staff_costs_are_not() -> None:
    """IE192-196: a 5-year outsourcing contract; migration and testing of the platform (100,000) enhance a
    resource used to provide the service and are recovered by the fees: an asset, amortised over the
    5 years (20,000 a year). The staff providing the service (here 12,000) create no resource: expensed.
    (Hardware and software belong to IAS 16 / IAS 38 and are not contract costs.)"""
    events = [
        _cost("migration", 100_000, "fulfil", enhances_resources=True),
        _cost("staff", 12_000, "fulfil"),
    ]
    lines = _by_cost(run_scenario(_consulting(5, 1_000_000, events)).contract_costs())

    assert lines["migration"][0].capitalised == D(100_000)
    assert sum(x.amortisation for x in lines["migration"] if x.period.startswith("2024")) == D(20_000)
    [staff] = lines["staff"]
    assert (staff.expensed, staff.capitalised, staff.closing_carrying_amount) == (D(12_000), 0, 0)
    assert "15.95(b)" in staff.treatment


def test_one_year_expedient_expenses_a_commission_on_a_six_month_contract() -> None:
    service = ratable("consulting", 6_000, date(2024, 1, 1), date(2024, 6, 30))
    events = [_cost("commission", 1_200)]
    base = Scenario(contracts=[contract("C", [service], 6_000)], events=events, as_of=date(2024, 12, 31))

    [expensed] = run_scenario(base).contract_costs()
    assert (expensed.expensed, expensed.capitalised) == (D(1_200), 0)
    assert "15.94" in expensed.treatment

    without = run_scenario(
        base.model_copy(update={"contract_costs": ContractCostPolicy(one_year_expedient=False)})
    ).contract_costs()
    assert [line.amortisation for line in without] == [D(200)] * 6

    renewals = [_cost("commission", 1_200, benefit_ends_on=date(2025, 12, 31))]
    capitalised = run_scenario(base.model_copy(update={"events": renewals})).contract_costs()
    assert capitalised[0].capitalised == D(1_200)  # anticipated renewals: two years of benefit
    assert capitalised[0].amortisation == D("50.89")  # straight line by day: 1,200 x 31 / 731


def test_commission_paid_after_part_of_the_service_is_expensed_for_that_part_at_once() -> None:
    """4-year service from January; commission 4,800 paid on 15 July: half a year of 4 transferred, so
    1/8 is expensed by amortisation in July (600 for 7 months: 700), then 100 a month."""
    events = [_cost("commission", 4_800, on=date(2024, 7, 15))]
    lines = run_scenario(_consulting(4, 48_000, events)).contract_costs()

    assert lines[0].period == "2024-07"
    assert lines[0].amortisation == D(700)
    assert lines[1].amortisation == D(100)


def test_impairment_when_remaining_consideration_less_costs_to_provide_falls_below_carrying() -> None:
    """2-year service for 12,000 (500 a month); commission 2,400 (100 a month). June 2024: carrying 1,800;
    remaining consideration 9,000, costs still to provide 8,000 (estimated in June): recoverable 1,000, so
    an impairment of 800. July: 1,000 left over 18 months (55.56); the estimate runs down with the service,
    so July needs no further impairment. Nothing is reversed."""
    events = [
        _cost("commission", 2_400),
        CostsToProvideEstimate(id="est", contract_id="C", on=date(2024, 6, 15), amount=D(8_000)),
    ]
    lines = {line.period: line for line in run_scenario(_consulting(2, 12_000, events)).contract_costs()}

    assert lines["2024-06"].impairment == D(800)
    assert lines["2024-06"].closing_carrying_amount == D(1_000)
    assert lines["2024-07"].impairment == 0
    assert lines["2024-07"].amortisation == D("55.56")
    assert lines["2025-12"].closing_carrying_amount == 0
    total = sum(x.amortisation + x.impairment for x in lines.values())
    assert total == D(2_400)


def test_cost_recorded_after_its_period_closed_lands_in_the_first_open_period() -> None:
    events = [
        PeriodClose(id="close-jan", on=date(2024, 2, 5), period="2024-01"),
        _cost("commission", 2_400, recorded_on=date(2024, 2, 10)),
    ]
    lines = run_scenario(_consulting(2, 12_000, events)).contract_costs()

    assert lines[0].period == "2024-02"
    assert lines[0].amortisation == D(200)  # January's share caught up in February


def test_cost_related_only_to_time_and_materials_is_refused() -> None:
    tm = obligation("tm", None, RightToInvoicePattern(rate_per_hour=D(100)))
    scenario = Scenario(
        contracts=[contract("C", [tm], 0)], events=[_cost("commission", 100)], as_of=date(2024, 3, 1)
    )
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario).contract_costs()
    assert refused.value.field == "events[0].obligation_ids"


@FAST
@given(
    months=st.integers(min_value=13, max_value=48),
    commission_cents=st.integers(min_value=1, max_value=5_000_000),
    paid_on=st.integers(min_value=0, max_value=360),
    estimate=st.one_of(st.none(), st.integers(min_value=0, max_value=60_000)),
    estimated_on=st.integers(min_value=0, max_value=360),
)
def test_asset_is_used_up_exactly_and_never_negative(
    months: int, commission_cents: int, paid_on: int, estimate: int | None, estimated_on: int
) -> None:
    """Whatever the term, amount, timing and impairment: amortisation and impairment are never negative,
    the carrying amount never is, and they add up to the capitalised amount by the end of the service."""
    start = date(2024, 1, 1)
    end_year, end_month = divmod(months - 1, 12)
    end = date(2024 + end_year, end_month + 1, 28)
    service = ratable("s", 60_000, start, end)
    events: list[object] = [
        _cost("commission", Decimal(commission_cents) / 100, on=start + timedelta(days=paid_on))
    ]
    if estimate is not None:
        events.append(
            CostsToProvideEstimate(
                id="est", contract_id="C", on=start + timedelta(days=estimated_on), amount=D(estimate)
            )
        )
    scenario = Scenario(
        contracts=[contract("C", [service], 60_000)],
        events=events,  # type: ignore[arg-type]
        as_of=date(2024, 12, 31),
    )
    lines = run_scenario(scenario).contract_costs()

    assert all(x.amortisation >= 0 and x.impairment >= 0 and x.closing_carrying_amount >= 0 for x in lines)
    capitalised = sum(x.capitalised for x in lines)
    # expensed at once only under the one-year expedient (a commission paid late in a short contract)
    assert capitalised + sum(x.expensed for x in lines) == Decimal(commission_cents) / 100
    assert sum(x.amortisation + x.impairment for x in lines) == capitalised
    assert lines[-1].closing_carrying_amount == 0
