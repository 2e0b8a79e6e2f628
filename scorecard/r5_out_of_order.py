"""R5 out-of-order amendments: entities x 5 versions in random permutations with duplicates.

Each entity is a contract booked first (and provisioned), then amended five times: amendment k carries
source version `2027-06-10T14:0k:00.000Z` and terms whose title names k (the change order's terms
otherwise). The deliveries of an entity are its five amendments plus duplicates (about 40 % of them sent
twice: half as a sender's retry with the same `webhook-id`, deduplicated at the webhook; half as a new
message with a new id, which only the workflow's version guard can recognise), in a random permutation.
About half the entities are sequential (each delivery waits for the workflow it started to end, so late
copies really arrive late), the others concurrent (every delivery of the entity at the same instant).

Expectation, per entity: the head version's terms are amendment 5's; no amendment is stored twice (the
titles of the stored versions are distinct) and none is stored after a newer one (they increase); every
amendment workflow succeeds (applied or ignored); the exceptions queue and the dead-letter stores stay
empty (a stale version is ignored with its reason, never an exception).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pssync.adapters.aws import DynamoDBVersionStore
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from scorecard import context as ctx
from scorecard import senders as s
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress

ID = "R5"
NAME = "out-of-order amendments"
VERSIONS = 5
ISSUE_N = 1_000  # entities x 5 versions
# The issue's N: 884 s on this 2-core machine when quiet (2026-11-30, 1.13 entities of 5 versions a second);
# under load from other work it is several times slower. rows.py notes the rate each run measures.
FULL_N = ISSUE_N
QUICK_N = 10
JOBS = 16  # entities in flight: a sequential entity mostly waits for its workflows
DUPLICATE_SHARE = 0.4
MAX_ATTEMPTS = 50
INBOXES = ("ProvisionEngagementInbox", "PropagateAmendmentInbox")


@dataclass
class Delivery:
    k: int
    delivery_id: str
    body: bytes


@dataclass
class Entity:
    index: int
    contract_id: str
    concurrent: bool
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    event_ids: dict[int, set[str]] = field(default_factory=dict)


def title(contract_id: str, k: int) -> str:
    return f"{contract_id} amendment {k}"


def source_version(k: int) -> str:
    return f"2027-06-10T14:{k:02d}:00.000Z"


def _entities(rng: random.Random, n: int, seed: int) -> list[Entity]:
    entities = []
    for i in range(n):
        contract_id = f"R5-{seed}-{i:05d}"
        entity = Entity(index=i, contract_id=contract_id, concurrent=rng.random() < 0.5)
        for k in range(1, VERSIONS + 1):
            body = s.dumps(s.amendment_document(contract_id, source_version(k), title(contract_id, k)))
            delivery_id = f"msg_r5_{seed}_{i:05d}_{k}"
            entity.deliveries.append(Delivery(k, delivery_id, body))
            if rng.random() < DUPLICATE_SHARE:
                same_id = rng.random() < 0.5
                entity.deliveries.append(
                    Delivery(k, delivery_id if same_id else f"{delivery_id}_again", body)
                )
        rng.shuffle(entity.deliveries)
        entities.append(entity)
    return entities


def _post(stack: Stack, entity: Entity, delivery: Delivery, lock: threading.Lock) -> dict[str, Any] | None:
    """One delivery, retried while answered 409 in_progress; the 202 document, or None."""
    for _ in range(MAX_ATTEMPTS):
        headers = s.standard_headers(stack.secret(ctx.CRM), delivery.body, delivery.delivery_id)
        answer = stack.send(s.Request(ctx.CRM, delivery.body, headers))
        with lock:
            entity.statuses[answer.status] += 1
        if answer.status == 409:
            time.sleep(0.2)
            continue
        if answer.status != 202:
            return None
        document: dict[str, Any] = json.loads(answer.body)
        with lock:
            entity.event_ids.setdefault(delivery.k, set()).add(document["event_id"])
        return document
    return None


def _wait_for_execution(stack: Stack, arn: str, timeout: float = 600) -> None:
    stack.runtime.wait_for_execution(arn, timeout=timeout)  # not started yet is waited for too


def _amend(stack: Stack, entity: Entity, machine_arn: str) -> None:
    lock = threading.Lock()
    if entity.concurrent:
        barrier = threading.Barrier(len(entity.deliveries))

        def send(delivery: Delivery) -> None:
            barrier.wait()
            _post(stack, entity, delivery, lock)

        with ThreadPoolExecutor(max_workers=len(entity.deliveries)) as burst:
            list(burst.map(send, entity.deliveries))
        # Closed loop, as R1: the next entity once these workflows ended (not a wall of running executions).
        for event_id in sorted({e for ids in entity.event_ids.values() for e in ids}):
            stack.wait_for_execution(machine_arn, f"ContractAmended-{event_id}")
        return
    execution_prefix = machine_arn.replace(":stateMachine:", ":execution:") + ":"
    for delivery in entity.deliveries:
        document = _post(stack, entity, delivery, lock)
        if document is not None and not document["duplicate"]:
            _wait_for_execution(stack, execution_prefix + f"ContractAmended-{document['event_id']}")


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    rng = random.Random(seed + 5)
    started = time.monotonic()
    entities = _entities(rng, n, seed)
    dead_before = stack.queue_messages("dead-letter")
    exceptions_before = stack.queue_messages("exceptions")

    # 1. book every entity and let it be provisioned (an amendment before its booking is retried by the
    #    guard until the booking is recorded: a different case, not this row's)
    booking = progress.task(f"{ID} {NAME}: bookings", total=n)

    def book(entity: Entity) -> int:
        body = s.dumps(s.booking_document(entity.contract_id))
        delivery_id = f"msg_r5_{seed}_{entity.index:05d}_booking"
        for _ in range(MAX_ATTEMPTS):  # 409 in_progress is retried, as a sender does
            headers = s.standard_headers(stack.secret(ctx.CRM), body, delivery_id)
            answer = stack.send(s.Request(ctx.CRM, body, headers))
            if answer.status != 409:
                break
            time.sleep(0.2)
        if answer.status == 202:  # closed loop: the next booking once this one's workflow ended
            provision = stack.state_machine_arn("Provision")
            stack.wait_for_execution(provision, f"ContractBooked-{json.loads(answer.body)['event_id']}")
        progress.advance(booking)
        return answer.status

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        booking_statuses = Counter(pool.map(book, entities))
    stack.wait_idle(timeout=3600, inboxes=INBOXES)

    # 2. the amendments, entity by entity in parallel, each entity's deliveries permuted
    machine = stack.state_machine_arn("PropagateAmendment")
    amending = progress.task(f"{ID} {NAME}: amendments", total=n)
    order = list(entities)
    rng.shuffle(order)

    def amend(entity: Entity) -> None:
        _amend(stack, entity, machine)
        progress.advance(amending)

    amend_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        list(pool.map(amend, order))
    stack.wait_idle(timeout=3600, inboxes=INBOXES)
    amend_s = time.monotonic() - amend_started

    # 3. what was stored
    ddb = stack.runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(stack.runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
    statuses: Counter[str] = Counter(e["status"] for e in stack.executions_of("PropagateAmendment"))
    counts: Counter[str] = Counter()
    failures: list[str] = []
    for entity in entities:
        problems = []
        if entity.statuses.keys() - {202, 409}:
            problems.append(f"answers {dict(entity.statuses)}")
        history = store.history(CONTRACT, entity.contract_id)
        titles = [v.body["terms"]["title"] for v in history[1:]]  # version 1 is the booking
        ks = [int(t.rsplit(" ", 1)[1]) for t in titles]
        head = history[-1] if history else None
        newest = title(entity.contract_id, VERSIONS)
        head_is_newest = head is not None and head.body["terms"]["title"] == newest
        counts["head_is_newest"] += head_is_newest
        if not head_is_newest:
            problems.append(f"head holds {head.body['terms']['title'] if head else None!r}")
        stored_once = len(ks) == len(set(ks))
        counts["versions_stored_twice"] += len(ks) - len(set(ks))
        in_order = ks == sorted(ks)
        counts["stored_out_of_order"] += not in_order
        if not stored_once or not in_order:
            problems.append(f"amendments stored as versions 2..: {ks}")
        revenue = store.head(REVENUE_SCHEDULE, entity.contract_id)
        revenue_at_head = (
            revenue is not None and head is not None and revenue.body["contract_version"] == head.version
        )
        counts["revenue_at_head_version"] += revenue_at_head
        if not revenue_at_head:
            at = revenue.body["contract_version"] if revenue else None
            problems.append(f"revenue schedule at contract version {at}")
        counts["versions_stored"] += len(history)
        counts["entities_ok"] += not problems
        if problems and len(failures) < 20:
            failures.append(
                f"{entity.contract_id} ({'concurrent' if entity.concurrent else 'sequential'}, "
                f"order {[d.k for d in entity.deliveries]}): {'; '.join(problems)}"
            )
    exceptions = stack.queue_messages("exceptions") - exceptions_before
    dead = stack.queue_messages("dead-letter") - dead_before
    if exceptions:
        failures.append(f"{exceptions} messages in the exceptions queue: {_peek_exceptions(stack)}")

    result = RowResult(
        id=ID,
        name=NAME,
        seed=seed,
        n=n,
        wall_s=round(time.monotonic() - started, 1),
        passed=False,
        expectation=(
            f"head = newest (amendment {VERSIONS}) 100 %, each amendment stored once and in order, "
            "revenue at the head version, every workflow succeeded, 0 exceptions for stale versions, "
            "0 dead-lettered"
        ),
    )
    result.counts = {
        "entities": n,
        "versions_per_entity": VERSIONS,
        "deliveries": sum(len(e.deliveries) for e in entities),
        "concurrent_entities": sum(e.concurrent for e in entities),
        "head_is_newest": counts["head_is_newest"],
        "versions_stored_twice": counts["versions_stored_twice"],
        "stored_out_of_order": counts["stored_out_of_order"],
        "revenue_at_head_version": counts["revenue_at_head_version"],
        "contract_versions_stored": counts["versions_stored"],
        "workflows": dict(statuses),
        "exceptions": exceptions,
        "dead_lettered": dead,
        "bookings_answered": {str(k): v for k, v in booking_statuses.items()},
        "amendments_s": round(amend_s, 1),
    }
    result.failures = failures
    result.passed = (
        counts["entities_ok"] == n
        and exceptions == 0
        and dead == 0
        and set(statuses) == {"SUCCEEDED"}
        and booking_statuses == Counter({202: n})
    )
    return result


def _peek_exceptions(stack: Stack, limit: int = 5) -> list[str]:
    """What the first exceptions say (left in the queue: visible again after the timeout)."""
    sqs = stack.runtime.clients["sqs"]
    found = []
    for logical, url in stack.runtime.resources.queues.items():
        if "Exceptions" not in logical:
            continue
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=limit, VisibilityTimeout=0).get(
            "Messages", []
        )
        found += [m["Body"][:300] for m in messages]
    return found
