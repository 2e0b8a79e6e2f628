"""`make demo`: a closed-won deal and its change order through the embedded runtime, then the evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.local.runtime import LocalRuntime
from pssync.local.webhook_client import post_webhook, standard_webhook_headers
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE

SAMPLES = Path("events/samples/webhooks/standard-webhooks")
BOOKED = "contract-booked.json"
AMENDED = "contract-amended.json"
FORGED_SECRET = "whsec_" + "Zm9yZ2VkLWtleS1mb3ItZGVtbw=="


def run_demo(runtime: LocalRuntime, samples: Path) -> dict[str, Any]:
    """Book a deal, show that a retry and a forgery change nothing, then amend it with a change order."""
    source = next(s["name"] for s in runtime.source_registry() if s.get("secret_id"))
    secret = runtime.signing_secrets[source]["current"]
    booked = (samples / BOOKED).read_bytes()
    amended = (samples / AMENDED).read_bytes()
    deliveries: list[dict[str, Any]] = []

    def send(client: httpx.Client, attempt: str, body: bytes, headers: dict[str, str]) -> None:
        response = post_webhook(client, runtime.api.url, source, body, headers)
        deliveries.append({"attempt": attempt, "status": response.status_code, "body": response.json()})

    with httpx.Client(timeout=30) as client:
        headers = standard_webhook_headers(secret, booked)
        send(client, "signed closed-won", booked, headers)
        # The sender retries the same delivery (same webhook-id): it must not book twice.
        send(client, "same delivery again", booked, headers)
        send(client, "forged signature", booked, standard_webhook_headers(FORGED_SECRET, booked))
        runtime.wait_until_idle(timeout=120)
        send(client, "signed change order", amended, standard_webhook_headers(secret, amended))
    runtime.wait_until_idle(timeout=120)
    return collect_report(
        runtime, deliveries, contract_id=json.loads(booked)["data"]["contract"]["contract_id"]
    )


def _classifications(runtime: LocalRuntime) -> list[dict[str, Any]]:
    """The modification treatment each amendment execution decided (its ClassifyModification result)."""
    sfn = runtime.clients["stepfunctions"]
    found = []
    for execution in runtime.executions():
        if not execution["name"].startswith("ContractAmended") or execution["status"] != "SUCCEEDED":
            continue
        output = json.loads(
            sfn.describe_execution(executionArn=execution["executionArn"]).get("output") or "{}"
        )
        if "classification" in output:
            found.append(
                {
                    "execution": execution["name"],
                    "contract_version": output["contract"]["version"],
                    **output["classification"],
                }
            )
    return found


def collect_report(
    runtime: LocalRuntime, deliveries: list[dict[str, Any]], contract_id: str
) -> dict[str, Any]:
    dynamodb = runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(runtime.function_env("BUSINESS_TABLE_NAME"), dynamodb)
    log = DynamoDBDeliveryLog(runtime.function_env("DELIVERY_LOG_TABLE_NAME"), dynamodb)
    contract_versions = [
        {
            "version": v.version,
            "caused_by_event_id": v.caused_by_event_id,
            "recorded_at": v.recorded_at,
            "transaction_price": v.body["terms"]["transaction_price"],
            "obligations": [o["obligation_id"] for o in v.body["terms"]["obligations"]],
        }
        for v in store.history(CONTRACT, contract_id)
    ]
    revenue = store.head(REVENUE_SCHEDULE, contract_id)
    commands = [c.model_dump(mode="json") for c in log.all_commands()]
    return {
        "deliveries": deliveries,
        "contract_versions": contract_versions,
        "modifications": _classifications(runtime),
        "commands": {
            "psa": [c for c in commands if c["target"] == "psa"],
            "erp": [c for c in commands if c["target"] == "erp"],
        },
        "revenue_schedule": None if revenue is None else {"version": revenue.version, **revenue.body},
        "executions": [
            {
                "name": e["name"],
                "status": e["status"],
                "started": e["startDate"].isoformat(),
                "stopped": e["stopDate"].isoformat() if e.get("stopDate") else None,
            }
            for e in runtime.executions()
        ],
        "queues": [d.__dict__ for d in runtime.queue_depths()],
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
