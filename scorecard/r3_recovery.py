"""R3 recovery: faults off, every dead-letter store and the exceptions queue replayed with the code behind
`pssync dlq replay` (`pssync.ops.dead_letters.DeadLetterOps`), the runtime drained: 100 % of R2's events
applied, 0 duplicates, every store empty.

R3 continues from R2's run (`stack.shared["R2"]`: its events and what it parked); run alone (`--only R3`) it
first runs R2's injection itself with the same N and seed. A replay round takes every store with messages; a
second round is allowed for what the first one's replays parked again (none expected: faults are off).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

from pssync.ops.dead_letters import DeadLetterOps
from pssync.ops.replay import ReplayKind
from pssync.ops.selection import ReplayFilter
from scorecard import r2_faults as r2
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress

ID = "R3"
NAME = "recovery"
ISSUE_N = r2.ISSUE_N
FULL_N = r2.FULL_N  # R2's events
QUICK_N = r2.QUICK_N
ROUNDS = 5
BEFORE_THE_ROUND = ReplayFilter(older_than=timedelta(0))


def _at(moment: datetime) -> datetime:
    return moment


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    started = time.monotonic()
    previous: r2.Run | None = stack.shared.get(r2.ID)
    captured_from = stack.shared.get(f"{r2.ID}-captured-from")
    notes: list[str] = []
    if previous is None or captured_from is None:
        stack.drain_capture()
        captured_from = len(stack.captured)
        previous, _ = r2.inject(stack, n, seed, progress)
        notes.append("R2 had not run: its injection ran first (its time is not R3's)")
        started = time.monotonic()
    stack.runtime.host.fault_plan = None  # faults off
    ops = DeadLetterOps(stack.runtime.clients["sqs"], stack.runtime.clients["events"])
    replayed: Counter[str] = Counter()
    errors: list[str] = []
    rounds = 0
    for rounds in range(1, ROUNDS + 1):
        stores = [store for store in ops.stores() if store.depth > 0]
        if not stores:
            break
        task = progress.task(f"{ID} {NAME}: replay round {rounds}", total=len(stores))
        # Upstream stores first (a booking parked at its inbox before the time entry that needs it), and only
        # what was parked before the round: a replayed message that fails again at once is parked anew, and
        # a run taking every fresh message would chase its own tail (it is the next round's).
        stores.sort(key=lambda store: store.kind is ReplayKind.WORKFLOW_EXCEPTIONS)
        round_started = datetime.now(UTC)
        for store in stores:
            outcome = ops.replay(store, selection=BEFORE_THE_ROUND, now=partial(_at, round_started))
            replayed[store.name] += outcome.replayed
            errors += outcome.errors
            progress.advance(task)
        stack.wait_idle(timeout=r2.HANG_GUARD_S, inboxes=r2.INBOXES)
    left = {store.name: store.depth for store in ops.stores() if store.depth}
    stack.drain_capture()
    result_tally = r2.tally(stack, previous.events, stack.captured[captured_from:], r2.Parked())
    counts = result_tally.counts
    total = len(previous.events)

    result = RowResult(
        id=ID,
        name=NAME,
        seed=previous.seed,
        n=total,
        wall_s=round(time.monotonic() - started, 1),
        passed=False,
        expectation=(
            "faults off, every dead-letter store and the exceptions queue replayed (pssync dlq replay): "
            "100 % "
            "of R2's events applied once, 0 duplicates, every store empty"
        ),
    )
    result.counts = {
        "events": total,
        "replayed": sum(replayed.values()),
        "replayed_by_store": dict(replayed),
        "replay_rounds": rounds,
        "replay_errors": len(errors),
        "applied_once": counts["applied_once"],
        "applied_pct": round(100 * counts["applied_once"] / total, 2) if total else 0.0,
        "applied_twice": counts["applied_twice"],
        "not_applied": counts["parked"] + counts["lost"],
        "messages_left_in_stores": sum(left.values()),
    }
    result.notes = notes
    result.failures = result_tally.failures + errors[:10]
    if left:
        result.failures.append(f"stores not empty: {left}")
    result.passed = counts["applied_once"] == total > 0 and not left and not errors
    return result
