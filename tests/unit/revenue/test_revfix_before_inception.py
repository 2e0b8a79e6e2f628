"""Goods or services transferred before a contract exists are recognised when it does (IFRS 15.9, 15.31:
revenue is recognised as control transfers under a contract; what was transferred before inception is
caught up at inception), never in a period before the contract existed. The delivery keeps its date
(issue 11 item 9: never change a fact the user gave); its revenue lands in the contract's first period.

Until this fix a contract that started after another one in the same scenario booked such revenue in the
delivery's own period, before the contract existed.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    Scenario,
    UnitsDelivered,
    UnitsPattern,
    parse_scenario,
    run_scenario,
)
from pssync.revenue.output import schedule_rows_of
from pssync.revenue.stream import write_report

SIGNED = date(2024, 3, 1)


def _two_contracts() -> Scenario:
    """EARLY runs all year; LATE is signed on 1 March for 10 units (1,000) and 5 were delivered on 10
    February, ahead of the signature, plus support from 15 January to 30 June (600)."""
    early = contract("EARLY", [ratable("s", 1_200, date(2024, 1, 1), date(2024, 12, 31))], 1_200)
    late = contract(
        "LATE",
        [
            obligation("units", 1_000, UnitsPattern(total_units=D(10))),
            ratable("support", 600, date(2024, 1, 15), date(2024, 6, 30), basis="daily"),
        ],
        1_600,
        effective=SIGNED,
    )
    ahead = UnitsDelivered(
        id="d", contract_id="LATE", obligation_id="units", on=date(2024, 2, 10), units=D(5)
    )
    return Scenario(contracts=[early, late], events=[ahead], as_of=date(2024, 12, 31))


def test_units_delivered_before_the_contract_are_revenue_in_its_first_period() -> None:
    result = run_scenario(_two_contracts())

    units = result.period_revenue("LATE", "units")
    assert units["2024-01"] == units["2024-02"] == 0
    assert units["2024-03"] == D("500.00")


def test_a_service_begun_before_the_contract_is_caught_up_at_inception_and_complete_at_the_end() -> None:
    result = run_scenario(_two_contracts())

    support = result.period_revenue("LATE", "support")
    assert support["2024-01"] == support["2024-02"] == 0
    # 15 January to 31 March: 77 of the 168 days, caught up in March
    assert support["2024-03"] == D("275.00")
    assert sum(support.values()) == D("600.00")
    assert result.recognised_to_date("LATE") == D("1100.00")  # 5 units and the whole support


def test_nothing_of_the_later_contract_is_journaled_before_it_exists() -> None:
    result = run_scenario(_two_contracts())

    assert {e.period for e in result.journals() if e.contract_id == "LATE"} >= {"2024-03"}
    assert not [e for e in result.journals() if e.contract_id == "LATE" and e.period < "2024-03"]


def test_the_stream_writes_the_same_schedule(tmp_path: Path) -> None:
    text = _two_contracts().model_dump_json()

    summary = write_report(text, "csv", tmp_path / "report.csv")

    expected = sorted(schedule_rows_of(run_scenario(parse_scenario(text)).schedule(include_zero=True)))
    with summary.paths["schedule"].open(newline="", encoding="utf-8") as written:
        [_, *lines] = list(csv.reader(written))
    assert sorted(map(tuple, lines)) == expected
