"""Cutover modes per target (shadow -> dual -> live) and the never-regress guard.

- `shadow`: record the command in the delivery log, send nothing (today's default).
- `dual`: record it, write it live, then read back what the target holds and compare it with what the
  shadow recorded under the same idempotency key; any difference is a `CutoverMismatch`.
- `live`: write it live, then record it in the delivery log as delivered.

Every mode first refuses a command whose contract version is older than the one the delivery log says
the target already holds for the same record (a late redelivery or a replayed dead letter must not
overwrite v3 with v2). A refusal is recorded and returned as a `RefusedCommand`: the workflow step ends
normally instead of failing and being retried into the same refusal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pssync.errors import BusinessRuleViolation, PssyncError
from pssync.model.commands import ConnectorCommand, Target
from pssync.ports import Connector, DeliveryLogPort, RecordedCommand

SHADOW, DUAL, LIVE = "shadow", "dual", "live"
CUTOVER_MODES = (SHADOW, DUAL, LIVE)

# Keys that name a version end in `v<n>` (`billing-schedule:C-1:v3`, `project:P-1:contract-v3`).
_VERSION_IN_KEY = re.compile(r"(?:^|[:\-])v(\d+)$")


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
    """Not written: the target already holds a newer version of the record."""

    refused_version: int = 0
    held_version: int = 0


class DeliveryHistory(DeliveryLogPort, Protocol):
    """The delivery log, readable per record, with a place for refusals."""

    def commands_for(self, target: Target, external_id: str) -> list[ConnectorCommand]:
        """Every command recorded for one target record, in any order."""
        ...

    def record_refusal(self, command: ConnectorCommand, held_version: int, recorded_at: str) -> None:
        """Keep the refusal (idempotent on the command id): operators see what was not sent and why."""
        ...


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

    def __init__(self, mode: str, history: DeliveryHistory, live: LiveTarget | None = None) -> None:
        if mode not in CUTOVER_MODES:
            raise PssyncError(
                f"unknown cutover mode {mode!r}; use one of {CUTOVER_MODES}", code="configuration"
            )
        if mode != SHADOW and live is None:
            raise PssyncError(f"cutover mode {mode!r} needs a live connector", code="configuration")
        self.mode = mode
        self._history = history
        self._live = live

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        refused = self._refusal(command)
        if refused is not None:
            self._history.record_refusal(command, refused.held_version, recorded_at)
            return refused
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

    def _refusal(self, command: ConnectorCommand) -> RefusedCommand | None:
        version = command_version(command)
        if version is None:
            return None
        held = held_version(command, self._history.commands_for(command.target, command.external_id))
        if held is None or version >= held:
            return None
        return RefusedCommand(command=command, first_time=False, refused_version=version, held_version=held)

    def _shadowed(self, command: ConnectorCommand) -> ConnectorCommand:
        """What the shadow holds under this command's idempotency key (the first recording wins)."""
        for earlier in self._history.commands_for(command.target, command.external_id):
            if earlier.idempotency_key == command.idempotency_key:
                return earlier
        return command
