"""Material rights (IFRS 15.B39-B43, IE Example 49): an option at a discount is an obligation; its price is
recognised when it lapses, or with the goods bought when it is exercised, on their own schedule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    ExercisedOption,
    MaterialRightPattern,
    ModificationFacts,
    ModificationTreatment,
    PointInTimePattern,
    RevenueContract,
    Scenario,
    run_scenario,
)
from pssync.revenue.errors import RevenueRuleError

FAST = settings(max_examples=40, deadline=None)


def _example_49(expires_on: date | None = date(2024, 2, 15)) -> RevenueContract:
    """Product A for 100 with a 40 % voucher for purchases in the next 45 days; every customer gets 10 % off
    anyway, so the incremental discount is 30 %; an average purchase of 50 and an 80 % chance of use give
    the voucher an SSP of 50 x 30 % x 80 % = 12. 100 is allocated 100/112 and 12/112: 89.29 and 10.71."""
    return contract(
        "EX49",
        [
            obligation("A", 100, PointInTimePattern(satisfied_on=date(2024, 1, 1))),
            obligation("voucher", 12, MaterialRightPattern(expires_on=expires_on)),
        ],
        100,
    )


def _exercised(on: date, price: int | str, bought: list[object]) -> RevenueContract:
    return contract(
        "EX49",
        [obligation("A", 100, PointInTimePattern(satisfied_on=date(2024, 1, 1))), *bought],  # type: ignore[list-item]
        D(100) + D(price),
        version=2,
        effective=on,
        modification=ModificationFacts(
            exercised_option=ExercisedOption(right_id="voucher", obligation_ids=["B"])
        ),
    )


def test_example_49_allocation_and_revenue_when_the_voucher_lapses() -> None:
    result = run_scenario(Scenario(contracts=[_example_49()], as_of=date(2024, 3, 31)))

    assert {a.obligation_id: a.allocated for a in result.allocations()} == {
        "A": D("89.29"),
        "voucher": D("10.71"),
    }
    assert result.period_revenue("EX49", "A")["2024-01"] == D("89.29")
    assert result.period_revenue("EX49", "voucher")["2024-01"] == 0
    assert result.period_revenue("EX49", "voucher")["2024-02"] == D("10.71")


def test_example_49_voucher_exercised_its_price_goes_with_the_goods_bought() -> None:
    """20 January: the customer buys B (list price 50) with the voucher for 30, delivered 10 March. B
    earns 30 + 10.71 = 40.71 on delivery; nothing is recognised on the voucher itself; lifetime 130."""
    b = obligation("B", 50, PointInTimePattern(satisfied_on=date(2024, 3, 10)))
    scenario = Scenario(
        contracts=[_example_49(), _exercised(date(2024, 1, 20), 30, [b])], as_of=date(2024, 3, 31)
    )
    result = run_scenario(scenario)

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.OPTION_EXERCISED
    assert "B40" in modification.rationale
    assert sum(result.period_revenue("EX49", "voucher").values()) == 0
    assert result.period_revenue("EX49", "B")["2024-03"] == D("40.71")
    assert result.recognised_to_date("EX49") == D("130.00")


def test_renewal_option_exercised_is_recognised_over_the_renewed_service() -> None:
    """A year of support for 12,000 with an option to renew 2025 for 6,000 (SSP 12,000; half the customers
    are expected to renew: SSP of the right 6,000 x 50 % = 3,000). 12,000 splits 9,600 / 2,400. Renewed on
    15 December: 2025 support earns 6,000 + 2,400 = 8,400, 700 a month."""
    support = ratable("support-2024", 12_000, date(2024, 1, 1), date(2024, 12, 31))
    right = obligation("renewal", 3_000, MaterialRightPattern(expires_on=date(2024, 12, 31)))
    original = contract("REN", [support, right], 12_000)
    renewed = contract(
        "REN",
        [support, ratable("support-2025", 12_000, date(2025, 1, 1), date(2025, 12, 31))],
        18_000,
        version=2,
        effective=date(2024, 12, 15),
        modification=ModificationFacts(
            exercised_option=ExercisedOption(right_id="renewal", obligation_ids=["support-2025"])
        ),
    )
    result = run_scenario(Scenario(contracts=[original, renewed], as_of=date(2025, 12, 31)))

    assert result.period_revenue("REN", "support-2024")["2024-06"] == D(800)
    assert set(
        v for k, v in result.period_revenue("REN", "support-2025").items() if k.startswith("2025")
    ) == {D(700)}
    assert result.recognised_to_date("REN") == D(18_000)


def test_exercise_after_the_right_lapsed_is_refused() -> None:
    b = obligation("B", 50, PointInTimePattern(satisfied_on=date(2024, 3, 10)))
    scenario = Scenario(contracts=[_example_49(), _exercised(date(2024, 3, 1), 30, [b])])
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario)
    assert refused.value.field == "contracts[1].modification.exercised_option.right_id"


def test_exercise_must_add_exactly_the_goods_bought() -> None:
    b = obligation("B", 50, PointInTimePattern(satisfied_on=date(2024, 3, 10)))
    c = obligation("C", 50, PointInTimePattern(satisfied_on=date(2024, 3, 10)))
    scenario = Scenario(contracts=[_example_49(), _exercised(date(2024, 1, 20), 60, [b, c])])
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario)
    assert refused.value.field == "contracts[1].modification.exercised_option.obligation_ids"


def test_exercise_is_not_an_override() -> None:
    with pytest.raises(ValidationError, match="exercised_option"):
        ModificationFacts(override=ModificationTreatment.OPTION_EXERCISED, rationale="no")


@FAST
@given(
    exercised_on=st.one_of(st.none(), st.integers(min_value=1, max_value=44)),
    option_price=st.integers(min_value=0, max_value=10_000),
    right_ssp=st.integers(min_value=0, max_value=5_000),
)
def test_lifetime_revenue_is_what_the_customer_paid_exercised_or_not(
    exercised_on: int | None, option_price: int, right_ssp: int
) -> None:
    start = date(2024, 1, 1)
    original = contract(
        "M",
        [
            obligation("A", 10_000, PointInTimePattern(satisfied_on=start)),
            obligation("right", right_ssp, MaterialRightPattern(expires_on=start + timedelta(days=45))),
        ],
        10_000,
    )
    versions = [original]
    if exercised_on is not None:
        versions.append(
            contract(
                "M",
                [
                    obligation("A", 10_000, PointInTimePattern(satisfied_on=start)),
                    ratable("B", 1_000, date(2024, 3, 1), date(2024, 8, 31)),
                ],
                10_000 + option_price,
                version=2,
                effective=start + timedelta(days=exercised_on),
                modification=ModificationFacts(
                    exercised_option=ExercisedOption(right_id="right", obligation_ids=["B"])
                ),
            )
        )
    result = run_scenario(Scenario(contracts=versions, as_of=date(2024, 12, 31)))

    paid = D(10_000) + (D(option_price) if exercised_on is not None else 0)
    assert result.recognised_to_date("M") == paid
