"""`pssync import contracts` against moto: the real version store and delivery log, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pssync.adapters.aws import DynamoDBVersionStore
from pssync.cli import app
from pssync.cli.imports import import_app
from pssync.model import examples
from pssync.workflows.receivables import OPENING_BALANCE
from tests.integration.conftest import AwsWorld, context, load_handler

TABLES = ("--business-table", "business", "--delivery-log-table", "delivery-log")


def _rows() -> list[dict[str, Any]]:
    first = {
        "contract": examples.transformation_programme().model_dump(mode="json"),
        "history": {
            "as_of": "2027-03-31",
            "billed_to_date": {"amount": "131000.00", "currency": "EUR"},
            "recognised_to_date": {"amount": "120000.00", "currency": "EUR"},
            "collected_to_date": {"amount": "92000.00", "currency": "EUR"},
        },
    }
    bad = json.loads(json.dumps(first))
    bad["contract"]["contract_id"] = "C-BAD-1"
    bad["history"]["billed_to_date"]["currency"] = "USD"
    return [first, bad]


def _items(aws: AwsWorld) -> dict[str, list[dict[str, Any]]]:
    ddb = aws.clients["dynamodb"]
    return {
        table: sorted(ddb.scan(TableName=table)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
        for table in ("business", "delivery-log")
    }


def _import(path: Path, *args: str) -> Any:
    return CliRunner().invoke(import_app, ["contracts", str(path), *TABLES, "--format", "json", *args])


def test_import_dry_run_then_apply_then_again_then_a_changed_row(aws: AwsWorld, tmp_path: Path) -> None:
    path = tmp_path / "in-flight.json"
    path.write_text(json.dumps(_rows()))

    dry = _import(path)
    assert dry.exit_code == 1, dry.output  # one row rejected
    report = json.loads(dry.output)
    assert report["counts"]["would-import"] == 1 and report["counts"]["rejected"] == 1
    assert report["rows"][1]["problems"] == [
        {"field": "history.billed_to_date.currency", "message": "is USD, the contract is in EUR"}
    ]
    assert _items(aws) == {"business": [], "delivery-log": []}

    applied = json.loads(_import(path, "--apply").output)
    assert [r["outcome"] for r in applied["rows"]] == ["imported", "rejected"]
    assert applied["rows"][0]["opening_balance"]["contract_liability"] == {
        "amount": "11000.00",
        "currency": "EUR",
    }
    after_first = _items(aws)
    assert {i["sk"]["S"] for i in after_first["delivery-log"]} == {
        "project:P-CONTOSO-0412:contract-v1",
        "billing-schedule:C-2026-0412:v1",
    }
    opening = DynamoDBVersionStore("business", aws.clients["dynamodb"]).head(OPENING_BALANCE, "C-2026-0412")
    assert opening is not None and opening.version == 1
    assert opening.body["balances"]["receivable"] == {"amount": "39000.00", "currency": "EUR"}

    again = json.loads(_import(path, "--apply").output)
    assert [r["outcome"] for r in again["rows"]] == ["unchanged", "rejected"]
    assert _items(aws) == after_first

    changed = _rows()[:1]
    changed[0]["history"]["collected_to_date"]["amount"] = "100000.00"
    changed_path = tmp_path / "changed.json"
    changed_path.write_text(json.dumps(changed))
    refused = _import(changed_path, "--apply")
    assert refused.exit_code == 1
    assert json.loads(refused.output)["rows"][0]["outcome"] == "refused"
    assert _items(aws) == after_first

    shown = CliRunner().invoke(app, ["contract", "show", "C-2026-0412", *TABLES, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.output)
    assert [v["version"] for v in view["versions"]] == [1]
    assert sorted(c["idempotency_key"] for c in view["deliveries"]) == [
        "billing-schedule:C-2026-0412:v1",
        "project:P-CONTOSO-0412:contract-v1",
    ]
    # The opening position enters pssync's balances: billed and collected before pssync, on the cut-over.
    later = CliRunner().invoke(
        app, ["contract", "show", "C-2026-0412", *TABLES, "--format", "json", "--as-of", "2027-12-31"]
    )
    balances = json.loads(later.output)["balances"]
    assert balances["billed"] == {"amount": "131000.00", "currency": "EUR"}
    assert balances["collected"] == {"amount": "92000.00", "currency": "EUR"}
    assert balances["receivable"] == {"amount": "39000.00", "currency": "EUR"}


def test_provisioning_steps_replayed_for_an_onboarded_contract_send_nothing_new(
    aws: AwsWorld, tmp_path: Path, monkeypatch: Any
) -> None:
    """A booking delivered after the import is refused at its first step; the provisioning steps, run for
    the onboarded version (as a replay would), find the PSA and ERP commands already held."""
    monkeypatch.setenv("ERP_CONNECTOR", "shadow")
    monkeypatch.setenv("PSA_CONNECTOR", "shadow")
    path = tmp_path / "in-flight.json"
    path.write_text(json.dumps(_rows()[:1]))
    assert _import(path, "--apply").exit_code == 0
    before = _items(aws)

    booked = examples.contract_booked().model_dump(mode="json")
    try:
        load_handler("record_contract_version")({"event": booked}, context())
        raise AssertionError("a booking of an onboarded contract must be refused")
    except Exception as error:  # the step's typed business exception, caught into the exceptions queue
        assert "already booked" in str(error)
    onboarded = {"contract_id": "C-2026-0412", "version": 1, "newly_recorded": False}
    psa = load_handler("provision_psa_project")({"event": booked, "contract": onboarded}, context())
    erp = load_handler("publish_erp_billing_schedule")({"event": booked, "contract": onboarded}, context())
    assert psa["newly_recorded"] is False and erp["newly_recorded"] is False
    assert _items(aws) == before
