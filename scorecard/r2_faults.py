"""R2 downstream faults: N events, about 20 % of them meeting an injected downstream fault: 0 lost, 0 applied
twice.

The events are N/2 signed Standard Webhooks bookings from the CRM (provision-engagement) and then one approved
time entry per booked contract from the PSA (apply-approved-time), so ingest, the inbox starters and every
workflow step are on the path. A seeded fifth of the events each get one fault from `FAULTS` (cycled in a
seeded order, so every kind is used once N is large enough), injected at the AWS SDK boundary inside the
Lambda container of the named function (`pssync.local.faults`), on the first call of that function for the
event whose parameters name it:
- throttling and 5xx from AWS clients: DynamoDB `ProvisionedThroughputExceededException`, EventBridge
  `ThrottlingException` / 500, Step Functions `ThrottlingException` (the starter), also on every receive
  until the starter parks the record in its dead-letter queue;
- connector faults: the shadow connector's delivery-log write timing out, answering 5xx or 429;
- a crash (`exit`) right after a side effect and before acknowledgement: after the version write, the
  delivery-log write, PutEvents, StartExecution, the ingest's PutEvents. A workflow step that crashes
  (`Runtime.ExitError`) is retried by Step Functions like a timed-out one (steps are idempotent), so it is
  expected to end applied once, not parked.

The sender retries every 5xx and 409 as a real one does (an ingest fault costs a retry, nothing else). The
inboxes' visibility timeout is lowered for the row (as `aws sqs set-queue-attributes` would), so a failed
start is received again in seconds, not the template's 180 s.

Expectation, per event: applied once (booking: one contract version, one succeeded execution, one
ContractBooked and one EngagementActivated event id, one PSA and one ERP command; time entry: one ledger line
and one `sent` mark, one ERP command, one succeeded execution, one TimeSynced event id) or, if not applied,
parked in a dead-letter store or the exceptions queue with its cause; never applied twice. What is parked is
R3's to replay.
"""

from __future__ import annotations

import copy
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.local.faults import Directive
from pssync.model import examples
from pssync.ops.dead_letters import DeadLetterOps
from pssync.workflows.time_approval import TIME_LEDGER
from scorecard import context as ctx
from scorecard import senders as s
from scorecard.applied import gather
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress

ID = "R2"
NAME = "downstream faults"
ISSUE_N = 10_000
# The issue's N: ~26-33 min on a quiet 2-core machine (5-6 events per second since the runtime speedups);
# rows.py notes the rate each run measures.
FULL_N = ISSUE_N
QUICK_N = 16
FAULT_SHARE = 0.2
JOBS = 8  # senders in flight (closed loop: events whose workflow has not ended)
INBOXES = ("ProvisionEngagementInbox", "ApplyApprovedTimeInbox")
INBOX_VISIBILITY_S = 6  # during the row; the template's is 180 s
STARTER_RECEIVES = 5  # the inboxes' maxReceiveCount: a fault on every receive parks the record
RETRY_PAUSE_S = 0.5
MAX_ATTEMPTS = 240
HANG_GUARD_S = 1800.0

BOOKING = "booking"
TIME = "time"


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str  # the events it applies to: BOOKING or TIME
    function: str  # the function's folder under functions/
    service: str
    operation: str | None
    when: str
    action: str
    code: str = ""
    status: int = 0
    table_env: str | None = None  # the call's TableName must be this table (env var of the functions)
    receives: int = 1  # consecutive invocations that get it
    parks: bool = False  # expected to end in a dead-letter store or the exceptions queue (R3 replays it)

    def directive(self, item: str, contract_id: str, table: str | None) -> Directive:
        directive: Directive = {
            "service": self.service,
            "when": self.when,
            "action": self.action,
            "label": f"R2 {self.name} [{item}]",
        }
        if self.function != "ingest_webhook":  # one delivery per ingest; its idempotency key is a hash
            # The call must be about this event's contract (a starter's batch holds several events); a time
            # entry's id holds its contract's, so a call naming either matches.
            directive["contains"] = [contract_id]
        if self.operation:
            directive["operation"] = self.operation
        if self.code:
            directive.update(code=self.code, status=self.status, message=f"injected {self.code}")
        if table:
            directive["params"] = {"TableName": table}
        return directive


