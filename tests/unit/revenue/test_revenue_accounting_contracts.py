"""Balances of a separate-contract modification are a separate contract's (IFRS 15.20, 15.105).

The numbers follow IFRS 15 IE Example 5 case A: 120 products at 100, 60 delivered in February and 30 in
March; on 1 March 30 more products are added at 95 each (their standalone selling price), a separate
contract, `GOODS/m2`. The original was billed 5,000 in February and nothing since: an unbilled contract asset.
The added products are billed 2,850 in advance on 1 March and paid in March: a contract liability. The two
are different contracts, so the asset and the liability are shown gross, never netted into one.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from revenue_builders import EXAMPLE_5_BILLING, EXAMPLE_5_SEPARATE, D, contract, obligation

from pssync.revenue import (
    Invoice,
    Payment,
    RevenueRuleError,
    Scenario,
    UnitsDelivered,
    UnitsPattern,
    parse_scenario,
    run_scenario,
)
from pssync.revenue.output import balance_rows_of, journal_rows_of
from pssync.revenue.result.rollforward import account_balances, balances
from pssync.revenue.stream import write_report

SEPARATE = EXAMPLE_5_SEPARATE


def _example_5_case_a(billing: list[Invoice | Payment], as_of: date = date(2024, 3, 31)) -> Scenario:
    original = contract("GOODS", [obligation("products", 12_000, UnitsPattern(total_units=D(120)))], 12_000)
    amended = contract(
        "GOODS",
        [
            obligation("products", 12_000, UnitsPattern(total_units=D(120))),
            obligation("more", 2_850, UnitsPattern(total_units=D(30))),
        ],
        12_000 + 2_850,
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
        UnitsDelivered(id="d3", contract_id="GOODS", obligation_id="more", on=date(2024, 4, 20), units=D(30)),
    ]
    return Scenario(contracts=[original, amended], events=[*deliveries, *billing], as_of=as_of)


BILLING = EXAMPLE_5_BILLING


def _figures(line: object, *names: str) -> tuple[Decimal, ...]:
    return tuple(getattr(line, name) for name in names)


def test_example_5_case_a_unbilled_asset_and_advance_billing_are_shown_gross() -> None:
    result = run_scenario(_example_5_case_a(BILLING))

    march = {(line.accounting_contract): line for line in result.rollforward() if line.period == "2024-03"}
    assert set(march) == {"GOODS", SEPARATE}
    names = (
        "revenue",
        "billed",
        "paid",
        "closing_receivable",
        "closing_contract_asset",
        "closing_contract_liability",
    )
    # original: 90 units delivered (9,000), 5,000 billed, unpaid; asset 4,000
    assert _figures(march["GOODS"], *names) == (D("3000.00"), 0, 0, D("5000.00"), D("4000.00"), 0)
    # the separate contract: nothing delivered yet, billed and paid 2,850 in advance; liability 2,850
    assert _figures(march[SEPARATE], *names) == (0, D("2850.00"), D("2850.00"), 0, 0, D("2850.00"))
    assert all(line.contract_id == "GOODS" for line in march.values())


def test_the_contracts_totals_remain_the_sum_of_its_accounting_contracts() -> None:
    result = run_scenario(_example_5_case_a(BILLING))
    outcome = result.contract("GOODS")

    whole = balances(result.run, outcome)[result.run.as_of_index]
    parts = [rows[result.run.as_of_index] for _, rows in account_balances(result.run, outcome)]
    # revenue, billed, paid and receivable add up; the net position is the sum of each one's asset - liability
    assert [sum(p[i] for p in parts) for i in (0, 1, 2, 4)] == [whole[i] for i in (0, 1, 2, 4)]
    assert sum(p[6] - p[8] for p in parts) == whole[6] - whole[8] == 1_150_00  # netted would hide both


def test_journals_move_the_asset_and_the_liability_of_each_accounting_contract() -> None:
    result = run_scenario(_example_5_case_a(BILLING))

    march = {e.accounting_contract: e for e in result.journals() if e.period == "2024-03"}
    original = {(line.account, line.debit, line.credit) for line in march["GOODS"].lines}
    separate = {(line.account, line.debit, line.credit) for line in march[SEPARATE].lines}
    assert original == {("contract_asset", D("3000.00"), D("0.00")), ("revenue", D("0.00"), D("3000.00"))}
    assert separate == {
        ("receivable", D("2850.00"), D("0.00")),
        ("cash", D("2850.00"), D("0.00")),
        ("receivable", D("0.00"), D("2850.00")),
        ("contract_liability", D("0.00"), D("2850.00")),
    }
    assert march[SEPARATE].causing_event_ids == ["inv-more", "pay-more"]
    assert march["GOODS"].causing_event_ids == ["d2"]


def test_delivering_the_added_products_releases_the_separate_contracts_liability_alone() -> None:
    result = run_scenario(_example_5_case_a(BILLING, as_of=date(2024, 4, 30)))

    april = {line.accounting_contract: line for line in result.rollforward() if line.period == "2024-04"}
    assert (april[SEPARATE].revenue, april[SEPARATE].closing_contract_liability) == (D("2850.00"), 0)
    # nothing moved on the original in April: its asset stays 4,000
    assert _figures(april["GOODS"], "revenue", "billed", "closing_contract_asset") == (0, 0, D("4000.00"))


def test_billing_without_an_accounting_contract_belongs_to_the_original() -> None:
    unnamed = [Invoice(id="inv", contract_id="GOODS", on=date(2024, 3, 1), amount=D(2_850))]
    result = run_scenario(_example_5_case_a(unnamed))

    march = {line.accounting_contract: line for line in result.rollforward() if line.period == "2024-03"}
    assert march["GOODS"].billed == D("2850.00") and march["GOODS"].closing_contract_asset == D("6150.00")
    assert SEPARATE not in march  # nothing billed nor earned there yet


@pytest.mark.parametrize("named", ["GOODS/m3", "OTHER", "GOODS/m1"])
def test_an_accounting_contract_the_contract_does_not_have_is_refused(named: str) -> None:
    bad = [
        Invoice(id="inv-x", contract_id="GOODS", accounting_contract=named, on=date(2024, 3, 1), amount=D(1))
    ]
    with pytest.raises(RevenueRuleError) as raised:
        run_scenario(_example_5_case_a(bad))
    assert raised.value.field == "events[3].accounting_contract"
    assert named in str(raised.value) and SEPARATE in str(raised.value)


def test_a_contract_without_a_separate_contract_accepts_its_own_id_and_names_no_accounting_contract() -> None:
    single = contract("ONE", [obligation("products", 100, UnitsPattern(total_units=D(10)))], 100)
    events = [
        Invoice(id="i", contract_id="ONE", accounting_contract="ONE", on=date(2024, 1, 5), amount=D(40)),
        UnitsDelivered(id="d", contract_id="ONE", obligation_id="products", on=date(2024, 1, 9), units=D(1)),
    ]
    result = run_scenario(Scenario(contracts=[single], events=events, as_of=date(2024, 1, 31)))

    [line] = result.rollforward()
    assert (line.accounting_contract, line.closing_contract_liability) == (None, D("30.00"))
    assert "accounting_contract" not in line.model_dump_json()
    assert all("accounting_contract" not in entry.model_dump_json() for entry in result.journals())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["invoice", "payment"]),
            st.sampled_from([None, "GOODS", SEPARATE]),
            st.integers(0, 120),  # day offset from 1 January
            st.integers(1, 900_000),  # minor units
        ),
        max_size=8,
    )
)
def test_any_billing_split_sums_to_the_contracts_totals_in_every_period(
    bills: list[tuple[str, str | None, int, int]],
) -> None:
    billing: list[Invoice | Payment] = []
    for number, (kind, named, offset, units) in enumerate(bills):
        on = date.fromordinal(date(2024, 1, 1).toordinal() + offset)
        on = min(on, date(2024, 4, 30))
        if named == SEPARATE:  # the separate contract starts with the modification (1 March)
            on = max(on, date(2024, 3, 1))
        maker = Invoice if kind == "invoice" else Payment
        billing.append(
            maker(
                id=f"b{number}",
                contract_id="GOODS",
                accounting_contract=named,
                on=on,
                amount=Decimal(units) / 100,
            )
        )
    result = run_scenario(_example_5_case_a(billing, as_of=date(2024, 4, 30)))
    outcome = result.contract("GOODS")

    whole = balances(result.run, outcome)
    accounts = account_balances(result.run, outcome)
    assert [a.id for a, _ in accounts] == ["GOODS", SEPARATE]
    for k, total in enumerate(whole):
        parts = [rows[k] for _, rows in accounts]
        assert [sum(p[i] for p in parts) for i in range(5)] == list(total[:5])
        assert sum(p[6] - p[8] for p in parts) == total[6] - total[8]
        # a journal per accounting contract balances on its own (entry_figures asserts it) and in total
    for entry in result.journals():
        assert sum(line.debit - line.credit for line in entry.lines) == 0


def test_the_stream_writes_the_accounting_contract_column_equal_to_the_in_memory_run(tmp_path: Path) -> None:
    scenario = _example_5_case_a(BILLING)
    text = scenario.model_dump_json()

    summary = write_report(text, "csv", tmp_path / "report.csv")

    assert summary.streamed
    result = run_scenario(parse_scenario(text))
    for kind, rows in (
        ("balances", balance_rows_of(result.rollforward())),
        ("journals", journal_rows_of(result.journals())),
    ):
        with summary.paths[kind].open(newline="", encoding="utf-8") as written:
            [header, *lines] = list(csv.reader(written))
        assert header[-1] == "accounting_contract"
        assert sorted(map(tuple, lines)) == sorted(rows)
        assert {line[-1] for line in lines} == {"GOODS", SEPARATE}


def test_the_stream_refuses_an_unknown_accounting_contract_naming_the_event_in_the_whole_file(
    tmp_path: Path,
) -> None:
    bad = [
        Payment(id="p", contract_id="GOODS", accounting_contract="GOODS/m9", on=date(2024, 3, 1), amount=D(1))
    ]
    text = _example_5_case_a(bad).model_dump_json()

    with pytest.raises(RevenueRuleError) as refused:
        write_report(text, "csv", tmp_path / "report.csv")

    assert refused.value.field == "events[3].accounting_contract"
    assert list(tmp_path.iterdir()) == []


def test_contract_totals_sum_the_accounting_contracts_gross() -> None:
    result = run_scenario(_example_5_case_a(BILLING))

    [march] = [line for line in result.rollforward_totals() if line.period == "2024-03"]
    assert march.accounting_contract is None and march.contract_id == "GOODS"
    names = (
        "revenue",
        "billed",
        "paid",
        "closing_receivable",
        "closing_contract_asset",
        "closing_contract_liability",
    )
    assert _figures(march, *names) == (
        D("3000.00"),
        D("2850.00"),
        D("2850.00"),
        D("5000.00"),
        D("4000.00"),
        D("2850.00"),
    )


def test_contract_totals_are_the_rollforward_when_the_contract_is_one_accounting_contract() -> None:
    single = contract("ONE", [obligation("products", 100, UnitsPattern(total_units=D(10)))], 100)
    events = [
        Invoice(id="i", contract_id="ONE", on=date(2024, 1, 5), amount=D(40)),
        UnitsDelivered(id="d", contract_id="ONE", obligation_id="products", on=date(2024, 2, 9), units=D(6)),
    ]
    result = run_scenario(Scenario(contracts=[single], events=events, as_of=date(2024, 3, 31)))

    assert result.rollforward_totals() == result.rollforward()
