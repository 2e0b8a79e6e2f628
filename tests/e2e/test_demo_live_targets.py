"""`pssync demo --targets live`: the whole lifecycle with the ERP live against the NetSuite stand-in (test
equipment), in its own local runtime in a subprocess. The stand-in must end holding exactly what the
delivery log says was delivered: one customer, one project per contract, one sales order per contract
written once per contract version, one invoice per released milestone, balanced journals."""

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


def test_the_erp_ran_live_and_the_stand_in_holds_exactly_what_was_delivered(report: dict[str, Any]) -> None:
    assert report["targets"] == {"erp": "live", "psa": "shadow"}
    assert report["stand_ins"]["netsuite_check"] == []
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
