"""One embedded local runtime for the end-to-end tests: the synthesized template on moto, over HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pssync.local.runtime import LocalRuntime
from pssync.local.webhook_client import post_webhook, standard_webhook_headers
from pssync.model import examples

ROOT = Path(__file__).resolve().parents[2]
# The default CRM source first (the driver posts bookings there), then a PSA source: data ownership
# refuses approved time from a CRM, so time entries come from a Certinia (PSA) Standard Webhooks sender.
E2E_CONTEXT = {
    "pssync:sources": [
        {"name": "crm", "scheme": "standard-webhooks", "system": "salesforce"},
        {"name": "psa", "scheme": "standard-webhooks", "system": "certinia"},
        {"name": "erp", "scheme": "standard-webhooks", "system": "netsuite"},
    ]
}
PSA_SOURCE = "psa"
ERP_SOURCE = "erp"  # invoices and payments are the ERP's facts


class Driver:
    """Sends signed webhooks and reads back what the runtime did."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.http = httpx.Client(timeout=30)
        self.source = runtime.source_registry()[0]["name"]
        self.secret = runtime.signing_secrets[self.source]["current"]

    def body_for(self, contract_id: str, **terms_changes: Any) -> bytes:
        document = copy.deepcopy(examples.contract_booked_webhook())
        contract = document["data"]["contract"]  # type: ignore[index]
        contract["contract_id"] = contract_id
        contract["project"]["project_id"] = f"P-{contract_id}"
        contract.update(terms_changes)
        return json.dumps(document).encode()

    def post(
        self, body: bytes, delivery_id: str, *, secret: str | None = None, source: str | None = None
    ) -> httpx.Response:
        source = source or self.source
        secret = secret or self.runtime.signing_secrets[source]["current"]
        headers = standard_webhook_headers(secret, body, delivery_id=delivery_id)
        return post_webhook(self.http, self.runtime.api.url, source, body, headers)

    def table_counts(self) -> dict[str, int]:
        ddb = self.runtime.clients["dynamodb"]
        return {
            name: int(ddb.scan(TableName=name, Select="COUNT")["Count"])
            for name in self.runtime.resources.tables.values()
        }

    def object_counts(self) -> dict[str, int]:
        s3 = self.runtime.clients["s3"]
        return {
            name: int(s3.list_objects_v2(Bucket=name).get("KeyCount", 0))
            for name in self.runtime.resources.buckets.values()
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "objects": self.object_counts(),
            "tables": self.table_counts(),
            "executions": len(self.runtime.executions()),
            "queues": {q.name: q.visible + q.in_flight for q in self.runtime.queue_depths()},
        }

    def executions_for(self, event_id: str) -> list[dict[str, Any]]:
        return [e for e in self.runtime.executions() if event_id in e["name"]]


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    secrets_file = tmp_path_factory.mktemp("local") / "secrets.json"
    # Retry back-off sleeps are real in moto's interpreter: shrink them so failure paths stay fast.
    with LocalRuntime(ROOT, retry_time_scale=0.01, secrets_file=secrets_file, context=E2E_CONTEXT) as local:
        yield local


@pytest.fixture(scope="session")
def driver(runtime: LocalRuntime) -> Driver:
    return Driver(runtime)
