"""The never-regress guard's atomic claim: two versions of one record in flight at once, with the fake log.

Concurrency is made deterministic here: the fake live target sends the other version from inside its own
write, i.e. exactly while the first write is in flight (the window the old check-then-write left open).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from pssync.connectors.cutover import (
    DUAL,
    LIVE,
    SHADOW,
    WRITER_LEASE_SECONDS,
    CutoverConnector,
    RefusedCommand,
)
from pssync.errors import TransientDownstreamError
from pssync.model.commands import ConnectorCommand
from pssync.ports import RecordedCommand
from tests.fakes import InMemoryDeliveryLog
from tests.unit.test_netsuite_connector import billing_schedule


@dataclass
class ManualClock:
    """Monotonic time that moves only when the code under test sleeps (or the test says so)."""

    now: float = 1_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class InterleavingLive:
    """A live target whose write of one version runs `during_write` before it completes."""

    written: list[str] = field(default_factory=list)
    during_write: dict[str, Callable[[], object]] = field(default_factory=dict)
    fail_next: Exception | None = None

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        interleaved = self.during_write.pop(command.idempotency_key, None)
        if interleaved is not None:
            interleaved()
        self.written.append(command.idempotency_key)
        return RecordedCommand(command=command, first_time=True)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        return []


def target(
    mode: str, log: InMemoryDeliveryLog, live: InterleavingLive, clock: ManualClock
) -> CutoverConnector:
    return CutoverConnector(mode, log, live, sleep=clock.sleep, monotonic=clock, rng=lambda: 0.5)


@pytest.mark.parametrize("mode", [LIVE, DUAL])
def test_an_older_version_arriving_while_the_newer_one_is_written_is_refused_and_never_written(
    mode: str,
) -> None:
    # Fails with the check-then-write guard: v3 is not in the delivery log until its write returns, so v2
    # found nothing newer, was written after v3 and left the ERP holding v2.
    clock = ManualClock()
    log, live = InMemoryDeliveryLog(clock=clock), InterleavingLive()
    erp = target(mode, log, live, clock)
    late: list[RecordedCommand] = []
    live.during_write[billing_schedule(3).idempotency_key] = lambda: late.append(
        erp.send(billing_schedule(2), "t2")
    )

    assert erp.send(billing_schedule(3), "t1").first_time

    [refused] = late
    assert isinstance(refused, RefusedCommand)
    assert (refused.refused_version, refused.held_version) == (2, 3)
    assert live.written == [billing_schedule(3).idempotency_key]
    assert log.refusals == {billing_schedule(2).command_id: 3}
    assert log.held(billing_schedule(3)) == 3


def test_a_newer_version_waits_for_the_older_write_in_flight_then_gives_up_as_transient() -> None:
    clock = ManualClock()
    log, live = InMemoryDeliveryLog(clock=clock), InterleavingLive()
    erp = target(LIVE, log, live, clock)
    waited: list[BaseException] = []

    def newer_during_older_write() -> None:
        with pytest.raises(TransientDownstreamError) as busy:
            erp.send(billing_schedule(3), "t2")
        waited.append(busy.value)

    live.during_write[billing_schedule(2).idempotency_key] = newer_during_older_write
    erp.send(billing_schedule(2), "t1")

    [busy] = waited
    assert type(busy) is TransientDownstreamError  # the class name Step Functions retries on
    assert busy.code == "record_being_written"
    assert 0 < sum(clock.slept) <= 10.0  # it waited in the call, within its wait budget
    assert live.written == [billing_schedule(2).idempotency_key]  # v3 did not write beside v2
    # The workflow's retry, once v2's write is done: v3 is written after v2, never before.
    assert erp.send(billing_schedule(3), "t3").first_time
    assert live.written == [billing_schedule(2).idempotency_key, billing_schedule(3).idempotency_key]
    assert log.held(billing_schedule(3)) == 3 and log.refusals == {}


def test_a_failed_live_write_keeps_its_claim_its_retry_passes_and_an_older_version_stays_refused() -> None:
    clock = ManualClock()
    log, live = InMemoryDeliveryLog(clock=clock), InterleavingLive()
    erp = target(LIVE, log, live, clock)
    live.fail_next = TransientDownstreamError("netsuite PUT salesOrder: HTTP 503")
    with pytest.raises(TransientDownstreamError):
        erp.send(billing_schedule(2), "t1")
    assert billing_schedule(2).command_id not in log.commands  # not delivered: the log says so

    late = erp.send(billing_schedule(1), "t2")  # v1 arriving late: v2 is claimed, so v1 stays out
    assert isinstance(late, RefusedCommand) and late.held_version == 2
    assert erp.send(billing_schedule(2), "t3").first_time  # the retry: no wait, the lease was released
    assert clock.slept == []
    assert live.written == [billing_schedule(2).idempotency_key]
    # A redelivery of what the log says was delivered claims and writes nothing.
    assert not erp.send(billing_schedule(2), "t4").first_time
    assert live.written == [billing_schedule(2).idempotency_key]


def test_a_writer_killed_mid_write_frees_the_record_when_its_lease_runs_out() -> None:
    clock = ManualClock()
    log, live = InMemoryDeliveryLog(clock=clock), InterleavingLive()
    # A container killed at its timeout: its claim took the lease and never released it.
    dead = log.claim_version(billing_schedule(2), 2, "t0", writer_lease_seconds=WRITER_LEASE_SECONDS)
    assert dead.granted and dead.token is not None
    erp = target(LIVE, log, live, clock)
    with pytest.raises(TransientDownstreamError):
        erp.send(billing_schedule(3), "t1")
    clock.now += WRITER_LEASE_SECONDS
    assert erp.send(billing_schedule(3), "t2").first_time
    assert live.written == [billing_schedule(3).idempotency_key] and log.held(billing_schedule(3)) == 3
    # A late release by the dead writer must not end a lease another claim holds now.
    current = log.claim_version(billing_schedule(4), 4, "t3", writer_lease_seconds=WRITER_LEASE_SECONDS)
    log.release_claim(billing_schedule(2), dead.token)
    again = log.claim_version(billing_schedule(5), 5, "t4", writer_lease_seconds=WRITER_LEASE_SECONDS)
    assert current.granted and again.busy and not again.granted


def test_shadow_claims_the_mark_without_a_writer_lease() -> None:
    clock = ManualClock()
    log = InMemoryDeliveryLog(clock=clock)
    shadow = CutoverConnector(SHADOW, log, sleep=clock.sleep, monotonic=clock)
    assert shadow.send(billing_schedule(3), "t1").first_time
    mark = log.marks[(billing_schedule(3).target, "upsert_billing_schedule", "C-2026-0412")]
    assert (mark.held, mark.writer) == (3, None)
    refused = shadow.send(billing_schedule(2), "t2")
    assert isinstance(refused, RefusedCommand) and refused.held_version == 3


def test_a_delivery_recorded_without_a_mark_still_refuses_older_versions() -> None:
    # The onboarding import and deliveries logged before the marks existed hold a version with no mark.
    log = InMemoryDeliveryLog()
    log.record(billing_schedule(4), "t0")
    refused = CutoverConnector(SHADOW, log).send(billing_schedule(3), "t1")
    assert isinstance(refused, RefusedCommand) and refused.held_version == 4
    assert log.held(billing_schedule(3)) is None  # refused before claiming anything
