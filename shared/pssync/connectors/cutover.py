"""Cutover modes per target (shadow -> dual -> live) and the never-regress guard.

- `shadow`: record the command in the delivery log, send nothing (today's default).
- `dual`: record it, write it live, then read back what the target holds and compare it with what the
  shadow recorded under the same idempotency key; any difference is a `CutoverMismatch`.
- `live`: write it live, then record it in the delivery log as delivered.

Every mode first refuses a command whose contract version is older than the newest the record has seen
(a late redelivery or a replayed dead letter must not overwrite v3 with v2). The check is atomic: a
versioned command claims the record's high-water mark in the delivery log with one conditional write
(`DeliveryLogPort.claim_version`) before anything is sent, so of two versions racing the older loses. A
live or dual claim also takes the record's writer lease until its write is done: a newer version waits
(briefly here, then as a transient error the workflow retries) rather than write beside an older one that
is still in flight, so an older write can never land after a newer one. A refusal is recorded and returned
as a `RefusedCommand`: the workflow step ends normally instead of failing and being retried into it.

A claim whose write then fails keeps its mark: the retry of that version passes (same version), an older
one stays refused. The mark says which version was claimed, not that the target took it; the delivery log
says what was delivered.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pssync.errors import BusinessRuleViolation, PssyncError, TransientDownstreamError
from pssync.model.commands import ConnectorCommand
from pssync.ports import Connector, DeliveryLogPort, RecordedCommand, VersionClaim

SHADOW, DUAL, LIVE = "shadow", "dual", "live"
CUTOVER_MODES = (SHADOW, DUAL, LIVE)

# Keys that name a version end in `v<n>` (`billing-schedule:C-1:v3`, `project:P-1:contract-v3`).
_VERSION_IN_KEY = re.compile(r"(?:^|[:\-])v(\d+)$")
# A writer lease outlives any live write: a NetSuite command's calls share 25 s (NETSUITE_COMMAND_SECONDS)
# and every vendor call ends before its invocation does (pssync.connectors.http_policy), as the command's
# concurrency slot (60 s, pssync.adapters.leases) assumes too; a writer killed mid-write frees the record
# when its lease runs out.
WRITER_LEASE_SECONDS = 60.0
# How long a command waits in the call for another version's write to finish before it gives up with a
# transient error (the workflow's retries wait longer).
CLAIM_WAIT_SECONDS = 10.0


def command_version(command: ConnectorCommand) -> int | None:
    """The contract version a command writes: its payload's `contract_version`, else the version its
    idempotency key names; None for commands that are not versioned (time entries, journals)."""
    version = command.payload.get("contract_version")
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    match = _VERSION_IN_KEY.search(command.idempotency_key)
    return int(match.group(1)) if match else None


def held_version(command: ConnectorCommand, history: Sequence[ConnectorCommand]) -> int | None:
    """The newest version of the same record (target, operation, external id) in the delivery log."""
    versions = [
        v
        for earlier in history
        if earlier.target == command.target
        and earlier.operation == command.operation
        and earlier.external_id == command.external_id
        and (v := command_version(earlier)) is not None
    ]
    return max(versions, default=None)


@dataclass(frozen=True)
class RefusedCommand(RecordedCommand):
    """Not written: the target already holds (or a newer command has claimed) a newer version."""

    refused_version: int = 0
    held_version: int = 0


class LiveTarget(Connector, Protocol):
    """A connector that writes to a real system and can read back what it wrote."""

    def mismatches(self, command: ConnectorCommand) -> list[str]: ...


class CutoverMismatch(BusinessRuleViolation):
    """Dual mode: the live target holds something other than what the shadow recorded."""

    code = "cutover_mismatch"

    def __init__(self, command: ConnectorCommand, mismatches: Sequence[str]) -> None:
        super().__init__(
            f"{command.command_id}: the live target differs from the shadow: {'; '.join(mismatches)}"
        )
        self.command_id = command.command_id
        self.mismatches = list(mismatches)


class CutoverConnector:
    """One target's connector in one cutover mode, behind the never-regress guard."""

    def __init__(
        self,
        mode: str,
        history: DeliveryLogPort,
        live: LiveTarget | None = None,
        *,
        claim_wait_seconds: float = CLAIM_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if mode not in CUTOVER_MODES:
            raise PssyncError(
                f"unknown cutover mode {mode!r}; use one of {CUTOVER_MODES}", code="configuration"
            )
        if mode != SHADOW and live is None:
            raise PssyncError(f"cutover mode {mode!r} needs a live connector", code="configuration")
        self.mode = mode
        self._history = history
        self._live = live
        self._claim_wait_seconds = claim_wait_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        version = command_version(command)
        if version is None:  # not versioned (time entries, journals): nothing to regress
            return self._deliver(command, recorded_at)
        history = self._history.commands_for(command.target, command.external_id)
        # Deliveries recorded without a mark (before marks existed, or by the onboarding import) count too.
        recorded = held_version(command, history)
        if recorded is not None and version < recorded:
            return self._refuse(command, version, recorded, recorded_at)
        if self.mode != DUAL and any(c.idempotency_key == command.idempotency_key for c in history):
            # Shadow and live log only what was delivered: a redelivery claims and sends nothing. (Dual
            # records before it writes, so its retry must write again.)
            return RecordedCommand(command=command, first_time=False)
        claim = self._claim(command, version, recorded_at)
        if not claim.granted:
            return self._refuse(command, version, claim.held, recorded_at)
        try:
            return self._deliver(command, recorded_at)
        finally:
            if claim.token is not None:
                self._history.release_claim(command, claim.token)

    def _claim(self, command: ConnectorCommand, version: int, recorded_at: str) -> VersionClaim:
        """The record's mark for this version, waiting (with jitter) while another version writes."""
        lease = None if self.mode == SHADOW else WRITER_LEASE_SECONDS  # shadow writes to no target
        give_up_at = self._monotonic() + self._claim_wait_seconds
        pause = 0.05
        while True:
            claim = self._history.claim_version(command, version, recorded_at, writer_lease_seconds=lease)
            if not claim.busy:
                return claim
            if self._monotonic() + pause >= give_up_at:
                raise TransientDownstreamError(
                    f"{command.command_id}: another version of {command.target} {command.operation} "
                    f"{command.external_id} is being written; retry shortly",
                    code="record_being_written",
                )
            self._sleep(pause * (0.5 + self._rng() / 2))
            pause = min(pause * 2, 1.0)

    def _refuse(self, command: ConnectorCommand, version: int, held: int, recorded_at: str) -> RefusedCommand:
        self._history.record_refusal(command, held, recorded_at)
        return RefusedCommand(command=command, first_time=False, refused_version=version, held_version=held)

    def _deliver(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        if self.mode == SHADOW:
            return self._history.record(command, recorded_at)
        assert self._live is not None
        if self.mode == LIVE:
            # Written first, recorded after: the log then says only what the target really holds; a crash
            # in between is retried, and the external-id upsert makes the second write a no-op update.
            self._live.send(command, recorded_at)
            return self._history.record(command, recorded_at)
        recorded = self._history.record(command, recorded_at)
        self._live.send(command, recorded_at)
        shadowed = self._shadowed(command)
        found = [] if shadowed == command else ["the shadow recorded a different command under this key"]
        found += self._live.mismatches(shadowed)
        if found:
            raise CutoverMismatch(command, found)
        return recorded

    def _shadowed(self, command: ConnectorCommand) -> ConnectorCommand:
        """What the shadow holds under this command's idempotency key (the first recording wins)."""
        for earlier in self._history.commands_for(command.target, command.external_id):
            if earlier.idempotency_key == command.idempotency_key:
                return earlier
        return command
