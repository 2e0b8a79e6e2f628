"""Kantata OX subscribed events: normalise time entries, and the poll use case with its cursor.

Kantata keeps subscribed events for about nine days and hands them over late, duplicated or out of order.
Each poll re-reads an overlap window before the cursor; repeats collapse in IngestService.accept on the
subscribed event `id` (the source event id). The cursor is the newest `created_at` seen (Kantata's clock),
moved by a conditional write only after every event of a window was accepted.

Feed order is not guaranteed, so a read cut short by the page limit says nothing about what the unread
pages hold: moving the cursor past it could skip events for good. A backlog (after an outage, say) is
instead read in closed windows (`created_before`), halved until one fits the page limit; each window is
accepted whole and moves the cursor to its end, so progress survives a timeout or a failure mid-backlog.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Protocol

from pydantic import ValidationError

from pssync.errors import (
    DeliveryInProgress,
    IngestRejected,
    MalformedDelivery,
    PssyncError,
    UnknownTenant,
    UnprocessableDelivery,
)
from pssync.ingest.schemes.base import IngestResult, NormalisedEvent, fingerprint_of
from pssync.ingest.sources import SourceConfig
from pssync.model.events import TimeApproved, TimeApprovedData, canonical_event_id
from pssync.money import Money, from_minor
from pssync.observability import logger
from pssync.ports import Clock

TIME_ENTRY_CREATED = "time_entry:created"
TIME_ENTRY_UPDATED = "time_entry:updated"
TIME_ENTRY_DELETED = "time_entry:deleted"
TIME_ENTRY_EVENT_TYPES = (TIME_ENTRY_CREATED, TIME_ENTRY_UPDATED, TIME_ENTRY_DELETED)
HOURS_QUANTUM = Decimal("0.000001")


@dataclass(frozen=True)
class Cursor:
    source: str
    position: datetime | None
    version: int = 0


class CursorConflict(PssyncError):
    code = "cursor_conflict"


class BacklogTooDense(PssyncError):
    """Even the narrowest window past the cursor holds more events than one read may page through."""

    code = "kantata_backlog_too_dense"


class CursorStore(Protocol):
    def get(self, source: str) -> Cursor: ...

    def advance(self, cursor: Cursor, position: datetime, updated_at: datetime) -> Cursor:
        """Write `position` if the stored cursor is still `cursor`; raises CursorConflict otherwise."""
        ...


def _document(value: Any, field: str) -> dict[str, Any]:
    """Payload fields arrive as objects or as JSON text (both seen): accept either, or nothing."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise MalformedDelivery(f"{field} is neither an object nor JSON text") from None
    if not isinstance(value, dict):
        raise MalformedDelivery(f"{field} must be an object")
    return value


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise MalformedDelivery(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedDelivery(f"{field} {value!r} is not ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def created_at_of(event: Mapping[str, Any]) -> datetime:
    return _instant(event.get("created_at"), "created_at")


def _approved_changed_to(changes: Mapping[str, Any]) -> bool | None:
    """payload_changes {"approved": [old, new]} (or {"approved": new}) -> new, when present."""
    change = changes.get("approved")
    if isinstance(change, list) and len(change) == 2:
        return bool(change[1])
    if isinstance(change, bool):
        return change
    return None


class KantataNormaliser:
    """Approved time entry -> TimeApproved; deleted or approval withdrawn -> TimeApproved(approved=False)."""

    def __init__(self, currency: str) -> None:
        self._currency = currency

    def normalise(
        self, source: SourceConfig, event: Mapping[str, Any], received_at: datetime
    ) -> list[NormalisedEvent]:
        account_id = str(event.get("account_id", ""))
        if account_id not in source.tenants:
            raise UnknownTenant(f"Kantata account {account_id!r} is not a tenant of source {source.name}")
        event_type = event.get("event_type")
        if event_type not in TIME_ENTRY_EVENT_TYPES:
            return []
        current = _document(event.get("current_payload"), "current_payload")
        previous = _document(event.get("previous_payload"), "previous_payload")
        changes = _document(event.get("payload_changes"), "payload_changes")
        if event_type == TIME_ENTRY_DELETED:
            entry, approved = (previous or current or _document(event.get("subject"), "subject")), False
        elif current.get("approved") is True:
            entry, approved = current, True
        elif previous.get("approved") is True or _approved_changed_to(changes) is False:
            entry, approved = {**previous, **current}, False  # the approval was withdrawn
        else:
            return []  # an unapproved entry was created or edited: not a business fact yet
        if not entry:
            raise MalformedDelivery(f"{event_type} {event.get('id')} carries no time entry payload")
        source_event_id = str(event.get("id", ""))
        if not source_event_id:
            raise MalformedDelivery("subscribed event has no id")
        changed_at = _instant(
            event.get("subject_changed_at") or event.get("created_at"), "subject_changed_at"
        )
        try:
            data = self._data(event, entry, approved)
        except (ValidationError, InvalidOperation, KeyError, TypeError, ValueError) as error:
            raise UnprocessableDelivery(f"time entry {event.get('subject_id')}: {error}") from None
        event_id = canonical_event_id(source.name, source_event_id)
        canonical = TimeApproved(
            event_id=event_id,
            source=source.name,
            source_system=source.system,
            source_event_id=source_event_id,
            source_version=str(event.get("subject_changed_at") or "") or None,
            correlation_id=event_id,
            occurred_at=changed_at,
            received_at=received_at,
            data=data,
        )
        # The included subject is the entry as it is now, not what this event said: not fingerprinted.
        fingerprint = fingerprint_of({k: v for k, v in event.items() if k != "subject"})
        return [NormalisedEvent(event=canonical, fingerprint=fingerprint)]

    def _data(self, event: Mapping[str, Any], entry: Mapping[str, Any], approved: bool) -> TimeApprovedData:
        minutes = Decimal(str(entry["time_in_minutes"]))
        hours = (minutes / Decimal(60)).quantize(HOURS_QUANTUM, rounding=ROUND_HALF_EVEN).normalize()
        rate_cents = entry.get("rate_in_cents")
        rate = (
            None
            if rate_cents is None
            else Money(amount=from_minor(int(rate_cents), self._currency), currency=self._currency)
        )
        story_id = entry.get("story_id")
        return TimeApprovedData(
            time_entry_id=str(event.get("subject_id") or entry["id"]),
            project_id=str(entry["workspace_id"]),
            person_id=str(entry["user_id"]),
            work_date=entry["date_performed"],
            hours=hours,
            billable=bool(entry.get("billable", False)),
            approved=approved,
            rate=rate,
            wbs_code=None if story_id is None else str(story_id),
            notes=entry.get("notes") or None,
        )


@dataclass(frozen=True)
class FeedRead:
    """Events created in a window; `complete` is False when max_pages ran out before the last page."""

    events: list[dict[str, Any]]
    complete: bool
    pages_needed: int | None = None  # when cut short: how many pages Kantata says the window holds


class SubscribedEventsApi(Protocol):
    def subscribed_events(
        self,
        created_after: datetime,
        event_types: Sequence[str],
        *,
        created_before: datetime | None = None,
        max_pages: int = 20,
    ) -> FeedRead: ...


class Acceptor(Protocol):
    """IngestService.accept: raw payload lineage, per-event dedupe, publish."""

    def accept(
        self,
        source: SourceConfig,
        delivery_id: str,
        raw_body: bytes,
        normalised: list[NormalisedEvent],
        received_at: datetime,
    ) -> IngestResult: ...


@dataclass(frozen=True)
class PollResult:
    source: str
    read: int
    published: int
    duplicates: int
    rejected: int
    cursor: datetime | None
    cursor_moved: bool
    windows: int  # windows accepted whole; more than one means a backlog was being drained
    caught_up: bool  # False: the poll stopped early (window budget, concurrent poll); the next goes on


@dataclass
class _Tally:
    read: int = 0
    published: int = 0
    duplicates: int = 0
    rejected: int = 0


def _oldest_first(event: Mapping[str, Any]) -> tuple[datetime, str]:
    """By instant, not by text: offsets and precision vary. Unreadable times first (they are refused)."""
    try:
        created_at = created_at_of(event)
    except MalformedDelivery:
        created_at = datetime.min.replace(tzinfo=UTC)
    return created_at, str(event.get("id", ""))


class KantataPoller:
    def __init__(
        self,
        api: SubscribedEventsApi,
        acceptor: Acceptor,
        cursors: CursorStore,
        normaliser: KantataNormaliser,
        clock: Clock,
        *,
        overlap: timedelta = timedelta(minutes=10),
        event_types: Sequence[str] = TIME_ENTRY_EVENT_TYPES,
        max_pages: int = 20,
        max_windows: int = 8,
        narrowest_window: timedelta = timedelta(minutes=1),
        seconds_left: Callable[[], float] | None = None,
        reserve_seconds: float = 10.0,
    ) -> None:
        self._api = api
        self._acceptor = acceptor
        self._cursors = cursors
        self._normaliser = normaliser
        self._clock = clock
        self._overlap = overlap
        self._event_types = tuple(event_types)
        self._max_pages = max_pages
        self._max_windows = max_windows
        self._narrowest_window = narrowest_window
        self._seconds_left = seconds_left
        self._reserve_seconds = reserve_seconds
        self._last_read_seconds = 0.0

    def _out_of_time(self, *, before_a_read: bool = False) -> bool:
        """Stop early enough to record progress: a timed-out poll would redo its window forever.

        Before a read, the time the last read took is kept free too: a read that cannot finish in time
        is wasted, and a poll that only ever wastes reads never moves the cursor.
        """
        if self._seconds_left is None:
            return False
        needed = self._reserve_seconds + (self._last_read_seconds if before_a_read else 0.0)
        return self._seconds_left() < needed

    def _read(self, since: datetime, until: datetime | None) -> FeedRead:
        started = self._seconds_left() if self._seconds_left is not None else 0.0
        read = self._api.subscribed_events(
            since, self._event_types, created_before=until, max_pages=self._max_pages
        )
        if self._seconds_left is not None:
            self._last_read_seconds = max(0.0, started - self._seconds_left())
        return read

    def poll(self, source: SourceConfig) -> PollResult:
        """Read since cursor - overlap in windows that fit the page limit, accept each, move the cursor."""
        now = self._clock.now()
        cursor = self._cursors.get(source.name)
        # First poll: no backfill beyond the overlap window (Kantata keeps ~9 days; replay is explicit).
        since = (cursor.position or now) - self._overlap
        until: datetime | None = None  # open: up to the newest event Kantata has
        tally, windows, moved = _Tally(), 0, False
        for _ in range(self._max_windows * 8):  # narrowings included: bounded whatever the feed does
            if self._out_of_time(before_a_read=True):
                break
            read = self._read(since, until)
            if not read.complete:
                until = self._narrower(
                    source, since, until or now, cursor.position or since, read.pages_needed
                )
                continue
            newest, finished = self._accept_all(source, read.events, now, tally)
            windows += 1
            # A closed window read whole: everything created before its end is in, whatever the order.
            # Cut short by time: the window was read whole and accepted oldest first, so everything
            # created before the first event left over is in.
            position = until if until is not None and finished else newest
            if position is not None and (cursor.position is None or position > cursor.position):
                try:
                    cursor = self._cursors.advance(cursor, position, now)
                    moved = True
                except CursorConflict:
                    logger.info("kantata cursor moved by a concurrent poll", extra={"source": source.name})
                    break
            if not finished:
                break
            if until is None:
                return self._result(source, tally, cursor.position, moved, windows, caught_up=True)
            if windows >= self._max_windows:
                break
            # Next window: twice the width that fitted, or open-ended once that reaches now. At least a
            # second of overlap: Kantata's bounds may be exclusive or whole seconds.
            width = until - since
            since = until - max(self._overlap, timedelta(seconds=1))
            until = since + 2 * width if since + 2 * width < now else None
        return self._result(source, tally, cursor.position, moved, windows, caught_up=False)

    def _narrower(
        self,
        source: SourceConfig,
        since: datetime,
        upper: datetime,
        floor: datetime,
        pages_needed: int | None,
    ) -> datetime:
        """A window that should fit: in proportion when Kantata said how many pages it needed, else half.

        It must end past the cursor (`floor`) by at least the narrowest window, or no window could make
        progress; once even that was too dense, the poll fails loudly instead of skipping events.
        """
        narrowest = floor + self._narrowest_window
        if upper <= narrowest:
            raise BacklogTooDense(
                f"{source.name}: more than {self._max_pages} pages of events between {since.isoformat()} "
                f"and {upper.isoformat()}; raise KANTATA_MAX_PAGES"
            )
        fraction = 0.5 if not pages_needed else min(0.5, 0.8 * self._max_pages / pages_needed)
        until = max(since + (upper - since) * fraction, narrowest)
        logger.info(
            "kantata backlog: narrowing the window",
            extra={"source": source.name, "since": since.isoformat(), "until": until.isoformat()},
        )
        return until

    def _accept_all(
        self, source: SourceConfig, events: list[dict[str, Any]], now: datetime, tally: _Tally
    ) -> tuple[datetime | None, bool]:
        """Accept a window's events oldest first; returns (position reached, whether all were handled).

        Finished, the position is the newest created_at accepted. Stopped for time, it is just before
        the first event left over, so that one is read again however the overlap is configured.
        """
        newest: datetime | None = None
        tally.read += len(events)
        for event in sorted(events, key=_oldest_first):
            try:
                created_at = created_at_of(event)
                if self._out_of_time():
                    return created_at - timedelta(microseconds=1), False
                normalised = self._normaliser.normalise(source, event, now)
                raw = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
                # Transient failures propagate: the cursor stays, the next poll reads these events again.
                result = self._acceptor.accept(source, f"kantata:{event.get('id')}", raw, normalised, now)
            except DeliveryInProgress:
                # An overlapping poll (or one that died mid-event, until its claim expires) holds this
                # event: stop before it rather than skip it, and leave the rest to the next poll.
                logger.info(
                    "kantata event held by another poll",
                    extra={"source": source.name, "event": str(event.get("id"))},
                )
                return created_at - timedelta(microseconds=1), False
            except IngestRejected as error:
                # Permanent for this event: skip it (logged) rather than block the feed behind it.
                tally.rejected += 1
                logger.warning(
                    "kantata event rejected",
                    extra={"source": source.name, "event": str(event.get("id")), "reason": error.code},
                )
                continue
            tally.duplicates += sum(1 for e in result.events if e.duplicate)
            tally.published += sum(1 for e in result.events if not e.duplicate)
            newest = created_at if newest is None else max(newest, created_at)
        return newest, True

    @staticmethod
    def _result(
        source: SourceConfig,
        tally: _Tally,
        position: datetime | None,
        moved: bool,
        windows: int,
        *,
        caught_up: bool,
    ) -> PollResult:
        return PollResult(
            source.name,
            tally.read,
            tally.published,
            tally.duplicates,
            tally.rejected,
            position,
            moved,
            windows,
            caught_up,
        )


def fair_share(seconds_left: Callable[[], float], accounts_left: int) -> Callable[[], float]:
    """This account's part of the time left: an account with a backlog cannot starve the ones after it."""
    others = seconds_left() * (accounts_left - 1) / accounts_left

    def share_left() -> float:
        return seconds_left() - others

    return share_left
