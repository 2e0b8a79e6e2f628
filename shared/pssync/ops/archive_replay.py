"""Replay a window of the canonical bus's EventBridge archive: `pssync events replay --from --to`.

Safe by construction: every canonical event keeps its business `event_id` in `detail`, every starter names
its execution after it and every step dedupes on it, so what was applied is a no-op the second time and
only what was lost (a rule disabled, a target down past its retry budget, a queue purged) takes effect.

Two ways, both audited in the replay audit log like a dead-letter replay (`pssync dlq history`):
- `start-replay` (AWS): EventBridge `StartReplay` from the archive onto its bus, for the window; with
  `--detail-type`, only to the rules that route those types (`Destination.FilterArns`), since a replay
  cannot filter events itself. The run waits for the replay to end (DescribeReplay) and records its state.
- `re-put` (the local runtime, where moto's StartReplay ignores the window and every rule's pattern): the
  archived events are read (`ArchivedEvents`), filtered by window and type here, and put on the bus again
  with their source, detail-type, detail and original time. Each is one audited entry.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pssync.ops.audit import Caller, ReplayAuditLog, ReplayRun, RunStatus, recorded
from pssync.ops.dead_letters import MessageOutcome, ReplayedMessage
from pssync.ops.selection import RateLimiter

ARCHIVE_REPLAY_KIND = "archive"
REPLAY_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
PUT_BATCH = 10  # PutEvents' maximum entries per call


class ReplayMethod(StrEnum):
    START_REPLAY = "start-replay"
    RE_PUT = "re-put"


class NoSuchArchive(LookupError):
    pass


class UnroutedDetailType(ValueError):
    """A --detail-type no rule on the bus routes: replaying it would deliver nothing."""


# --- the window -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayWindow:
    """Events archived from `start` (inclusive) to `end` (exclusive), of `detail_types` (empty: all)."""

    start: datetime
    end: datetime
    detail_types: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("the window's instants must carry a time zone")
        if self.start >= self.end:
            raise ValueError(f"--from {self.start.isoformat()} is not before --to {self.end.isoformat()}")

    def takes(self, at: datetime, detail_type: str | None) -> bool:
        if not self.start <= at < self.end:
            return False
        return not self.detail_types or detail_type in self.detail_types

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.detail_types:
            described["detail_type"] = sorted(self.detail_types)
        return described


def parse_instant(text: str, *, end_of_day: bool) -> datetime:
    """An ISO instant (UTC when it names no zone) or a date: its start for --from, its end for --to."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a date or an ISO instant: {text!r} (e.g. 2026-11-29 or 2026-11-29T14:00Z)"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


# --- the archive and the rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveInfo:
    name: str
    arn: str
    bus_arn: str
    retention_days: int

    @property
    def bus_name(self) -> str:
        return self.bus_arn.split(":event-bus/", 1)[-1]


def find_archive(events: Any, bus_name: str, archive_name: str | None = None) -> ArchiveInfo:
    """The bus's archive (the one the stack creates); `archive_name` picks one when there are several."""
    bus_arn = str(events.describe_event_bus(Name=bus_name)["Arn"])
    listed = events.list_archives(EventSourceArn=bus_arn).get("Archives", [])
    if archive_name is not None:
        listed = [a for a in listed if a["ArchiveName"] == archive_name]
    if len(listed) != 1:
        found = ", ".join(sorted(a["ArchiveName"] for a in listed)) or "none"
        raise NoSuchArchive(f"bus {bus_name} must have exactly one archive to replay from (found: {found})")
    name = str(listed[0]["ArchiveName"])
    described = events.describe_archive(ArchiveName=name)
    return ArchiveInfo(
        name=name,
        arn=str(described["ArchiveArn"]),
        bus_arn=bus_arn,
        retention_days=int(described.get("RetentionDays") or 0),
    )


def routed_types(pattern: dict[str, Any]) -> frozenset[str] | None:
    """The detail-types a rule's pattern names outright; None when it does not restrict them."""
    named = pattern.get("detail-type")
    if not isinstance(named, list):
        return None
    return frozenset(t for t in named if isinstance(t, str))


def filter_rules(rules: Sequence[dict[str, Any]], detail_types: frozenset[str]) -> list[str]:
    """The ARNs of the rules that route these detail-types by name (a replay's FilterArns). Rules EventBridge
    manages (an archive's own) and rules that take every type are left out: they would receive the other
    types of the window too. Pure."""
    arns: set[str] = set()
    routed: set[str] = set()
    for rule in rules:
        if rule.get("ManagedBy") or str(rule.get("Name", "")).startswith("Events-Archive-"):
            continue
        try:
            pattern = json.loads(rule.get("EventPattern") or "{}")
        except json.JSONDecodeError:
            continue
        types = routed_types(pattern) if isinstance(pattern, dict) else None
        if types and types & detail_types:
            arns.add(str(rule["Arn"]))
            routed |= types & detail_types
    missing = detail_types - routed
    if missing:
        raise UnroutedDetailType(
            f"no rule on the bus routes {', '.join(sorted(missing))}: nothing would replay"
        )
    return sorted(arns)


