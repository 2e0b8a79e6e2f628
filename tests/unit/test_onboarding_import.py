"""Onboarding contracts in flight: row-by-row validation, dry run, apply once, refuse changes (fakes only)."""

from __future__ import annotations

import copy
import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pssync.connectors.cutover import held_version
from pssync.errors import BusinessRuleViolation
from pssync.model import examples
from pssync.model.commands import Target
from pssync.money import Money
from pssync.ops.onboarding import (
    OPENING_BALANCE,
    ImportRow,
    RowOutcome,
    UnreadableFile,
    booking_event,
    import_contracts,
    opening_balances,
    reports_text,
)
from pssync.workflows.provision import (
    CONTRACT,
    CUSTOMER,
    PROJECT,
    REVENUE_SCHEDULE,
    billing_schedule_command,
    record_contract_version,
)
from tests.fakes import InMemoryDeliveryLog, InMemoryVersionStore

NOW = datetime(2027, 4, 2, 9, 0, tzinfo=UTC)


def _row(**history: Any) -> dict[str, Any]:
    terms = examples.transformation_programme().model_dump(mode="json")
    return {
        "contract": terms,
        "history": {
            "as_of": "2027-03-31",
            "billed_to_date": {"amount": "131000.00", "currency": "EUR"},
            "recognised_to_date": {"amount": "145000.00", "currency": "EUR"},
            "collected_to_date": {"amount": "104000.00", "currency": "EUR"},
            **history,
        },
    }


def _second_contract() -> dict[str, Any]:
    row = _row()
    row["contract"]["contract_id"] = "C-2026-0413"
    row["contract"]["project"]["project_id"] = "P-CONTOSO-0413"
    return row


def _json(*rows: dict[str, Any]) -> str:
    return json.dumps(list(rows))


class World:
    def __init__(self) -> None:
        self.store = InMemoryVersionStore()
        self.log = InMemoryDeliveryLog()

    def run(self, text: str, *, apply: bool, name: str = "in-flight.json") -> Any:
        return import_contracts(name, text, self.store, self.log, NOW, apply=apply)

    def snapshot(self) -> tuple[Any, Any]:
        return copy.deepcopy(self.store.versions), dict(self.log.commands)


def test_a_dry_run_reports_each_row_and_its_opening_balance_and_writes_nothing() -> None:
    world = World()
    report = world.run(_json(_row(), _second_contract()), apply=False)
    assert [(r.row, r.contract_id, r.outcome) for r in report.rows] == [
        (1, "C-2026-0412", RowOutcome.WOULD_IMPORT),
        (2, "C-2026-0413", RowOutcome.WOULD_IMPORT),
    ]
    balances = report.rows[0].balances
    assert balances is not None
    assert balances.receivable == Money.of("27000.00", "EUR")  # 131,000 billed - 104,000 collected
    assert balances.contract_asset == Money.of("14000.00", "EUR")  # 145,000 recognised - 131,000 billed
    assert balances.contract_liability == Money.zero("EUR")
    assert "the prior system recognised 145000.00 EUR" in report.rows[0].warnings[0]  # engine disagrees: warn
    assert world.store.versions == {} and world.log.commands == {}
    assert report.ok and not report.applied


def test_billing_ahead_of_revenue_opens_a_contract_liability_never_both() -> None:
    row = ImportRow.model_validate(_row(recognised_to_date={"amount": "100000.00", "currency": "EUR"}))
    balances = opening_balances(row)
    assert balances.contract_liability == Money.of("31000.00", "EUR")
    assert balances.contract_asset == Money.zero("EUR")


