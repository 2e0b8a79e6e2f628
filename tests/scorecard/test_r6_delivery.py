"""R6's sender against a fake ingest: the hung delivery is the one whose handler reached its fault point.

The fake stands in for the webhook API and the ingest as R6 sees them: the fault plan is asked when an
invocation arrives (as `LambdaHost` does), an armed invocation first waits for a fresh container (the last
one was just killed: a cold start) while a warm one serves any other, and the handler keeps a Powertools-like
idempotency record per delivery (INPROGRESS until its invocation's deadline, then COMPLETED). The fault is
R6's "idempotency record INPROGRESS" hang: reported through the real `pssync.local.faults.report_fired`, then
the invocation is killed at its deadline and answered 502.

The 2026-11-30 08:41 run failed one of 60 events this way: the first retry went out once the directive was
handed out, overtook the armed delivery during its cold start and left it a 409 that never hung.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pssync.local.faults import Directive, KeyedFaults, proxy_header, report_fired
from pssync.local.lambda_host import InvocationRecord
from scorecard import r6_timeout as r6
from scorecard.harness import Answer
from scorecard.senders import Request

INGEST = "ingest"
COLD_START_S = 0.3  # the armed invocation's wait for a fresh container, unless a warm one finishes first
TIMEOUT_S = 0.5  # the fake ingest's function timeout


@dataclass
class _Record:
    status: str  # INPROGRESS | COMPLETED
    expires: float  # monotonic; an INPROGRESS record past it may be taken over (Powertools)
    event_id: str


class FakeIngest:
    """Webhook API + ingest handler + container pool, in-process; `send` answers as the local API does."""

    def __init__(self, plan: KeyedFaults, *, kill_before_fault: int = 0, skips_fault_call: bool = False):
        self.plan = plan
        self.kill_before_fault = kill_before_fault  # this many armed invocations are killed before the call
        self.skips_fault_call = skips_fault_call  # a handler that never makes the phase's call
        self.records: dict[str, _Record] = {}
        self.invocations: list[InvocationRecord] = []
        self._lock = threading.Lock()
        self._warm_finished = threading.Event()

    def secret(self, source: str) -> str:
        return "whsec_" + base64.b64encode(b"r6-fake-ingest-secret-32-bytes!!").decode()

    def send(self, request: Request) -> Answer:
        event = {"headers": dict(request.headers), "body": request.body.decode()}
        request_id = str(uuid.uuid4())
        fault = self.plan(INGEST, event)
        if fault is not None:
            fault = {**fault, "request_id": request_id}
            # A fresh container for the armed invocation; a warm one finishing first serves the next.
            self._warm_finished.wait(COLD_START_S)
        status, body, error = self._handle(str(proxy_header(event, "webhook-id")), fault)
        self.invocations.append(InvocationRecord(INGEST, error is not None, error, request_id, fault))
        if fault is None:
            self._warm_finished.set()
        return Answer(status, body)

    def _handle(self, key: str, fault: Directive | None) -> tuple[int, bytes, str | None]:
        deadline = time.monotonic() + TIMEOUT_S
        with self._lock:
            record = self.records.get(key)
            if record is not None and record.status == "COMPLETED":
                return 202, json.dumps({"event_id": record.event_id, "duplicate": True}).encode(), None
            if record is not None and record.expires > time.monotonic():
                return 409, b'{"message":"an identical delivery is being recorded"}', None
            self.records[key] = _Record("INPROGRESS", deadline, "")
            killed_early = fault is not None and self.kill_before_fault > 0
            self.kill_before_fault -= killed_early
        if fault is not None and not self.skips_fault_call:
            if not killed_early:  # the INPROGRESS PutItem returned: the hang fires after it
                report_fired(fault, str(fault["label"]))
            time.sleep(max(0.0, deadline - time.monotonic()))  # hung (or just slow) until killed
            return 502, b'{"message":"Internal server error"}', r6.KILLED
        event_id = f"evt-{key}"
        with self._lock:
            self.records[key] = _Record("COMPLETED", 0.0, event_id)
        return 202, json.dumps({"event_id": event_id, "duplicate": False}).encode(), None


@pytest.fixture(autouse=True)
def _quick_sender(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(r6, "FIRST_RETRY_S", 0.1)
    monkeypatch.setattr(r6, "RETRY_PAUSE_S", 0.05)
    monkeypatch.setattr(r6, "HANG_GUARD_S", 30.0)
    yield


def _deliver(tmp_path: Path, **fake_options: object) -> tuple[r6.Event, FakeIngest, list[str]]:
    plan = KeyedFaults(
        key_of=lambda function, event: proxy_header(event, "webhook-id"), report_to=tmp_path / "f"
    )
    ingest = FakeIngest(plan, **fake_options)  # type: ignore[arg-type]
    phase = r6.PHASES[1]  # idempotency record INPROGRESS
    assert phase.name == "idempotency record INPROGRESS"
    event = r6.Event(0, "R6-T-00000", "msg_r6_t_00000", b'{"booking": 1}', phase)
    r6._deliver(ingest, event, plan, r6.directive(phase, "idempotency"))
    by_request = {record.request_id: record for record in ingest.invocations}
    return event, ingest, r6.delivery_problems(event, plan.fired(event.delivery_id), by_request)


def test_the_retry_waits_for_the_armed_handler_to_reach_its_fault_so_that_delivery_is_the_one_killed(
    tmp_path: Path,
) -> None:
    event, ingest, problems = _deliver(tmp_path)

    assert problems == []
    assert event.hung_answer == 502 and event.statuses[502] == 1
    assert event.statuses[202] == 1 and event.firsts == 1 and event.event_ids == {"evt-msg_r6_t_00000"}
    [killed] = [record for record in ingest.invocations if record.error_type == r6.KILLED]
    assert killed.fault is not None and killed.fault["key"] == event.delivery_id


def test_an_armed_delivery_killed_before_its_fault_point_is_sent_armed_again(tmp_path: Path) -> None:
    event, ingest, problems = _deliver(tmp_path, kill_before_fault=1)

    assert problems == []
    assert event.answered_before_fault[502] == 1  # killed by "load" before the call: no fault reached
    armed = [record for record in ingest.invocations if record.fault is not None]
    assert len(armed) == 1 + sum(event.answered_before_fault.values())
    assert event.hung_answer == 502 and event.statuses[202] == 1


def test_a_handler_that_never_reaches_the_fault_point_fails_the_premise(tmp_path: Path) -> None:
    event, _, problems = _deliver(tmp_path, skips_fault_call=True)

    assert event.answered_before_fault[202] == 1
    assert "an armed delivery was answered 202 without reaching its fault point" in problems
    assert "0 invocations reached the fault point" in problems
