"""Conformance with the IFRS 15 Illustrative Examples (converged with ASC 606), figures as in the standard."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from revenue_builders import D, contract, obligation, ratable, yearly

from pssync.revenue import (
    CostEntry,
    DiscountEvidence,
    InputCostPattern,
    Invoice,
    ModificationFacts,
    ModificationTreatment,
    ObligationSatisfied,
    Outcome,
    PointInTimePattern,
    RevenueRuleError,
    RightToInvoicePattern,
    Scenario,
    SspRange,
    TimeEntry,
    UnitsDelivered,
    UnitsPattern,
    VariableConsideration,
    run_scenario,
)
from pssync.revenue.allocation import AllocationRule, allocate, largest_remainder


def _example_7() -> Scenario:
    original = contract(
        "CLEAN",
        [ratable("cleaning", 300_000, date(2020, 1, 1), date(2022, 12, 31))],
        300_000,
        effective=date(2020, 1, 1),
    )
    amended = contract(
        "CLEAN",
        # Year-3 fee cut to 80,000 plus three more years for 200,000: lifetime 480,000. SSP of the four
        # remaining years at the modification: 4 x 80,000.
        [ratable("cleaning", 320_000, date(2020, 1, 1), date(2025, 12, 31))],
        480_000,
        version=2,
        effective=date(2022, 1, 1),
    )
    return Scenario(contracts=[original, amended], as_of=date(2025, 12, 31))


def test_example_7_services_modification_is_prospective_70k_a_year() -> None:
    result = run_scenario(_example_7())

    assert yearly(result, "CLEAN") == {
        2020: D("100000.00"),
        2021: D("100000.00"),
        2022: D("70000.00"),
        2023: D("70000.00"),
        2024: D("70000.00"),
        2025: D("70000.00"),
    }
    assert result.recognised_to_date("CLEAN") == D("480000.00")
    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.PROSPECTIVE
    assert modification.prospective_obligations == ["cleaning"]


def test_example_33_relative_ssp_allocation_sums_to_price() -> None:
    obligations = [
        obligation("A", 50, PointInTimePattern(satisfied_on=date(2024, 1, 1))),
        obligation("B", 25, PointInTimePattern(satisfied_on=date(2024, 1, 1))),
        obligation("C", 75, PointInTimePattern(satisfied_on=date(2024, 1, 1))),
    ]
    result = run_scenario(Scenario(contracts=[contract("EX33", obligations, 100)], as_of=date(2024, 1, 31)))

    assert {a.obligation_id: a.allocated for a in result.allocations()} == {
        "A": D("33.33"),
        "B": D("16.67"),
        "C": D("50.00"),
    }
    assert result.recognised_to_date("EX33") == D("100.00")


def _example_34(price: int, with_d: bool) -> Scenario:
    obligations = [
        obligation("A", 40, PointInTimePattern(satisfied_on=date(2024, 1, 5))),
        obligation("B", 55, PointInTimePattern(satisfied_on=date(2024, 1, 5))),
        obligation("C", 45, PointInTimePattern(satisfied_on=date(2024, 1, 5))),
    ]
    if with_d:
        obligations.append(
            obligation(
                "D",
                None,
                PointInTimePattern(satisfied_on=date(2024, 1, 5)),
                ssp_range=SspRange(low=D(15), high=D(45)),
            )
        )
    evidence = DiscountEvidence(
        obligation_ids=["B", "C"], bundle_price=D(60), evidence="B and C sold together for 60"
    )
    return Scenario(
        contracts=[contract("EX34", obligations, price, discount_evidence=evidence)], as_of=date(2024, 1, 31)
    )


def test_example_34_case_a_discount_allocated_to_b_and_c() -> None:
    result = run_scenario(_example_34(100, with_d=False))

    assert {a.obligation_id: a.allocated for a in result.allocations()} == {
        "A": D("40.00"),
        "B": D("33.00"),
        "C": D("27.00"),
    }


def test_example_34_case_b_residual_inside_observed_range() -> None:
    result = run_scenario(_example_34(130, with_d=True))

    allocated = {a.obligation_id: a.allocated for a in result.allocations()}
    assert allocated == {"A": D("40.00"), "B": D("33.00"), "C": D("27.00"), "D": D("30.00")}
    assert {a.method for a in result.allocations()} == {"residual (inception)"}


def test_example_34_case_c_residual_outside_range_is_refused_with_reason() -> None:
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(_example_34(105, with_d=True))

    assert refused.value.field == "contracts[0].obligations[3].ssp_range"
    assert (
        "residual 500 minor units for D is outside the observed SSP range 1500-4500" in refused.value.reason
    )


def test_example_42_remaining_performance_obligations_with_timing_bands() -> None:
    start, end = date(2024, 7, 1), date(2026, 6, 30)
    cleaning_by_hour = contract(
        "A", [obligation("hours", None, RightToInvoicePattern(rate_per_hour=D(25)))], 0, effective=start
    )
    fixed_monthly = contract("B", [ratable("service", 9_600, start, end)], 9_600, effective=start)
    with_bonus = contract(
        "C",
        [ratable("service", 3_150, start, end)],
        2_400,
        effective=start,
        variable_consideration=[
            VariableConsideration(
                id="bonus",
                method="expected_value",
                outcomes=[
                    Outcome(amount=D(1000), probability=D("0.75")),
                    Outcome(amount=D(0), probability=D("0.25")),
                ],
            )
        ],
    )
    hours = TimeEntry(id="t1", contract_id="A", obligation_id="hours", on=date(2024, 8, 1), hours=D(40))
    result = run_scenario(
        Scenario(
            contracts=[cleaning_by_hour, fixed_monthly, with_bonus], events=[hours], as_of=date(2024, 12, 31)
        )
    )

    rpo = {line.contract_id: line for line in result.rpo()}
    assert (rpo["B"].remaining, rpo["B"].within_12_months, rpo["B"].months_13_to_24) == (
        D("7200.00"),
        D("4800.00"),
        D("2400.00"),
    )
    assert (rpo["C"].remaining, rpo["C"].within_12_months, rpo["C"].months_13_to_24) == (
        D("2362.50"),
        D("1575.00"),
        D("787.50"),
    )
    assert "A" not in rpo  # right-to-invoice expedient: disclosure exemption
    assert result.recognised_to_date("A") == D("1000.00")  # 40 hours x 25
    assert result.allocated("C", "service") == D("3150.00")


def test_example_39_contract_asset_then_receivable() -> None:
    products = [
        obligation("A", 400, PointInTimePattern()),
        obligation("B", 600, PointInTimePattern()),
    ]
    events = [
        ObligationSatisfied(id="ship-a", contract_id="EX39", obligation_id="A", on=date(2024, 1, 15)),
        ObligationSatisfied(id="ship-b", contract_id="EX39", obligation_id="B", on=date(2024, 2, 10)),
        Invoice(id="inv-1", contract_id="EX39", on=date(2024, 2, 10), amount=D(1000)),
    ]
    result = run_scenario(
        Scenario(contracts=[contract("EX39", products, 1000)], events=events, as_of=date(2024, 2, 29))
    )

    journals = {
        j.period: {(line.account, line.debit, line.credit) for line in j.lines} for j in result.journals()
    }
    assert journals["2024-01"] == {
        ("contract_asset", D("400.00"), D("0.00")),
        ("revenue", D("0.00"), D("400.00")),
    }
    assert journals["2024-02"] == {
        ("receivable", D("1000.00"), D("0.00")),
        ("contract_asset", D("0.00"), D("400.00")),
        ("revenue", D("0.00"), D("600.00")),
    }
    february = next(j for j in result.journals() if j.period == "2024-02")
    assert set(february.causing_event_ids) == {"inv-1", "ship-b"}


def _example_8(modified: bool) -> Scenario:
    building = contract(
        "BUILD",
        [obligation("building", 1_000_000, InputCostPattern(estimate_at_completion=D(700_000)))],
        1_000_000,
        effective=date(2020, 1, 1),
        variable_consideration=[
            VariableConsideration(
                id="bonus",
                method="most_likely_amount",
                outcomes=[
                    Outcome(amount=D(200_000), probability=D("0.4")),
                    Outcome(amount=D(0), probability=D("0.6")),
                ],
            )
        ],
    )
    versions = [building]
    if modified:
        versions.append(
            contract(
                "BUILD",
                [obligation("building", 1_350_000, InputCostPattern(estimate_at_completion=D(820_000)))],
                1_150_000,
                version=2,
                effective=date(2021, 1, 1),
                variable_consideration=[
                    VariableConsideration(
                        id="bonus",
                        method="most_likely_amount",
                        outcomes=[
                            Outcome(amount=D(200_000), probability=D("0.8")),
                            Outcome(amount=D(0), probability=D("0.2")),
                        ],
                    )
                ],
            )
        )
    costs = [
        CostEntry(
            id="c1", contract_id="BUILD", obligation_id="building", on=date(2020, 6, 30), amount=D(200_000)
        ),
        CostEntry(
            id="c2", contract_id="BUILD", obligation_id="building", on=date(2020, 12, 31), amount=D(220_000)
        ),
    ]
    return Scenario(contracts=versions, events=costs, as_of=date(2021, 1, 31))


def test_example_8_cumulative_catch_up_on_cost_to_cost() -> None:
    before = run_scenario(_example_8(modified=False))
    assert yearly(before, "BUILD") == {2020: D("600000.00")}  # 420/700 = 60 %, bonus constrained out

    result = run_scenario(_example_8(modified=True))

    assert yearly(result, "BUILD") == {2020: D("600000.00"), 2021: D("91200.00")}
    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.CUMULATIVE_CATCH_UP
    assert modification.catch_up_amounts == {"building": D("91200.00")}  # 51.2 % x 1,350,000 - 600,000
    january = next(line for line in result.schedule() if line.period == "2021-01")
    assert "51.2 %" in january.inputs and january.contract_version == 2


def test_example_19_uninstalled_materials_recognised_at_cost() -> None:
    refurbishment = contract(
        "REFURB",
        [
            obligation(
                "building",
                5_000_000,
                InputCostPattern(
                    estimate_at_completion=D(4_000_000), uninstalled_materials_cost=D(1_500_000)
                ),
            )
        ],
        5_000_000,
    )
    events = [
        CostEntry(
            id="elevators",
            contract_id="REFURB",
            obligation_id="building",
            on=date(2024, 11, 20),
            amount=D(1_500_000),
            category="uninstalled_materials",
        ),
        CostEntry(
            id="labour",
            contract_id="REFURB",
            obligation_id="building",
            on=date(2024, 12, 15),
            amount=D(500_000),
        ),
        CostEntry(
            id="waste",
            contract_id="REFURB",
            obligation_id="building",
            on=date(2024, 12, 20),
            amount=D(40_000),
            category="excluded",
        ),
    ]
    result = run_scenario(Scenario(contracts=[refurbishment], events=events, as_of=date(2024, 12, 31)))

    # progress 500 / (4,000 - 1,500) = 20 %; revenue 20 % x 3,500,000 + 1,500,000 at cost
    assert result.recognised_to_date("REFURB") == D("2200000.00")


def _example_5(price_increase: int, added_as_new_obligation: bool) -> Scenario:
    original = contract("GOODS", [obligation("products", 12_000, UnitsPattern(total_units=D(120)))], 12_000)
    if added_as_new_obligation:
        amended = contract(
            "GOODS",
            [
                obligation("products", 12_000, UnitsPattern(total_units=D(120))),
                obligation("more", 2_850, UnitsPattern(total_units=D(30))),
            ],
            12_000 + price_increase,
            version=2,
            effective=date(2024, 3, 1),
        )
    else:
        amended = contract(
            "GOODS",
            [obligation("products", 9_000, UnitsPattern(total_units=D(150)))],
            12_000 + price_increase,
            version=2,
            effective=date(2024, 3, 1),
        )
    deliveries = [
        UnitsDelivered(
            id="d1", contract_id="GOODS", obligation_id="products", on=date(2024, 2, 15), units=D(60)
        ),
        UnitsDelivered(
            id="d2", contract_id="GOODS", obligation_id="products", on=date(2024, 3, 15), units=D(30)
        ),
    ]
    if added_as_new_obligation:
        deliveries.append(
            UnitsDelivered(
                id="d3", contract_id="GOODS", obligation_id="more", on=date(2024, 3, 20), units=D(30)
            )
        )
    return Scenario(contracts=[original, amended], events=deliveries, as_of=date(2024, 3, 31))


def test_example_5_case_a_added_products_at_ssp_are_a_separate_contract() -> None:
    result = run_scenario(_example_5(2_850, added_as_new_obligation=True))

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.SEPARATE_CONTRACT
    march = result.period_revenue("GOODS")["2024-03"]
    assert march == D("3000.00") + D("2850.00")  # 30 original units at 100, 30 new at 95


def test_example_5_case_b_not_at_ssp_is_prospective_blended_price() -> None:
    result = run_scenario(_example_5(2_400, added_as_new_obligation=False))

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.PROSPECTIVE
    # Remaining 60 + 30 units share (12,000 - 6,000 + 2,400) = 8,400: 93.33 each; 30 delivered in March.
    assert result.period_revenue("GOODS")["2024-03"] == D("2800.00")


def test_modification_override_records_rationale() -> None:
    scenario = _example_7()
    facts = ModificationFacts(
        override=ModificationTreatment.CUMULATIVE_CATCH_UP, rationale="auditor agreed memo 12"
    )
    amended = scenario.contracts[1].model_copy(update={"modification": facts})
    result = run_scenario(scenario.model_copy(update={"contracts": [scenario.contracts[0], amended]}))

    [modification] = result.modifications()
    assert modification.overridden and modification.rationale == "auditor agreed memo 12"
    # Catch-up: 2/6 of 480,000 = 160,000 is due by end of year 2; 200,000 was recognised: -40,000 in Jan 2022.
    assert modification.catch_up_amounts == {"cleaning": D("-40000.00")}
    assert result.recognised_to_date("CLEAN") == D("480000.00")


def test_largest_remainder_tie_break_is_by_obligation_order() -> None:
    assert largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    assert largest_remainder(-100, [1, 1, 1]) == [-33, -33, -34]
    rule = AllocationRule(
        obligation_ids=("x", "y"),
        ssp=(1, 1),
        ssp_range=(None, None),
        override={"x": 70, "y": 20},
        override_reason="board decision",
    )
    with pytest.raises(RevenueRuleError, match="sums to 90 minor units but the price is 100"):
        allocate(rule, 100)


def test_variable_consideration_allocated_to_one_obligation() -> None:
    # IFRS 15 Example 35 style: the variable fee relates only to licence Y.
    licences = [
        obligation("X", 800, PointInTimePattern(satisfied_on=date(2024, 1, 10))),
        obligation("Y", 1_000, PointInTimePattern(satisfied_on=date(2024, 2, 10))),
    ]
    vc = VariableConsideration(
        id="usage",
        method="most_likely_amount",
        outcomes=[Outcome(amount=D(1000), probability=D(1))],
        allocate_to=["Y"],
        sole_consideration_of_targets=True,
    )
    result = run_scenario(
        Scenario(
            contracts=[contract("EX35", licences, 800, variable_consideration=[vc])], as_of=date(2024, 2, 29)
        )
    )

    assert result.period_revenue("EX35", "X")["2024-01"] == D("800.00")
    assert result.period_revenue("EX35", "Y")["2024-02"] == D("1000.00")


def test_total_recognised_equals_price_for_example_42_contract_c() -> None:
    result = run_scenario(
        Scenario(
            contracts=[
                contract(
                    "C",
                    [ratable("s", 3150, date(2024, 7, 1), date(2026, 6, 30))],
                    3150,
                    effective=date(2024, 7, 1),
                )
            ],
            as_of=date(2026, 6, 30),
        )
    )
    assert sum(result.period_revenue("C").values(), Decimal(0)) == D("3150.00")
    assert set(result.period_revenue("C").values()) == {D("131.25")}


def test_mixed_modification_catch_up_on_implementation_prospective_on_service() -> None:
    original = contract(
        "MIX",
        [
            obligation("impl", 60_000, InputCostPattern(estimate_at_completion=D(40_000))),
            ratable("service", 40_000, date(2024, 1, 1), date(2024, 12, 31)),
        ],
        100_000,
    )
    amended = contract(
        "MIX",
        [
            obligation(
                "impl", 80_000, InputCostPattern(estimate_at_completion=D(50_000))
            ),  # whole obligation
            ratable("service", 40_000, date(2024, 1, 1), date(2025, 3, 31)),  # the 12 remaining months
        ],
        130_000,
        version=2,
        effective=date(2024, 4, 1),
    )
    costs = [
        CostEntry(id="c1", contract_id="MIX", obligation_id="impl", on=date(2024, 3, 31), amount=D(20_000))
    ]
    result = run_scenario(Scenario(contracts=[original, amended], events=costs, as_of=date(2024, 4, 30)))

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.MIXED
    assert (modification.prospective_obligations, modification.catch_up_obligations) == (
        ["service"],
        ["impl"],
    )
    # Pool: 130,000 - 10,000 recognised on the service's transferred months = 120,000, split 80,000 / 40,000.
    # impl: 20,000 / 50,000 = 40 % of 80,000 = 32,000 against 30,000 recognised: +2,000 catch-up in April.
    assert modification.catch_up_amounts == {"impl": D("2000.00")}
    assert result.period_revenue("MIX", "impl")["2024-04"] == D("2000.00")
    assert result.period_revenue("MIX", "service")["2024-04"] == D("3333.33")  # 40,000 over 12 months
    assert sum(result.period_revenue("MIX", "service").values(), Decimal(0)) == D("50000.00")
