"""Event Relay and Kantata polling end to end on a LocalRuntime of its own (run in a subprocess).

moto's backends are process-global: a second LocalRuntime next to the session runtime of the e2e
conftest would share (and clash on) their state. `test_local_relay_and_poller.py` runs this module with
`python -m tests.e2e.relay_and_poller_scenario <workdir>` and asserts on the JSON document printed as the
last line of stdout. The runtime synthesizes the app with tests/infra/full_context.py (a Salesforce Event
Relay source on a partner event bus, a Kantata poll source). Nothing leaves the machine: the handlers run
in Lambda worker processes, and scripted stand-ins on 127.0.0.1 (tests/e2e/http_standin.py) answer the
Salesforce, HubSpot and Kantata APIs; the stack is synthesized with their URLs as the APIs' base URLs,
and the scenario fails if any request reaches a stand-in without a scripted answer.

What it does:
1. puts the `Opportunity_Closed_Won__e` sample on the partner event bus, as Event Relay does (the
   opportunity is read through the CRM API, stood in), then the same event again, then a CDC event written
   by our own integration user;
2. fires the Kantata poller's schedule twice, with the subscribed-events page and the overlapping page;
3. posts a signed HubSpot batch with two closed-won deals to the local webhook API: it is answered with
   two ClosedWonSignalled, which the resolver books by reading the deals through HubSpot's API (stood in).
A capture rule on the pssync bus (added here, not part of the stack) records what was published.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from pssync.adapters.aws import DynamoDBVersionStore
from pssync.adapters.cursors import DynamoDBCursorStore
from pssync.local.runtime import LocalRuntime
from pssync.workflows.provision import CONTRACT
from tests.e2e.http_standin import StandIn, preferred_port
from tests.infra.full_context import FULL_CONTEXT, PARTNER_EVENT_SOURCE
from tests.unit.ingest.sources_kit import hubspot_deal, hubspot_v3

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "samples"
CAPTURE_RULE = "e2e-capture-ingest-events"
# Not the relay's C-2026-0412: one contract booked from two CRMs is refused (rightly) as a conflict.
DEAL_CONTRACTS = {"18472934001": "C-2026-0912", "18472934002": "C-2026-0913"}
KANTATA_SUBSCRIBED_EVENTS = "/api/v1/subscribed_events.json"  # Kantata's API, as the stand-in serves it


def _sample(*parts: str) -> dict[str, Any]:
    return dict(json.loads(SAMPLES.joinpath(*parts).read_text()))


class Capture:
    """A rule from the pssync bus to a queue of our own: every canonical event the stack publishes."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self._sqs = runtime.clients["sqs"]
        events = runtime.clients["events"]
        bus = runtime.function_env("EVENT_BUS_NAME")
        self.url = self._sqs.create_queue(QueueName="e2e-capture")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name=CAPTURE_RULE, EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": "pssync."}]})
        )
        events.put_targets(Rule=CAPTURE_RULE, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """The events published since the last drain (moto delivers synchronously within PutEvents)."""
        new: list[dict[str, Any]] = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                new.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        self.seen.extend(new)
        return new


def _summary(event: dict[str, Any]) -> dict[str, Any]:
    detail = event["detail"]
    return {
        "detail_type": event["detail-type"],
        "source": event["source"],
        "event_id": detail["event_id"],
        "source_name": detail.get("source"),
        "source_event_id": detail.get("source_event_id"),
        "data": detail.get("data"),
    }


def _put_relayed(runtime: LocalRuntime, envelope: dict[str, Any]) -> dict[str, Any]:
    """What Salesforce Event Relay does: PutEvents on the partner event bus with its partner source."""
    response = runtime.clients["events"].put_events(
        Entries=[
            {
                "EventBusName": PARTNER_EVENT_SOURCE,
                "Source": envelope["source"],
                "DetailType": envelope["detail-type"],
                "Detail": json.dumps(envelope["detail"]),
            }
        ]
    )
    return {"failed": response["FailedEntryCount"]}


def _relay_invocations(runtime: LocalRuntime) -> list[dict[str, Any]]:
    return [
        {"errored": r.errored, "error_type": r.error_type}
        for r in runtime.host.invocations
        if "SalesforceEventRelay" in r.function
    ]


def _queues(runtime: LocalRuntime) -> dict[str, int]:
    return {q.name: q.visible + q.in_flight for q in runtime.queue_depths()}


def relay(runtime: LocalRuntime, capture: Capture, salesforce: StandIn) -> dict[str, Any]:
    record = _sample("salesforce-event-relay", "opportunity-record.json")
    crm = salesforce.route("GET", r"/sobjects/Opportunity/", lambda request: (200, record))
    salesforce.route("GET", r"/query$", lambda request: (200, {"totalSize": 0, "done": True, "records": []}))
    closed_won = _sample("salesforce-event-relay", "platform-event-closed-won.json")
    put = _put_relayed(runtime, closed_won)
    runtime.wait_until_idle()
    booked = [_summary(e) for e in capture.drain()]
    executions = [
        {"name": e["name"], "status": e["status"]}
        for e in runtime.executions()
        if any(b["event_id"] in e["name"] for b in booked)
    ]
    terms = json.loads(record["PSSync_Contract_JSON__c"])
    versions = DynamoDBVersionStore(
        runtime.function_env("BUSINESS_TABLE_NAME"), runtime.clients["dynamodb"]
    ).history(CONTRACT, terms["contract_id"])

    # Event Relay redelivers (at least once): the same Salesforce event UUID books nothing new.
    redelivery = _put_relayed(runtime, closed_won)
    runtime.wait_until_idle()
    after_redelivery = [_summary(e) for e in capture.drain()]

    # Our own write to the opportunity comes back as CDC with our client id: dropped, not an error.
    invocations_before = len(_relay_invocations(runtime))
    executions_before = len(runtime.executions())
    own_write = _put_relayed(runtime, _sample("salesforce-event-relay", "cdc-own-write.json"))
    runtime.wait_until_idle()
    return {
        "put": [put, redelivery, own_write],
        "booked": booked,
        "executions": executions,
        "contract_versions": [
            {"version": v.version, "caused_by_event_id": v.caused_by_event_id} for v in versions
        ],
        "crm_calls": [{"path": c.path, "authorization": c.headers.get("authorization")} for c in crm.calls],
        "after_redelivery": after_redelivery,
        "own_write": {
            "published": [_summary(e) for e in capture.drain()],
            "invocations": _relay_invocations(runtime)[invocations_before:],
            "new_executions": len(runtime.executions()) - executions_before,
        },
        "relay_invocations": _relay_invocations(runtime),
        "queues": _queues(runtime),
    }


def kantata(runtime: LocalRuntime, capture: Capture, kantata_api: StandIn) -> dict[str, Any]:
    pages = iter(
        [
            _sample("kantata", "subscribed-events-page.json"),
            _sample("kantata", "subscribed-events-overlapping-page.json"),
        ]
    )
    api = kantata_api.route("GET", f"^{KANTATA_SUBSCRIBED_EVENTS}$", lambda request: (200, next(pages)))
    cursors = DynamoDBCursorStore(runtime.function_env("CURSOR_TABLE_NAME"), runtime.clients["dynamodb"])
    polls = []
    for _ in range(2):
        result = runtime.trigger_schedule("KantataPoller")
        runtime.wait_until_idle()
        cursor = cursors.get("psa")
        polls.append(
            {
                "result": result,
                "published": [_summary(e) for e in capture.drain()],
                "cursor": cursor.position.isoformat() if cursor.position else None,
                "cursor_version": cursor.version,
            }
        )
    return {
        "polls": polls,
        "api_calls": [
            {
                "created_after": c.query.get("created_after"),
                "event_types": c.query.get("event_types"),
                "authorization": c.headers.get("authorization"),
            }
            for c in api.calls
        ],
        "queues": _queues(runtime),
    }


def _deal(deal_id: str) -> dict[str, Any]:
    return hubspot_deal(deal_id, DEAL_CONTRACTS[deal_id])


def hubspot(runtime: LocalRuntime, capture: Capture, hubspot_api: StandIn) -> dict[str, Any]:
    deals = hubspot_api.route(
        "GET", r"^/crm/v3/objects/deals/", lambda request: (200, _deal(request.path.rpartition("/")[2]))
    )
    body = SAMPLES.joinpath("webhooks", "hubspot", "deal-closed-won-batch.json").read_bytes()
    timestamp = int(time.time() * 1000)
    secret = runtime.local_secrets["hubspot"]["current"]
    public_url = next(s for s in runtime.source_registry() if s["name"] == "hubspot")["public_url"]
    response = httpx.post(
        f"{runtime.api.url}/webhooks/hubspot",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", public_url, body, timestamp),
            "X-HubSpot-Request-Timestamp": str(timestamp),
        },
    )
    runtime.wait_until_idle()
    published = [_summary(e) for e in capture.drain()]
    booked = {e["event_id"] for e in published if e["detail_type"] == "ContractBooked"}
    return {
        "status": response.status_code,
        "answered": response.json(),
        "published": published,
        "executions": [
            {"name": e["name"], "status": e["status"]}
            for e in runtime.executions()
            if any(event_id in e["name"] for event_id in booked)
        ],
        "crm_calls": [{"path": c.path, "authorization": c.headers.get("authorization")} for c in deals.calls],
        "crm_token": runtime.local_secrets["hubspot-crm-api"]["access_token"],
        "queues": _queues(runtime),
    }


