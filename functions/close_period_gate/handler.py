"""Step: the close gate. A locked period is closed already; open exceptions of the entity dated in the
period (exceptions queue and inbox DLQs, read without consuming) block the close unless overridden."""

import json
from typing import Any

from pydantic import field_validator

from pssync.adapters.aws import SqsMessagePeek
from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.wiring import client, version_store
from pssync.workflows import period_close


class GateSettings(BusinessTableSettings):
    close_gate_queue_urls: tuple[str, ...]

    @field_validator("close_gate_queue_urls", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        return tuple(json.loads(value)) if isinstance(value, str) else value


@lambda_handler(correlation_id_path="request.close_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = period_close.CloseState.model_validate(event)
    settings = load_settings(GateSettings)
    peek = SqsMessagePeek(settings.close_gate_queue_urls, client("sqs"))
    result = period_close.gate_close(state.request, version_store(settings), peek.bodies())
    return result.model_dump(mode="json")
