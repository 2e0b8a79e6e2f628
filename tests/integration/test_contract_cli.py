"""`pssync contract show` / `explain` against moto: a contract booked, amended and worked on, written by the
real step handlers (business table, shadow delivery log), read back through the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from pssync.cli import app
from pssync.cli.contract import find_table
from pssync.model import examples
from pssync.model.contract import TimeAndMaterialsBilling
from pssync.model.events import ContractAmended, ContractBooked
from pssync.money import Money
from tests.integration.conftest import AwsWorld, context, load_handler

CONTRACT_ID = "C-2027-0101"
TABLES = ("--business-table", "business", "--delivery-log-table", "delivery-log")


def _booking() -> ContractBooked:
    booked = examples.contract_booked()
    return booked.model_copy(
        update={"data": booked.data.model_copy(update={"contract": examples.delivery_programme()})}
    )


def _amendment() -> ContractAmended:
    """The hypercare not-to-exceed raised to 15,000 EUR and the price to 65,000 EUR."""
    terms = examples.delivery_programme()
    hypercare = terms.billing[1]
    assert isinstance(hypercare, TimeAndMaterialsBilling)
    raised = hypercare.model_copy(update={"not_to_exceed": Money.of("15000.00", "EUR")})
    amended = terms.model_copy(
        update={"billing": [terms.billing[0], raised], "transaction_price": Money.of("65000.00", "EUR")}
    )
    event = examples.contract_amended()
    return event.model_copy(update={"data": event.data.model_copy(update={"contract": amended})})


def _run(steps: list[tuple[str, str, tuple[str, ...]]], event: dict[str, Any]) -> dict[str, Any]:
    """Handlers in the state machine's order: (function, result key, state keys it is given)."""
    state: dict[str, Any] = {"event": event}
    for function, key, given in steps:
        state[key] = load_handler(function)({k: state[k] for k in ("event", *given)}, context())
    return state


@pytest.fixture
def recorded(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    monkeypatch.setenv("ERP_CONNECTOR", "shadow")
    monkeypatch.setenv("PSA_CONNECTOR", "shadow")
    contract = ("contract",)
    _run(
        [
            ("record_contract_version", "contract", ()),
            ("provision_psa_project", "psa", contract),
            ("publish_erp_billing_schedule", "erp", contract),
            ("build_revenue_schedule", "revenue", contract),
        ],
        _booking().model_dump(mode="json"),
    )
    amended = _run(
        [
            ("guard_contract_version", "guard", ()),
            ("record_amended_version", "contract", ()),
            ("classify_modification", "classification", contract),
            ("update_psa_project", "psa", contract),
            ("update_erp_billing_schedule", "erp", contract),
            ("remeasure_revenue", "revenue", contract),
        ],
        _amendment().model_dump(mode="json"),
    )
    assert amended["contract"]["version"] == 2
    time = _run(
        [
            ("match_time_entry", "match", ()),
            ("record_billable_time", "recorded", ("match",)),
            ("send_billable_time", "erp", ("recorded",)),
            ("remeasure_time_revenue", "revenue", ("recorded",)),
        ],
        examples.time_approved().model_dump(mode="json"),
    )
    assert time["erp"]["sent"] is True
    return aws


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["contract", *args], env={"COLUMNS": "400"})


def test_show_as_json_lists_versions_commands_schedules_ledger_and_balances(recorded: AwsWorld) -> None:
    result = _cli("show", CONTRACT_ID, "--as-of", "2027-12-31", "--format", "json", *TABLES)
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)

    assert [v["version"] for v in view["versions"]] == [1, 2]
    assert [v["caused_by_event_id"] for v in view["versions"]] == [_booking().event_id, _amendment().event_id]
    assert view["versions"][1]["changes"]["price_change"] == {"amount": "5000.00", "currency": "EUR"}
    assert view["versions"][1]["changes"]["billing_changed"] is True
    commands = [(c["target"], c["operation"], c["idempotency_key"]) for c in view["deliveries"]]
    assert sorted(commands) == [
        ("erp", "upsert_billable_time", "time:psa/TE-1001:2027-05-04T09:00:00.000Z"),
        ("erp", "upsert_billing_schedule", f"billing-schedule:{CONTRACT_ID}:v1"),
        ("erp", "upsert_billing_schedule", f"billing-schedule:{CONTRACT_ID}:v2"),
        ("psa", "upsert_project", "project:P-FABRIKAM-0101:contract-v1"),
        ("psa", "upsert_project", "project:P-FABRIKAM-0101:contract-v2"),
    ]
    assert [c["recorded_at"] for c in view["deliveries"]] == sorted(
        c["recorded_at"] for c in view["deliveries"]
    )
    assert [(s["version"], s["contract_version"]) for s in view["revenue_schedule"]] == [
        (1, 1),
        (2, 2),
        (3, 2),
    ]
    assert view["revenue_schedule_head"]["lines"][0]["amount"] == {"amount": "1680.00", "currency": "EUR"}
    [ledger] = view["ledgers"]
    assert [v["body"]["kind"] for v in ledger["versions"]] == ["line", "sent"]
    # Measured at the end of 2027 (everything here was recorded today, so all of it is known then): the
    # hypercare hours earn what they may invoice, 8 h x 210 EUR; no invoice is recorded yet.
    balances = view["balances"]
    assert balances["measured_on"] == "2027-12-31"
    assert (
        balances["recognised_to_date"]
        == balances["contract_asset"]
        == {"amount": "1680.00", "currency": "EUR"}
    )
    assert balances["billed"] == {"amount": "0.00", "currency": "EUR"} and balances["collected"] is None


