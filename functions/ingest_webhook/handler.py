"""POST /webhooks/{source}: verify, normalise, dedupe, publish; 2xx only once the events are on the bus."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from pssync.config import IngestSettings, load_settings
from pssync.handlers.api_gateway import webhook_response
from pssync.handlers.stack import lambda_handler
from pssync.wiring import deduplicator, ingest_service


@lambda_handler(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(IngestSettings)
    # In-progress idempotency records expire with this invocation, not after a fixed hour.
    deduplicator(settings).config.register_lambda_context(context)
    return webhook_response(ingest_service(settings), event)
