"""A canonical event as it waits in a queue: what a bus rule delivered to SQS, or a replay re-sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pssync.errors import BusinessRuleViolation
from pssync.model.events import CANONICAL_EVENTS, EventEnvelope, event_type_of

ATTEMPT_KEY = "pssync-attempt"
_EVENT_MODELS = {event_type_of(m): m for m in CANONICAL_EVENTS}


class QueuedEvent(BaseModel):
    """An EventBridge event as a rule delivered it to an SQS queue (or as `pssync dlq replay` re-sent it)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    attempt: int = Field(0, alias=ATTEMPT_KEY, ge=0)

    @classmethod
    def from_message(cls, message_body: str) -> QueuedEvent:
        try:
            return cls.model_validate_json(message_body)
        except ValidationError as error:
            raise BusinessRuleViolation(
                f"queued message is not a canonical event: {error}", code="bad_message"
            ) from None

    def canonical(self) -> EventEnvelope:
        try:
            return _EVENT_MODELS[self.detail_type].model_validate(self.detail)
        except (KeyError, ValidationError) as error:
            raise BusinessRuleViolation(
                f"queued message is not a canonical event: {error!r}", code="bad_message"
            ) from None
