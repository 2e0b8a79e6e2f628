"""Issue 11: a price change with nothing left to transfer, rounding of earned amounts, billing dated before
the contract. Figures derived by hand in each docstring; invariants over generated cases."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    Invoice,
    ModificationFacts,
    ModificationTreatment,
    Payment,
    PointInTimePattern,
    RightToInvoicePattern,
    Scenario,
    TimeEntry,
    run_scenario,
)
from pssync.revenue.errors import RevenueRuleError

FAST = settings(max_examples=40, deadline=None)


def _delivered_then_repriced(new_price: str, **amended_extra: object) -> Scenario:
    """Two deliverables (SSPs 600 / 400), 1,000, both transferred by March 2024; version 2 (1 June) keeps
    them and restates the price. Nothing remains to transfer, so the whole change is attributable to
    satisfied obligations and is recognised at once in June, allocated 60 / 40 as at inception
    (IFRS 15.88 / ASC 606-10-32-43)."""
    v1_obligations = [
        obligation("report", 600, PointInTimePattern(satisfied_on=date(2024, 2, 15))),
        obligation("workshop", 400, PointInTimePattern(satisfied_on=date(2024, 3, 10))),
    ]
    original = contract("DLV", v1_obligations, 1000, effective=date(2024, 1, 1))
    amended = contract(
        "DLV", v1_obligations, new_price, version=2, effective=date(2024, 6, 1), **amended_extra
    )
    return Scenario(contracts=[original, amended], as_of=date(2024, 12, 31))


def test_price_increase_after_everything_was_transferred_is_recognised_in_the_period_of_the_change() -> None:
    """1,000 -> 1,100: +60 report, +40 workshop in 2024-06; lifetime 1,100 (before the fix: 1,000)."""
    result = run_scenario(_delivered_then_repriced("1100"))

    assert result.period_revenue("DLV", "report")["2024-06"] == D("60.00")
    assert result.period_revenue("DLV", "workshop")["2024-06"] == D("40.00")
    assert result.period_revenue("DLV", "report")["2024-02"] == D("600.00")  # never reaches back
    assert result.recognised_to_date("DLV") == D("1100.00")


def test_concession_after_everything_was_transferred_reduces_revenue_when_granted() -> None:
    """1,000 -> 950.01: -29.99 / -20.00 in 2024-06 (largest remainder: 49.99 split 60 / 40 = 29.994 /
    19.996, the missing cent to the larger remainder); lifetime 950.01."""
    result = run_scenario(_delivered_then_repriced("950.01"))

    assert result.period_revenue("DLV", "report")["2024-06"] == D("-29.99")
    assert result.period_revenue("DLV", "workshop")["2024-06"] == D("-20.00")
    assert result.recognised_to_date("DLV") == D("950.01")


def test_separate_contract_override_adding_nothing_still_recognises_the_price_change() -> None:
    """The override says "separate contract" but adds no goods: there is no new contract to carry the
    +100, so it is a change in the price of the (fully transferred) existing one: recognised in June."""
    facts = ModificationFacts(
        override=ModificationTreatment.SEPARATE_CONTRACT, rationale="goodwill uplift agreed separately"
    )
    result = run_scenario(_delivered_then_repriced("1100", modification=facts))

    assert result.period_revenue("DLV")["2024-06"] == D("100.00")
    assert result.recognised_to_date("DLV") == D("1100.00")


def test_separate_contract_override_adding_nothing_to_unfinished_work_is_refused() -> None:
    """With support still running, a price change under a "separate contract" that adds no goods would have
    no obligation to go to: refused, naming the override, rather than dropped."""
    support = ratable("support", 1200, date(2024, 1, 1), date(2024, 12, 31))
    facts = ModificationFacts(override=ModificationTreatment.SEPARATE_CONTRACT, rationale="uplift")
    scenario = Scenario(
        contracts=[
            contract("SUP", [support], 1200, effective=date(2024, 1, 1)),
            contract("SUP", [support], 1300, version=2, effective=date(2024, 6, 1), modification=facts),
        ],
        as_of=date(2024, 12, 31),
    )

    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(scenario)
    assert refused.value.field == "contracts[1].modification.override"


@st.composite
def _repriced_after_transfer(draw: st.DrawFn) -> Scenario:
    """One to three point-in-time obligations delivered in 2024, then one to three price restatements."""
    count = draw(st.integers(1, 3))
    obligations = [
        obligation(
            f"ob{n}",
            draw(st.integers(1, 50_000)),
            PointInTimePattern(satisfied_on=date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 200)))),
        )
        for n in range(count)
    ]
    versions = [contract("R", obligations, draw(st.integers(1, 100_000)), effective=date(2024, 1, 1))]
    day = date(2024, 8, 1)
    for number in range(2, 2 + draw(st.integers(1, 3))):
        day += timedelta(days=draw(st.integers(1, 90)))
        cents = draw(st.integers(-5_000_000, 10_000_000))
        versions.append(contract("R", obligations, Decimal(cents).scaleb(-2), version=number, effective=day))
    return Scenario(contracts=versions, as_of=date(2026, 12, 31))


@FAST
@given(scenario=_repriced_after_transfer())
def test_lifetime_revenue_is_the_final_transaction_price_whatever_the_restatements(
    scenario: Scenario,
) -> None:
    result = run_scenario(scenario)

    assert result.recognised_to_date("R") == scenario.contracts[-1].fixed_price


def _time_and_materials(rate: str, entries: list[tuple[date, str]]) -> Scenario:
    return Scenario(
        contracts=[
            contract(
                "TM",
                [obligation("hours", None, RightToInvoicePattern(rate_per_hour=D(rate)))],
                0,
                effective=date(2024, 1, 1),
            )
        ],
        events=[
            TimeEntry(id=f"t{n}", contract_id="TM", obligation_id="hours", on=on, hours=D(hours))
            for n, (on, hours) in enumerate(entries)
        ],
        as_of=date(2024, 12, 31),
    )


def test_right_to_invoice_rounds_the_cumulative_amount_not_each_entry() -> None:
    """0.4 h + 0.4 h at 0.01/h earn 0.008, 0.01 once rounded, as one entry of 0.8 h does (before the fix:
    0.00 + 0.00 = 0.00). Rounding to the minor unit, half away from zero, once per cumulative figure."""
    split = run_scenario(_time_and_materials("0.01", [(date(2024, 3, 5), "0.4"), (date(2024, 3, 6), "0.4")]))
    whole = run_scenario(_time_and_materials("0.01", [(date(2024, 3, 5), "0.8")]))

    assert split.recognised_to_date("TM") == whole.recognised_to_date("TM") == D("0.01")


@FAST
@given(
    rate=st.integers(1, 10**6).map(lambda n: Decimal(n).scaleb(-4)),
    rows=st.lists(
        st.tuples(st.integers(0, 300), st.integers(1, 10**5).map(lambda n: Decimal(n).scaleb(-3))),
        min_size=1,
        max_size=6,
    ),
    which=st.integers(0, 5),
    part=st.integers(1, 999),
)
def test_splitting_a_time_entry_in_two_never_changes_revenue(
    rate: Decimal, rows: list[tuple[int, Decimal]], which: int, part: int
) -> None:
    """Any entry split into two rows of the same day: every period's revenue is unchanged."""
    entries = [(date(2024, 1, 1) + timedelta(days=offset), str(hours)) for offset, hours in rows]
    on, hours = entries[which % len(entries)]
    first = (Decimal(hours) * part / 1000).quantize(Decimal("0.000001"))
    split_entries = [e for n, e in enumerate(entries) if n != which % len(entries)]
    split_entries += [(on, str(first)), (on, str(Decimal(hours) - first))]
    split_entries = [e for e in split_entries if Decimal(e[1]) > 0]

    whole = run_scenario(_time_and_materials(str(rate), entries))
    split = run_scenario(_time_and_materials(str(rate), split_entries))

    assert split.period_revenue("TM") == whole.period_revenue("TM")


