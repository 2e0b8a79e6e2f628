"""R6 timeout recovery: an ingest killed past its timeout leaves no stuck in-progress record; the sender's
retry is applied exactly once.

Each event is a signed Standard Webhooks booking. Its first delivery makes the ingest function hang at one
of six points (`PHASES`, the same number of events each, in a seeded order) until the local runtime kills
its container past the function's timeout (`Sandbox.Timedout`, answered 502 by the API): before the
idempotency record is written, after it is written (INPROGRESS), after the raw payload is archived, before
PutEvents, after PutEvents (the event is on the bus, unacknowledged), after the record is marked COMPLETED.
The fault crosses processes: the runtime's fault plan (`pssync.local.faults`) sends a directive with that
one invocation into its container, where the AWS SDK call named by the phase hangs.

The sender retries as a real one does: a first retry while the killed handler still holds the delivery
(answered 409 while its in-progress record is live), then again every `RETRY_PAUSE_S` until a 202.

The function timeout is lowered for the row (as `aws lambda update-function-configuration --timeout`
would) so a kill costs seconds, not the template's 30 s; the in-progress record's expiry follows the
invocation's remaining time either way (the handler registers its Lambda context).

Expectation, per event: exactly one kill, one event id in every 202, applied once (one contract version, one
succeeded execution, one ContractBooked and one EngagementActivated event id, one PSA and one ERP
command), and afterwards no INPROGRESS record the row created in the idempotency table, one COMPLETED
record per event, nothing dead-lettered.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from pssync.local.faults import Directive, KeyedFaults, proxy_header
from scorecard import context as ctx
from scorecard import senders as s
from scorecard.applied import gather, idempotency_records
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress

ID = "R6"
NAME = "timeout recovery"
FULL_N = 60
QUICK_N = 6
TIMEOUT_S = 4  # the ingest's timeout during the row
JOBS = 2  # events in flight: each holds one of the ingest's 4 containers while hung, 2 stay free
FIRST_RETRY_S = 1.0  # the sender's first retry, while the killed handler still holds the delivery
RETRY_PAUSE_S = 0.5
MAX_ATTEMPTS = 200
HANG_GUARD_S = 120.0  # a delivery still unanswered after this is a failure, not a wait


@dataclass(frozen=True)
class Phase:
    name: str
    service: str
    operation: str
    when: str
    idempotency_table: bool = False


PHASES = (
    Phase("before the idempotency record", "dynamodb", "PutItem", "before", idempotency_table=True),
    Phase("idempotency record INPROGRESS", "dynamodb", "PutItem", "after", idempotency_table=True),
    Phase("raw payload archived", "s3", "PutObject", "after"),
    Phase("before PutEvents", "events", "PutEvents", "before"),
    Phase("after PutEvents (published, unacknowledged)", "events", "PutEvents", "after"),
    Phase("record COMPLETED, not answered", "dynamodb", "UpdateItem", "after", idempotency_table=True),
)


@dataclass
class Event:
    index: int
    contract_id: str
    delivery_id: str
    body: bytes
    phase: Phase
    statuses: Counter[int] = field(default_factory=Counter)
    event_ids: set[str] = field(default_factory=set)
    firsts: int = 0
    first_answer: int | None = None  # the status of the delivery that was killed
    unanswered: bool = False


def _events(rng: random.Random, n: int, seed: int) -> list[Event]:
    events = [
        Event(
            index=i,
            contract_id=f"R6-{seed}-{i:05d}",
            delivery_id=f"msg_r6_{seed}_{i:05d}",
            body=s.dumps(s.booking_document(f"R6-{seed}-{i:05d}")),
            phase=PHASES[i % len(PHASES)],
        )
        for i in range(n)
    ]
    rng.shuffle(events)
    return events


def directive(phase: Phase, idempotency_table: str) -> Directive:
    return {
        "service": phase.service,
        "operation": phase.operation,
        "when": phase.when,
        "action": "hang",
        "params": {"TableName": idempotency_table} if phase.idempotency_table else {},
        "label": f"R6 hang {phase.name}",
    }


@contextmanager
def _timeout(stack: Stack, folder: str, seconds: int) -> Iterator[tuple[str, int]]:
    """The function's timeout lowered for the block: (its name, the template's timeout)."""
    [function] = [f for f in stack.runtime.host.functions.values() if f.folder == folder]
    saved = function.timeout_seconds
    function.timeout_seconds = seconds
    try:
        yield function.name, saved
    finally:
        function.timeout_seconds = saved


def _send(stack: Stack, event: Event, lock: threading.Lock) -> int:
    headers = s.standard_headers(stack.secret(ctx.CRM), event.body, event.delivery_id)
    answer = stack.send(s.Request(ctx.CRM, event.body, headers))
    with lock:
        event.statuses[answer.status] += 1
        if answer.status == 202:
            document = json.loads(answer.body)
            event.event_ids.add(document["event_id"])
            event.firsts += 0 if document["duplicate"] else 1
    return answer.status


def _deliver(stack: Stack, event: Event, plan: KeyedFaults) -> None:
    lock = threading.Lock()
    first_done = threading.Event()

    def first() -> None:
        event.first_answer = _send(stack, event, lock)
        first_done.set()

    threading.Thread(target=first, name=f"r6-first-{event.index}", daemon=True).start()
    # The retry goes out once the first delivery's invocation has its fault (so the retry cannot take it
    # by overtaking the first on a loaded machine), and a little later, while the handler hangs.
    deadline = time.monotonic() + HANG_GUARD_S
    while plan.sent_to(event.delivery_id) == 0 and time.monotonic() < deadline and not first_done.is_set():
        time.sleep(0.05)
    time.sleep(FIRST_RETRY_S)
    for _ in range(MAX_ATTEMPTS):  # the sender's retries: 409 and 5xx are retried, as a sender does
        if _send(stack, event, lock) == 202:
            break
        time.sleep(RETRY_PAUSE_S)
    if not first_done.wait(HANG_GUARD_S):
        event.unanswered = True


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    rng = random.Random(seed + 6)
    started = time.monotonic()
    events = _events(rng, n, seed)
    table = stack.runtime.function_env("IDEMPOTENCY_TABLE_NAME")
    records_before = idempotency_records(stack)
    dead_before = stack.queue_messages("dead-letter") + stack.queue_messages("exceptions")
    stack.drain_capture()
    captured_from = len(stack.captured)
    invocations_from = len(stack.runtime.host.invocations)

    with _timeout(stack, "ingest_webhook", TIMEOUT_S) as (ingest, template_timeout):
        plan = KeyedFaults(
            key_of=lambda function, event: proxy_header(event, "webhook-id") if function == ingest else None
        )
        for event in events:
            plan.add(event.delivery_id, directive(event.phase, table))
        stack.runtime.host.fault_plan = plan
        task = progress.task(f"{ID} {NAME}: deliveries", total=n)
        try:
            with ThreadPoolExecutor(max_workers=JOBS) as pool:
                for _ in pool.map(lambda e: _deliver(stack, e, plan), events):
                    progress.advance(task)
        finally:
            stack.runtime.host.fault_plan = None
        kills = Counter(
            r.error_type
            for r in stack.runtime.host.invocations[invocations_from:]
            if r.function == ingest and r.errored
        )
    stack.wait_idle(timeout=600, inboxes=("ProvisionEngagementInbox",))
    stack.drain_capture()
    evidence = gather(stack, stack.captured[captured_from:])
    records_after = idempotency_records(stack)
    stuck = sorted(k for k, v in records_after.items() if v == "INPROGRESS" and records_before.get(k) != v)
    completed_new = sum(
        1 for k, v in records_after.items() if v == "COMPLETED" and records_before.get(k) != "COMPLETED"
    )
    dead = stack.queue_messages("dead-letter") + stack.queue_messages("exceptions") - dead_before

    counts: Counter[str] = Counter()
    by_phase: dict[str, Counter[str]] = {p.name: Counter() for p in PHASES}
    failures: list[str] = []
    for event in events:
        problems = []
        if event.unanswered:
            problems.append(f"the killed delivery was unanswered after {HANG_GUARD_S} s")
        if event.statuses.keys() - {202, 409, 502}:
            problems.append(f"answers {dict(event.statuses)}")
        if not event.statuses[502]:  # the hung delivery is the first to reach the ingest, usually `first`
            problems.append(f"no delivery was answered 502 (killed): {dict(event.statuses)}")
        if len(event.event_ids) != 1:
            problems.append(f"{len(event.event_ids)} event ids in the 202s: {sorted(event.event_ids)}")
        if event.firsts > 1:
            problems.append(f"{event.firsts} answers not flagged duplicate")
        event_id = next(iter(event.event_ids), "")
        checks = evidence.checks(event.contract_id, event_id)
        problems += [f"{key} {value}" for key, value in checks.items() if value != 1]
        twice = any(v > 1 for v in checks.values())
        missing = any(v == 0 for v in checks.values())
        once = not problems
        counts["applied_once"] += once
        counts["applied_twice"] += twice
        counts["not_applied"] += missing
        counts["answered_409"] += event.statuses[409]
        counts["answered_502"] += event.statuses[502]
        counts["bus_redeliveries"] += evidence.redelivered(event.event_ids)
        by_phase[event.phase.name]["events"] += 1
        by_phase[event.phase.name]["applied_once"] += once
        by_phase[event.phase.name]["answered_409"] += event.statuses[409]
        if problems and len(failures) < 20:
            failures.append(f"{event.contract_id} (hung {event.phase.name}): {'; '.join(problems)}")
    if stuck:
        failures.append(f"{len(stuck)} INPROGRESS idempotency records left: {stuck[:5]}")
    killed = kills.get("Sandbox.Timedout", 0)
    faults_sent = len(plan.log)

    result = RowResult(
        id=ID,
        name=NAME,
        seed=seed,
        n=n,
        wall_s=round(time.monotonic() - started, 1),
        passed=False,
        expectation=(
            "every ingest killed past its timeout (6 points, from before the idempotency record to after "
            "it is COMPLETED) leaves no INPROGRESS record; the sender's retry is applied exactly once "
            "(one version, one succeeded execution, one PSA and one ERP command); nothing dead-lettered"
        ),
    )
    result.counts = {
        "events": n,
        "faults_injected": faults_sent,
        "handlers_killed": killed,
        "applied_once": counts["applied_once"],
        "applied_twice": counts["applied_twice"],
        "not_applied": counts["not_applied"],
        "inprogress_records_left": len(stuck),
        "completed_records": completed_new,
        "answered_409_while_held": counts["answered_409"],
        "answered_502": counts["answered_502"],
        "bus_redeliveries": counts["bus_redeliveries"],
        "dead_lettered": dead,
        "function_timeout_s": TIMEOUT_S,
        "by_phase": {name: dict(c) for name, c in by_phase.items()},
    }
    result.notes.append(
        f"The ingest's timeout was {TIMEOUT_S} s during the row (the template's is "
        f"{template_timeout} s); other ingest errors: "
        + (", ".join(f"{k} x{v}" for k, v in kills.items() if k != "Sandbox.Timedout") or "none")
    )
    result.failures = failures
    if killed < n or faults_sent != n:
        failures.append(f"{faults_sent} faults sent and {killed} handlers killed for {n} events")
    result.passed = (
        counts["applied_once"] == n
        and not stuck
        and completed_new == n
        and dead == 0
        and faults_sent == n
        and killed >= n
    )
    return result
