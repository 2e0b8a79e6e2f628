"""Scheduled: open exceptions and the oldest one's age per workflow, stage and cause, as metrics."""

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from pssync.config import load_settings
from pssync.handlers.stack import lambda_handler
from pssync.observability import emit_exception_aging
from pssync.ops.exception_aging import exception_groups, peek
from pssync.wiring import client


class AgingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    exception_queue_urls: str  # JSON {"<store name>": "<queue url>"}: the exceptions queue and every DLQ


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # AgingSettings belongs in pssync.config (its settings base is private there): see docs/decisions.md.
    settings = load_settings(AgingSettings)  # type: ignore[type-var]
    stores: dict[str, str] = json.loads(settings.exception_queue_urls)
    sqs = client("sqs")
    groups = exception_groups(
        (message for name, url in sorted(stores.items()) for message in peek(sqs, name, url)),
        datetime.now(UTC),
    )
    emit_exception_aging(groups)
    return {"groups": len(groups), "open_exceptions": sum(g.count for g in groups)}
