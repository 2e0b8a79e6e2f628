"""Propagation lag per workflow and AWS API calls per business event, on the local runtime.

For each workflow, N business events over signed webhooks (a few senders at once), then the runtime drains.
Lag: the webhook received (the event's `received_at`, stamped by the ingest function) to the end of the
workflow execution (its last step publishes the completion event), p50 and p99 over the N executions.
AWS calls: every call the moto server served while the phase ran (ingest, starters and steps, including
DynamoDB, SQS, EventBridge, S3, Step Functions) divided by N -- the server side of a botocore hook, which
also sees the calls the local runtime itself makes (SQS polling of the inboxes: reported apart).

Passive acceptance is not measured here (its lag is the acceptance period by design): every milestone is
accepted explicitly. Bookings run first (they are the provision workflow's N); the others act on them.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pssync.local import demo_scenario as scenario
from pssync.local.webhook_client import post_webhook, standard_webhook_headers
from pssync.model.contract import ContractTerms

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = {"pssync:sources": scenario.DEMO_SOURCES}
SENDERS = 4
POLLING = {"ReceiveMessage", "GetQueueAttributes", "ListQueues", "DescribeExecution", "ListExecutions"}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _contract(n: int) -> ContractTerms:
    terms = scenario.eu_terms()
    return terms.model_copy(
        update={
            "contract_id": f"C-BENCH-{n:05d}",
            "project": terms.project.model_copy(update={"project_id": f"P-BENCH-{n:05d}"}),
        }
    )


def _webhook(kind: str, data: dict[str, Any]) -> bytes:
    document = {"type": kind, "timestamp": datetime.now().astimezone().isoformat(), "data": data}
    return json.dumps(document, default=str).encode()


Phase = tuple[str, str, str, Callable[[int], tuple[str, dict[str, Any]]]]  # workflow, source, type, data


def _phases(contracts: int) -> Iterator[Phase]:
    def booking(n: int) -> tuple[str, dict[str, Any]]:
        return f"bench_booking_{n}", {
            "closed_won_at": "2026-07-24T15:00:00+00:00",
            "source_version": "2026-07-24T15:00:00.000Z",
            "contract": _contract(n).model_dump(mode="json"),
        }

    def amendment(n: int) -> tuple[str, dict[str, Any]]:
        amended = scenario.eu_terms(amended=True)
        terms = amended.model_copy(
            update={
                "contract_id": f"C-BENCH-{n:05d}",
                "project": amended.project.model_copy(update={"project_id": f"P-BENCH-{n:05d}"}),
            }
        )
        return f"bench_amendment_{n}", {
            "amended_at": "2026-09-14T09:30:00+00:00",
            "effective_date": "2026-09-15",
            "source_version": "2026-09-14T09:29:12.000Z",
            "contract": terms.model_dump(mode="json"),
        }

    def time_entry(n: int) -> tuple[str, dict[str, Any]]:
        day = date(2026, 8, 3) + timedelta(days=n % 28)
        return f"bench_time_{n}", {
            "time_entry_id": f"TE-BENCH-{n:05d}",
            "project_id": f"P-BENCH-{n % contracts:05d}",
            "person_id": "EMP-1",
            "work_date": day.isoformat(),
            "hours": "1",
            "billable": True,
            "wbs_code": "3",
            "role": "consultant",
        }

    def expense(n: int) -> tuple[str, dict[str, Any]]:
        return f"bench_expense_{n}", {
            "expense_id": f"EX-BENCH-{n:05d}",
            "project_id": f"P-BENCH-{n % contracts:05d}",
            "incurred_on": "2026-08-06",
            "amount": {"amount": "10.00", "currency": "EUR"},
            "billable": True,
            "category": "travel",
            "wbs_code": "3",
        }

    milestones = ("M1-DISCOVERY", "M2-DESIGN", "M3-GOLIVE")

    def milestone(n: int) -> tuple[str, dict[str, Any]]:
        contract, which = divmod(n, len(milestones))
        return f"bench_milestone_{n}", {
            "milestone_id": milestones[which],
            "project_id": f"P-BENCH-{contract:05d}",
            "contract_id": f"C-BENCH-{contract:05d}",
            "completed_on": "2026-08-21",
            "accepted_on": "2026-08-26",
            "acceptance": "explicit",
        }

    def invoice(n: int) -> tuple[str, dict[str, Any]]:
        contract, which = divmod(n, len(milestones))
        amount = {"amount": "80000.00", "currency": "EUR"}
        return f"bench_invoice_{n}", {
            "invoice_id": f"INV-BENCH-{n:05d}",
            "contract_id": f"C-BENCH-{contract:05d}",
            "customer_id": "CUST-CONTOSO",
            "invoice_date": "2026-08-27",
            "lines": [
                {
                    "description": milestones[which],
                    "amount": amount,
                    "obligation_id": "IMPL",
                    "billing_line_id": f"B1-{milestones[which]}",
                }
            ],
            "total": amount,
        }

    yield "provision-engagement", scenario.CRM, "contract.booked", booking
    yield "propagate-amendment", scenario.CRM, "contract.amended", amendment
    yield "apply-approved-time", scenario.PSA, "time.approved", time_entry
    yield "apply-approved-expense", scenario.PSA, "expense.approved", expense
    yield "accept-milestone", scenario.PSA, "milestone.completed", milestone
    yield "apply-receivables", scenario.ERP, "invoice.posted", invoice


def run(count: int = 100, pace_seconds: float | None = None) -> dict[str, Any]:
    """A burst of `count` events per workflow from SENDERS senders (lag includes queueing behind the burst),
    or, with `pace_seconds`, one event at a time at that interval (lag of an event on an idle system)."""
    from pssync.local.runtime import LocalRuntime

    contracts = max(1, -(-count // 3))  # three milestones and invoices per contract
    results: dict[str, Any] = {
        "events_per_workflow": count,
        "mode": f"paced, one event every {pace_seconds} s"
        if pace_seconds
        else f"burst from {SENDERS} senders",
        "workflows": {},
    }
    secrets_file = ROOT / "build" / "bench" / "propagation-secrets.json"
    with (
        LocalRuntime(ROOT, secrets_file=secrets_file, context=CONTEXT) as runtime,
        httpx.Client(timeout=60) as client,
    ):
        sfn = runtime.clients["stepfunctions"]
        for workflow, source, kind, build in _phases(contracts):
            n = contracts if workflow in {"provision-engagement", "propagate-amendment"} else count
            secret = runtime.signing_secrets[source]["current"]
            before_calls = runtime.aws_calls()
            seen = {e["executionArn"] for e in runtime.executions()}
            started = time.monotonic()

            def send(i: int, source: str = source, secret: str = secret, kind: str = kind) -> int:
                delivery_id, data = build(i)  # noqa: B023 - bound per phase below
                body = _webhook(kind, data)
                headers = standard_webhook_headers(secret, body, delivery_id=delivery_id)
                return post_webhook(client, runtime.api.url, source, body, headers).status_code

            if pace_seconds:
                statuses = Counter()
                for i in range(n):
                    statuses[send(i)] += 1
                    time.sleep(pace_seconds)
            else:
                with ThreadPoolExecutor(SENDERS) as pool:
                    statuses = Counter(pool.map(send, range(n)))
            runtime.wait_until_idle(timeout=1800)
            wall = time.monotonic() - started
            calls = runtime.aws_calls() - before_calls
            lags, outcomes = [], Counter()
            for execution in runtime.executions():
                if execution["executionArn"] in seen:
                    continue
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                outcomes[described["status"]] += 1
                received = datetime.fromisoformat(json.loads(described["input"])["event"]["received_at"])
                if described.get("stopDate"):
                    lags.append((described["stopDate"] - received).total_seconds() * 1000)
            business = sum(c for (_, op), c in calls.items() if op not in POLLING)
            polling = sum(c for (_, op), c in calls.items() if op in POLLING)
            results["workflows"][workflow] = {
                "events": n,
                "http_statuses": {str(k): v for k, v in statuses.items()},
                "executions": dict(outcomes),
                "lag_p50_ms": round(statistics.median(lags), 1) if lags else None,
                "lag_p99_ms": round(_percentile(lags, 0.99), 1) if lags else None,
                "aws_calls_per_event": round(business / n, 1),
                "polling_calls_per_event": round(polling / n, 1),
                "top_calls": {
                    f"{service}:{op}": c for (service, op), c in calls.most_common(8) if op not in POLLING
                },
                "wall_s": round(wall, 1),
            }
    return results
