"""Replaying the bus archive against moto: events applied, their window replayed, nothing changes twice."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.events.models import events_backends
from typer.testing import CliRunner

from pssync.cli import events as events_cli
from pssync.model import examples
from pssync.model.events import ContractBooked
from pssync.ops.archive_replay import (
    ArchiveInfo,
    ReplayMethod,
    ReplayWindow,
    audited_archive_replay,
    find_archive,
)
from pssync.ops.audit import Caller, ReplayAuditLog, RunStatus
from pssync.ops.dead_letters import MessageOutcome
from tests.integration.conftest import REGION, AwsWorld, context, load_handler

AUDIT_TABLE = "pssync-test-TablesReplayAuditTable1A2B3C-XYZ"
BUS = "pssync-test"
CALLER = Caller(arn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/ops", account=DEFAULT_ACCOUNT_ID, user_id="AIDA")
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


class MotoArchive:
    """What the CLI reads over HTTP from a moto server, read in-process from the same backend."""

    def events(self, archive: ArchiveInfo) -> Iterable[dict[str, Any]]:
        return list(events_backends[DEFAULT_ACCOUNT_ID][REGION].archives[archive.name].events)


def _booking(n: int) -> ContractBooked:
    booked = examples.contract_booked()
    terms = booked.data.contract.model_copy(update={"contract_id": f"C-ARCH-{n}"})
    return booked.model_copy(
        update={"event_id": f"evt-arch-{n}", "data": booked.data.model_copy(update={"contract": terms})}
    )


@pytest.fixture
def archived(aws: AwsWorld) -> AwsWorld:
    events, ddb = aws.clients["events"], aws.clients["dynamodb"]
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]
    events.create_archive(
        ArchiveName="pssync-test-archive",
        EventSourceArn=bus_arn,
        EventPattern=json.dumps({"account": [DEFAULT_ACCOUNT_ID]}),
        RetentionDays=30,
    )
    ddb.create_table(
        TableName=AUDIT_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # Three bookings an hour apart, as the ingest publishes them (source, detail-type, the canonical event).
    events.put_events(
        Entries=[
            {
                "Source": "pssync.ingest",
                "DetailType": "ContractBooked",
                "Detail": _booking(n).model_dump_json(),
                "EventBusName": BUS,
                "Time": T0 + timedelta(hours=n),
            }
            for n in range(3)
        ]
    )
    return aws


def _apply_delivered(aws: AwsWorld) -> list[dict[str, Any]]:
    """The workflow's first step for every booking the rule delivered: what a starter would run."""
    results = []
    for message in aws.captured():
        results.append(load_handler("record_contract_version")({"event": message["detail"]}, context()))
    return results


