"""Archive replays: the window, the rules a typed replay goes to, the re-put plan, StartReplay, the audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pssync.ops.archive_replay import (
    ArchiveInfo,
    ArchiveReplayer,
    ReplayMethod,
    ReplayWindow,
    UnroutedDetailType,
    archived_events_in_model_data,
    audited_archive_replay,
    filter_rules,
    parse_instant,
    plan_reput,
)
from pssync.ops.audit import Caller, ReplayRun, RunStatus
from pssync.ops.dead_letters import MessageOutcome

ACCOUNT = "123456789012"
BUS_ARN = f"arn:aws:events:eu-west-1:{ACCOUNT}:event-bus/pssync-dev"
ARCHIVE = ArchiveInfo(
    name="pssync-dev-archive",
    arn=f"arn:aws:events:eu-west-1:{ACCOUNT}:archive/pssync-dev-archive",
    bus_arn=BUS_ARN,
    retention_days=30,
)
CALLER = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/ops", account=ACCOUNT, user_id="AIDA")
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
WINDOW = ReplayWindow(T0, T0 + timedelta(hours=2))


def test_dates_mean_whole_days_and_instants_default_to_utc() -> None:
    assert parse_instant("2026-11-29", end_of_day=False) == datetime(2026, 11, 29, tzinfo=UTC)
    assert parse_instant("2026-11-29", end_of_day=True) == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_instant("2026-11-29T14:30", end_of_day=True) == datetime(2026, 11, 29, 14, 30, tzinfo=UTC)
    assert parse_instant("2026-11-29T14:30+01:00", end_of_day=False).utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match="not a date or an ISO instant"):
        parse_instant("yesterday", end_of_day=False)


def test_a_window_must_run_forwards() -> None:
    with pytest.raises(ValueError, match="is not before"):
        ReplayWindow(T0, T0)
    with pytest.raises(ValueError, match="time zone"):
        ReplayWindow(datetime(2026, 11, 29), datetime(2026, 11, 30))


def _rule(name: str, pattern: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    rule = {"Name": name, "Arn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/pssync-dev/{name}", **extra}
    if pattern is not None:
        rule["EventPattern"] = json.dumps(pattern)
    return rule


RULES = [
    _rule("booked", {"source": ["pssync.ingest"], "detail-type": ["ContractBooked"]}),
    _rule("amended", {"source": ["pssync.ingest"], "detail-type": ["ContractAmended"]}),
    _rule("receivables", {"detail-type": ["InvoicePosted", "PaymentReceived"]}),
    _rule("everything", {"source": [{"prefix": "pssync"}]}),
    _rule(
        "Events-Archive-pssync-dev-archive", {"account": [ACCOUNT]}, ManagedBy="prod.vhs.events.aws.internal"
    ),
    _rule("nightly", None, ScheduleExpression="cron(0 2 * * ? *)"),
]


def test_a_typed_replay_goes_only_to_the_rules_that_route_those_types() -> None:
    arns = filter_rules(RULES, frozenset({"ContractBooked", "PaymentReceived"}))
    assert [a.rsplit("/", 1)[-1] for a in arns] == ["booked", "receivables"]


def test_a_type_no_rule_routes_is_refused_before_anything_replays() -> None:
    with pytest.raises(UnroutedDetailType, match="TimeApproved"):
        filter_rules(RULES, frozenset({"ContractBooked", "TimeApproved"}))


def _archived(
    event_id: str, minutes: int, detail_type: str = "ContractBooked", **extra: Any
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"eb-{event_id}-{minutes}",
        "detail-type": detail_type,
        "source": "pssync.ingest",
        "account": ACCOUNT,
        "time": (T0 + timedelta(minutes=minutes)).timestamp(),  # moto's archive keeps epoch seconds
        "region": "eu-west-1",
        "resources": [],
        "detail": {"event_id": event_id, "event_type": detail_type},
        **extra,
    }


def test_the_re_put_plan_takes_the_window_and_types_oldest_first_each_event_once() -> None:
    archived = [
        _archived("e-late", 90),
        _archived("e-before", -1),
        _archived("e-first", 0),
        _archived("e-amended", 30, "ContractAmended"),
        _archived("e-end", 120),  # the end is exclusive
        _archived("e-first", 95),  # a copy archived by an earlier re-put: the same business event
        _archived("e-replayed", 40, **{"replay-name": "pssync-20261129"}),
        {**_archived("e-iso", 10), "time": (T0 + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")},
    ]
    planned = plan_reput(archived, WINDOW, "pssync-dev")
    assert [p.event_id for p in planned] == ["e-first", "e-iso", "e-amended", "e-late"]
    typed = plan_reput(archived, ReplayWindow(WINDOW.start, WINDOW.end, frozenset({"ContractAmended"})), "b")
    assert [p.event_id for p in typed] == ["e-amended"]
    entry = planned[0].entry
    assert entry["Source"] == "pssync.ingest" and entry["DetailType"] == "ContractBooked"
    assert json.loads(entry["Detail"]) == {"event_id": "e-first", "event_type": "ContractBooked"}
    assert entry["EventBusName"] == "pssync-dev" and entry["Time"] == T0


class FakeEvents:
    def __init__(self, states: list[dict[str, Any]] | None = None, failing_puts: set[str] | None = None):
        self.states = states or [{"State": "COMPLETED"}]
        self.failing = failing_puts or set()
        self.started: list[dict[str, Any]] = []
        self.put: list[dict[str, Any]] = []

    def list_rules(self, EventBusName: str, **_: Any) -> dict[str, Any]:
        return {"Rules": RULES}

    def start_replay(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"State": "STARTING"}

    def describe_replay(self, ReplayName: str) -> dict[str, Any]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.put += Entries
        answers = []
        for entry in Entries:
            event_id = json.loads(entry["Detail"])["event_id"]
            failing = event_id in self.failing
            answers.append(
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"} if failing else {"EventId": "x"}
            )
        return {"FailedEntryCount": len(self.failing), "Entries": answers}


class FakeAudit:
    def __init__(self) -> None:
        self.begun: list[str] = []
        self.finished: list[ReplayRun] = []

    def begin(self, run: ReplayRun) -> None:
        self.begun.append(run.run_id)

    def finish(self, run: ReplayRun) -> None:
        self.finished.append(run)


def _now() -> datetime:
    return T0 + timedelta(days=1)


def test_start_replay_sends_the_window_and_filter_arns_only_for_named_types() -> None:
    events = FakeEvents(states=[{"State": "RUNNING"}, {"State": "COMPLETED"}])
    sleeps: list[float] = []
    replayer = ArchiveReplayer(events, sleep=sleeps.append, poll_seconds=5)
    audit = FakeAudit()
    typed = ReplayWindow(WINDOW.start, WINDOW.end, frozenset({"ContractAmended"}))
    run = audited_archive_replay(
        events,
        audit,
        CALLER,
        ARCHIVE,
        typed,
        method=ReplayMethod.START_REPLAY,
        replayer=replayer,
        now=_now,  # type: ignore[arg-type]
    )
    (request,) = events.started
    assert request["EventSourceArn"] == ARCHIVE.arn
    assert (request["EventStartTime"], request["EventEndTime"]) == (WINDOW.start, WINDOW.end)
    assert request["Destination"] == {"Arn": BUS_ARN, "FilterArns": [RULES[1]["Arn"]]}
    assert request["ReplayName"].startswith("pssync-20261130T100000-")
    assert sleeps == [5]
    assert audit.finished == [run] and audit.begun == [run.run_id]
    assert (run.replay_kind, run.method, run.status, run.store, run.target) == (
        "archive",
        "start-replay",
        RunStatus.COMPLETED,
        "pssync-dev-archive",
        "pssync-dev",
    )
    assert run.filters == {
        "from": "2026-11-29T10:00:00+00:00",
        "to": "2026-11-29T12:00:00+00:00",
        "detail_type": ["ContractAmended"],
    }
    untyped = FakeEvents()
    ArchiveReplayer(untyped).start(ARCHIVE, WINDOW, "r")
    assert untyped.started[0]["Destination"] == {"Arn": BUS_ARN}


def test_a_failed_start_replay_is_a_failed_run_with_its_reason() -> None:
    events = FakeEvents(states=[{"State": "FAILED", "StateReason": "archive is being deleted"}])
    run = audited_archive_replay(
        events,
        FakeAudit(),
        CALLER,
        ARCHIVE,
        WINDOW,
        method=ReplayMethod.START_REPLAY,
        now=_now,  # type: ignore[arg-type]
    )
    assert run.status is RunStatus.FAILED and run.failure == "archive is being deleted"
    assert run.messages[0].outcome is MessageOutcome.ERROR


class Archived:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._events = events

    def events(self, archive: ArchiveInfo) -> list[dict[str, Any]]:
        return self._events


def test_a_re_put_replay_records_every_event_and_what_eventbridge_answered() -> None:
    events = FakeEvents(failing_puts={"e-2"})
    audit = FakeAudit()
    archived = Archived([_archived(f"e-{n}", n) for n in range(12)])
    run = audited_archive_replay(
        events,
        audit,
        CALLER,
        ARCHIVE,
        WINDOW,
        method=ReplayMethod.RE_PUT,
        archived=archived,
        now=_now,  # type: ignore[arg-type]
    )
    assert len(events.put) == 12
    assert [(m.event_id, m.outcome) for m in run.messages][:3] == [
        ("e-0", MessageOutcome.REPLAYED),
        ("e-1", MessageOutcome.REPLAYED),
        ("e-2", MessageOutcome.ERROR),
    ]
    assert "ThrottlingException" in run.messages[2].detail
    assert run.moved == 11 and run.method == "re-put" and run.status is RunStatus.COMPLETED


def test_a_window_ending_in_the_future_is_refused_before_anything_is_recorded() -> None:
    audit = FakeAudit()
    with pytest.raises(ValueError, match="in the future"):
        audited_archive_replay(
            FakeEvents(),
            audit,
            CALLER,
            ARCHIVE,
            ReplayWindow(T0, T0 + timedelta(days=3)),  # type: ignore[arg-type]
            method=ReplayMethod.START_REPLAY,
            now=_now,
        )
    assert audit.begun == []


def test_moto_model_data_yields_only_the_named_archive_events() -> None:
    document = {
        "events": {
            "Archive": [
                {"name": "other", "arn": "arn:other", "events": [_archived("x", 1)]},
                {
                    "name": ARCHIVE.name,
                    "arn": ARCHIVE.arn,
                    "events": [_archived("e-1", 1)],
                    "state": "ENABLED",
                },
            ]
        }
    }
    assert [e["detail"]["event_id"] for e in archived_events_in_model_data(document, ARCHIVE)] == ["e-1"]
    assert list(archived_events_in_model_data({}, ARCHIVE)) == []
