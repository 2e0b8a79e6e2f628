"""The Event Relay use case: one buffered Salesforce event -> its source, normalised, accepted once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pssync.errors import MalformedDelivery
from pssync.model.sources import SourceConfig, SourceRegistry
from pssync.ports import Acceptor, IngestResult, RecordFetcher
from pssync.sources.base import parse_json_body
from pssync.sources.salesforce.event_relay import (
    EventRelayNormaliser,
    event_uuid_of,
    org_id_of,
    relay_source_for,
)

# The buffer hands the normaliser 10 records per invocation (infra: BUFFER_BATCH_SIZE) and a thin one
# reads the CRM: 2.5 s each keeps a whole batch inside the 30 s timeout.
READ_BUDGET_SECONDS = 2.5


def relay_event(
    body: str,
    registry: SourceRegistry,
    acceptor: Acceptor,
    fetchers: Callable[[SourceConfig], RecordFetcher | None],
    received_at: datetime,
) -> tuple[IngestResult, dict[str, Any]]:
    """Returns what was accepted and the envelope (for the log); raises to fail the buffered message."""
    envelope = parse_json_body(body)
    if not isinstance(envelope, dict):
        raise MalformedDelivery("buffered message is not a JSON object")
    source = relay_source_for(registry, org_id_of(envelope))
    normalised = EventRelayNormaliser(fetchers(source)).normalise(source, envelope, received_at)
    result = acceptor.accept(source, event_uuid_of(envelope), body.encode("utf-8"), normalised, received_at)
    return result, envelope