DELIVERY_LOG = "DELIVERY_LOG_TABLE_NAME"
IDEMPOTENCY = "IDEMPOTENCY_TABLE_NAME"
THROTTLED = "ProvisionedThroughputExceededException"

FAULTS = (
    # ingest (the sender sees 503 or 502 and retries)
    Fault("ingest: idempotency table throttled", BOOKING, "ingest_webhook", "dynamodb", "PutItem", "before",
          "error", THROTTLED, 400, IDEMPOTENCY),
    Fault("ingest: PutEvents 500", TIME, "ingest_webhook", "events", "PutEvents", "before", "error",
          "InternalFailure", 500),
    Fault("ingest: crash after PutEvents", BOOKING, "ingest_webhook", "events", "PutEvents", "after", "exit"),
    # inbox starters (the record is received again)
    Fault("starter: StartExecution throttled", BOOKING, "start_workflow", "stepfunctions", "StartExecution",
          "before", "error", "ThrottlingException", 400),
    Fault("starter: crash after StartExecution", TIME, "start_workflow", "stepfunctions", "StartExecution",
          "after", "exit"),
    Fault("starter: throttled on every receive", BOOKING, "start_workflow", "stepfunctions", "StartExecution",
          "before", "error", "ThrottlingException", 400, receives=STARTER_RECEIVES, parks=True),
    # workflow steps: AWS clients (Step Functions retries a TransientDownstreamError)
    Fault("record version: DynamoDB throttled", BOOKING, "record_contract_version", "dynamodb",
          "TransactWriteItems", "before", "error", THROTTLED, 400),
    Fault("record version: crash after the write", BOOKING, "record_contract_version", "dynamodb",
          "TransactWriteItems", "after", "exit"),
    Fault("match time: DynamoDB 500", TIME, "match_time_entry", "dynamodb", None, "before", "error",
          "InternalServerError", 500),
    Fault("record time: crash after the ledger write", TIME, "record_billable_time", "dynamodb",
          "TransactWriteItems", "after", "exit"),
    Fault("remeasure: DynamoDB throttled", TIME, "remeasure_time_revenue", "dynamodb", None, "before",
          "error", THROTTLED, 400),
    Fault("emit activated: PutEvents throttled", BOOKING, "emit_engagement_activated", "events", "PutEvents",
          "before", "error", "ThrottlingException", 400),
    Fault("emit activated: crash after PutEvents", BOOKING, "emit_engagement_activated", "events",
          "PutEvents", "after", "exit"),
    Fault("emit time synced: PutEvents 500", TIME, "emit_time_synced", "events", "PutEvents", "before",
          "error", "InternalFailure", 500),
    # the shadow connector's delivery log
    Fault("PSA connector: delivery-log write timed out", BOOKING, "provision_psa_project", "dynamodb",
          "PutItem", "before", "timeout", table_env=DELIVERY_LOG),
    Fault("ERP connector: delivery-log write 503", BOOKING, "publish_erp_billing_schedule", "dynamodb",
          "PutItem", "before", "error", "ServiceUnavailable", 503, DELIVERY_LOG),
    Fault("ERP connector: crash after the delivery-log write", BOOKING, "publish_erp_billing_schedule",
          "dynamodb", "PutItem", "after", "exit", table_env=DELIVERY_LOG),
    Fault("ERP time: delivery-log write 429", TIME, "send_billable_time", "dynamodb", "PutItem", "before",
          "error", "ThrottlingException", 429, DELIVERY_LOG),
    Fault("ERP time: delivery-log write timed out", TIME, "send_billable_time", "dynamodb", "PutItem",
          "before", "timeout", table_env=DELIVERY_LOG),
    Fault("ERP time: crash after the delivery-log write", TIME, "send_billable_time", "dynamodb", "PutItem",
          "after", "exit", table_env=DELIVERY_LOG),
)  # fmt: skip

ITEM = re.compile(r"TE-R2-\d+-\d{5}|(?<![\w-])R2-\d+-\d{5}")  # a time entry's id first, else a contract's


