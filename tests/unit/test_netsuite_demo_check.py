"""The demo's check that the NetSuite stand-in holds exactly what the delivery log says was delivered."""

from __future__ import annotations

import copy
from typing import Any

from pssync.local.demo import expected_netsuite_records, netsuite_check

CUSTOMER = {"customer_id": "CUST-1", "name": "Contoso", "external_ids": {}}


def command(operation: str, external_id: str, **payload: Any) -> dict[str, Any]:
    return {
        "operation": operation,
        "external_id": external_id,
        "payload": {"customer": CUSTOMER, "project_id": "P-1", **payload},
    }


COMMANDS = [
    command("upsert_billing_schedule", "C-1", contract_version=1),
    command("upsert_billing_schedule", "C-1", contract_version=2),
    command("release_milestone_invoice", "C-1/M1"),
    command("upsert_billable_time", "psa/TE-1"),
    command("post_journal_entry", "NL01/C-1/2026-08", kind="recognition"),
]


def held(memo: str, **fields: Any) -> dict[str, Any]:
    return {"id": "1", "memo": memo, "revisions": [memo], **fields}


def holdings() -> dict[str, Any]:
    balanced = {"line": {"items": [{"debit": 10.5}, {"credit": 10.5}]}}
    return {
        "records": {
            "customer": {"CUST-1": held("")},
            "job": {"P-1": held("")},
            "salesOrder": {
                "C-1": {
                    **held("pssync contract C-1 v2"),
                    "revisions": [
                        "pssync contract C-1 v1",
                        "pssync contract C-1 v2",
                        "pssync contract C-1 v2",
                    ],
                }
            },
            "invoice": {"C-1/M1": held("")},
            "timeBill": {"psa/TE-1": held("")},
            "journalEntry": {"NL01/C-1/2026-08/recognition": held("", **balanced)},
        }
    }


def test_what_the_log_delivered_is_what_netsuite_must_hold() -> None:
    assert expected_netsuite_records(COMMANDS) == {
        "salesOrder": {"C-1"},
        "job": {"P-1"},
        "customer": {"CUST-1"},
        "invoice": {"C-1/M1"},
        "timeBill": {"psa/TE-1"},
        "journalEntry": {"NL01/C-1/2026-08/recognition"},
    }


def test_holdings_that_match_the_log_pass_a_retried_write_included() -> None:
    assert netsuite_check(COMMANDS, holdings()) == []


def test_a_missing_invoice_an_extra_record_a_missing_version_and_an_unbalanced_journal_are_each_found() -> (
    None
):
    state = copy.deepcopy(holdings())
    records = state["records"]
    del records["invoice"]["C-1/M1"]
    records["invoice"]["C-1/M9"] = held("")
    records["salesOrder"]["C-1"] = held("pssync contract C-1 v1")
    records["journalEntry"]["NL01/C-1/2026-08/recognition"]["line"]["items"][1]["credit"] = 10.49
    assert netsuite_check(COMMANDS, state) == [
        "NetSuite lacks invoice ['C-1/M1']",
        "NetSuite holds invoice the log never delivered: ['C-1/M9']",
        "salesOrder C-1: versions written [1], delivered [1, 2]",
        "salesOrder C-1 does not hold v2",
        "journalEntry NL01/C-1/2026-08/recognition does not balance: Dr 10.5 Cr 10.49",
    ]


def test_a_customer_netsuite_already_holds_is_not_expected_as_an_upsert() -> None:
    linked = {**CUSTOMER, "external_ids": {"netsuite": "4711"}}
    commands = [{**COMMANDS[3], "payload": {**COMMANDS[3]["payload"], "customer": linked}}]
    assert "customer" not in expected_netsuite_records(commands)
