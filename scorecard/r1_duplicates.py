"""R1 duplicates: N bookings delivered about 3.5 times each, about half of them concurrently: 0 applied twice.

Each business event is a signed Standard Webhooks `contract.booked` with its own delivery id; its copies
carry the same `webhook-id` (a sender's retry) and a fresh timestamp and signature. For about half the
events the copies are sent at the same instant from their own threads (a burst); for the others one after
another. A copy answered 409 (`in_progress`: the first copy is still being recorded) is retried after a
short pause, as a sender would. At most JOBS events are in flight: a sender takes its next event once the
workflow of the last one ended (a closed loop, so the runtime's backlog is never a wall of running
executions timing out behind 4 containers per function).
Applied once means, per event: one contract version, one workflow execution (succeeded), one
ContractBooked and one EngagementActivated published on the bus (one event id each; the same event id
delivered again by the bus, as a PutEvents retried after a timeout does, is counted apart as
`bus_redeliveries`: every consumer dedupes on the event id), one PSA and one ERP command in the delivery
log; and no message in any dead-letter store or the exceptions queue.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.workflows.provision import CONTRACT
from scorecard import context as ctx
from scorecard import senders as s
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress

ID = "R1"
NAME = "duplicate deliveries"
ISSUE_N = 1_000
# The issue's N. Projected ~14 min of a ~42 min `make scorecard` on this 2-core machine (0.83 s per event
# at the load of the 2026-11-30 run, after the local runtime's speed-ups); rows.py notes the measured rate.
FULL_N = 1_000
QUICK_N = 30
# Events in flight at once (each concurrent event adds its own copies' threads). Closed loop: a job takes
# its next event once the last one's workflow ended. An open-loop burst at this runtime's speed left ~240
# executions running at once, each step waiting behind them for one of its function's 4 containers, and
# 112 of 622 executions failed with States.Timeout (the task's 60 s) after their retries: the local
# runtime is 10-100 times slower than Lambda, not the system under test (docs/decisions.md, 2026-11-30).
JOBS = 16
RETRY_PAUSE_S = 0.2
MAX_ATTEMPTS = 50
# Calls that watch rather than act: the pollers' receives, this row's and the harness's polling.
POLLING = {"ReceiveMessage", "GetQueueAttributes", "ListQueues", "DescribeExecution", "ListExecutions"}


@dataclass
class Event:
    index: int
    contract_id: str
    delivery_id: str
    body: bytes
    copies: int
    concurrent: bool
    statuses: Counter[int] = field(default_factory=Counter)
    event_ids: set[str] = field(default_factory=set)
    firsts: int = 0  # answers that said "not a duplicate"


def _events(rng: random.Random, n: int, seed: int) -> list[Event]:
    events = []
    for i in range(n):
        contract_id = f"R1-{seed}-{i:05d}"
        events.append(
            Event(
                index=i,
                contract_id=contract_id,
                delivery_id=f"msg_r1_{seed}_{i:05d}",
                body=s.dumps(s.booking_document(contract_id)),
                copies=rng.choice((3, 4)),  # 3.5 on average
                concurrent=rng.random() < 0.5,
            )
        )
    return events


def _deliver_once(stack: Stack, event: Event, lock: threading.Lock) -> int:
    """One copy, retried while it is answered 409 in_progress; returns the number of 409s it met."""
    in_progress = 0
    for _ in range(MAX_ATTEMPTS):
        headers = s.standard_headers(stack.secret(ctx.CRM), event.body, event.delivery_id)
        answer = stack.send(s.Request(ctx.CRM, event.body, headers))
        with lock:
            event.statuses[answer.status] += 1
        if answer.status == 409:
            in_progress += 1
            time.sleep(RETRY_PAUSE_S)
            continue
        if answer.status == 202:
            document = json.loads(answer.body)
            with lock:
                event.event_ids.add(document["event_id"])
                event.firsts += 0 if document["duplicate"] else 1
        return in_progress
    return in_progress


def _deliver(stack: Stack, event: Event) -> int:
    lock = threading.Lock()
    if not event.concurrent:
        return sum(_deliver_once(stack, event, lock) for _ in range(event.copies))
    barrier = threading.Barrier(event.copies)

    def copy(_: int) -> int:
        barrier.wait()
        return _deliver_once(stack, event, lock)

    with ThreadPoolExecutor(max_workers=event.copies) as burst:
        return sum(burst.map(copy, range(event.copies)))


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    rng = random.Random(seed)
    started = time.monotonic()
    events = _events(rng, n, seed)
    order = list(events)
    rng.shuffle(order)
    dead_before = stack.queue_messages("dead-letter") + stack.queue_messages("exceptions")
    stack.drain_capture()
    captured_from = len(stack.captured)
    calls_before = stack.runtime.aws_calls()

    task = progress.task(f"{ID} {NAME}: deliveries", total=n)
    machine = stack.state_machine_arn("Provision")

    def deliver_and_settle(event: Event) -> int:
        conflicts = _deliver(stack, event)
        for event_id in sorted(event.event_ids):  # one, unless the row is about to report otherwise
            stack.wait_for_execution(machine, f"ContractBooked-{event_id}")
        return conflicts

    in_progress = 0
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        for conflicts in pool.map(deliver_and_settle, order):
            in_progress += conflicts
            progress.advance(task)
    delivered_s = time.monotonic() - started
    stack.wait_idle(timeout=3600, inboxes=("ProvisionEngagementInbox",))
    calls = stack.runtime.aws_calls() - calls_before
    business_calls = Counter({op: c for op, c in calls.items() if op[1] not in POLLING})
    stack.drain_capture()
    published = stack.captured[captured_from:]

    ddb = stack.runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(stack.runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
    log = DynamoDBDeliveryLog(stack.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb)
    executions: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    for execution in stack.executions_of("Provision"):
        executions[execution["name"]] += 1
        if execution["status"] == "SUCCEEDED":
            succeeded[execution["name"]] += 1
    # Published events by contract: the distinct event ids (a second id would be a second business event)
    # and the bus deliveries (a PutEvents retried after a timeout delivers the same event id again).
    booked_ids: dict[str, set[str]] = {}
    activated_ids: dict[str, set[str]] = {}
    bus_copies: Counter[str] = Counter()
    for e in published:
        if e["detail-type"] in ("ContractBooked", "EngagementActivated"):
            detail = e["detail"]
            contract_id = detail["data"]["contract"]["contract_id"] if "contract" in detail["data"] else None
            contract_id = contract_id or detail["data"].get("contract_id")
            ids = booked_ids if e["detail-type"] == "ContractBooked" else activated_ids
            ids.setdefault(contract_id, set()).add(detail["event_id"])
            bus_copies[detail["event_id"]] += 1
    redelivered = {event_id: copies for event_id, copies in bus_copies.items() if copies > 1}
    commands = Counter(c.external_id for c in log.all_commands())

    failures: list[str] = []
    counts: Counter[str] = Counter()
    for event in events:
        counts["deliveries"] += sum(c for status, c in event.statuses.items() if status != 409)
        problems = []
        if event.statuses.keys() - {202, 409}:
            problems.append(f"answers {dict(event.statuses)}")
        if len(event.event_ids) != 1:
            problems.append(f"{len(event.event_ids)} event ids {sorted(event.event_ids)}")
        if event.firsts != 1:
            problems.append(f"{event.firsts} answers not flagged duplicate")
        event_id = next(iter(event.event_ids), "")
        name = f"ContractBooked-{event_id}"
        versions = store.history(CONTRACT, event.contract_id)
        checks = {
            "contract_versions": len(versions),
            "executions": executions[name],
            "executions_succeeded": succeeded[name],
            "contract_booked_published": len(booked_ids.get(event.contract_id, ())),
            "engagement_activated_published": len(activated_ids.get(event.contract_id, ())),
            "psa_commands": commands[f"P-{event.contract_id}"],
            "erp_commands": commands[event.contract_id],
        }
        for key, value in checks.items():
            if value != 1:
                problems.append(f"{key} {value}")
        counts["applied_twice"] += any(v > 1 for v in checks.values())
        counts["not_applied"] += any(v == 0 for v in checks.values())
        counts["applied_once"] += all(v == 1 for v in checks.values()) and not problems
        if problems and len(failures) < 20:
            mode = "concurrent" if event.concurrent else "sequential"
            failures.append(f"{event.contract_id} ({mode}): {'; '.join(problems)}")
    dead_after = stack.queue_messages("dead-letter") + stack.queue_messages("exceptions")

    result = RowResult(
        id=ID,
        name=NAME,
        seed=seed,
        n=n,
        wall_s=round(time.monotonic() - started, 1),
        passed=False,
        expectation=(
            "0 applied twice: per event one contract version, one execution (succeeded), one ContractBooked "
            "and one EngagementActivated published, one PSA and one ERP command; nothing dead-lettered"
        ),
    )
    result.counts = {
        "events": n,
        "deliveries": counts["deliveries"],
        "copies_per_event": round(counts["deliveries"] / n, 2),
        "concurrent_events": sum(e.concurrent for e in events),
        "answered_409_then_retried": in_progress,
        "applied_once": counts["applied_once"],
        "applied_twice": counts["applied_twice"],
        "not_applied": counts["not_applied"],
        "dead_lettered": dead_after - dead_before,
        "bus_redeliveries": sum(copies - 1 for copies in redelivered.values()),
        "delivery_s": round(delivered_s, 1),
        "aws_calls_per_event": round(sum(business_calls.values()) / n, 1),
    }
    result.notes.append(
        "AWS calls per event (ingest of every copy, starter, six steps; polling by the runtime and this row "
        "left out): "
        + ", ".join(f"{service}:{op} {c / n:.1f}" for (service, op), c in business_calls.most_common(10))
    )
    if redelivered:
        result.notes.append(
            f"{len(redelivered)} published events reached the bus more than once with the same event id "
            "(a PutEvents retried after a client timeout under load: at-least-once delivery); each was "
            "applied once (one execution, one version, one command), since consumers dedupe on the event id: "
            + ", ".join(f"{k} x{v}" for k, v in sorted(redelivered.items())[:10])
        )
    result.failures = failures
    result.passed = counts["applied_once"] == n and dead_after == dead_before
    return result