def bus_rules(events: Any, bus_name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"EventBusName": bus_name}
    while True:
        page = events.list_rules(**kwargs)
        rules += page.get("Rules", [])
        if not page.get("NextToken"):
            return rules
        kwargs["NextToken"] = page["NextToken"]


# --- StartReplay (AWS) ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedReplay:
    name: str
    state: str
    reason: str | None = None
    last_replayed: datetime | None = None


def replay_name(now: datetime) -> str:
    """Unique, at most 64 characters of [.-_A-Za-z0-9]: when, plus a nonce for two runs in a second."""
    return f"pssync-{now.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


class ArchiveReplayer:
    """StartReplay for a window, then DescribeReplay until it ends."""

    def __init__(
        self, events: Any, *, sleep: Callable[[float], None] = time.sleep, poll_seconds: float = 5.0
    ):
        self._events = events
        self._sleep = sleep
        self._poll_seconds = poll_seconds

    def start(self, archive: ArchiveInfo, window: ReplayWindow, name: str) -> dict[str, Any]:
        """The StartReplay request: FilterArns only when detail-types are named."""
        destination: dict[str, Any] = {"Arn": archive.bus_arn}
        if window.detail_types:
            destination["FilterArns"] = filter_rules(
                bus_rules(self._events, archive.bus_name), window.detail_types
            )
        request = {
            "ReplayName": name,
            "Description": f"pssync events replay {json.dumps(window.describe())}"[:512],
            "EventSourceArn": archive.arn,
            "EventStartTime": window.start,
            "EventEndTime": window.end,
            "Destination": destination,
        }
        self._events.start_replay(**request)
        return request

    def wait(self, name: str, on_progress: Callable[[StartedReplay], None] | None = None) -> StartedReplay:
        while True:
            described = self._events.describe_replay(ReplayName=name)
            last = described.get("EventLastReplayedTime")
            state = StartedReplay(
                name=name,
                state=str(described.get("State", "STARTING")),
                reason=described.get("StateReason"),
                last_replayed=last if isinstance(last, datetime) else None,
            )
            if on_progress:
                on_progress(state)
            if state.state in REPLAY_TERMINAL:
                return state
            self._sleep(self._poll_seconds)


# --- re-put (the local runtime) ---------------------------------------------------------------------------


class ArchivedEvents(Protocol):
    """The events an archive holds, as EventBridge delivered them (`id`, `time`, `source`, `detail-type`,
    `detail`). AWS offers no API to read an archive; the local runtime's emulator does."""

    def events(self, archive: ArchiveInfo) -> Iterable[dict[str, Any]]: ...


def event_time(event: dict[str, Any]) -> datetime | None:
    """EventBridge's `time`: ISO text on AWS, epoch seconds in moto's archive."""
    raw = event.get("time")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return datetime.fromtimestamp(raw, tz=UTC)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class PlannedEvent:
    archived_id: str
    event_id: str | None  # the business event id in detail: what makes the replay a no-op downstream
    at: datetime
    entry: dict[str, Any]


def plan_reput(archived: Iterable[dict[str, Any]], window: ReplayWindow, bus_name: str) -> list[PlannedEvent]:
    """The archived events in the window, of the types asked for, oldest first, as PutEvents entries, each
    business event once. Left out: events that were themselves replays (`replay-name`), and further copies
    of one business event (a re-put event is archived again with its original time; the same event id and
    type is the same fact, and downstream would ignore the copy anyway). Pure."""
    planned: list[PlannedEvent] = []
    seen: set[tuple[str | None, str]] = set()
    for event in sorted(archived, key=lambda e: event_time(e) or datetime.max.replace(tzinfo=UTC)):
        at = event_time(event)
        if at is None or event.get("replay-name") or not window.takes(at, event.get("detail-type")):
            continue
        raw_detail = event.get("detail")
        detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
        business_id = detail.get("event_id") if isinstance(detail.get("event_id"), str) else None
        key = (event.get("detail-type"), business_id or f"archived:{event.get('id')}")
        if key in seen:
            continue
        seen.add(key)
        planned.append(
            PlannedEvent(
                archived_id=str(event.get("id", "")),
                event_id=business_id,
                at=at,
                entry={
                    "Source": event.get("source"),
                    "DetailType": event.get("detail-type"),
                    "Detail": json.dumps(detail),
                    "EventBusName": bus_name,
                    "Time": at,
                    "Resources": list(event.get("resources") or []),
                },
            )
        )
    return planned


