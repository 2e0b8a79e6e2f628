"""Contract modifications at their edges: figures derived by hand, then invariants over generated cases."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from revenue_builders import D, contract, obligation, ratable

from pssync.revenue import (
    ModificationFacts,
    ModificationTreatment,
    PerformanceObligation,
    PointInTimePattern,
    Scenario,
    UnitsDelivered,
    UnitsPattern,
    run_scenario,
)

YEAR_2023 = [f"2023-{month:02d}" for month in range(1, 13)]


def _transfer_restated_as_complete() -> Scenario:
    """A licence (point in time, not yet transferred) and a year of support, 900 for SSPs 600 / 400.

    Version 2 (1 July, price 1,180) states that the licence was delivered on 15 March: measured by its new
    pattern the licence is complete the day before the modification, though it was not satisfied under the
    old one. Both remainders are distinct (prospective). Remaining consideration: 1,180 - 0 (licence) - 180
    (support, 6 of 12 months of 360) = 1,000, allocated 600 / 400 by SSP. Nothing remains to transfer of the
    licence, so its 600 is recognised at once in July; support earns 400 over July-December.
    """
    support = ratable("support", 400, date(2023, 1, 1), date(2023, 12, 31))
    original = contract(
        "LIC",
        [obligation("licence", 600, PointInTimePattern()), support],
        900,
        effective=date(2023, 1, 1),
    )
    amended = contract(
        "LIC",
        [obligation("licence", 600, PointInTimePattern(satisfied_on=date(2023, 3, 15))), support],
        1180,
        version=2,
        effective=date(2023, 7, 1),
    )
    return Scenario(contracts=[original, amended], as_of=date(2023, 12, 31))


def test_remainder_of_an_obligation_complete_under_its_new_pattern_is_recognised_at_once() -> None:
    result = run_scenario(_transfer_restated_as_complete())

    licence = result.period_revenue("LIC", "licence")
    support = result.period_revenue("LIC", "support")
    assert [licence[p] for p in YEAR_2023] == [D(0)] * 6 + [D("600.00")] + [D(0)] * 5
    assert [support[p] for p in YEAR_2023] == [D("30.00")] * 6 + [
        D("66.67"),  # cumulative 180 + 400 x 1/6 = 246.67
        D("66.66"),  # 313.33
        D("66.67"),  # 380.00
        D("66.67"),  # 446.67
        D("66.66"),  # 513.33
        D("66.67"),  # 580.00
    ]
    assert result.recognised_to_date("LIC", "licence") == D("600.00")
    assert result.recognised_to_date("LIC", "support") == D("580.00")
    assert result.recognised_to_date("LIC") == D("1180.00")  # the modified contract's price
    [modification] = result.modifications()
    assert modification.treatment == ModificationTreatment.PROSPECTIVE
    assert modification.prospective_obligations == ["licence", "support"]
    for entry in result.journals():
        assert sum((line.debit for line in entry.lines), Decimal(0)) == sum(
            (line.credit for line in entry.lines), Decimal(0)
        )


BASE = date(2024, 1, 1)
MODIFIED = date(2024, 7, 1)
AS_OF = date(2027, 12, 31)


@st.composite
def restated_patterns(draw: Any) -> Scenario:
    """One modification restating some obligations' patterns, often so that they are complete the day before
    it although they were not under the old pattern; every obligation complete by as_of.

    Every obligation may be satisfied under the old pattern the day before the modification: the change in
    price then relates only to satisfied obligations and is recognised at once (IFRS 15.88)."""
    count = draw(st.integers(min_value=1, max_value=3))
    old: list[PerformanceObligation] = []
    new: list[PerformanceObligation] = []
    events: list[Any] = []
    for n in range(count):
        oid = f"ob{n}"
        open_before = draw(st.booleans())
        kind = draw(st.sampled_from(["point", "ratable", "units"]))
        ssp, new_ssp = draw(st.integers(1, 50_000)), draw(st.integers(1, 50_000))
        day = BASE + timedelta(days=draw(st.integers(0, 500)))  # around the modification
        if kind == "point":
            first = PointInTimePattern(
                satisfied_on=None if open_before else draw(st.sampled_from([None, day]))
            )
            old.append(obligation(oid, ssp, first))
            new.append(obligation(oid, new_ssp, PointInTimePattern(satisfied_on=day)))
        elif kind == "ratable":
            start = BASE + timedelta(days=draw(st.integers(0, 150)))
            old.append(ratable(oid, ssp, start, start + timedelta(days=draw(st.integers(200, 700)))))
            new.append(
                ratable(oid, new_ssp, start, max(start, day), draw(st.sampled_from(["period", "daily"])))
            )
        else:
            total = draw(st.integers(2, 20))
            new_total = draw(st.integers(1, total))
            old.append(obligation(oid, ssp, UnitsPattern(total_units=D(total))))
            new.append(obligation(oid, new_ssp, UnitsPattern(total_units=D(new_total))))
            delivered = draw(st.integers(1, total - 1 if open_before else total))
            events += [
                UnitsDelivered(
                    id=f"{oid}-u1", contract_id="M", obligation_id=oid, on=day, units=D(delivered)
                ),
                UnitsDelivered(
                    id=f"{oid}-u2",
                    contract_id="M",
                    obligation_id=oid,
                    on=BASE + timedelta(days=900),
                    units=D(total),
                ),
            ]
    price, new_price = draw(st.integers(1, 100_000)), draw(st.integers(1, 100_000))
    # Stated distinctness of some remainders: prospective, cumulative catch-up or mixed.
    stated = draw(st.dictionaries(st.sampled_from([o.id for o in new]), st.booleans()))
    versions = [
        contract("M", old, price, effective=BASE),
        contract(
            "M",
            new,
            new_price,
            version=2,
            effective=MODIFIED,
            modification=ModificationFacts(remaining_distinct=stated),
        ),
    ]
    return Scenario(contracts=versions, events=events, as_of=AS_OF)


@settings(max_examples=40, deadline=None)
@given(scenario=restated_patterns())
def test_restated_patterns_recognise_the_modified_price_and_journals_balance(scenario: Scenario) -> None:
    result = run_scenario(scenario)
    outcome = result.contract("M")

    for track in outcome.tracks.values():
        assert track.cumulative[-1] == track.expected_total[-1]  # every obligation complete at the end
    assert result.recognised_to_date("M") == scenario.contracts[-1].fixed_price
    for entry in result.journals():
        debits = sum((line.debit for line in entry.lines), Decimal(0))
        credits = sum((line.credit for line in entry.lines), Decimal(0))
        assert debits == credits