@dataclass
class Event:
    kind: str
    item: str  # the contract id (booking) or the time entry id
    contract_id: str
    delivery_id: str
    body: bytes
    source: str
    fault: Fault | None = None
    statuses: Counter[int] = field(default_factory=Counter)
    event_ids: set[str] = field(default_factory=set)
    unanswered: bool = False

    @property
    def event_id(self) -> str:
        return next(iter(self.event_ids), "")


@dataclass
class Run:
    """What R2 did, for R3: its events, seed, and the faults it injected."""

    events: list[Event]
    seed: int
    injected: list[tuple[str, str, str]]  # (function, item, fault name) per directive handed out
    shadowed: set[str]  # items whose directive waited while another item's went with a shared invocation
    phase_s: dict[str, float]  # seconds to send and settle the bookings, then the time entries


def booking_body(contract_id: str) -> bytes:
    document: dict[str, Any] = copy.deepcopy(examples.contract_booked_webhook())
    contract = examples.delivery_programme().model_dump(mode="json")  # it has a T&M phase (HYPERCARE)
    contract["contract_id"] = contract_id
    contract["project"]["project_id"] = f"P-{contract_id}"
    document["data"]["contract"] = contract
    return s.dumps(document)


def time_body(entry_id: str, contract_id: str) -> bytes:
    data = {
        "time_entry_id": entry_id,
        "project_id": f"P-{contract_id}",
        "person_id": "EMP-17",
        "work_date": "2027-05-03",
        "hours": "8",
        "billable": True,
        "wbs_code": "2.1",
        "role": "architect",
        "source_version": "2027-05-04T09:00:00.000Z",
    }
    return s.dumps({"type": "time.approved", "timestamp": "2027-05-04T09:00:00Z", "data": data})


def events_for(n: int, seed: int) -> list[Event]:
    contracts = [f"R2-{seed}-{i:05d}" for i in range(max(1, n // 2))]
    bookings = [Event(BOOKING, c, c, f"msg.{c}", booking_body(c), ctx.CRM) for c in contracts]
    entries = [
        Event(TIME, f"TE-{c}", c, f"msg.TE-{c}", time_body(f"TE-{c}", c), ctx.PSA)
        for c in contracts[: n - len(bookings)]
    ]
    return bookings + entries


def assign_faults(events: list[Event], rng: random.Random) -> None:
    """A seeded FAULT_SHARE of the events, each with the next fault of its kind (seeded order, cycled)."""
    for kind in (BOOKING, TIME):
        mine = [e for e in events if e.kind == kind]
        retried = [f for f in FAULTS if f.kind == kind and not f.parks]
        parking = [f for f in FAULTS if f.kind == kind and f.parks]
        rng.shuffle(retried)
        rng.shuffle(parking)
        # Alternating, so even a small N has faults that are retried away and faults that park the event.
        catalogue = [f for pair in zip_longest(retried, parking) for f in pair if f is not None]
        chosen = rng.sample(mine, max(2, round(len(mine) * FAULT_SHARE)))
        for i, event in enumerate(chosen):
            event.fault = catalogue[i % len(catalogue)]


class ItemFaults:
    """The fault plan: per (function, entity) the directives its next invocations get, one each.

    An invocation carries one directive. A starter's batch can hold two events that both have one pending:
    the first takes it, the other is `shadowed` (its record is started without a fault, so its fault may
    never be reached); the row counts those apart rather than calling them faults.
    """

    def __init__(self, folders: dict[str, str]) -> None:
        self._folders = folders  # function name -> folder
        self._queued: dict[tuple[str, str], list[Directive]] = {}
        self._lock = threading.Lock()
        self.log: list[tuple[str, str, str]] = []
        self.shadowed: set[str] = set()

    def add(self, folder: str, item: str, directive: Directive, times: int) -> None:
        self._queued.setdefault((folder, item), []).extend([directive] * times)

    def __call__(self, function: str, event: Any) -> Directive | None:
        folder = self._folders.get(function)
        if folder is None or not any(key[0] == folder for key in self._queued):
            return None
        items = dict.fromkeys(ITEM.findall(json.dumps(event, default=str)))
        chosen: Directive | None = None
        with self._lock:
            for item in items:
                pending = self._queued.get((folder, item))
                if not pending:
                    continue
                if chosen is not None:
                    self.shadowed.add(item)
                    continue
                chosen = pending.pop(0)
                self.log.append((folder, item, str(chosen["label"])))
        return chosen

    def pending(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._queued.values())


@contextmanager
def inbox_visibility(stack: Stack, seconds: int) -> Iterator[None]:
    sqs = stack.runtime.clients["sqs"]
    urls = [
        url
        for logical, url in stack.runtime.resources.queues.items()
        if any(name in logical for name in INBOXES) and "Dlq" not in logical
    ]
    saved = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"][
            "VisibilityTimeout"
        ]
        for url in urls
    }
    for url in urls:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})
    try:
        yield
    finally:
        for url, value in saved.items():
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": value})