def _billed(kind: type[Invoice] | type[Payment], on: date) -> Scenario:
    support = ratable("support", 1200, date(2024, 3, 1), date(2025, 2, 28))
    return Scenario(
        contracts=[contract("BIL", [support], 1200, effective=date(2024, 3, 1))],
        events=[
            Invoice(id="inv-ok", contract_id="BIL", on=date(2024, 3, 1), amount=D(100)),
            kind(id="early", contract_id="BIL", on=on, amount=D(500)),
        ],
        as_of=date(2024, 12, 31),
    )


@pytest.mark.parametrize("kind", [Invoice, Payment])
def test_billing_dated_before_the_contract_starts_is_refused_naming_the_field(
    kind: type[Invoice] | type[Payment],
) -> None:
    """Dated 15 January for a contract starting 1 March: before the fix it was booked in 2024-03 (billed
    600 there); now refused, the date left as given."""
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(_billed(kind, date(2024, 1, 15)))

    assert refused.value.field == "events[1].on"
    assert "before contract BIL starts on 2024-03-01" in refused.value.reason


def test_billing_dated_on_the_first_day_of_the_contract_is_booked_on_that_day() -> None:
    result = run_scenario(_billed(Invoice, date(2024, 3, 1)))

    march = result.contract("BIL").billed[result.period_index("2024-03")]
    assert march == 60_000  # both invoices, minor units