def context_with_standins(salesforce: StandIn, hubspot_api: StandIn, kantata_api: StandIn) -> dict[str, Any]:
    """FULL_CONTEXT with every vendor API's base URL pointing at its stand-in."""
    context = copy.deepcopy(FULL_CONTEXT)
    urls = {"sf-relay": salesforce.url, "hubspot": hubspot_api.url}
    for source in context["pssync:sources"]:
        if source.get("crm_api"):
            source["crm_api"]["base_url"] = urls[source["name"]]
    context["pssync:kantata"]["base_url"] = kantata_api.url
    return context


def _only_standins(runtime: LocalRuntime, standins: list[StandIn]) -> None:
    """Nothing may leave the machine: every API the stack calls must be one of the stand-ins."""
    allowed = {s.url for s in standins}
    configured = [runtime.function_env("KANTATA_BASE_URL")]
    configured += [s["crm_api"]["base_url"] for s in runtime.source_registry() if s.get("crm_api")]
    strays = [url for url in configured if url.rstrip("/") not in allowed]
    if strays:
        raise SystemExit(f"the stack would call APIs that are not stood in: {strays}")


def main(workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    with ExitStack() as stack:
        salesforce, hubspot_api, kantata_api = (
            stack.enter_context(StandIn(name, preferred_port(ROOT, offset)))
            for offset, name in enumerate(("salesforce", "hubspot", "kantata"))
        )
        runtime = stack.enter_context(
            LocalRuntime(
                ROOT,
                context=context_with_standins(salesforce, hubspot_api, kantata_api),
                retry_time_scale=0.01,
                secrets_file=workdir / "secrets.json",
                lambda_log=workdir / "lambda.log",
            )
        )
        ready = time.monotonic() - started
        _only_standins(runtime, [salesforce, hubspot_api, kantata_api])
        capture = Capture(runtime)
        relayed = relay(runtime, capture, salesforce)
        polled = kantata(runtime, capture, kantata_api)
        signalled = hubspot(runtime, capture, hubspot_api)
        unmatched = [
            f"{s.name}: {r.method} {r.path}"
            for s in (salesforce, hubspot_api, kantata_api)
            for r in s.unmatched
        ]
        if unmatched:  # a request the script did not expect fails the scenario loudly
            raise SystemExit(f"requests without a scripted answer: {unmatched}")
        return {
            "startup_seconds": round(ready, 2),
            "seconds": round(time.monotonic() - started, 2),
            "schedules": [t.rule_logical_id for t in runtime.schedules.targets],
            "local_secrets": runtime.local_secrets,
            "relay": relayed,
            "kantata": polled,
            "hubspot": signalled,
            "published": [_summary(e) for e in capture.seen],
            "failed_invocations": [
                {"function": r.function, "error_type": r.error_type}
                for r in runtime.host.invocations
                if r.errored
            ],
        }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), default=str))
