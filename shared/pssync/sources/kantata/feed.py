"""Kantata OX's Subscribed Events feed (Kantata has no push webhooks: we poll).

Reads go through the vendor HTTP client (`pssync.connectors.http.VendorHttp`, built by the composition
root): timeouts, bounded jittered retries with Retry-After, and one error classification. This module
knows only Kantata's paths, parameters, pagination and document shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pssync.ports import FeedRead, JsonReader

SUBSCRIBED_EVENTS_PATH = "/api/v1/subscribed_events.json"
DEFAULT_PER_PAGE = 200


def _iso_z(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


class KantataFeed:
    def __init__(self, http: JsonReader, *, per_page: int = DEFAULT_PER_PAGE) -> None:
        self._http = http
        self._per_page = per_page

    def subscribed_events(
        self,
        created_after: datetime,
        event_types: Sequence[str],
        *,
        created_before: datetime | None = None,
        max_pages: int = 20,
    ) -> FeedRead:
        """Subscribed events created in the window, each with its included `subject` if any."""
        params: dict[str, str] = {
            "created_after": _iso_z(created_after),
            "include": "subject",
            "per_page": str(self._per_page),
        }
        if created_before is not None:
            params["created_before"] = _iso_z(created_before)
        if event_types:
            params["event_types"] = ",".join(event_types)
        events: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            document = self._http.get_json(SUBSCRIBED_EVENTS_PATH, {**params, "page": str(page)})
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
