"""Recognition patterns, variable consideration re-estimates, period close, 4-4-5, FX and entities."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from revenue_builders import D, contract, obligation, ratable

from pssync.money import RoundingPolicy
from pssync.revenue import (
    CalendarSpec,
    CostEntry,
    EstimateRevision,
    FxPolicy,
    FxRate,
    InputCostPattern,
    InputHoursPattern,
    Invoice,
    Milestone,
    MilestonePattern,
    MilestoneReached,
    Outcome,
    Payment,
    PeriodClose,
    PointInTimePattern,
    ProgressReport,
    ProgressRounding,
    RightToInvoicePattern,
    Scenario,
    SurveyedProgressPattern,
    TimeEntry,
    VariableConsideration,
    VariableConsiderationEstimate,
    run_scenario,
    schedule_for,
)


def test_ratable_daily_splits_by_days_and_sums_exactly() -> None:
    result = schedule_for(
        contract("D", [ratable("s", 1000, date(2024, 1, 1), date(2024, 3, 31), "daily")], 1000)
    )

    amounts = result.period_revenue("D")
    # 91 days: 31 / 29 / 31 of 1,000.00, cumulative figures rounded once each
    assert [amounts["2024-01"], amounts["2024-02"], amounts["2024-03"]] == [
        D("340.66"),
        D("318.68"),
        D("340.66"),
    ]
    assert sum(amounts.values(), Decimal(0)) == D("1000.00")


def test_ratable_by_period_prorates_partial_first_and_last_periods() -> None:
    result = schedule_for(contract("P", [ratable("s", 300, date(2024, 1, 16), date(2024, 4, 15))], 300))

    amounts = {k: v for k, v in result.period_revenue("P").items() if v}
    # Jan 16/31, Feb 1, Mar 1, Apr 15/30 of a period: 3.0161 units in total
    assert amounts == {
        "2024-01": D("51.34"),
        "2024-02": D("99.46"),
        "2024-03": D("99.47"),
        "2024-04": D("49.73"),
    }


def test_four_four_five_calendar_periods_and_ratable_by_period() -> None:
    calendar = CalendarSpec(kind="4-4-5", fiscal_year_start=date(2023, 12, 31))
    start, end = date(2023, 12, 31), date(2024, 12, 28)  # exactly one 52-week fiscal year
    result = schedule_for(
        contract("F", [ratable("s", 1200, start, end)], 1200, effective=start), calendar=calendar
    )

    periods = result.periods
    assert [(p.key, p.days) for p in periods[:3]] == [
        ("FY2024-P01", 28),
        ("FY2024-P02", 28),
        ("FY2024-P03", 35),
    ]
    assert set(result.period_revenue("F").values()) == {D("100.00")}


def test_input_hours_with_re_estimate_and_progress_rounding_policy() -> None:
    consulting = contract(
        "H", [obligation("impl", 10_000, InputHoursPattern(estimated_total_hours=D(300)))], 10_000
    )
    events = [
        TimeEntry(id="t1", contract_id="H", obligation_id="impl", on=date(2024, 1, 20), hours=D(100)),
        EstimateRevision(
            id="e1", contract_id="H", obligation_id="impl", on=date(2024, 2, 1), estimated_total_hours=D(400)
        ),
        TimeEntry(id="t2", contract_id="H", obligation_id="impl", on=date(2024, 2, 20), hours=D(50)),
    ]
    result = run_scenario(Scenario(contracts=[consulting], events=events, as_of=date(2024, 2, 29)))
    amounts = result.period_revenue("H")
    assert amounts["2024-01"] == D("3330.00")  # 100/300 = 33.3 % (0.1 % policy)
    assert amounts["2024-02"] == D("420.00")  # 150/400 = 37.5 % -> 3,750 cumulative

    exact = run_scenario(
        Scenario(
            contracts=[consulting],
            events=events,
            as_of=date(2024, 2, 29),
            progress_rounding=ProgressRounding(round_to_percent_decimals=None, mode=RoundingPolicy.HALF_UP),
        )
    )
    assert exact.period_revenue("H")["2024-01"] == D("3333.33")
    line = next(x for x in result.schedule() if x.period == "2024-02")
    assert (line.causing_event_id, line.inputs) == ("t2", "hours 150 / 400 -> 37.5 %")


def test_milestones_and_surveyed_progress() -> None:
    milestones = MilestonePattern(
        milestones=[Milestone(id="design", weight=D(1)), Milestone(id="go-live", weight=D(3))]
    )
    deal = contract(
        "M",
        [obligation("delivery", 4000, milestones), obligation("survey", 1000, SurveyedProgressPattern())],
        5000,
    )
    events = [
        MilestoneReached(
            id="m1", contract_id="M", obligation_id="delivery", on=date(2024, 2, 3), milestone_id="design"
        ),
        ProgressReport(
            id="p1", contract_id="M", obligation_id="survey", on=date(2024, 2, 28), percent_complete=D(40)
        ),
    ]
    result = run_scenario(Scenario(contracts=[deal], events=events, as_of=date(2024, 3, 31)))

    assert result.recognised_to_date("M", "delivery") == D("1000.00")
    assert result.recognised_to_date("M", "survey") == D("400.00")
    rpo = {line.obligation_id: line for line in result.rpo()}
    assert rpo["delivery"].timing_not_scheduled == D("3000.00")  # future milestones are not dated


def test_a_milestone_recognises_exactly_its_contractual_share() -> None:
    """Three equal milestones of 240,000: the first is one third, not 33.3 % (which would be 79,920.00)."""
    thirds = MilestonePattern(milestones=[Milestone(id=m, weight=D(80000)) for m in ("m1", "m2", "m3")])
    deal = contract("E", [obligation("impl", 240000, thirds)], 240000)
    reached = MilestoneReached(
        id="r1", contract_id="E", obligation_id="impl", on=date(2024, 2, 3), milestone_id="m1"
    )
    result = run_scenario(Scenario(contracts=[deal], events=[reached], as_of=date(2024, 2, 29)))

    assert result.period_revenue("E")["2024-02"] == D("80000.00")


def test_time_and_materials_right_to_invoice() -> None:
    deal = contract("TM", [obligation("support", None, RightToInvoicePattern(rate_per_hour=D("150.50")))], 0)
    events = [
        TimeEntry(id="t1", contract_id="TM", obligation_id="support", on=date(2024, 1, 9), hours=D("7.5")),
        TimeEntry(id="t2", contract_id="TM", obligation_id="support", on=date(2024, 2, 9), hours=D(2)),
    ]
    result = run_scenario(Scenario(contracts=[deal], events=events, as_of=date(2024, 2, 29)))

    assert result.period_revenue("TM")["2024-01"] == D("1128.75")
    assert result.period_revenue("TM")["2024-02"] == D("301.00")


def _vc_scenario(estimate_events: list[VariableConsiderationEstimate]) -> Scenario:
    deal = contract(
        "VC",
        [
            obligation("licence", 600, PointInTimePattern(satisfied_on=date(2024, 1, 1))),
            ratable("support", 400, date(2024, 1, 1), date(2024, 12, 31)),
        ],
        800,
        variable_consideration=[
            VariableConsideration(
                id="bonus",
                method="expected_value",
                outcomes=[
                    Outcome(amount=D(200), probability=D("0.5")),
                    Outcome(amount=D(0), probability=D("0.5")),
                ],
                constraint_min_probability=D("0.9"),
            )
        ],
    )
    return Scenario(contracts=[deal], events=estimate_events, as_of=date(2024, 12, 31))


def test_variable_consideration_constraint_and_re_estimate_on_inception_basis() -> None:
    constrained = run_scenario(_vc_scenario([]))
    assert constrained.allocated("VC", "licence") == D("480.00")  # bonus fully constrained: 800 x 600/1000

    resolved = VariableConsiderationEstimate(
        id="won",
        contract_id="VC",
        vc_id="bonus",
        on=date(2024, 7, 10),
        outcomes=[Outcome(amount=D(200), probability=D(1))],
    )
    result = run_scenario(_vc_scenario([resolved]))

    # 200 more allocated 60/40: the satisfied licence takes its 120 at once in July.
    assert result.period_revenue("VC", "licence")["2024-07"] == D("120.00")
    assert result.period_revenue("VC", "support")["2024-07"] == D("33.33") + D("40.00")  # month + 6/12 of 80
    assert result.recognised_to_date("VC") == D("1000.00")


def test_closed_period_is_never_rewritten_and_late_cost_lands_as_adjustment() -> None:
    project = contract(
        "PC", [obligation("build", 10_000, InputCostPattern(estimate_at_completion=D(1000)))], 10_000
    )
    on_time = CostEntry(id="c1", contract_id="PC", obligation_id="build", on=date(2024, 1, 20), amount=D(100))
    late = CostEntry(
        id="c2",
        contract_id="PC",
        obligation_id="build",
        on=date(2024, 1, 25),
        amount=D(200),
        recorded_on=date(2024, 2, 10),
    )
    close = PeriodClose(id="close-jan", on=date(2024, 2, 5), period="2024-01")
    result = run_scenario(
        Scenario(contracts=[project], events=[on_time, late, close], as_of=date(2024, 2, 29))
    )

    january, february = (next(x for x in result.schedule() if x.period == p) for p in ("2024-01", "2024-02"))
    assert (january.status, january.amount) == ("closed", D("1000.00"))  # as closed: 10 %
    assert (february.status, february.own_amount, february.adjustment) == ("open", D("0.00"), D("2000.00"))
    assert result.recognised_to_date("PC") == D("3000.00")


def test_fx_functional_currency_and_entities() -> None:
    eu = contract(
        "EU1",
        [ratable("s", 1200, date(2024, 1, 1), date(2024, 12, 31))],
        1200,
        currency="EUR",
        legal_entity="LE-FR",
    )
    us = contract("US1", [ratable("s", 600, date(2024, 1, 1), date(2024, 6, 30))], 600, legal_entity="LE-US")
    events = [
        Invoice(id="i1", contract_id="EU1", on=date(2024, 1, 2), amount=D(1200)),
        Payment(id="p1", contract_id="EU1", on=date(2024, 1, 30), amount=D(1200)),
    ]
    scenario = Scenario(
        contracts=[eu, us],
        events=events,
        as_of=date(2024, 2, 29),
        functional_currency={"LE-FR": "USD", "LE-US": "USD"},
        fx_rates=[
            FxRate(base="EUR", quote="USD", on=date(2024, 1, 1), rate=D("1.10")),
            FxRate(base="EUR", quote="USD", on=date(2024, 1, 31), rate=D("1.20")),
            FxRate(base="EUR", quote="USD", on=date(2024, 2, 15), rate=D("1.30")),
        ],
        fx_policy=FxPolicy.PERIOD_AVERAGE,
    )
    result = run_scenario(scenario)

    lines = {(x.contract_id, x.period): x for x in result.schedule()}
    assert lines[("EU1", "2024-01")].functional_amount == D("115.00")  # 100 EUR at the average 1.15
    assert lines[("EU1", "2024-02")].functional_amount == D("130.00")
    totals = {(t.legal_entity, t.period): t.revenue for t in result.entity_totals()}
    assert totals[("LE-FR", "2024-01")] == D("115.00") and totals[("LE-US", "2024-01")] == D("100.00")
    january = next(j for j in result.journals() if j.contract_id == "EU1" and j.period == "2024-01")
    debits = sum((line.debit for line in january.functional_lines), Decimal(0))
    credits = sum((line.credit for line in january.functional_lines), Decimal(0))
    assert debits == credits
    roll = next(r for r in result.rollforward() if r.contract_id == "EU1" and r.period == "2024-02")
    assert (roll.opening_contract_liability, roll.closing_contract_liability) == (D("1100.00"), D("1000.00"))
    assert roll.closing_receivable == D("0.00")


def test_missing_fx_rate_is_a_rule_error() -> None:
    from pssync.revenue import RevenueRuleError

    eu = contract("EU1", [ratable("s", 1200, date(2024, 1, 1), date(2024, 12, 31))], 1200, currency="EUR")
    result = run_scenario(
        Scenario(contracts=[eu], as_of=date(2024, 1, 31), functional_currency={"LE-US": "USD"})
    )
    with pytest.raises(RevenueRuleError, match="no EUR/USD rate"):
        result.schedule()


def test_schedule_for_a_single_booked_version_as_a_workflow_step_would() -> None:
    booked = contract(
        "NEW",
        [
            ratable("support", 1_200, date(2024, 1, 1), date(2024, 12, 31)),
            obligation("licence", 800, PointInTimePattern(satisfied_on=date(2024, 1, 1))),
            obligation("rollout", 500, MilestonePattern(milestones=[Milestone(id="live", weight=D(1))])),
        ],
        2_250,
    )

    result = schedule_for(booked)

    assert result.as_of == date(2024, 1, 1)
    assert {a.obligation_id: a.allocated for a in result.allocations()} == {
        "support": D("1080.00"),
        "licence": D("720.00"),
        "rollout": D("450.00"),
    }
    assert result.period_revenue("NEW")["2024-01"] == D("810.00")  # licence 720 + support 90
    rpo = {line.obligation_id: line for line in result.rpo()}
    assert rpo["support"].within_12_months == D("990.00")
    assert rpo["rollout"].timing_not_scheduled == D("450.00")  # milestone not dated yet
    line = next(x for x in result.schedule() if x.obligation_id == "support")
    assert (line.contract_version, line.causing_event_id, line.status) == (1, "NEW-v1", "open")
    assert line.inputs == "1/12 periods of 2024-01-01..2024-12-31 elapsed"