def deliver(stack: Stack, event: Event) -> None:
    """A sender: retries 5xx, 409 and no answer until a 202 (or a 4xx: a refusal is not retried)."""
    deadline = time.monotonic() + HANG_GUARD_S
    for _ in range(MAX_ATTEMPTS):
        headers = s.standard_headers(stack.secret(event.source), event.body, event.delivery_id)
        answer = stack.send(s.Request(event.source, event.body, headers))
        event.statuses[answer.status] += 1
        if answer.status == 202:
            event.event_ids.add(json.loads(answer.body)["event_id"])
            return
        if (400 <= answer.status < 500 and answer.status != 409) or time.monotonic() > deadline:
            return
        time.sleep(RETRY_PAUSE_S)
    event.unanswered = True


SETTLE_GUARD_S = 120.0  # a hang guard on one event's workflow; the row's checks judge what happened


def send_all(stack: Stack, events: list[Event], progress: Progress, label: str) -> None:
    """JOBS senders, closed loop as in R1: a sender takes its next event once the last one's workflow ended
    (an open-loop burst leaves hundreds of executions running, each step queued behind its function's
    containers past the task timeout). An event whose starter is faulted on every receive never starts one."""
    task = progress.task(label, total=len(events))
    machines = {
        BOOKING: (stack.state_machine_arn("Provision"), "ContractBooked"),
        TIME: (stack.state_machine_arn("ApplyApprovedTime"), "TimeApproved"),
    }

    def deliver_and_settle(event: Event) -> None:
        deliver(stack, event)
        fault = event.fault
        never_starts = fault is not None and fault.function == "start_workflow" and fault.parks
        if event.event_ids and not never_starts:
            machine, prefix = machines[event.kind]
            stack.wait_for_execution(machine, f"{prefix}-{event.event_id}", timeout=SETTLE_GUARD_S)

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        for _ in pool.map(deliver_and_settle, events):
            progress.advance(task)


# --- evidence ----------------------------------------------------------------------------------------


@dataclass
class Parked:
    """Every message in a dead-letter store or the exceptions queue: event id -> (store, cause)."""

    by_event: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    total: int = 0


def parked(stack: Stack) -> Parked:
    ops = DeadLetterOps(stack.runtime.clients["sqs"], stack.runtime.clients["events"])
    found = Parked()
    for store in ops.stores():
        if store.depth == 0:
            continue
        for summary in ops.peek(store, limit=store.depth + 10):
            found.total += 1
            found.by_event.setdefault(summary.event_id or "?", []).append(
                (store.name, f"{summary.failed_step or '?'}: {summary.error or ''}".strip())
            )
    return found


def store_depth(stack: Stack) -> int:
    ops = DeadLetterOps(stack.runtime.clients["sqs"], stack.runtime.clients["events"])
    return sum(store.depth for store in ops.stores())


# `<event type>-<event id>`, and `-a<N>` for a replay's attempt N (the event id is a UUID: its last group may
# itself read `a<digits>`, so the id is matched whole).
EXECUTION_NAME = re.compile(r"^(\w+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:-a\d+)?$")


def _succeeded(executions: list[dict[str, Any]]) -> Counter[str]:
    """Succeeded executions by the name of the first attempt."""
    names: Counter[str] = Counter()
    for execution in executions:
        matched = EXECUTION_NAME.match(execution["name"])
        if execution["status"] == "SUCCEEDED":
            names[matched.group(1) if matched else execution["name"]] += 1
    return names