def reput(
    events_client: Any,
    planned: Sequence[PlannedEvent],
    *,
    limiter: RateLimiter | None = None,
    progress: Callable[[ReplayedMessage], None] | None = None,
    into: list[ReplayedMessage] | None = None,
) -> list[ReplayedMessage]:
    """PutEvents in batches of ten; each entry's outcome as EventBridge answered it."""
    outcomes = [] if into is None else into
    batch_size = PUT_BATCH if limiter is None else limiter.batch_size(PUT_BATCH, 1)
    for start in range(0, len(planned), batch_size):
        batch = planned[start : start + batch_size]
        if limiter is not None:
            for _ in batch:
                limiter.wait()
        try:
            answered = events_client.put_events(Entries=[p.entry for p in batch]).get("Entries", [])
        except Exception as error:  # one failed call is recorded per entry; the run goes on
            answered = [{"ErrorCode": type(error).__name__, "ErrorMessage": str(error)}] * len(batch)
        for one, answer in zip(batch, answered, strict=False):
            if answer.get("ErrorCode"):
                outcome = ReplayedMessage(
                    one.archived_id,
                    one.event_id,
                    MessageOutcome.ERROR,
                    f"not put: {answer['ErrorCode']}: {answer.get('ErrorMessage', '')}",
                )
            else:
                outcome = ReplayedMessage(one.archived_id, one.event_id, MessageOutcome.REPLAYED)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
    return outcomes


# --- audited ----------------------------------------------------------------------------------------------


def _new_run(
    caller: Caller, archive: ArchiveInfo, window: ReplayWindow, method: ReplayMethod, now: datetime
) -> ReplayRun:
    return ReplayRun(
        run_id=str(uuid.uuid4()),
        started_at=now.isoformat(timespec="microseconds"),
        caller=caller,
        store=archive.name,
        store_url=archive.arn,
        replay_kind=ARCHIVE_REPLAY_KIND,
        target=archive.bus_name,
        filters=window.describe(),
        limit=None,
        rate=None,
        method=method.value,
    )


def audited_archive_replay(
    events_client: Any,
    audit: ReplayAuditLog,
    caller: Caller,
    archive: ArchiveInfo,
    window: ReplayWindow,
    *,
    method: ReplayMethod,
    archived: ArchivedEvents | None = None,
    replayer: ArchiveReplayer | None = None,
    limiter: RateLimiter | None = None,
    progress: Callable[[ReplayedMessage], None] | None = None,
    replay_progress: Callable[[StartedReplay], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReplayRun:
    """Record the run, replay the window, record what came of it, whatever happens in between."""
    if method is ReplayMethod.RE_PUT and archived is None:
        raise ValueError("a re-put replay needs the archived events")
    started = now()
    if window.end > started + timedelta(minutes=5):
        raise ValueError(f"--to {window.end.isoformat()} is in the future")
    run = _new_run(caller, archive, window, method, started)
    if limiter is not None:
        run.rate = limiter.per_second
    with recorded(audit, run, now):
        if method is ReplayMethod.START_REPLAY:
            replayer = replayer or ArchiveReplayer(events_client)
            name = replay_name(started)
            replayer.start(archive, window, name)
            state = replayer.wait(name, replay_progress)
            failed = state.state != "COMPLETED"
            run.messages = [
                ReplayedMessage(
                    name,
                    None,
                    MessageOutcome.ERROR if failed else MessageOutcome.REPLAYED,
                    state.state + (f": {state.reason}" if state.reason else ""),
                )
            ]
            run.status = RunStatus.FAILED if failed else RunStatus.COMPLETED
            run.failure = (state.reason or state.state) if failed else None
        else:
            assert archived is not None
            planned = plan_reput(archived.events(archive), window, archive.bus_name)
            reput(events_client, planned, limiter=limiter, progress=progress, into=run.messages)
            run.moved = sum(1 for m in run.messages if m.outcome is MessageOutcome.REPLAYED)
            run.status = RunStatus.COMPLETED
    return run


# --- reading moto's archive over HTTP (the local runtime) -------------------------------------------------


def archived_events_in_model_data(document: dict[str, Any], archive: ArchiveInfo) -> Iterator[dict[str, Any]]:
    """The archive's events from moto server's `/moto-api/data.json` (every model's JSON-able attributes):
    `events.Archive[*]` with its `name` and `events`. Pure: the CLI fetches the document."""
    for candidate in document.get("events", {}).get("Archive", []):
        if candidate.get("name") == archive.name and candidate.get("arn") == archive.arn:
            yield from candidate.get("events") or []
