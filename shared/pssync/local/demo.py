"""`make demo`: a closed-won deal through the embedded runtime over signed HTTP, then the evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.local.runtime import LocalRuntime
from pssync.local.webhook_client import post_webhook, standard_webhook_headers
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE

SAMPLE = Path("events/samples/webhooks/standard-webhooks/contract-booked.json")


def run_demo(runtime: LocalRuntime, sample: Path) -> dict[str, Any]:
    source = runtime.source_registry()[0]["name"]
    secret = runtime.signing_secrets[source]["current"]
    body = sample.read_bytes()
    headers = standard_webhook_headers(secret, body)
    deliveries = []
    with httpx.Client(timeout=30) as client:
        first = post_webhook(client, runtime.api.url, source, body, headers)
        deliveries.append({"attempt": "signed closed-won", "status": first.status_code, "body": first.json()})
        # The sender retries the same delivery (same webhook-id): it must not book twice.
        again = post_webhook(client, runtime.api.url, source, body, headers)
        deliveries.append(
            {"attempt": "same delivery again", "status": again.status_code, "body": again.json()}
        )
        forged = dict(standard_webhook_headers("whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3ItZGVtbw==", body))
        bad = post_webhook(client, runtime.api.url, source, body, forged)
        deliveries.append({"attempt": "forged signature", "status": bad.status_code, "body": bad.json()})
    runtime.wait_until_idle(timeout=120)
    return collect_report(
        runtime, deliveries, contract_id=json.loads(body)["data"]["contract"]["contract_id"]
    )


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
        }
        for v in store.history(CONTRACT, contract_id)
    ]
    revenue = store.head(REVENUE_SCHEDULE, contract_id)
    commands = [c.model_dump(mode="json") for c in log.all_commands()]
    return {
        "deliveries": deliveries,
        "contract_versions": contract_versions,
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
