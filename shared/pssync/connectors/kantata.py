"""Kantata OX API client for the Subscribed Events feed (Kantata has no push webhooks: we poll).

Every call has a timeout, bounded retries with full jitter on timeouts, connection errors, 5xx and 429
(honouring Retry-After up to a cap), and follows pagination. Exhausted retries raise
TransientDownstreamError; other 4xx (bad token, bad filter) raise KantataApiError at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from pssync.connectors.http_retry import full_jitter_seconds, retry_after_seconds
from pssync.errors import PssyncError, TransientDownstreamError
from pssync.ingest.kantata import FeedRead

SUBSCRIBED_EVENTS_PATH = "/api/v1/subscribed_events.json"
DEFAULT_PER_PAGE = 200


class KantataApiError(PssyncError):
    """A non-retryable answer (401, 403, 404, 422...)."""

    code = "kantata_api"


def _iso_z(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


class KantataClient:
    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        http: httpx.Client | None = None,
        timeout_seconds: float = 10.0,
        max_attempts: int = 4,
        backoff_base_seconds: float = 0.5,
        backoff_cap_seconds: float = 8.0,
        max_retry_after_seconds: float = 30.0,
        per_page: int = DEFAULT_PER_PAGE,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout_seconds, connect=3.0))
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base_seconds
        self._backoff_cap = backoff_cap_seconds
        self._max_retry_after = max_retry_after_seconds
        self._per_page = per_page
        self._sleep = sleep
        self._rng = rng

    def subscribed_events(
        self,
        created_after: datetime,
        event_types: Sequence[str],
        *,
        created_before: datetime | None = None,
        max_pages: int = 20,
    ) -> FeedRead:
        """Subscribed events created in the window, each with its included `subject` if any."""
        params: dict[str, str | int] = {
            "created_after": _iso_z(created_after),
            "include": "subject",
            "per_page": self._per_page,
        }
        if created_before is not None:
            params["created_before"] = _iso_z(created_before)
        if event_types:
            params["event_types"] = ",".join(event_types)
        events: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            document = self._get(SUBSCRIBED_EVENTS_PATH, {**params, "page": page})
            batch = _events_of(document)
            events.extend(batch)
            page_count = (document.get("meta") or {}).get("page_count")
            if isinstance(page_count, int) and page_count > max_pages:
                # Cannot be read whole: say so after one page, so the caller narrows the window cheaply.
                return FeedRead([], complete=False, pages_needed=page_count)
            last_page = page >= page_count if isinstance(page_count, int) else len(batch) < self._per_page
            if last_page:
                return FeedRead(events, complete=True)
        return FeedRead(events, complete=False)

    def _get(self, path: str, params: dict[str, str | int]) -> dict[str, Any]:
        url = self._base_url + path
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            try:
                response = self._http.get(
                    url,
                    params=params,
                    headers={"Authorization": f"Bearer {self._token()}", "Accept": "application/json"},
                )
            except (httpx.TimeoutException, httpx.TransportError) as error:
                if last:
                    raise TransientDownstreamError(f"kantata GET {path}: {type(error).__name__}") from error
                self._sleep(self._backoff(attempt))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if last:
                    raise TransientDownstreamError(f"kantata GET {path}: HTTP {response.status_code}")
                self._sleep(self._delay(response, attempt))
                continue
            if response.status_code >= 400:
                raise KantataApiError(f"kantata GET {path}: HTTP {response.status_code}")
            document = response.json()
            if not isinstance(document, dict):
                raise KantataApiError(f"kantata GET {path}: expected a JSON object")
            return document
        raise TransientDownstreamError(f"kantata GET {path}: retries exhausted")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        return full_jitter_seconds(attempt, self._backoff_base, self._backoff_cap, self._rng)

    def _delay(self, response: httpx.Response, attempt: int) -> float:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, self._max_retry_after)
        return self._backoff(attempt)


def _events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Kantata's shape: `results` [{key, id}] naming rows in keyed collections (`subscribed_events`,
    and with include=subject e.g. `time_entries`). A subject is attached to its event as `subject`."""
    collection = document.get("subscribed_events")
    results = document.get("results")
    if not isinstance(collection, dict):
        rows = results if isinstance(results, list) else []
        return [dict(row) for row in rows if isinstance(row, dict) and "event_type" in row]
    ordered_ids = [
        str(r["id"])
        for r in results or []
        if isinstance(r, dict) and r.get("key") == "subscribed_events" and "id" in r
    ] or list(collection)
    events = []
    for event_id in ordered_ids:
        row = collection.get(event_id)
        if not isinstance(row, dict):
            continue
        event = dict(row)
        subject_ref = event.get("subject_ref") or {}
        key, ref_id = subject_ref.get("key"), subject_ref.get("id")
        included = document.get(key) if isinstance(key, str) else None
        if isinstance(included, dict) and ref_id is not None and str(ref_id) in included:
            event["subject"] = included[str(ref_id)]
        events.append(event)
    return events
