"""Requests as each vendor sends them, signed with the run's secrets: the raw material of every row."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pssync.model import examples
from scorecard import context as ctx

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "events" / "samples" / "webhooks"


@dataclass
class Request:
    """One HTTP request to the webhook API; headers as a list, so a header may be repeated or left out."""

    source: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    method: str = "POST"
    query: str = ""
    path: str | None = None  # default: /webhooks/{source}

    def target(self) -> str:
        path = self.path if self.path is not None else f"/webhooks/{self.source}"
        return path + (f"?{self.query}" if self.query else "")


def _sample(relative: str) -> Any:
    return json.loads((SAMPLES / relative).read_text())


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# --- signers ---------------------------------------------------------------------------------------


def standard_headers(
    secret: str, body: bytes, delivery_id: str, timestamp: int | None = None
) -> list[tuple[str, str]]:
    """Standard Webhooks over the raw bytes (the scheme's definition: id.timestamp.body)."""
    sent = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{delivery_id}.{sent}.".encode() + body, hashlib.sha256).digest()
    return [
        ("content-type", "application/json"),
        ("webhook-id", delivery_id),
        ("webhook-timestamp", str(sent)),
        ("webhook-signature", "v1," + base64.b64encode(digest).decode()),
    ]


def hubspot_headers(
    secret: str, body: bytes, timestamp_ms: int | None = None, query: str = ""
) -> list[tuple[str, str]]:
    sent = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    uri = ctx.HUBSPOT_PUBLIC_URL + (f"?{query}" if query else "")
    message = b"POST" + uri.encode() + body + str(sent).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return [
        ("Content-Type", "application/json"),
        ("X-HubSpot-Signature-v3", signature),
        ("X-HubSpot-Request-Timestamp", str(sent)),
    ]


def jira_headers(secret: str, body: bytes, identifier: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("X-Hub-Signature", "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()),
        ("X-Atlassian-Webhook-Identifier", identifier),
        ("X-Atlassian-Webhook-Flow", "Primary"),
    ]


def dataverse_headers(key: str) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("x-pssync-key", key)]


def salesforce_headers() -> list[tuple[str, str]]:
    return [("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", '""')]


# --- documents -------------------------------------------------------------------------------------


def booking_document(contract_id: str, **terms_changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(examples.contract_booked_webhook())
    contract = document["data"]["contract"]
    contract["contract_id"] = contract_id
    contract["project"]["project_id"] = f"P-{contract_id}"
    contract.update(terms_changes)
    return document


def amendment_document(contract_id: str, source_version: str, title: str) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(examples.contract_amended_webhook())
    data = document["data"]
    data["source_version"] = source_version
    data["reason"] = title
    data["contract"]["contract_id"] = contract_id
    data["contract"]["project"]["project_id"] = f"P-{contract_id}"
    data["contract"]["title"] = title
    return document


CONTRACT_PROPERTIES = ("amount", "deal_currency_code", "pssync_contract_json")  # a change to one amends


def hubspot_batch(rng: random.Random, *, closed_won: bool = True) -> list[dict[str, Any]]:
    """A batch with closed-won deals (each would be a ClosedWonSignalled: a write) or only other changes."""
    batch = _sample("hubspot/deal-closed-won-batch.json")
    now_ms = int(time.time() * 1000)
    for event in batch:
        event["eventId"] = rng.randrange(10**9, 10**10)
        event["objectId"] = rng.randrange(10**10, 10**11)
        event["occurredAt"] = now_ms - 2_000
        if not closed_won and event.get("propertyName") == "dealstage":
            event["propertyValue"] = "appointmentscheduled"
        if not closed_won and event.get("propertyName") in (
            "amount",
            "deal_currency_code",
            "pssync_contract_json",
        ):
            event["propertyName"] = "hubspot_owner_id"  # a contract property change is a signal: a write
    return list(batch)


def jira_document(rng: random.Random, *, milestone_done: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = _sample("jira/milestone-done.json")
    document["timestamp"] = int(time.time() * 1000)
    document["issue"]["key"] = f"CONTOSO-{rng.randrange(100, 10**6)}"
    document["issue"]["id"] = str(rng.randrange(10**4, 10**7))
    if not milestone_done:  # a transition that is no business event: acknowledged, nothing written
        for item in document["changelog"]["items"]:
            if item.get("field") == "status":
                item["toString"] = "In Progress"
        document["issue"]["fields"]["status"]["name"] = "In Progress"
    return document


def _dotnet_date(epoch_ms: int) -> str:
    return f"/Date({epoch_ms})/"


def dataverse_invoice(rng: random.Random) -> dict[str, Any]:
    """An invoice create from Dynamics 365 (an ERP fact it owns): accepted, it is an InvoicePosted."""
    document: dict[str, Any] = _sample("dataverse/invoice-create.json")
    document["OperationCreatedOn"] = _dotnet_date(int(time.time() * 1000))
    document["RequestId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return document


def dataverse_open_update(rng: random.Random) -> dict[str, Any]:
    """An opportunity update that is not a win: acknowledged without an event."""
    document: dict[str, Any] = _sample("dataverse/opportunity-update-won.json")
    document["OperationCreatedOn"] = _dotnet_date(int(time.time() * 1000))
    document["RequestId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    document["InputParameters"][0]["value"]["Attributes"][0]["value"]["Value"] = 0  # statecode: Open
    document["PostEntityImages"][0]["value"]["Attributes"][1]["value"]["Value"] = 0
    return document


def salesforce_message(rng: random.Random, *, won: bool = True) -> bytes:
    text = (SAMPLES / "salesforce-outbound" / "opportunity-closed-won.xml").read_text()
    for suffix in ("E", "F", "G", "H"):
        text = text.replace(f"04l5g00000AbCd{suffix}AAX", f"04l5g{rng.randrange(10**9, 10**10)}{suffix}AA")
    if not won:
        text = text.replace("<sf:IsWon>true</sf:IsWon>", "<sf:IsWon>false</sf:IsWon>").replace(
            "<sf:StageName>Closed Won</sf:StageName>", "<sf:StageName>Negotiation/Review</sf:StageName>"
        )
    return text.encode("utf-8")


def hubspot_signature_over(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    message = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_v2(secret: str, body: bytes) -> str:
    """HubSpot's legacy v2 signature (over a URL API Gateway sees): only valid with legacy_signatures."""
    uri = ctx.HUBSPOT_PUBLIC_URL
    return hashlib.sha256(secret.encode() + b"POST" + uri.encode() + body).hexdigest()
