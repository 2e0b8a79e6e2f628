"""Commands sent to a PSA or ERP, and the connector interface every target implements."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Target(StrEnum):
    PSA = "psa"
    ERP = "erp"


class ConnectorCommand(BaseModel):
    """An idempotent upsert: the external id names the record, the idempotency key names this change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: Target
    operation: str = Field(description="e.g. upsert_project, upsert_billing_schedule")
    external_id: str
    idempotency_key: str
    payload: dict[str, Any]
    caused_by_event_id: str
    correlation_id: str

    @property
    def command_id(self) -> str:
        return f"{self.target}:{self.idempotency_key}"


@dataclass(frozen=True)
class RecordedCommand:
    command: ConnectorCommand
    first_time: bool


class DeliveryLogPort(Protocol):
    def record(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand: ...


class Connector(Protocol):
    """Sends one command to a system of record; must be safe to call twice with the same command."""

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand: ...


class ShadowConnector:
    """Records what would be sent, sends nothing: the local default and step one of any cutover."""

    def __init__(self, delivery_log: DeliveryLogPort) -> None:
        self._log = delivery_log

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        return self._log.record(command, recorded_at)
