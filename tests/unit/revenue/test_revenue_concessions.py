"""Concessions for goods or services already transferred: revenue falls on the modification date; the price of
what remains is the price before the credit. IFRS 15 IE Example 5 case B is the conformance case."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    ModificationFacts,
    ModificationTreatment,
    PointInTimePattern,
    Scenario,
    UnitsDelivered,
    UnitsPattern,
    run_scenario,
)
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import Concession

FAST = settings(max_examples=40, deadline=None)


def _delivery(event_id: str, on: date, units: int, obligation_id: str = "products") -> UnitsDelivered:
    return UnitsDelivered(
        id=event_id, contract_id="GOODS", obligation_id=obligation_id, on=on, units=D(units)
    )


def _example_5_case_b(concession: Concession | None) -> Scenario:
    """120 products for 12,000 (100 each); 60 delivered by February. 1 March: 30 more products for 80 each
    (2,400, below their SSP of 95) less a credit of 15 on each of the 60 defective products delivered (900):
    the contract price rises by 1,500. The remaining 90 products are distinct from the 60 transferred, so
    the modification is a termination and a new contract (15.21(a))."""
    original = contract("GOODS", [obligation("products", 12_000, UnitsPattern(total_units=D(120)))], 12_000)
    amended = contract(
        "GOODS",
        [obligation("products", 9_000, UnitsPattern(total_units=D(150)))],
        13_500,
        version=2,
        effective=date(2024, 3, 1),
        modification=ModificationFacts(concession=concession),
    )
    deliveries = [
        _delivery("d1", date(2024, 2, 15), 60),
        _delivery("d2", date(2024, 3, 15), 30),
        _delivery("d3", date(2024, 4, 15), 60),
    ]
    return Scenario(contracts=[original, amended], events=deliveries, as_of=date(2024, 4, 30))


DEFECT_CREDIT = Concession(amount=D(900), reason="15 per unit for minor defects in the first 60 products")


def test_example_5_case_b_credit_reduces_revenue_at_the_modification_and_remaining_units_earn_93_33() -> None:
    """IE22-23: the 900 reduces revenue when the modification is agreed; each remaining product earns the
    blended (100 x 60 + 80 x 30) / 90 = 93.33, so 30 products in March earn 2,800 and March shows
    2,800 - 900 = 1,900; lifetime revenue is 13,500."""
    result = run_scenario(_example_5_case_b(DEFECT_CREDIT))

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.PROSPECTIVE
    assert modification.concession_amounts == {"products": D("900.00")}
    revenue = result.period_revenue("GOODS")
    assert revenue["2024-02"] == D("6000.00")  # never reaches back
    assert revenue["2024-03"] == D("1900.00")
    assert revenue["2024-04"] == D("5600.00")  # 60 x 93.33...
    assert result.recognised_to_date("GOODS") == D("13500.00")


def test_without_the_concession_the_credit_lowers_the_price_of_the_remaining_units() -> None:
    """The same amendment without the concession stated: the remaining 90 share 7,500 (83.33 each) and
    nothing is taken from the 60 delivered. The difference is only when revenue falls, never its total."""
    result = run_scenario(_example_5_case_b(None))

    revenue = result.period_revenue("GOODS")
    assert revenue["2024-03"] == D("2500.00")
    assert result.recognised_to_date("GOODS") == D("13500.00")


def test_credit_counts_toward_the_ssp_test_so_added_goods_at_ssp_stay_a_separate_contract() -> None:
    """30 added products at their SSP (2,850) less a 900 credit: the price rose by 1,950, but the added
    goods are priced at SSP; the separate contract earns 2,850 and the credit reduces the original 60."""
    original = contract("GOODS", [obligation("products", 12_000, UnitsPattern(total_units=D(120)))], 12_000)
    amended = contract(
        "GOODS",
        [
            obligation("products", 12_000, UnitsPattern(total_units=D(120))),
            obligation("more", 2_850, UnitsPattern(total_units=D(30))),
        ],
        13_950,
        version=2,
        effective=date(2024, 3, 1),
        modification=ModificationFacts(concession=DEFECT_CREDIT),
    )
    events = [
        _delivery("d1", date(2024, 2, 15), 60),
        _delivery("d2", date(2024, 3, 20), 30, "more"),
    ]
    result = run_scenario(Scenario(contracts=[original, amended], events=events, as_of=date(2024, 3, 31)))

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.SEPARATE_CONTRACT
    assert result.period_revenue("GOODS", "more")["2024-03"] == D("2850.00")
    assert result.period_revenue("GOODS", "products")["2024-03"] == D("-900.00")
    assert result.allocated("GOODS", "products") == D("11100.00")  # 12,000 less the credit


def test_credit_split_by_revenue_recognised_on_the_named_obligations() -> None:
    """Two delivered reports (recognised 600 / 200) and a credit of 100 for both: 75 / 25."""
    reports = [
        obligation("a", 600, PointInTimePattern(satisfied_on=date(2024, 1, 10))),
        obligation("b", 200, PointInTimePattern(satisfied_on=date(2024, 1, 20))),
        ratable("support", 200, date(2024, 1, 1), date(2024, 12, 31)),
    ]
    original = contract("R", reports, 1000)
    credit = Concession(amount=D(100), obligation_ids=["a", "b"], reason="late reports")
    amended = contract(
        "R",
        reports,
        900,
        version=2,
        effective=date(2024, 7, 1),
        modification=ModificationFacts(concession=credit),
    )
    result = run_scenario(Scenario(contracts=[original, amended], as_of=date(2024, 12, 31)))

    assert result.period_revenue("R", "a")["2024-07"] == D("-75.00")
    assert result.period_revenue("R", "b")["2024-07"] == D("-25.00")
    assert sum(result.period_revenue("R", "support").values()) == D("200.00")  # untouched
    assert result.recognised_to_date("R") == D("900.00")


def test_credit_above_the_revenue_recognised_is_refused_naming_the_field() -> None:
    scenario = _example_5_case_b(Concession(amount=D(6000.01), reason="too much"))

    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario)
    assert refused.value.field == "contracts[1].modification.concession.amount"


def test_credit_naming_an_added_obligation_is_refused() -> None:
    scenario = _example_5_case_b(
        Concession(amount=D(10), obligation_ids=["unknown"], reason="not transferred")
    )

    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario)
    assert refused.value.field == "contracts[1].modification.concession.obligation_ids"


def test_credit_on_the_first_version_is_refused() -> None:
    first = contract(
        "GOODS",
        [obligation("products", 100, UnitsPattern(total_units=D(1)))],
        100,
        modification=ModificationFacts(concession=Concession(amount=D(1), reason="nothing yet")),
    )
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(Scenario(contracts=[first], as_of=date(2024, 2, 1)))
    assert refused.value.field == "contracts[0].modification.concession"


@FAST
@given(
    credit_cents=st.integers(min_value=1, max_value=600_000),
    delivered=st.integers(min_value=1, max_value=119),
    modified_on=st.integers(min_value=0, max_value=60),
)
def test_lifetime_revenue_is_the_final_price_and_the_credit_lands_on_the_modification_date(
    credit_cents: int, delivered: int, modified_on: int
) -> None:
    """Whatever the credit (up to the revenue recognised) and timing: lifetime revenue = the amended price,
    and the period of the modification loses exactly the credit before any later delivery."""
    start = date(2024, 1, 1)
    original = contract("G", [obligation("p", 12_000, UnitsPattern(total_units=D(120)))], 12_000)
    first = UnitsDelivered(id="d1", contract_id="G", obligation_id="p", on=start, units=D(delivered))
    # progress is rounded to 0.1 % by the default policy: the cap is what was actually recognised
    recognised_before = run_scenario(
        Scenario(contracts=[original], events=[first], as_of=date(2024, 2, 28))
    ).recognised_to_date("G")
    credit = min(Decimal(credit_cents) / 100, recognised_before)
    amended = contract(
        "G",
        [obligation("p", 12_000, UnitsPattern(total_units=D(120)))],
        12_000 - credit,
        version=2,
        effective=date(2024, 3, 1) + timedelta(days=modified_on),
        modification=ModificationFacts(concession=Concession(amount=credit, reason="defects")),
    )
    events = [
        first,
        UnitsDelivered(
            id="d2", contract_id="G", obligation_id="p", on=date(2024, 9, 1), units=D(120 - delivered)
        ),
    ]
    result = run_scenario(Scenario(contracts=[original, amended], events=events, as_of=date(2024, 12, 31)))

    assert result.recognised_to_date("G") == D(12_000) - credit
    modified_period = (date(2024, 3, 1) + timedelta(days=modified_on)).strftime("%Y-%m")
    assert result.period_revenue("G")[modified_period] == -credit
