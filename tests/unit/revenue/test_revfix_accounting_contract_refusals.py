"""A bill for an accounting contract that did not exist on its date, or that no version could create, is
refused with the field to correct, never booked elsewhere (issue 11 items 7 and 9).

IFRS 15 IE Example 5 case A: 120 products at 100; on 1 March 30 more at their SSP of 95, a separate contract
`GOODS/m2` that starts on 1 March. A bill for it dated in February is a mistyped date or contract: booking it
would put a liability on a contract that did not exist yet.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from revenue_builders import D, contract, obligation

from pssync.revenue import (
    Invoice,
    Payment,
    RatablePattern,
    RevenueRuleError,
    Scenario,
    UnitsDelivered,
    UnitsPattern,
    run_scenario,
)
from pssync.revenue.stream import write_report

SEPARATE = "GOODS/m2"
MODIFIED_ON = date(2024, 3, 1)


def _goods(billing: list[Invoice | Payment], as_of: date = date(2024, 3, 31)) -> Scenario:
    original = contract("GOODS", [obligation("products", 12_000, UnitsPattern(total_units=D(120)))], 12_000)
    amended = contract(
        "GOODS",
        [
            obligation("products", 12_000, UnitsPattern(total_units=D(120))),
            obligation("more", 2_850, UnitsPattern(total_units=D(30))),
        ],
        14_850,
        version=2,
        effective=MODIFIED_ON,
    )
    delivery = UnitsDelivered(
        id="d1", contract_id="GOODS", obligation_id="products", on=date(2024, 2, 15), units=D(60)
    )
    return Scenario(contracts=[original, amended], events=[delivery, *billing], as_of=as_of)


@pytest.mark.parametrize("maker", [Invoice, Payment])
def test_a_bill_for_the_separate_contract_dated_before_the_modification_is_refused_on_its_date(
    maker: type[Invoice] | type[Payment],
) -> None:
    early = maker(
        id="early", contract_id="GOODS", accounting_contract=SEPARATE, on=date(2024, 2, 29), amount=D(2_850)
    )
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(_goods([early]))

    assert refused.value.field == "events[1].on"
    assert SEPARATE in refused.value.reason and "2024-03-01" in refused.value.reason


def test_a_bill_for_the_separate_contract_dated_on_the_modification_is_booked_there() -> None:
    on_time = Invoice(
        id="on-time", contract_id="GOODS", accounting_contract=SEPARATE, on=MODIFIED_ON, amount=D(2_850)
    )
    result = run_scenario(_goods([on_time]))

    [march] = [
        line
        for line in result.rollforward()
        if line.period == "2024-03" and line.accounting_contract == SEPARATE
    ]
    assert (march.billed, march.closing_contract_liability) == (D("2850.00"), D("2850.00"))


def test_an_early_bill_for_the_original_contract_stays_accepted() -> None:
    original = Invoice(
        id="orig", contract_id="GOODS", accounting_contract="GOODS", on=date(2024, 2, 1), amount=D(100)
    )
    result = run_scenario(_goods([original]))

    february = [line for line in result.rollforward() if line.period == "2024-02"]
    assert [(line.accounting_contract, line.billed) for line in february] == [("GOODS", D("100.00"))]


@pytest.mark.parametrize("named", ["GOODS/m7", "OTHER/m2", "GOODS/m1"])
def test_a_name_no_version_could_create_is_refused_even_when_recorded_after_as_of(named: str) -> None:
    """Not yet known at as_of, but no later as_of could make it valid: the scenario is bad input now."""
    later = Invoice(
        id="later",
        contract_id="GOODS",
        accounting_contract=named,
        on=date(2024, 3, 20),
        recorded_on=date(2024, 5, 1),
        amount=D(1),
    )
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(_goods([later]))

    assert refused.value.field == "events[1].accounting_contract"
    assert named in refused.value.reason and SEPARATE in refused.value.reason


def test_a_valid_name_recorded_after_as_of_waits_for_its_as_of() -> None:
    later = Invoice(
        id="later",
        contract_id="GOODS",
        accounting_contract=SEPARATE,
        on=date(2024, 3, 20),
        recorded_on=date(2024, 4, 2),
        amount=D(2_850),
    )
    at_march = run_scenario(_goods([later]))
    at_april = run_scenario(_goods([later], as_of=date(2024, 4, 30)))

    assert all(line.billed == 0 for line in at_march.rollforward())
    booked = [(line.accounting_contract, line.billed) for line in at_april.rollforward() if line.billed]
    assert booked == [(SEPARATE, D("2850.00"))]  # recorded in April, after March's knowledge


def test_a_version_that_is_not_a_separate_contract_names_no_accounting_contract() -> None:
    """Version 2 extends the support term (not distinct goods at SSP): a prospective modification of the
    one contract, so `SUP/m2` does not exist."""
    first = contract(
        "SUP",
        [obligation("support", 1_200, RatablePattern(start=date(2024, 1, 1), end=date(2024, 12, 31)))],
        1_200,
    )
    longer = contract(
        "SUP",
        [obligation("support", 1_000, RatablePattern(start=date(2024, 1, 1), end=date(2025, 6, 30)))],
        1_500,
        version=2,
        effective=date(2024, 4, 1),
    )
    bill = Invoice(id="i", contract_id="SUP", accounting_contract="SUP/m2", on=date(2024, 4, 2), amount=D(1))
    with pytest.raises(RevenueRuleError) as refused:
        run_scenario(Scenario(contracts=[first, longer], events=[bill], as_of=date(2024, 4, 30)))

    assert refused.value.field == "events[0].accounting_contract"
    assert "at 2024-04-30" in refused.value.reason


def test_the_stream_refuses_an_early_bill_naming_its_place_in_the_whole_file(tmp_path: Path) -> None:
    other = contract("AAA", [obligation("x", 10, UnitsPattern(total_units=D(1)))], 10)
    early = Payment(
        id="early", contract_id="GOODS", accounting_contract=SEPARATE, on=date(2024, 2, 20), amount=D(5)
    )
    unrelated = Invoice(id="aaa", contract_id="AAA", on=date(2024, 1, 3), amount=D(10))
    scenario = _goods([early])
    scenario = scenario.model_copy(
        update={"contracts": [other, *scenario.contracts], "events": [unrelated, *scenario.events]}
    )

    with pytest.raises(RevenueRuleError) as refused:
        write_report(scenario.model_dump_json(), "csv", tmp_path / "report.csv")

    assert refused.value.field == "events[2].on"
    assert list(tmp_path.iterdir()) == []