def _support_plus_training(support_ssp_in_v2: int) -> Scenario:
    """A year of support, 1,200 (SSP 1,200). Version 2 (1 July) adds training (SSP 300, delivered 20 July)
    for +300, its SSP, and may restate support's SSP to today's list price."""
    training = obligation("training", 300, PointInTimePattern(satisfied_on=date(2024, 7, 20)))
    return Scenario(
        contracts=[
            contract("SEP", [ratable("support", 1200, date(2024, 1, 1), date(2024, 12, 31))], 1200),
            contract(
                "SEP",
                [ratable("support", support_ssp_in_v2, date(2024, 1, 1), date(2024, 12, 31)), training],
                1500,
                version=2,
                effective=date(2024, 7, 1),
            ),
        ],
        as_of=date(2024, 12, 31),
    )


@pytest.mark.parametrize("support_ssp_in_v2", [1200, 1300])
def test_added_distinct_goods_at_their_ssp_are_a_separate_contract_whatever_the_existing_ssp(
    support_ssp_in_v2: int,
) -> None:
    """IFRS 15.20 / ASC 606-10-25-12: support keeps 100 a month, training earns its 300 in July. Before the
    fix a restated support SSP (1,300) made it prospective: the remaining 1,500 - 600 = 900 split 731.25 /
    168.75 by SSPs 1,300 / 300, so support earned 121.88 / 121.87 a month from July and training 168.75."""
    result = run_scenario(_support_plus_training(support_ssp_in_v2))

    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.SEPARATE_CONTRACT
    assert set(result.period_revenue("SEP", "support").values()) == {D("100.00")}
    assert result.period_revenue("SEP", "training")["2024-07"] == D("300.00")


def test_time_and_materials_earned_before_a_modification_is_not_taken_from_the_fixed_price() -> None:
    """A fixed-price build (1,000, two equal milestones) beside a T&M phase (rate 100/h). 3 h of T&M
    (300) are earned before a modification on 1 June raises the price to 1,200 (prospective: the
    remaining milestone is distinct). The fixed price still to allocate is 1,200 - 500 recognised on the
    first milestone = 700, not 1,200 - 500 - 300: T&M earns its own variable consideration (ASC
    606-10-32-40), so lifetime revenue is 1,200 fixed + 300 T&M."""
    from pssync.revenue import Milestone, MilestonePattern, MilestoneReached

    build = obligation(
        "build",
        1000,
        MilestonePattern(milestones=[Milestone(id="m1", weight=D(1)), Milestone(id="m2", weight=D(1))]),
    )
    hours = obligation("tm", None, RightToInvoicePattern(rate_per_hour=D(100)))
    original = contract("TMX", [build, hours], 1000, effective=date(2024, 1, 1))
    amended = contract("TMX", [build, hours], 1200, version=2, effective=date(2024, 6, 1))
    events = [
        MilestoneReached(
            id="r1", contract_id="TMX", obligation_id="build", on=date(2024, 3, 1), milestone_id="m1"
        ),
        TimeEntry(id="t1", contract_id="TMX", obligation_id="tm", on=date(2024, 4, 2), hours=D(3)),
        MilestoneReached(
            id="r2", contract_id="TMX", obligation_id="build", on=date(2024, 9, 2), milestone_id="m2"
        ),
    ]
    result = run_scenario(Scenario(contracts=[original, amended], events=events, as_of=date(2024, 12, 31)))

    assert result.recognised_to_date("TMX", "build") == D("1200.00")
    assert result.recognised_to_date("TMX", "tm") == D("300.00")