def _business(aws: AwsWorld) -> list[dict[str, Any]]:
    items = aws.clients["dynamodb"].scan(TableName="business")["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _replay(aws: AwsWorld, window: ReplayWindow, method: ReplayMethod) -> Any:
    events = aws.clients["events"]
    return audited_archive_replay(
        events,
        ReplayAuditLog(AUDIT_TABLE, aws.clients["dynamodb"]),
        CALLER,
        find_archive(events, BUS),
        window,
        method=method,
        archived=MotoArchive(),
    )


def test_replaying_an_applied_window_changes_nothing_and_is_audited(archived: AwsWorld) -> None:
    first = _apply_delivered(archived)
    assert [r["newly_recorded"] for r in first] == [True, True, True]
    applied = _business(archived)

    # The window holds the second and third bookings only.
    window = ReplayWindow(T0 + timedelta(minutes=30), T0 + timedelta(hours=3))
    run = _replay(archived, window, ReplayMethod.RE_PUT)
    assert sorted(m.event_id or "" for m in run.messages) == ["evt-arch-1", "evt-arch-2"]
    assert {m.outcome for m in run.messages} == {MessageOutcome.REPLAYED}
    again = _apply_delivered(archived)
    assert [(r["contract_id"], r["newly_recorded"]) for r in again] == [
        ("C-ARCH-1", False),
        ("C-ARCH-2", False),
    ]
    assert _business(archived) == applied

    # A second replay of the same window finds the same two events, not the copies the first one archived.
    second = _replay(archived, window, ReplayMethod.RE_PUT)
    assert sorted(m.event_id or "" for m in second.messages) == ["evt-arch-1", "evt-arch-2"]
    assert len(_apply_delivered(archived)) == 2 and _business(archived) == applied

    history = ReplayAuditLog(AUDIT_TABLE, archived.clients["dynamodb"]).history()
    assert [(h.run_id, h.replay_kind, h.method, h.status, h.moved) for h in history] == [
        (second.run_id, "archive", "re-put", RunStatus.COMPLETED, 2),
        (run.run_id, "archive", "re-put", RunStatus.COMPLETED, 2),
    ]
    assert history[0].filters["from"] == "2026-11-29T10:30:00+00:00"


def test_start_replay_is_accepted_by_the_emulator_and_changes_nothing(archived: AwsWorld) -> None:
    _apply_delivered(archived)
    applied = _business(archived)
    events = archived.clients["events"]
    # A typed replay needs a rule that routes the type by name (the stack's rules all do).
    events.put_rule(
        Name="booked", EventBusName=BUS, EventPattern=json.dumps({"detail-type": ["ContractBooked"]})
    )
    queue_arn = archived.clients["sqs"].get_queue_attributes(
        QueueUrl=archived.capture_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    events.put_targets(Rule="booked", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    window = ReplayWindow(T0, T0 + timedelta(hours=3), frozenset({"ContractBooked"}))
    run = _replay(archived, window, ReplayMethod.START_REPLAY)
    assert run.status is RunStatus.COMPLETED and run.method == "start-replay"
    assert run.messages[0].detail == "COMPLETED"
    # moto replays every archived event to every rule whatever the window and FilterArns (why the local
    # runtime re-puts instead): each booking arrives through both rules, and still nothing changes.
    assert len(_apply_delivered(archived)) == 6
    assert _business(archived) == applied


def test_the_cli_replays_a_window_and_dry_runs_write_nothing(
    archived: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    _apply_delivered(archived)
    applied = _business(archived)
    monkeypatch.setattr(events_cli, "archived_events", MotoArchive)
    monkeypatch.setattr(events_cli, "_events_client", lambda: archived.clients["events"])
    base = ["replay", "--from", "2026-11-29", "--to", "2026-11-29", "--method", "re-put", "--bus", BUS]
    runner = CliRunner()
    dry = runner.invoke(events_cli.events_app, [*base, "--dry-run"], env={"COLUMNS": "200"})
    assert dry.exit_code == 0, dry.output
    assert "would re-put 3 archived events" in dry.output
    assert archived.captured() == []
    done = runner.invoke(events_cli.events_app, [*base, "--audit-table", AUDIT_TABLE], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "re-put 3 archived events onto pssync-test, errors 0" in done.output
    assert len(_apply_delivered(archived)) == 3 and _business(archived) == applied
    bad = runner.invoke(
        events_cli.events_app, [*base[:4], "2026-11-28", *base[5:], "--dry-run"], env={"COLUMNS": "300"}
    )
    assert bad.exit_code == 2 and "is not before" in bad.output


def test_the_local_reader_finds_the_archived_events_on_a_moto_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pssync events replay` reads from the local runtime's endpoint: moto's model dump over HTTP."""
    import boto3
    from moto.server import ThreadedMotoServer

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        events = boto3.client("events", region_name=REGION, endpoint_url=endpoint)
        bus_arn = events.create_event_bus(Name="pssync-local")["EventBusArn"]
        events.create_archive(
            ArchiveName="pssync-local-archive",
            EventSourceArn=bus_arn,
            EventPattern=json.dumps({"account": [DEFAULT_ACCOUNT_ID]}),
        )
        events.put_events(
            Entries=[
                {
                    "Source": "pssync.ingest",
                    "DetailType": "ContractBooked",
                    "Detail": _booking(7).model_dump_json(),
                    "EventBusName": "pssync-local",
                    "Time": T0,
                }
            ]
        )
        archive = find_archive(events, "pssync-local")
        (found,) = list(events_cli.MotoServerArchive(endpoint).events(archive))
        assert found["detail"]["event_id"] == "evt-arch-7" and found["detail-type"] == "ContractBooked"
        assert (
            events_cli.MotoServerArchive(endpoint).events(ArchiveInfo("other", "arn:other", bus_arn, 0)) == []
        )
    finally:
        server.stop()
