"""IFRS 15.87-90 / ASC 606-10-32-42..45: a change in the transaction price after a modification.

IFRS 15 IE Example 6 is the conformance case; the other tests pin the limits of 15.90(a) (only variable
consideration promised before a modification accounted for under 15.21(a)) and the invariant that the
split never creates or loses consideration.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation

from pssync.revenue import (
    ModificationFacts,
    ModificationTreatment,
    Outcome,
    PointInTimePattern,
    RatablePattern,
    Scenario,
    VariableConsideration,
    VariableConsiderationEstimate,
    run_scenario,
)

FAST = settings(max_examples=40, deadline=None)


def _bonus(estimate: str) -> VariableConsideration:
    return VariableConsideration(
        id="bonus",
        method="expected_value",
        outcomes=[Outcome(amount=D(estimate), probability=D(1))],
    )


def _example_6(*, override: ModificationTreatment | None = None) -> Scenario:
    """IFRS 15 IE Example 6. 1 July 20X0 (here 2024): products X and Y for a fixed 1,000 plus variable
    consideration estimated at 200; equal SSPs, so 600 each; X transfers at inception. 30 November: product
    Z added for 300, not its SSP; Y and Z are distinct from X, so 15.21(a): Y and Z share 600 + 300 = 900,
    450 each. 31 March 20X1: the variable amount is re-estimated at 240. 15.90(a): the 40 goes to X and Y
    on the inception basis (20 each); X's 20 is revenue at once, Y's 20 goes to the modified contract
    (10 each to Y and Z: 460 each). Y and Z transfer afterwards (dates chosen for the test)."""
    x = obligation("X", 600, PointInTimePattern(satisfied_on=date(2024, 7, 1)))
    y = obligation("Y", 600, PointInTimePattern(satisfied_on=date(2025, 4, 30)))
    z = obligation("Z", 600, PointInTimePattern(satisfied_on=date(2025, 6, 30)))
    original = contract(
        "EX6", [x, y], 1000, effective=date(2024, 7, 1), variable_consideration=[_bonus("200")]
    )
    facts = ModificationFacts(override=override, rationale="stated" if override else None)
    amended = contract(
        "EX6",
        [x, y, z],
        1300,
        version=2,
        effective=date(2024, 11, 30),
        variable_consideration=[_bonus("200")],
        modification=facts,
    )
    re_estimate = VariableConsiderationEstimate(
        id="bonus-240",
        contract_id="EX6",
        vc_id="bonus",
        on=date(2025, 3, 31),
        outcomes=[Outcome(amount=D(240), probability=D(1))],
    )
    return Scenario(contracts=[original, amended], events=[re_estimate], as_of=date(2025, 12, 31))


def test_example_6_change_after_modification_goes_first_to_the_pre_modification_obligations() -> None:
    result = run_scenario(_example_6())

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.PROSPECTIVE
    x = result.period_revenue("EX6", "X")
    assert x["2024-07"] == D("600.00")
    assert x["2025-03"] == D("20.00")  # X's share of the change, recognised when the change occurs
    assert sum(x.values()) == D("620.00")
    assert result.period_revenue("EX6", "Y")["2025-04"] == D("460.00")
    assert result.period_revenue("EX6", "Z")["2025-06"] == D("460.00")
    assert result.recognised_to_date("EX6") == D("1540.00")  # 1,000 + 240 + 300


def test_example_6_allocation_of_the_modified_contract_before_and_after_the_change() -> None:
    scenario = _example_6()
    before = run_scenario(scenario, as_of=date(2025, 3, 30))
    after = run_scenario(scenario, as_of=date(2025, 3, 31))

    assert before.allocated("EX6", "Y") == D("450.00")
    assert before.allocated("EX6", "Z") == D("450.00")
    assert after.allocated("EX6", "Y") == D("460.00")
    assert after.allocated("EX6", "Z") == D("460.00")
    assert after.allocated("EX6", "X") == D("620.00")


def test_catch_up_modification_sends_the_whole_change_to_the_modified_contract_15_90_b() -> None:
    """The same facts accounted for by cumulative catch-up (stated): 15.90(a) does not apply, so the 40
    goes to the obligations of the modified contract (Y and Z, 20 each); X keeps 600."""
    result = run_scenario(_example_6(override=ModificationTreatment.CUMULATIVE_CATCH_UP))

    assert sum(result.period_revenue("EX6", "X").values()) == D("600.00")
    assert sum(result.period_revenue("EX6", "Y").values()) + sum(
        result.period_revenue("EX6", "Z").values()
    ) == D("940.00")
    assert result.recognised_to_date("EX6") == D("1540.00")


def test_variable_amount_added_by_the_modification_goes_to_the_modified_contract_only() -> None:
    """A variable amount first promised in the modification is not 'promised before' it: its re-estimate
    goes to Y and Z only (15.90(b) for that amount), X keeps 600."""
    scenario = _example_6()
    extra = VariableConsideration(
        id="speed", method="expected_value", outcomes=[Outcome(amount=D(0), probability=D(1))]
    )
    amended = scenario.contracts[1].model_copy(update={"variable_consideration": [_bonus("200"), extra]})
    speed = VariableConsiderationEstimate(
        id="speed-100",
        contract_id="EX6",
        vc_id="speed",
        on=date(2025, 2, 1),
        outcomes=[Outcome(amount=D(100), probability=D(1))],
    )
    result = run_scenario(
        scenario.model_copy(
            update={"contracts": [scenario.contracts[0], amended], "events": [*scenario.events, speed]}
        )
    )

    assert sum(result.period_revenue("EX6", "X").values()) == D("620.00")  # bonus share only
    assert result.allocated("EX6", "Y") == D("510.00")  # 450 + 10 (bonus) + 50 (speed)
    assert result.recognised_to_date("EX6") == D("1640.00")


@FAST
@given(
    first=st.integers(min_value=0, max_value=400),
    second=st.integers(min_value=0, max_value=400),
    x_share=st.integers(min_value=1, max_value=900),
    modified_on=st.integers(min_value=30, max_value=300),
    re_estimated_on=st.integers(min_value=1, max_value=500),
)
def test_lifetime_revenue_is_the_final_price_and_satisfied_obligations_move_only_by_their_share(
    first: int, second: int, x_share: int, modified_on: int, re_estimated_on: int
) -> None:
    """Whatever the SSPs, dates and estimates: lifetime revenue = fixed + final estimate, and the satisfied
    obligation X moves after the modification by exactly its inception-basis share of the change."""
    start = date(2024, 1, 1)
    x = obligation("X", x_share, PointInTimePattern(satisfied_on=start))
    y = obligation("Y", 1000 - x_share, RatablePattern(start=start, end=date(2025, 12, 31)))
    z = obligation("Z", 500, RatablePattern(start=start, end=date(2025, 12, 31)))
    original = contract("P", [x, y], 1000, effective=start, variable_consideration=[_bonus(str(first))])
    amended = contract(
        "P",
        [x, y, z],
        1100,
        version=2,
        effective=start + timedelta(days=modified_on),
        variable_consideration=[_bonus(str(first))],
    )
    change = VariableConsiderationEstimate(
        id="re",
        contract_id="P",
        vc_id="bonus",
        on=start + timedelta(days=re_estimated_on),
        outcomes=[Outcome(amount=D(second), probability=D(1))],
    )
    result = run_scenario(Scenario(contracts=[original, amended], events=[change], as_of=date(2026, 6, 30)))

    assert result.recognised_to_date("P") == Decimal(1100 + second)
    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.PROSPECTIVE
    if re_estimated_on >= modified_on:  # a change after the modification: X takes its share at once
        x_total = sum(result.period_revenue("P", "X").values())
        share_now = D(x_share) * (1000 + second) / 1000
        share_then = D(x_share) * (1000 + first) / 1000
        # Each figure is rounded to the cent once, so the difference is within a cent of the exact share.
        assert abs(x_total - D(x_share) * (1000 + first) / 1000 - (share_now - share_then)) <= D("0.01")
