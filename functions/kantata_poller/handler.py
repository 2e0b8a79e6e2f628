"""Scheduled: poll Kantata's subscribed events for every kantata-poll source, publish TimeApproved."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from pssync.adapters.cursors import DynamoDBCursorStore
from pssync.adapters.wiring import client, deduplicator, ingest_service
from pssync.config import KantataPollerSettings, load_settings
from pssync.connectors.crm import SecretsManagerTokenSource
from pssync.connectors.kantata import KantataClient
from pssync.errors import PssyncError, TransientDownstreamError
from pssync.ingest.kantata import KantataNormaliser, KantataPoller, fair_share
from pssync.ingest.sources import SignatureScheme
from pssync.observability import logger
from pssync.ports import SystemClock


@cache
def _tokens() -> SecretsManagerTokenSource:
    return SecretsManagerTokenSource(client("secretsmanager"))


def poller_for(
    settings: KantataPollerSettings, secret_id: str, seconds_left: Callable[[], float]
) -> KantataPoller:
    return KantataPoller(
        api=KantataClient(settings.kantata_base_url, lambda: _tokens()(secret_id)),
        acceptor=ingest_service(settings),
        cursors=DynamoDBCursorStore(settings.cursor_table_name, client("dynamodb")),
        normaliser=KantataNormaliser(settings.kantata_currency),
        clock=SystemClock(),
        overlap=timedelta(seconds=settings.kantata_overlap_seconds),
        event_types=[t for t in settings.kantata_event_types.split(",") if t],
        max_pages=settings.kantata_max_pages,
        seconds_left=seconds_left,
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(KantataPollerSettings)
    deduplicator(settings).config.register_lambda_context(context)
    token_secrets: dict[str, str] = json.loads(settings.kantata_token_secret_ids)
    sources = [s for s in settings.registry() if s.scheme is SignatureScheme.KANTATA_POLL]
    results = []
    failures: list[str] = []

    def invocation_seconds_left() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000

    for index, source in enumerate(sources):
        seconds_left = fair_share(invocation_seconds_left, accounts_left=len(sources) - index)
        # One account's outage, revoked token or misconfiguration must not stop the others being polled.
        try:
            result = poller_for(settings, token_secrets[source.name], seconds_left).poll(source)
        except (KeyError, PssyncError) as error:
            logger.exception("kantata poll failed", extra={"source": source.name})
            failures.append(f"{source.name}: {error!r}")
            continue
        logger.info("kantata polled", extra=result.__dict__)
        results.append({**result.__dict__, "cursor": result.cursor.isoformat() if result.cursor else None})
        if result.windows == 0 and not result.caught_up:
            # Not one window fitted the time: left alone, this repeats every tick until Kantata's
            # nine days run out. Fail, so the DLQ alarm says so.
            failures.append(f"{source.name}: no window could be read in time; the cursor did not move")
    if failures:  # after the others ran: the invocation fails, so the schedule's retry and DLQ see it
        raise TransientDownstreamError(f"kantata polls failed: {failures}")
    return {"polled": results}
