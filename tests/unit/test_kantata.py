"""Kantata normaliser, poll use case (overlap, cursor, duplicates) with fakes, and the httpx connector."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from pssync.adapters.cursors import InMemoryCursorStore
from pssync.connectors.kantata import SUBSCRIBED_EVENTS_PATH, KantataApiError, KantataClient
from pssync.errors import TransientDownstreamError, UnknownTenant
from pssync.ingest.kantata import Cursor, KantataNormaliser, KantataPoller
from pssync.ingest.service import IngestService
from pssync.ingest.sources import SourceConfig, SourceRegistry
from pssync.model.events import TimeApproved
from pssync.money import Money
from tests.fakes import FakeSecrets, FixedClock, InMemoryDeduplicator, InMemoryRawPayloads, RecordingPublisher

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "samples" / "kantata"
BASE = "https://kantata.test"
NOW = datetime(2026, 11, 20, 10, 20, tzinfo=UTC)
SOURCE = SourceConfig(name="psa", scheme="kantata-poll", system="kantata", tenants=["12345"])


def page(name: str = "subscribed-events-page") -> dict[str, Any]:
    return dict(json.loads((SAMPLES / f"{name}.json").read_text()))


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [copy.deepcopy(document["subscribed_events"][r["id"]]) for r in document["results"]]


# --- normaliser ---------------------------------------------------------------------------------------


def test_approved_time_entry_from_json_strings() -> None:
    event = events_of(page())[0]
    assert isinstance(event["current_payload"], str)
    (item,) = KantataNormaliser("EUR").normalise(SOURCE, event, NOW)
    time = item.event
    assert isinstance(time, TimeApproved)
    assert time.source_event_id == "5001" and time.source_version == "2026-11-20T10:14:00Z"
    assert time.data.hours == Decimal("1.5") and time.data.approved is True and time.data.billable is True
    assert time.data.rate == Money.of("150.00", "EUR")
    assert (time.data.project_id, time.data.wbs_code, time.data.person_id) == ("P-C-2026-0412", "1.2", "77")
    assert time.data.work_date == date(2026, 11, 19) and time.data.time_entry_id == "9001"


def test_payloads_as_objects_are_accepted_too() -> None:
    event = events_of(page())[1]
    assert isinstance(event["current_payload"], dict)
    (item,) = KantataNormaliser("EUR").normalise(SOURCE, event, NOW)
    assert item.event.data.hours == Decimal("0.833333")  # type: ignore[attr-defined]


def test_deleted_entry_and_withdrawn_approval_are_approved_false() -> None:
    deleted = events_of(page("subscribed-events-overlapping-page"))[1]
    (item,) = KantataNormaliser("EUR").normalise(SOURCE, deleted, NOW)
    assert item.event.data.approved is False  # type: ignore[attr-defined]
    withdrawn = events_of(page())[0]
    current = json.loads(withdrawn["current_payload"])
    withdrawn["previous_payload"], withdrawn["current_payload"] = current, {**current, "approved": False}
    (item,) = KantataNormaliser("EUR").normalise(SOURCE, withdrawn, NOW)
    assert item.event.data.approved is False  # type: ignore[attr-defined]


def test_unapproved_entry_is_not_a_business_fact_yet() -> None:
    event = events_of(page())[1]
    event["current_payload"] = {**event["current_payload"], "approved": False}
    assert KantataNormaliser("EUR").normalise(SOURCE, event, NOW) == []


def test_unknown_account_is_rejected() -> None:
    event = events_of(page())[0]
    event["account_id"] = "99999"
    with pytest.raises(UnknownTenant):
        KantataNormaliser("EUR").normalise(SOURCE, event, NOW)


def test_included_subject_does_not_change_the_fingerprint() -> None:
    event = events_of(page())[0]
    first = KantataNormaliser("EUR").normalise(SOURCE, event, NOW)[0].fingerprint
    second = KantataNormaliser("EUR").normalise(SOURCE, {**event, "subject": {"x": 1}}, NOW)[0].fingerprint
    assert first == second


# --- poll use case ---------------------------------------------------------------------------------------


class FakeApi:
    def __init__(self, *pages: list[dict[str, Any]]) -> None:
        self.pages = list(pages)
        self.calls: list[datetime] = []

    def subscribed_events(
        self, created_after: datetime, event_types: Any, *, max_pages: int = 20
    ) -> list[dict[str, Any]]:
        self.calls.append(created_after)
        return self.pages.pop(0)


def poller(api: FakeApi, cursors: InMemoryCursorStore, publisher: RecordingPublisher) -> KantataPoller:
    service = IngestService(
        registry=SourceRegistry([SOURCE]),
        secrets=FakeSecrets({}),
        publisher=publisher,
        deduplicator=InMemoryDeduplicator(),
        clock=FixedClock(NOW),
        raw_payloads=InMemoryRawPayloads(),
    )
    return KantataPoller(api, service, cursors, KantataNormaliser("EUR"), FixedClock(NOW))


def test_overlap_window_cursor_advance_and_no_duplicates_across_polls() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    api = FakeApi(events_of(page()), events_of(page("subscribed-events-overlapping-page")))
    subject = poller(api, cursors, publisher)

    first = subject.poll(SOURCE)
    assert api.calls[0] == NOW - timedelta(minutes=10)  # first poll: the overlap window only
    assert (first.published, first.duplicates, first.cursor_moved) == (2, 0, True)
    assert cursors.get("psa").position == datetime(2026, 11, 20, 10, 16, 2, tzinfo=UTC)

    second = subject.poll(SOURCE)  # re-reads 10 minutes before the cursor: event 5002 comes again
    assert api.calls[1] == datetime(2026, 11, 20, 10, 6, 2, tzinfo=UTC)
    assert (second.published, second.duplicates) == (1, 1)
    assert cursors.get("psa") == Cursor("psa", datetime(2026, 11, 20, 11, 0, 3, tzinfo=UTC), 2)
    assert [e.source_event_id for e in publisher.published] == ["5001", "5002", "5003"]


def test_cursor_never_moves_back_and_rejected_events_do_not_block_the_feed() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    cursors.advance(cursors.get("psa"), datetime(2026, 11, 20, 12, tzinfo=UTC), NOW)
    foreign = events_of(page())
    foreign[0]["account_id"] = "99999"
    result = poller(FakeApi(foreign), cursors, publisher).poll(SOURCE)
    assert (result.rejected, result.published, result.cursor_moved) == (1, 1, False)
    assert cursors.get("psa").position == datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_a_transient_failure_leaves_the_cursor_for_the_next_poll() -> None:
    cursors = InMemoryCursorStore()
    publisher = RecordingPublisher(fail_with=TransientDownstreamError("bus down"))
    with pytest.raises(TransientDownstreamError):
        poller(FakeApi(events_of(page())), cursors, publisher).poll(SOURCE)
    assert cursors.get("psa").version == 0


# --- connector (respx) -------------------------------------------------------------------------------------


def client(**kwargs: Any) -> tuple[KantataClient, list[float]]:
    sleeps: list[float] = []
    return KantataClient(BASE, lambda: "tok", sleep=sleeps.append, rng=lambda: 0.5, **kwargs), sleeps


@respx.mock
def test_connector_sends_filters_and_follows_pagination() -> None:
    first = {**page(), "meta": {"page_count": 2, "page_number": 1}}
    second = {**page("subscribed-events-overlapping-page"), "meta": {"page_count": 2, "page_number": 2}}
    route = respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
    )
    kantata, _ = client()
    events = kantata.subscribed_events(datetime(2026, 11, 20, 10, tzinfo=UTC), ["time_entry:updated"])
    assert [e["id"] for e in events] == ["5001", "5002", "5002", "5003"]
    assert events[0]["subject"]["id"] == "9001"
    request = route.calls[0].request
    assert request.headers["Authorization"] == "Bearer tok"
    params = dict(request.url.params)
    assert params["created_after"] == "2026-11-20T10:00:00Z"
    assert params["include"] == "subject" and params["event_types"] == "time_entry:updated"
    assert [dict(c.request.url.params)["page"] for c in route.calls] == ["1", "2"]


@respx.mock
def test_connector_retries_5xx_then_succeeds_with_jittered_backoff() -> None:
    respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json=page())]
    )
    kantata, sleeps = client()
    assert len(kantata.subscribed_events(NOW, [])) == 2
    assert sleeps == [0.25, 0.5]  # 0.5 x min(cap, base * 2^(n-1))


@respx.mock
def test_connector_honours_retry_after_on_429_with_a_cap() -> None:
    respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=page()),
        ]
    )
    kantata, sleeps = client()
    kantata.subscribed_events(NOW, [])
    assert sleeps == [7.0, 30.0]


@respx.mock
def test_connector_gives_up_after_bounded_retries_on_timeouts() -> None:
    route = respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(side_effect=httpx.ReadTimeout("slow"))
    kantata, sleeps = client(max_attempts=3)
    with pytest.raises(TransientDownstreamError, match="ReadTimeout"):
        kantata.subscribed_events(NOW, [])
    assert route.call_count == 3 and len(sleeps) == 2


@respx.mock
def test_connector_does_not_retry_a_bad_token() -> None:
    route = respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(return_value=httpx.Response(401))
    kantata, _ = client()
    with pytest.raises(KantataApiError):
        kantata.subscribed_events(NOW, [])
    assert route.call_count == 1


def test_connector_uses_a_timeout_by_default() -> None:
    kantata = KantataClient(BASE, lambda: "t")
    assert kantata._http.timeout.read == 10.0
