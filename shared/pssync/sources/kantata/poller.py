"""Kantata OX: the poll use case with its cursor (the normaliser is in `normaliser.py`).

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
from typing import Any

from pssync.errors import (
    DeliveryInProgress,
    IngestRejected,
    MalformedDelivery,
    PssyncError,
    TransientDownstreamError,
)
from pssync.model.sources import SourceConfig
from pssync.observability import logger
from pssync.ports import Acceptor, Clock, CursorConflict, CursorStore, EventFeed, FeedRead
from pssync.sources.kantata.normaliser import TIME_ENTRY_EVENT_TYPES, KantataNormaliser, created_at_of


class BacklogTooDense(PssyncError):
    """Even the narrowest window past the cursor holds more events than one read may page through."""

    code = "kantata_backlog_too_dense"


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

    def as_document(self) -> dict[str, Any]:
        return {**self.__dict__, "cursor": self.cursor.isoformat() if self.cursor else None}


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
        api: EventFeed,
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


PollerFactory = Callable[[SourceConfig, Callable[[], float]], KantataPoller]
"""(source, seconds left for it) -> a poller for that Kantata account."""


def poll_accounts(
    sources: Sequence[SourceConfig], poller_for: PollerFactory, seconds_left: Callable[[], float]
) -> list[PollResult]:
    """Poll every account, each within its fair share of the time left.

    One account's outage, revoked token or misconfiguration does not stop the others; the failures are
    raised together afterwards, so the schedule's retry and DLQ alarm see them.
    """
    results: list[PollResult] = []
    failures: list[str] = []
    for index, source in enumerate(sources):
        share = fair_share(seconds_left, accounts_left=len(sources) - index)
        try:
            result = poller_for(source, share).poll(source)
        except PssyncError as error:
            logger.exception("kantata poll failed", extra={"source": source.name})
            failures.append(f"{source.name}: {error!r}")
            continue
        logger.info("kantata polled", extra=result.__dict__)
        results.append(result)
        if result.windows == 0 and not result.caught_up:
            # Not one window fitted the time: left alone, this repeats every tick until Kantata's
            # nine days run out. Fail, so the DLQ alarm says so.
            failures.append(f"{source.name}: no window could be read in time; the cursor did not move")
    if failures:
        raise TransientDownstreamError(f"kantata polls failed: {failures}")
    return results
