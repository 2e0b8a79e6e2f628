"""Commands sent to a PSA or ERP: what a connector is asked to do, independent of how it is sent."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

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