def test_apply_records_version_1_with_its_history_and_marks_both_systems_as_holding_it() -> None:
    world = World()
    report = world.run(_json(_row()), apply=True)
    (row,) = report.rows
    assert row.outcome is RowOutcome.IMPORTED
    event = booking_event(ImportRow.model_validate(_row()))
    contract = world.store.head(CONTRACT, "C-2026-0412")
    assert contract is not None and contract.version == 1 and contract.caused_by_event_id == event.event_id
    assert contract.body["terms"] == examples.transformation_programme().model_dump(mode="json")
    assert contract.body["onboarding"]["row"] == 1
    assert world.store.head(PROJECT, "P-CONTOSO-0412").body["contract_ids"] == ["C-2026-0412"]  # type: ignore[union-attr]
    assert world.store.head(CUSTOMER, "netsuite:4711") is not None
    schedule = world.store.head(REVENUE_SCHEDULE, "C-2026-0412")
    assert schedule is not None and schedule.body["contract_version"] == 1
    opening = world.store.head(OPENING_BALANCE, "C-2026-0412")
    assert opening is not None and opening.version == 1
    assert opening.body["balances"]["receivable"] == {"amount": "27000.00", "currency": "EUR"}
    assert opening.body["history"]["recognised_to_date"] == {"amount": "145000.00", "currency": "EUR"}
    # Held, not sent: exactly the two version-1 upserts provisioning would have sent, and nothing else.
    assert sorted(world.log.commands) == [
        "erp:billing-schedule:C-2026-0412:v1",
        "psa:project:P-CONTOSO-0412:contract-v1",
    ]
    assert all(c.caused_by_event_id == event.event_id for c in world.log.commands.values())
    newer = billing_schedule_command(event, examples.transformation_programme(), 2)
    assert held_version(newer, world.log.commands_for(Target.ERP, "C-2026-0412")) == 1
    assert sorted(row.written) == sorted(
        [
            "contract v1",
            "revenue_schedule v1",
            "opening_balance v1",
            "held erp:billing-schedule:C-2026-0412:v1",
            "held psa:project:P-CONTOSO-0412:contract-v1",
        ]
    )


def test_importing_the_same_file_twice_changes_nothing() -> None:
    world = World()
    world.run(_json(_row(), _second_contract()), apply=True)
    before = world.snapshot()
    again = world.run(_json(_row(), _second_contract()), apply=True)
    assert [r.outcome for r in again.rows] == [RowOutcome.UNCHANGED, RowOutcome.UNCHANGED]
    assert all(r.written == [] for r in again.rows)
    assert world.snapshot() == before
    assert world.run(_json(_row()), apply=False).rows[0].outcome is RowOutcome.UNCHANGED


def test_a_rerun_completes_a_row_an_interrupted_import_left_half_written() -> None:
    world = World()
    world.run(_json(_row()), apply=True)
    del world.store.versions[(OPENING_BALANCE, "C-2026-0412")]  # as if the import died after the contract
    world.log.commands.pop("erp:billing-schedule:C-2026-0412:v1")
    (row,) = world.run(_json(_row()), apply=True).rows
    assert row.outcome is RowOutcome.UNCHANGED
    assert row.written == ["opening_balance v1", "held erp:billing-schedule:C-2026-0412:v1"]


def test_a_changed_row_for_an_imported_contract_is_refused_not_overwritten() -> None:
    world = World()
    world.run(_json(_row()), apply=True)
    before = world.snapshot()
    changed = _row(billed_to_date={"amount": "140000.00", "currency": "EUR"})
    (row,) = world.run(_json(changed), apply=True).rows
    assert row.outcome is RowOutcome.REFUSED
    (problem,) = row.problems
    assert problem.field == "contract.contract_id" and "by this import with other content" in problem.message
    assert world.snapshot() == before


def test_a_contract_a_booking_already_recorded_is_refused() -> None:
    world = World()
    record_contract_version(examples.contract_booked(), world.store, NOW)
    (row,) = world.run(_json(_row()), apply=True).rows
    assert row.outcome is RowOutcome.REFUSED and "by a booking" in row.problems[0].message
    assert world.log.commands == {}
    assert world.store.head(OPENING_BALANCE, "C-2026-0412") is None


def test_a_booking_after_the_import_is_refused_as_already_booked() -> None:
    world = World()
    world.run(_json(_row()), apply=True)
    with pytest.raises(BusinessRuleViolation, match="already booked"):
        record_contract_version(examples.contract_booked(), world.store, NOW)


