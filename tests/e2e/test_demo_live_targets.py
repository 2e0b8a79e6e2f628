"""`pssync demo --targets live`: the whole lifecycle with the ERP live against the NetSuite stand-in and the
PSA live against the Kantata OX stand-in (test equipment), in its own local runtime in a subprocess. Each
stand-in must end holding exactly what the delivery log says was delivered. NetSuite: one customer, one
project per contract, one sales order per contract written once per contract version, one invoice per
released milestone, balanced journals. Kantata: one workspace per project at its head version's budget and
phases, one external reference each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pssync.local import demo_scenario as scenario
from pssync.money import Money

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("demo-live") / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    command = [sys.executable, "-c", "from pssync.cli import main; main()", "demo", "--targets", "live"]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [*command, "--report", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,  # a hang guard, not a performance target
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_both_targets_ran_live_and_each_stand_in_holds_exactly_what_was_delivered(
    report: dict[str, Any],
) -> None:
    assert report["targets"] == {"erp": "live", "psa": "live"}
    assert report["stand_ins"]["netsuite_check"] == []
    assert report["stand_ins"]["kantata_check"] == []
    assert {e["status"] for e in report["executions"]} == {"SUCCEEDED"}


def test_one_customer_one_project_per_contract_one_order_written_per_version(report: dict[str, Any]) -> None:
    records = report["stand_ins"]["holdings"]["netsuite"]["records"]
    erp = report["commands"]["erp"]
    assert list(records["customer"]) == ["CUST-CONTOSO"]
    assert len(records["job"]) == 2
    versions = {
        contract: {int(r.rsplit(" v", 1)[1]) for r in order["revisions"]}
        for contract, order in records["salesOrder"].items()
    }
    assert versions == {scenario.EU_CONTRACT: {1, 2}, scenario.US_CONTRACT: {1}}  # the change order: v2
    releases = {c["external_id"] for c in erp if c["operation"] == "release_milestone_invoice"}
    assert set(records["invoice"]) == releases and len(releases) == 6


def test_every_journal_balances_and_the_limit_was_never_exceeded(report: dict[str, Any]) -> None:
    netsuite = report["stand_ins"]["holdings"]["netsuite"]
    journals = netsuite["records"]["journalEntry"]
    assert len(journals) == 6  # one per close: two entities, three months
    for journal in journals.values():
        lines = journal["line"]["items"]
        assert sum(Decimal(str(x.get("debit", 0))) for x in lines) == sum(
            Decimal(str(x.get("credit", 0))) for x in lines
        )
    counters = netsuite["counters"]
    assert counters["throttled"] == 0 and counters["max_in_flight"] <= netsuite["concurrency_limit"]
    assert counters["unauthorised"] == 0 and counters["tokens_issued"] == counters["token_requests"]


def test_kantata_holds_one_workspace_per_project_at_its_head_versions_budget(report: dict[str, Any]) -> None:
    kantata = report["stand_ins"]["holdings"]["kantata"]
    heads: dict[str, dict[str, Any]] = {}
    for command in report["commands"]["psa"]:
        head = heads.get(command["external_id"])
        if head is None or command["payload"]["contract_version"] > head["payload"]["contract_version"]:
            heads[command["external_id"]] = command
    assert sorted(h["payload"]["contract_version"] for h in heads.values()) == [1, 2]  # the change order
    references = [r for r in kantata["external_references"] if r["subject_type"] == "Workspace"]
    workspace_of = {r["service_model_ref"]: r["subject_id"] for r in references}
    assert len(references) == len(workspace_of) == len(heads) == 2
    workspaces = {w["id"]: w for w in kantata["workspaces"]}
    assert len(workspaces) == 2
    for project_id, head in heads.items():
        workspace = workspaces[workspace_of[project_id]]
        budget = Money.model_validate(head["payload"]["budget"])  # the transaction price, as JSON
        assert workspace["price_in_cents"] == budget.minor_units, project_id
        assert workspace["currency"] == head["payload"]["currency"]
        phases = {s["title"] for s in kantata["stories"] if s["workspace_id"] == workspace["id"]}
        assert {w["name"] for w in head["payload"]["project"]["wbs"]} <= phases


def test_each_t_and_m_project_has_its_own_kantata_rate_card_at_its_head_rates(report: dict[str, Any]) -> None:
    kantata = report["stand_ins"]["holdings"]["kantata"]
    role_ids = {r["name"]: r["id"] for r in kantata["roles"]}
    workspaces = {w["id"]: w for w in kantata["workspaces"]}
    references = kantata["external_references"]
    workspace_of = {
        r["service_model_ref"]: r["subject_id"] for r in references if r["subject_type"] == "Workspace"
    }
    cards = {c["id"]: c for c in kantata["rate_cards"]}
    heads: dict[str, dict[str, Any]] = {}
    for command in report["commands"]["psa"]:
        head = heads.get(command["external_id"])
        if head is None or command["payload"]["contract_version"] > head["payload"]["contract_version"]:
            heads[command["external_id"]] = command
    card_of = {
        r["service_model_ref"]: r["subject_id"]
        for r in kantata["external_references"]
        if r["subject_type"] == "RateCard"
    }
    assert set(card_of) == set(heads) == {scenario.EU_PROJECT, scenario.US_PROJECT}  # both bill T&M
    for project_id, head in heads.items():
        card = cards[card_of[project_id]]
        assert card["currency"] == head["payload"]["currency"]
        assert workspaces[workspace_of[project_id]]["rate_card_id"] == card["id"]
        versions = [
            v for v in kantata["rate_card_set_versions"] if v["rate_card_set_id"] == card["rate_card_set_id"]
        ]
        current = max((v for v in versions if v["active"]), key=lambda v: v["effective_date"])
        held = {
            str(row["role_id"]): row["rates"]
            for row in kantata["rate_card_table_rows"]
            if str(row["rate_card_set_version_id"]) == current["id"]
        }
        for line in head["payload"]["time_and_materials"]["rate_card"]:
            rate = Money.model_validate(line["hourly_rate"])
            assert held[role_ids[line["role"]]] == [{"currency": rate.currency, "rate": rate.minor_units}]