def test_show_as_a_table_and_an_as_of_before_the_booking(recorded: AwsWorld) -> None:
    table = _cli("show", CONTRACT_ID, *TABLES)  # as of now: before the contract starts, nothing recognised
    assert table.exit_code == 0, table.output
    for heading in (
        "Contract versions",
        "What each system was told",
        "Revenue schedule v3",
        "Ledger time_ledger",
    ):
        assert heading in table.output
    assert "price +5000.00 EUR, billing" in table.output

    before = _cli("show", CONTRACT_ID, "--as-of", "2020-01-01", *TABLES)
    assert before.exit_code == 1
    assert "2 version(s) recorded after 2020-01-01T23:59:59" in before.output


def test_explain_walks_the_period_back_to_the_time_entry_and_its_events(recorded: AwsWorld) -> None:
    result = _cli(
        "explain", CONTRACT_ID, "--period", "2027-05", "--format", "json", "--business-table", "business"
    )
    assert result.exit_code == 0, result.output
    explained = json.loads(result.output)
    assert explained["schedule_version"] == 3
    assert explained["schedule_caused_by"]["event_id"] == examples.time_approved().event_id
    [line] = explained["lines"]
    assert line["obligation_id"] == "HYPERCARE"
    assert line["amount"] == line["recomputed"] == {"amount": "1680.00", "currency": "EUR"}
    assert line["contract_version"] == 2
    assert line["contract_event"]["event_id"] == _amendment().event_id
    [fact] = line["facts"]
    assert (fact["ledger"], fact["ledger_version"], fact["on"]) == ("time_ledger", 1, "2027-05-03")
    assert fact["event"]["event_id"] == examples.time_approved().event_id

    table = _cli("explain", CONTRACT_ID, "--period", "2027-05", "--business-table", "business")
    assert table.exit_code == 0 and "Delivery facts behind the period" in table.output
    assert _cli("explain", CONTRACT_ID, "--period", "May", "--business-table", "business").exit_code == 2


def test_tables_are_found_by_name_and_paired_by_stack(aws: AwsWorld) -> None:
    ddb = aws.clients["dynamodb"]
    keys = {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    for stack in ("pssync-dev", "pssync-prod"):
        for table in ("BusinessTable", "DeliveryLogTable"):
            ddb.create_table(TableName=f"{stack}-Tables{table}1A2B3C-XYZ{stack[-3:]}", **keys)
    with pytest.raises(LookupError, match="pssync-dev-TablesBusinessTable"):
        find_table(ddb, "BusinessTable")
    business = find_table(ddb, "BusinessTable", near="pssync-prod-TablesDeliveryLogTable1A2B3C-XYZrod")
    assert business == "pssync-prod-TablesBusinessTable1A2B3C-XYZrod"
    assert (
        find_table(ddb, "DeliveryLogTable", near=business)
        == "pssync-prod-TablesDeliveryLogTable1A2B3C-XYZrod"
    )


def test_show_reads_past_a_refusal_the_never_regress_guard_recorded(recorded: AwsWorld) -> None:
    """A `refused#` item (no `command`) beside a record's deliveries is not a delivery: show lists the same
    deliveries as before it (it raised KeyError before)."""
    from pssync.adapters.aws import DynamoDBDeliveryLog
    from pssync.model.commands import ConnectorCommand, Target

    before = json.loads(_cli("show", CONTRACT_ID, "--format", "json", *TABLES).output)["deliveries"]
    stale = ConnectorCommand(
        target=Target.PSA,
        operation="upsert_project",
        external_id="P-FABRIKAM-0101",
        idempotency_key="project:P-FABRIKAM-0101:contract-v1-late-copy",
        payload={"contract_id": CONTRACT_ID, "contract_version": 1},
        caused_by_event_id="late-copy",
        correlation_id="late-copy",
    )
    DynamoDBDeliveryLog("delivery-log", recorded.clients["dynamodb"]).record_refusal(
        stale, held_version=2, recorded_at="2027-06-01T00:00:00+00:00"
    )
    result = _cli("show", CONTRACT_ID, "--format", "json", *TABLES)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["deliveries"] == before
