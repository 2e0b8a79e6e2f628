"""Verification plus normalisation cost per event, per source (in-process, no I/O).

Each source's sample delivery (events/samples/webhooks/<source>/) is signed as its sender would, then
`scheme.verify` + `scheme.normalise` run on it repeatedly. Thin CRM events become ClosedWonSignalled here;
the CRM read happens later, behind the closed-won queue, and is not part of the webhook's cost. The request
builders are the per-source test kit's
(tests/unit/ingest/sources_kit.py), so the benchmark signs exactly what the tests verify. Baseline in the
same run: parsing the same body (`json.loads`, or ElementTree for SOAP), the least any normaliser must do.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from pssync.local.webhook_client import standard_webhook_headers
from pssync.ports import SigningSecrets
from pssync.sources import scheme_for
from pssync.sources.base import NormaliseContext
from pssync.sources.request import RawRequest
from tests.unit.ingest import sources_kit as kit

STANDARD_SECRET = "whsec_" + "YmVuY2htYXJrLXN0YW5kYXJkLXdlYmhvb2tzLWtleQ=="


def _standard_webhooks() -> tuple[RawRequest, SigningSecrets]:
    body = (kit.SAMPLES / "standard-webhooks" / "contract-booked.json").read_bytes()
    headers = standard_webhook_headers(
        STANDARD_SECRET, body, delivery_id="msg_bench", timestamp=int(kit.CLOCK.now().timestamp())
    )
    return kit.request(body, dict(headers), url="/webhooks/crm"), SigningSecrets(STANDARD_SECRET)


def _cases() -> dict[str, Callable[[], tuple[Any, RawRequest, SigningSecrets]]]:
    standard_source = kit.SOURCES["jira"].model_copy(
        update={"name": "crm", "scheme": "standard-webhooks", "system": "salesforce", "tenants": []}
    )
    return {
        "standard-webhooks": lambda: (standard_source, *_standard_webhooks()),
        "hubspot": lambda: (
            kit.SOURCES["hubspot"],
            kit.hubspot_request(kit.sample("hubspot/deal-closed-won-batch.json")),
            kit.SECRETS["sid/hubspot"],
        ),
        "jira": lambda: (
            kit.SOURCES["jira"],
            kit.jira_request(kit.sample("jira/milestone-done.json")),
            kit.SECRETS["sid/jira"],
        ),
        "dataverse": lambda: (
            kit.SOURCES["dataverse"],
            kit.dataverse_request(kit.sample("dataverse/opportunity-win.json")),
            kit.SECRETS["sid/dataverse"],
        ),
        "salesforce-outbound": lambda: (
            kit.SOURCES["salesforce"],
            kit.salesforce_request(kit.sample("salesforce-outbound/opportunity-closed-won.xml")),
            kit.SECRETS["sid/salesforce"],
        ),
    }


def _measure(source: Any, request: RawRequest, secrets: SigningSecrets, rounds: int) -> dict[str, Any]:
    scheme = scheme_for(source.scheme)
    now = kit.CLOCK.now()

    def once() -> int:
        delivery = scheme.verify(request, source, secrets, now)
        events = scheme.normalise(NormaliseContext(source, delivery, request.body, now))
        return len(events)

    parse: Callable[[bytes], Any] = (
        ElementTree.fromstring if request.body.lstrip().startswith(b"<") else json.loads
    )
    events = once()  # warm-up; also the events per delivery
    per_event_us, baseline_us = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        once()
        per_event_us.append((time.perf_counter() - started) * 1e6 / max(events, 1))
        started = time.perf_counter()
        parse(request.body)
        baseline_us.append((time.perf_counter() - started) * 1e6)
    ordered = sorted(per_event_us)
    median = statistics.median(per_event_us)
    return {
        "events_per_delivery": events,
        "body_bytes": len(request.body),
        "p50_us_per_event": round(median, 1),
        "p99_us_per_event": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 1),
        "baseline_parse_p50_us": round(statistics.median(baseline_us), 1),
        "ratio_to_parse": round(median * max(events, 1) / statistics.median(baseline_us), 1),
    }


def run(rounds: int = 300) -> dict[str, Any]:
    return {name: _measure(*build(), rounds) for name, build in _cases().items()}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