def _problems(report: Any, row: int) -> dict[str, str]:
    return {p.field: p.message for p in report.rows[row - 1].problems}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            lambda r: r["history"].update(billed_to_date={"amount": "1", "currency": "USD"}),
            "history.billed_to_date.currency",
            "the contract is in EUR",
        ),
        (
            lambda r: r["history"].update(collected_to_date={"amount": "200000.00", "currency": "EUR"}),
            "history.collected_to_date",
            "exceeds",
        ),
        (
            lambda r: r["history"].update(as_of="2026-01-01"),
            "history.as_of",
            "before the contract was signed",
        ),
        (
            lambda r: r["history"].update(as_of="2026-12-31"),  # signed, not started, yet billed
            "history.as_of",
            "before the contract starts",
        ),
        (
            lambda r: r["history"].update(recognised_to_date={"amount": "500000.00", "currency": "EUR"}),
            "history.recognised_to_date",
            "exceeds the fixed transaction price",
        ),
        (
            lambda r: r["history"].update(billed_to_date={"amount": "-5.00", "currency": "EUR"}),
            "history.billed_to_date.amount",
            "negative",
        ),
        (
            lambda r: r["history"].update(billed_to_date={"amount": "1.001", "currency": "EUR"}),
            "history.billed_to_date.amount",
            "precision",
        ),
        (
            lambda r: r["history"].update(billed_to_date={"amount": 1.5, "currency": "EUR"}),
            "history.billed_to_date.amount",
            "never floats",
        ),
        (lambda r: r["contract"].pop("title"), "contract.title", "Field required"),
        (lambda r: r.update(billed="100"), "billed", "Extra inputs"),
        (
            lambda r: r["contract"].update(transaction_price={"amount": "1.00", "currency": "EUR"}),
            "contract",
            "billing terms total",
        ),
        (
            lambda r: r["contract"]["obligations"][0].update(recognition={"kind": "sometime"}),
            "contract.obligations.0.recognition",
            "does not match any of the expected tags",
        ),
    ],
)
def test_a_rejected_row_names_its_field_and_does_not_block_the_others(
    change: Any, field: str, says: str
) -> None:
    world = World()
    bad = _row()
    change(bad)
    report = world.run(_json(bad, _second_contract()), apply=True)
    assert [r.outcome for r in report.rows] == [RowOutcome.REJECTED, RowOutcome.IMPORTED]
    problems = _problems(report, 1)
    assert field in problems, problems
    assert says in problems[field]
    assert not report.ok
    assert world.store.head(CONTRACT, "C-2026-0412") is None
    assert any(line.startswith(f"row 1 (C-2026-0412): rejected: {field}:") for line in reports_text(report))


def test_a_contract_twice_in_one_file_rejects_the_second() -> None:
    report = World().run(_json(_row(), _row()), apply=False)
    assert [r.outcome for r in report.rows] == [RowOutcome.WOULD_IMPORT, RowOutcome.REJECTED]
    assert _problems(report, 2) == {"contract.contract_id": "C-2026-0412 is also in row 1"}


def _csv(*rows: dict[str, Any], extra: dict[str, str] | None = None) -> str:
    out = io.StringIO()
    columns = [
        "contract",
        "as_of",
        "billed_to_date",
        "recognised_to_date",
        "collected_to_date",
        *(extra or {}),
    ]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        history = row["history"]
        writer.writerow(
            {
                "contract": json.dumps(row["contract"]),
                "as_of": history["as_of"],
                **{
                    k: history[k]["amount"]
                    for k in ("billed_to_date", "recognised_to_date", "collected_to_date")
                },
                **(extra or {}),
            }
        )
    return out.getvalue()


def test_a_csv_row_is_the_same_row_as_its_json_twin() -> None:
    world = World()
    world.run(_csv(_row()), apply=True, name="in-flight.csv")
    (row,) = world.run(_json(_row()), apply=True).rows
    assert row.outcome is RowOutcome.UNCHANGED  # same meaning, same digest, same event id


def test_csv_cells_that_cannot_be_read_are_named() -> None:
    text = _csv(_row(), extra={"region": "EMEA"}).replace('"{""contract_id', '"{oops ""contract_id', 1)
    report = World().run(text, apply=False, name="in-flight.csv")
    problems = _problems(report, 1)
    assert problems["region"] == "unknown column"
    assert problems["contract"].startswith("not JSON")


def test_amounts_and_balances_stay_decimal() -> None:
    (row,) = World().run(_json(_row()), apply=False).rows
    assert row.balances is not None and isinstance(row.balances.receivable.amount, Decimal)


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("a.txt", "[]", ".json or a .csv"),
        ("a.json", "{", "not JSON"),
        ("a.json", "[]", "non-empty list"),
        ("a.csv", "contract,as_of\n", "lacks billed_to_date, recognised_to_date"),
        ("a.csv", "contract,as_of,billed_to_date,recognised_to_date\n", "no rows"),
    ],
)
def test_a_file_that_is_not_an_import_is_refused_whole(name: str, text: str, says: str) -> None:
    with pytest.raises(UnreadableFile, match=says):
        World().run(text, apply=True, name=name)
