"""What a booking left behind, per contract: the evidence that it was applied once (R2, R3, R6).

Applied once means: one contract version, one provision execution named after its event id (succeeded),
one ContractBooked and one EngagementActivated event id published on the bus, one PSA and one ERP command
in the delivery log. Applied twice: any of them more than once. Not applied: any of them missing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.workflows.provision import CONTRACT
from scorecard.harness import Stack


@dataclass
class Evidence:
    """Read once after a row's deliveries settled; `checks(contract_id, event_id)` per booking."""

    store: DynamoDBVersionStore
    executions: Counter[str] = field(default_factory=Counter)
    succeeded: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    booked_ids: dict[str, set[str]] = field(default_factory=dict)
    activated_ids: dict[str, set[str]] = field(default_factory=dict)
    bus_copies: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)

    def checks(self, contract_id: str, event_id: str) -> dict[str, int]:
        name = f"ContractBooked-{event_id}"
        return {
            "contract_versions": len(self.store.history(CONTRACT, contract_id)),
            "executions_succeeded": self.succeeded[name],
            "contract_booked_published": len(self.booked_ids.get(contract_id, ())),
            "engagement_activated_published": len(self.activated_ids.get(contract_id, ())),
            "psa_commands": self.commands[f"P-{contract_id}"],
            "erp_commands": self.commands[contract_id],
        }

    def redelivered(self, event_ids: set[str]) -> int:
        """Bus deliveries of these events beyond the first (at-least-once: the same event id again)."""
        return sum(max(0, self.bus_copies[e] - 1) for e in event_ids)


def _contract_of(detail: dict[str, Any]) -> str | None:
    data = detail.get("data", {})
    if "contract" in data:
        return str(data["contract"]["contract_id"])
    contract_id = data.get("contract_id")
    return None if contract_id is None else str(contract_id)


def gather(stack: Stack, published: list[dict[str, Any]]) -> Evidence:
    """`published`: the bus deliveries the row captured (Stack.drain_capture)."""
    ddb = stack.runtime.clients["dynamodb"]
    evidence = Evidence(store=DynamoDBVersionStore(stack.runtime.function_env("BUSINESS_TABLE_NAME"), ddb))
    for execution in stack.executions_of("Provision"):
        evidence.executions[execution["name"]] += 1
        if execution["status"] == "SUCCEEDED":
            evidence.succeeded[execution["name"]] += 1
        elif execution["status"] != "RUNNING":
            evidence.failed[execution["name"]] += 1
    for event in published:
        if event["detail-type"] not in ("ContractBooked", "EngagementActivated"):
            continue
        detail = event["detail"]
        contract_id = _contract_of(detail)
        if contract_id is None:
            continue
        ids = evidence.booked_ids if event["detail-type"] == "ContractBooked" else evidence.activated_ids
        ids.setdefault(contract_id, set()).add(detail["event_id"])
        evidence.bus_copies[detail["event_id"]] += 1
    log = DynamoDBDeliveryLog(stack.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb)
    evidence.commands = Counter(c.external_id for c in log.all_commands())
    return evidence


def idempotency_records(stack: Stack) -> dict[str, str]:
    """Every record of the ingest's idempotency table: id -> status (INPROGRESS, COMPLETED)."""
    ddb = stack.runtime.clients["dynamodb"]
    table = stack.runtime.function_env("IDEMPOTENCY_TABLE_NAME")
    records: dict[str, str] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            records[item["id"]["S"]] = item.get("status", {}).get("S", "?")
    return records
