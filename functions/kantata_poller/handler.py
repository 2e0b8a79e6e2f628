"""Scheduled: poll Kantata's subscribed events for every kantata-poll source, publish TimeApproved."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from pssync.config import KantataPollerSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.model.sources import SignatureScheme
from pssync.sources.kantata.poller import poll_accounts
from pssync.wiring import deduplicator, kantata_poller


@lambda_handler(correlation_id_path=correlation_paths.EVENT_BRIDGE)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(KantataPollerSettings)
    deduplicator(settings).config.register_lambda_context(context)
    results = poll_accounts(
        [s for s in settings.registry() if s.scheme is SignatureScheme.KANTATA_POLL],
        poller_for=lambda source, seconds_left: kantata_poller(settings, source, seconds_left),
        seconds_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return {"polled": [r.as_document() for r in results]}