def checks(stack: Stack, events: list[Event], published: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per event item: how many times each of its effects exists (1 each when applied once)."""
    bookings = gather(stack, published)
    provision_ok = _succeeded(stack.executions_of("Provision"))
    time_ok = _succeeded(stack.executions_of("ApplyApprovedTime"))
    ddb = stack.runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(stack.runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
    log = DynamoDBDeliveryLog(stack.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb)
    time_commands = Counter(
        c.external_id for c in log.all_commands() if c.operation == "upsert_billable_time"
    )
    synced: dict[str, set[str]] = {}
    for e in published:
        if e["detail-type"] == "TimeSynced":
            synced.setdefault(e["detail"]["data"]["time_entry_id"], set()).add(e["detail"]["event_id"])
    found: dict[str, dict[str, int]] = {}
    for event in events:
        if event.kind == BOOKING:
            counts = bookings.checks(event.contract_id, event.event_id)
            counts["executions_succeeded"] = provision_ok[f"ContractBooked-{event.event_id}"]
        else:
            ledger = [v.body for v in store.history(TIME_LEDGER, event.contract_id)]
            counts = {
                "ledger_lines": sum(1 for b in ledger if b["kind"] == "line" and event.item in b["entry"]),
                "ledger_sent": sum(1 for b in ledger if b["kind"] == "sent" and event.item in b["entry"]),
                "erp_commands": sum(v for k, v in time_commands.items() if event.item in k),
                "executions_succeeded": time_ok[f"TimeApproved-{event.event_id}"],
                "time_synced_published": len(synced.get(event.item, ())),
            }
        found[event.item] = counts
    return found


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    by_fault: dict[str, Counter[str]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # item -> applied_once | parked | ...


def tally(stack: Stack, events: list[Event], published: list[dict[str, Any]], dead: Parked) -> Tally:
    result = Tally()
    effects = checks(stack, events, published)
    for event in events:
        values = effects[event.item]
        problems = [f"{k} {v}" for k, v in values.items() if v != 1]
        if event.unanswered or len(event.event_ids) != 1:
            problems.append(f"answers {dict(event.statuses)}, event ids {sorted(event.event_ids)}")
        twice = any(v > 1 for v in values.values())
        once = not problems
        causes = [cause for _, cause in dead.by_event.get(event.event_id, ()) if cause]
        outcome = "applied_once" if once else "applied_twice" if twice else "parked" if causes else "lost"
        result.counts[outcome] += 1
        result.outcomes[event.item] = outcome
        result.counts[f"{event.kind}s"] += 1
        if event.fault is not None:
            result.by_fault.setdefault(event.fault.name, Counter())[outcome] += 1
        if outcome in ("applied_twice", "lost") and len(result.failures) < 20:
            fault = event.fault.name if event.fault else "no fault"
            result.failures.append(f"{event.item} ({fault}): {outcome}: {'; '.join(problems)}")
    return result


# --- the row -------------------------------------------------------------------------------------------


def inject(stack: Stack, n: int, seed: int, progress: Progress) -> tuple[Run, float]:
    """Sends the row's events with their faults and waits for the runtime to settle; (run, seconds)."""
    rng = random.Random(seed + 2)
    started = time.monotonic()
    events = events_for(n, seed)
    assign_faults(events, rng)
    host = stack.runtime.host
    phases: dict[str, float] = {}
    plan = ItemFaults({f.name: f.folder for f in host.functions.values()})
    for event in events:
        if event.fault is not None:
            table = stack.runtime.function_env(event.fault.table_env) if event.fault.table_env else None
            plan.add(
                event.fault.function,
                event.item,
                event.fault.directive(event.item, event.contract_id, table),
                event.fault.receives,
            )
    with inbox_visibility(stack, INBOX_VISIBILITY_S):
        host.fault_plan = plan
        try:
            # Bookings first: an approved time entry for a contract not yet booked is an exception, by rule.
            for kind in (BOOKING, TIME):
                mine = [e for e in events if e.kind == kind]
                rng.shuffle(mine)
                phase_started = time.monotonic()
                send_all(stack, mine, progress, f"{ID} {NAME}: {kind}s")
                stack.wait_idle(timeout=HANG_GUARD_S, inboxes=INBOXES)
                phases[kind] = round(time.monotonic() - phase_started, 1)
        finally:
            host.fault_plan = None
    run = Run(events=events, seed=seed, injected=plan.log, shadowed=set(plan.shadowed), phase_s=phases)
    stack.shared[ID] = run
    return run, time.monotonic() - started


def faults_fired(stack: Stack, run: Run) -> int:
    """The injected faults the containers report having acted on (their `[FAULT] injected:` lines)."""
    labels = Counter(label for _, _, label in run.injected)
    text = stack.lambda_log.read_text(errors="replace")
    return sum(min(count, text.count(f"[FAULT] injected: {label}")) for label, count in labels.items())


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    stack.drain_capture()
    captured_from = len(stack.captured)
    depth_before = store_depth(stack)
    outcome, seconds = inject(stack, n, seed, progress)
    stack.shared[f"{ID}-captured-from"] = captured_from
    stack.drain_capture()
    dead = parked(stack)
    result_tally = tally(stack, outcome.events, stack.captured[captured_from:], dead)
    counts = result_tally.counts
    faulted = [e for e in outcome.events if e.fault is not None]
    fired = faults_fired(stack, outcome)
    # An event parked before the faulted function (its booking was parked, so its time entry failed to
    # match) never reaches its fault, nor does one whose starter batch carried another event's directive
    # (ItemFaults): counted apart, not as a fault. Any other unreached fault is a harness defect.
    reached = {item for _, item, _ in outcome.injected}
    not_reached = [e for e in faulted if e.item not in reached]
    unexplained = [
        e for e in not_reached if result_tally.outcomes[e.item] != "parked" and e.item not in outcome.shadowed
    ]
    result = RowResult(
        id=ID,
        name=NAME,
        seed=seed,
        n=n,
        wall_s=round(seconds, 1),
        passed=False,
        expectation=(
            "0 lost: each event applied once (one contract version, one time-ledger line per entry, one ERP "
            "command per line, one succeeded execution, one completion event id) or parked in a dead-letter "
            "store or the exceptions queue with its cause; 0 applied twice"
        ),
    )
    result.counts = {
        "events": n,
        "bookings": counts["bookings"],
        "time_entries": counts["times"],
        "events_with_fault": len(faulted),
        "fault_share": round(len(faulted) / n, 3),
        "faults_injected": len(outcome.injected),
        "faults_fired": fired,
        "faults_not_reached": len(not_reached),
        "faults_shadowed_in_batch": sum(1 for e in faulted if e.item in outcome.shadowed),
        "applied_once": counts["applied_once"],
        "parked_with_cause": counts["parked"],
        "applied_twice": counts["applied_twice"],
        "lost": counts["lost"],
        "dead_letter_messages": dead.total - depth_before,
        "sender_retries": sum(sum(e.statuses.values()) - 1 for e in outcome.events),
        "by_fault": {name: dict(c) for name, c in sorted(result_tally.by_fault.items())},
        "inbox_visibility_s": INBOX_VISIBILITY_S,
        "phase_s": outcome.phase_s,
    }
    # The rate and the time the issue's N would take are noted by rows.py from this run's own figures.
    composition = f"{counts['bookings']} bookings, then {counts['times']} approved time entries"
    result.notes.append(f"N={n} ({composition})")
    result.failures = result_tally.failures
    if fired < len(outcome.injected):
        result.failures.append(f"{len(outcome.injected)} faults handed out, {fired} fired")
    result.failures.extend(
        f"{e.item} ({e.fault.name if e.fault else 'no fault'}): fault never reached, "
        f"{result_tally.outcomes[e.item]}, not parked upstream nor shadowed in a batch"
        for e in unexplained[:20]
    )
    result.passed = (
        counts["applied_twice"] == 0
        and counts["lost"] == 0
        and counts["applied_once"] + counts["parked"] == n
        and fired == len(outcome.injected) > 0
        and not unexplained
    )
    return result
