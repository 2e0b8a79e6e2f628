"""Kantata normaliser, poll use case (overlap, cursor, duplicates) with fakes, and the httpx connector."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from pssync.connectors.http import VendorHttp
from pssync.errors import (
    DeliveryInProgress,
    PayloadTooLarge,
    TransientDownstreamError,
    UnknownTenant,
    VendorAuthRefused,
)
from pssync.ingest.service import IngestService
from pssync.model.events import TimeApproved
from pssync.model.sources import SourceConfig, SourceRegistry
from pssync.money import Money
from pssync.ports import Cursor, FeedRead
from pssync.sources.kantata.feed import SUBSCRIBED_EVENTS_PATH, KantataFeed
from pssync.sources.kantata.normaliser import KantataNormaliser, created_at_of
from pssync.sources.kantata.poller import BacklogTooDense, KantataPoller, fair_share
from pssync.wiring import KANTATA_FEED_READS, kantata_http
from tests.fakes import (
    FakeSecrets,
    FixedClock,
    InMemoryCursorStore,
    InMemoryDeduplicator,
    InMemoryRawPayloads,
    RecordingPublisher,
)

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
    """Hands out one canned read per call, each complete."""

    def __init__(self, *reads: list[dict[str, Any]]) -> None:
        self.reads = list(reads)
        self.calls: list[datetime] = []

    def subscribed_events(
        self,
        created_after: datetime,
        event_types: Any,
        *,
        created_before: datetime | None = None,
        max_pages: int = 20,
    ) -> FeedRead:
        self.calls.append(created_after)
        return FeedRead(self.reads.pop(0), complete=True)


class FeedApi:
    """Kantata's feed as documented: window filters, paging, and no order guarantee (newest first here)."""

    def __init__(
        self, events: list[dict[str, Any]], per_page: int = 5, says_page_count: bool = False
    ) -> None:
        self.events = events
        self.per_page = per_page
        self.says_page_count = says_page_count
        self.pages_served = 0
        self.windows: list[tuple[datetime, datetime | None, bool]] = []
        self.fail_on_call: int | None = None

    def subscribed_events(
        self,
        created_after: datetime,
        event_types: Any,
        *,
        created_before: datetime | None = None,
        max_pages: int = 20,
    ) -> FeedRead:
        if self.fail_on_call == len(self.windows) + 1:
            raise TransientDownstreamError("kantata 503")
        matching = [
            e
            for e in self.events
            if created_after <= created_at_of(e)
            and (created_before is None or created_at_of(e) < created_before)
        ]
        matching.sort(key=created_at_of, reverse=True)
        capacity = self.per_page * max_pages
        complete = len(matching) <= capacity
        self.windows.append((created_after, created_before, complete))
        if not complete and self.says_page_count:
            self.pages_served += 1
            return FeedRead([], complete=False, pages_needed=-(-len(matching) // self.per_page))
        self.pages_served += max_pages if not complete else max(1, -(-len(matching) // self.per_page))
        return FeedRead(copy.deepcopy(matching[:capacity]), complete=complete)


def time_entry_events(count: int, start: datetime, spacing: timedelta) -> list[dict[str, Any]]:
    template = events_of(page())[0]
    events = []
    for n in range(count):
        created = start + n * spacing
        event = copy.deepcopy(template)
        event.update(
            id=str(70000 + n),
            subject_id=str(80000 + n),
            created_at=created.isoformat().replace("+00:00", "Z"),
            subject_changed_at=created.isoformat().replace("+00:00", "Z"),
        )
        events.append(event)
    return events


def poller(
    api: FakeApi | FeedApi,
    cursors: InMemoryCursorStore,
    publisher: RecordingPublisher,
    **options: Any,
) -> KantataPoller:
    service = IngestService(
        registry=SourceRegistry([SOURCE]),
        secrets=FakeSecrets({}),
        publisher=publisher,
        deduplicator=InMemoryDeduplicator(),
        clock=FixedClock(NOW),
        raw_payloads=InMemoryRawPayloads(),
    )
    return KantataPoller(api, service, cursors, KantataNormaliser("EUR"), FixedClock(NOW), **options)


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


def backlog_after_an_outage(cursors: InMemoryCursorStore) -> list[dict[str, Any]]:
    """The cursor is three hours old; 60 approved entries arrived since, one every three minutes."""
    cursors.advance(cursors.get("psa"), NOW - timedelta(hours=3), NOW)
    return time_entry_events(60, NOW - timedelta(hours=3) + timedelta(minutes=1), timedelta(minutes=3))


def test_a_backlog_larger_than_one_read_is_drained_in_closed_windows_without_losing_events() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    feed = FeedApi(backlog_after_an_outage(cursors), per_page=5)
    result = poller(feed, cursors, publisher, max_pages=2, max_windows=50).poll(SOURCE)
    # 10 events fit a read; the feed answers newest first, so a truncated read would skip the oldest.
    published = sorted(e.source_event_id for e in publisher.published)
    assert published == [str(70000 + n) for n in range(60)]
    assert (result.published, result.rejected, result.caught_up) == (60, 0, True)
    assert result.windows > 6 and result.cursor == created_at_of(feed.events[-1])
    assert any(not complete for _, _, complete in feed.windows)  # the read limit really was hit
    accepted = [(after, before) for after, before, complete in feed.windows if complete]
    assert all(before is not None for _, before in accepted[:-1]) and accepted[-1][1] is None


def test_when_kantata_says_how_many_pages_a_window_needs_it_narrows_in_proportion() -> None:
    pages = {}
    for says in (False, True):
        cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
        feed = FeedApi(backlog_after_an_outage(cursors), per_page=2, says_page_count=says)
        result = poller(feed, cursors, publisher, max_pages=4, max_windows=50).poll(SOURCE)
        assert result.caught_up and len(publisher.published) == 60
        pages[says] = feed.pages_served
    # A window that cannot fit costs one page instead of the whole page budget.
    assert pages[True] < pages[False], pages


def test_a_window_budget_keeps_progress_and_the_next_poll_goes_on() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    feed = FeedApi(backlog_after_an_outage(cursors), per_page=5)
    subject = poller(feed, cursors, publisher, max_pages=2, max_windows=2)
    first = subject.poll(SOURCE)
    assert (first.windows, first.caught_up, first.cursor_moved) == (2, False, True)
    assert first.cursor is not None and first.cursor < NOW - timedelta(hours=1)
    assert len(publisher.published) == first.published > 0
    for _ in range(30):
        if subject.poll(SOURCE).caught_up:
            break
    assert sorted(e.source_event_id for e in publisher.published) == [str(70000 + n) for n in range(60)]


def test_a_failure_mid_backlog_keeps_the_windows_already_accepted() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    feed = FeedApi(backlog_after_an_outage(cursors), per_page=5)
    feed.fail_on_call = 12
    with pytest.raises(TransientDownstreamError):
        poller(feed, cursors, publisher, max_pages=2, max_windows=50).poll(SOURCE)
    kept = cursors.get("psa").position
    assert kept is not None and NOW - timedelta(hours=3) < kept < NOW
    # Everything created before the kept position was published: the next poll starts from there.
    before_kept = {e["id"] for e in feed.events if created_at_of(e) < kept}
    assert before_kept <= {e.source_event_id for e in publisher.published}


class Budget:
    """seconds_left for the poller: plenty for `checks` questions, then nothing."""

    def __init__(self, checks: int) -> None:
        self.checks = checks

    def __call__(self) -> float:
        self.checks -= 1
        return 60.0 if self.checks >= 0 else 0.0


def test_running_out_of_time_mid_window_records_how_far_it_got() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    cursors.advance(cursors.get("psa"), NOW - timedelta(minutes=30), NOW)
    events = time_entry_events(10, NOW - timedelta(minutes=20), timedelta(minutes=1))
    events[5]["created_at"] = events[4]["created_at"]  # a tie at the cut: both must be read again
    feed = FeedApi(events, per_page=50)
    # Asked before the read, twice to time the read, then once per event: five events fit.
    subject = poller(feed, cursors, publisher, seconds_left=Budget(3 + 5))
    first = subject.poll(SOURCE)
    assert (first.published, first.caught_up, first.cursor_moved) == (5, False, True)
    assert first.cursor == created_at_of(events[5]) - timedelta(microseconds=1)
    assert [e.source_event_id for e in publisher.published] == [str(70000 + n) for n in range(5)]
    later = RecordingPublisher()
    second = poller(feed, cursors, later).poll(SOURCE)
    assert second.caught_up and second.cursor == created_at_of(events[-1])
    assert {str(70000 + n) for n in range(5, 10)} <= {e.source_event_id for e in later.published}


class SlowFeed(FeedApi):
    """Every read costs `read_seconds` of the invocation's time."""

    def __init__(self, events: list[dict[str, Any]], left: float, read_seconds: float) -> None:
        super().__init__(events, per_page=5)
        self.left, self.read_seconds = left, read_seconds

    def seconds_left(self) -> float:
        return self.left

    def subscribed_events(self, *args: Any, **kwargs: Any) -> FeedRead:
        self.left -= self.read_seconds
        return super().subscribed_events(*args, **kwargs)


def test_a_read_that_could_not_finish_in_time_is_not_started() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    feed = SlowFeed(backlog_after_an_outage(cursors), left=70.0, read_seconds=50.0)
    result = poller(feed, cursors, publisher, max_pages=2, seconds_left=feed.seconds_left).poll(SOURCE)
    # 20 s were left after the first (truncated) read: less than a read plus the 10 s reserve.
    assert len(feed.windows) == 1 and feed.left == 20.0
    assert (result.windows, result.caught_up, result.cursor_moved) == (0, False, False)


def test_a_poll_with_no_time_left_reads_nothing() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    feed = FeedApi(time_entry_events(3, NOW - timedelta(minutes=5), timedelta(minutes=1)))
    result = poller(feed, cursors, publisher, seconds_left=lambda: 1.0).poll(SOURCE)
    assert (result.read, result.windows, result.caught_up, feed.windows) == (0, 0, False, [])


class HeldOrRefused:
    """An acceptor in front of the real one that answers chosen delivery ids with an ingest error."""

    def __init__(self, inner: IngestService, errors: dict[str, Exception]) -> None:
        self.inner = inner
        self.errors = errors

    def accept(self, source: Any, delivery_id: str, *args: Any) -> Any:
        if delivery_id in self.errors:
            raise self.errors[delivery_id]
        return self.inner.accept(source, delivery_id, *args)


def test_an_event_held_by_an_overlapping_poll_stops_the_window_before_it() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    cursors.advance(cursors.get("psa"), NOW - timedelta(minutes=30), NOW)
    events = time_entry_events(6, NOW - timedelta(minutes=20), timedelta(minutes=1))
    service = IngestService(
        registry=SourceRegistry([SOURCE]),
        secrets=FakeSecrets({}),
        publisher=publisher,
        deduplicator=InMemoryDeduplicator(),
        clock=FixedClock(NOW),
        raw_payloads=InMemoryRawPayloads(),
    )
    acceptor = HeldOrRefused(
        service,
        {
            "kantata:70001": PayloadTooLarge("canonical event is 300000 bytes"),  # permanent: skipped
            "kantata:70003": DeliveryInProgress("held"),  # not ours to skip: stop before it
        },
    )
    subject = KantataPoller(FeedApi(events), acceptor, cursors, KantataNormaliser("EUR"), FixedClock(NOW))
    result = subject.poll(SOURCE)
    assert [e.source_event_id for e in publisher.published] == ["70000", "70002"]
    assert (result.rejected, result.caught_up) == (1, False)
    assert cursors.get("psa").position == created_at_of(events[3]) - timedelta(microseconds=1)


def test_a_window_too_dense_to_read_is_an_error_not_a_skip() -> None:
    cursors, publisher = InMemoryCursorStore(), RecordingPublisher()
    cursors.advance(cursors.get("psa"), NOW - timedelta(minutes=30), NOW)
    burst = time_entry_events(30, NOW - timedelta(minutes=29), timedelta(seconds=1))
    with pytest.raises(BacklogTooDense, match="KANTATA_MAX_PAGES"):
        poller(FeedApi(burst, per_page=5), cursors, publisher, max_pages=2).poll(SOURCE)
    # Windows before the burst may be closed; nothing at or after its first event is passed over.
    position = cursors.get("psa").position
    assert position is not None and position <= created_at_of(burst[0]) and publisher.published == []


# --- connector (respx) -------------------------------------------------------------------------------------


def client(per_page: int = 200, **policy_changes: Any) -> tuple[KantataFeed, list[float]]:
    """The feed on the production policy (pssync.wiring), with a recorded sleep and fixed jitter."""
    sleeps: list[float] = []
    policy = replace(KANTATA_FEED_READS, **policy_changes)
    http = VendorHttp(
        "kantata", BASE, policy, bearer_token=lambda: "tok", sleep=sleeps.append, rng=lambda: 0.5
    )
    return KantataFeed(http, per_page=per_page), sleeps


@respx.mock
def test_connector_sends_filters_and_follows_pagination() -> None:
    first = {**page(), "meta": {"page_count": 2, "page_number": 1}}
    second = {**page("subscribed-events-overlapping-page"), "meta": {"page_count": 2, "page_number": 2}}
    route = respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
    )
    kantata, _ = client()
    read = kantata.subscribed_events(datetime(2026, 11, 20, 10, tzinfo=UTC), ["time_entry:updated"])
    assert read.complete
    events = read.events
    assert [e["id"] for e in events] == ["5001", "5002", "5002", "5003"]
    assert events[0]["subject"]["id"] == "9001"
    request = route.calls[0].request
    assert request.headers["Authorization"] == "Bearer tok"
    params = dict(request.url.params)
    assert params["created_after"] == "2026-11-20T10:00:00Z"
    assert params["include"] == "subject" and params["event_types"] == "time_entry:updated"
    assert [dict(c.request.url.params)["page"] for c in route.calls] == ["1", "2"]
    assert "created_before" not in params


@respx.mock
def test_connector_closes_the_window_and_says_when_pages_ran_out() -> None:
    more = {**page(), "meta": {"page_count": 5, "page_number": 1}}
    route = respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(return_value=httpx.Response(200, json=more))
    kantata, _ = client()
    read = kantata.subscribed_events(NOW - timedelta(hours=1), [], created_before=NOW, max_pages=2)
    # Kantata says 5 pages after the first one: no point reading two, the window must narrow.
    assert (read.complete, read.events, read.pages_needed, route.call_count) == (False, [], 5, 1)
    assert dict(route.calls[0].request.url.params)["created_before"] == "2026-11-20T10:20:00Z"


@respx.mock
def test_without_a_page_count_a_read_that_hits_max_pages_is_incomplete() -> None:
    no_meta = {k: v for k, v in page().items() if k != "meta"}
    route = respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(return_value=httpx.Response(200, json=no_meta))
    kantata, _ = client(per_page=2)  # every page is full: there may always be one more
    read = kantata.subscribed_events(NOW - timedelta(hours=1), [], max_pages=3)
    assert (read.complete, len(read.events), read.pages_needed, route.call_count) == (False, 6, None, 3)


@respx.mock
def test_connector_retries_5xx_then_succeeds_with_jittered_backoff() -> None:
    respx.get(BASE + SUBSCRIBED_EVENTS_PATH).mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json=page())]
    )
    kantata, sleeps = client()
    assert len(kantata.subscribed_events(NOW, []).events) == 2
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
    with pytest.raises(VendorAuthRefused):
        kantata.subscribed_events(NOW, [])
    assert route.call_count == 1


def test_connector_uses_a_timeout_by_default() -> None:
    kantata = kantata_http(BASE, lambda: "t")
    assert kantata.client.timeout.read == 10.0


def test_each_account_gets_its_share_of_the_time_left() -> None:
    left = [120.0]
    first = fair_share(lambda: left[0], accounts_left=3)
    assert first() == 40.0  # 80 s stay for the two accounts after it
    left[0] = 90.0  # it used 30 s
    assert first() == 10.0
    second = fair_share(lambda: left[0], accounts_left=2)
    assert second() == 45.0
    assert fair_share(lambda: left[0], accounts_left=1)() == 90.0
