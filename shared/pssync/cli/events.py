"""`pssync events replay --from --to [--detail-type T]`: replay a window of the bus archive, audited.

On AWS, EventBridge StartReplay (the archive the stack creates on the bus, 30 days' retention); against the
local runtime (AWS_ENDPOINT_URL set), moto's StartReplay ignores the window and every rule's pattern, so the
archived events are read from the moto server (`/moto-api/data.json`) and put on the bus again. Either way
the run is recorded in the replay audit table (`pssync dlq history` lists it) and every workflow dedupes on
the business event id: what was applied before is a no-op.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pssync.ops.archive_replay import (
    ArchivedEvents,
    ArchiveInfo,
    NoSuchArchive,
    ReplayMethod,
    ReplayWindow,
    StartedReplay,
    UnroutedDetailType,
    archived_events_in_model_data,
    audited_archive_replay,
    find_archive,
    parse_instant,
    plan_reput,
)
from pssync.ops.dead_letters import MessageOutcome, ReplayedMessage

events_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="The canonical event bus: replay a window of its archive. Uses the standard AWS configuration; "
    "against the local runtime set AWS_ENDPOINT_URL to the moto endpoint `pssync local up` prints.",
)
console = Console()
BUS_PREFIX = "pssync-"


class MethodOption(StrEnum):
    AUTO = "auto"
    START_REPLAY = "start-replay"
    RE_PUT = "re-put"


@events_app.callback()
def _group() -> None:
    """The canonical event bus: replay a window of its archive."""
    # A callback keeps `replay` a subcommand even while it is the only one.


class MotoServerArchive:
    """The archived events of the local runtime's moto server, from its model dump (`/moto-api/data.json`:
    every model's JSON-able attributes). AWS has no such read; there StartReplay is used."""

    def __init__(self, endpoint: str, timeout: float = 60) -> None:
        self._url = endpoint.rstrip("/") + "/moto-api/data.json"
        self._timeout = timeout

    def events(self, archive: ArchiveInfo) -> Iterable[dict[str, Any]]:
        with urllib.request.urlopen(self._url, timeout=self._timeout) as response:  # noqa: S310 - the endpoint we were given
            document = json.loads(response.read())
        return list(archived_events_in_model_data(document, archive))


def archived_events() -> ArchivedEvents:
    """The local runtime's archive reader (a seam tests replace)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise typer.BadParameter("--method re-put reads the local runtime's archive: set AWS_ENDPOINT_URL")
    return MotoServerArchive(endpoint)


def _events_client() -> Any:
    from pssync import wiring

    return wiring.client("events")


def _bus(events: Any, named: str | None) -> str:
    if named:
        return named
    buses = [
        str(bus["Name"])
        for bus in events.list_event_buses(NamePrefix=BUS_PREFIX).get("EventBuses", [])
        if events.list_archives(EventSourceArn=bus["Arn"]).get("Archives")
    ]
    if len(buses) != 1:
        console.print(
            f"[red]cannot tell which bus to replay (archived buses: {', '.join(buses) or 'none'}); "
            "name it with --bus[/]"
        )
        raise typer.Exit(2)
    return buses[0]


def _audit_log(table: str | None, near: str) -> Any:
    from pssync import wiring
    from pssync.ops.audit import ReplayAuditLog, find_audit_table

    dynamodb = wiring.client("dynamodb")
    try:
        name = table or find_audit_table(dynamodb, near)
    except LookupError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    return ReplayAuditLog(name, dynamodb)


def _method(requested: MethodOption) -> ReplayMethod:
    if requested is MethodOption.AUTO:
        # An endpoint override is the local runtime (or another emulator): its StartReplay cannot be trusted.
        return ReplayMethod.RE_PUT if os.environ.get("AWS_ENDPOINT_URL") else ReplayMethod.START_REPLAY
    return ReplayMethod(requested.value)


def _window(start: str, end: str, detail_types: list[str] | None) -> ReplayWindow:
    try:
        return ReplayWindow(
            parse_instant(start, end_of_day=False),
            parse_instant(end, end_of_day=True),
            frozenset(detail_types or ()),
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@events_app.command("replay")
def replay_command(
    start: Annotated[
        str,
        typer.Option("--from", help="First instant replayed: an ISO instant (UTC unless it says) or a date"),
    ],
    end: Annotated[
        str, typer.Option("--to", help="Replay events before this instant; a date means the end of that day")
    ],
    detail_type: Annotated[
        list[str] | None,
        typer.Option("--detail-type", help="Only events of this type, e.g. ContractBooked (repeatable)"),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(envvar="PSSYNC_EVENT_BUS", help="The bus (pssync-<stage>); found when omitted"),
    ] = None,
    archive: Annotated[str | None, typer.Option(help="The archive, when the bus has several")] = None,
    method: Annotated[
        MethodOption,
        typer.Option(help="auto: re-put when AWS_ENDPOINT_URL is set (the local runtime), else start-replay"),
    ] = MethodOption.AUTO,
    rate: Annotated[
        float | None, typer.Option(min=0.01, max=1000, help="re-put: at most this many events per second")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would replay: nothing is sent or recorded")] = False,
    audit_table: Annotated[
        str | None,
        typer.Option(
            "--audit-table",
            envvar="PSSYNC_REPLAY_AUDIT_TABLE",
            help="The replay audit table (stack output ReplayAuditTableName); found by name when omitted",
        ),
    ] = None,
) -> None:
    """Replay the archived events from --from to --to (optionally of some types) onto the bus.

    Safe to repeat: every workflow dedupes on the business event id, so events already applied change
    nothing. Every run except a dry run is recorded in the replay audit log (`pssync dlq history`).
    """
    from pssync import wiring
    from pssync.ops.audit import caller_identity
    from pssync.ops.selection import RateLimiter

    window = _window(start, end, detail_type)
    events = _events_client()
    bus_name = _bus(events, bus)
    try:
        found = find_archive(events, bus_name, archive)
    except NoSuchArchive as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    chosen = _method(method)
    reader = archived_events() if chosen is ReplayMethod.RE_PUT else None
    if dry_run:
        _dry_run(events, found, window, chosen, reader)
        return
    audit = _audit_log(audit_table, bus_name)
    caller = caller_identity(wiring.client("sts"))
    limiter = None if rate is None else RateLimiter(rate, time.monotonic, time.sleep)
    counts: Counter[str] = Counter()

    def progressed(message: ReplayedMessage) -> None:
        counts[message.outcome.value] += 1

    def replay_state(state: StartedReplay) -> None:
        console.print(f"replay {state.name}: {state.state}" + (f" ({state.reason})" if state.reason else ""))

    try:
        with console.status(f"replaying {found.name} by {chosen.value}"):
            run = audited_archive_replay(
                events,
                audit,
                caller,
                found,
                window,
                method=chosen,
                archived=reader,
                limiter=limiter,
                progress=progressed,
                replay_progress=replay_state,
            )
    except (UnroutedDetailType, ValueError) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    replayed = run.count(MessageOutcome.REPLAYED)
    errors = run.count(MessageOutcome.ERROR)
    if chosen is ReplayMethod.RE_PUT:
        console.print(f"re-put {replayed} archived events onto {found.bus_name}, errors {errors}")
    else:
        console.print(f"StartReplay {run.messages[0].message_id}: {run.messages[0].detail}")
    for message in run.messages:
        if message.outcome is MessageOutcome.ERROR:
            console.print(f"[yellow]not replayed[/] {message.message_id}: {message.detail}")
    console.print(f"recorded as replay run {run.run_id} by {run.caller.arn} ({run.status.value})")
    if errors:
        raise typer.Exit(1)


def _dry_run(
    events: Any, found: ArchiveInfo, window: ReplayWindow, chosen: ReplayMethod, reader: ArchivedEvents | None
) -> None:
    if chosen is ReplayMethod.START_REPLAY:
        from pssync.ops.archive_replay import bus_rules, filter_rules

        targets = (
            filter_rules(bus_rules(events, found.bus_name), window.detail_types)
            if window.detail_types
            else ["every rule on the bus"]
        )
        console.print(
            f"would StartReplay {found.arn} from {window.start.isoformat()} to {window.end.isoformat()} "
            f"onto {found.bus_arn}, to: {', '.join(targets)}"
        )
        return
    assert reader is not None
    planned = plan_reput(reader.events(found), window, found.bus_name)
    console.print(f"would re-put {len(planned)} archived events from {found.name} (nothing sent)")
    table = Table()
    for column in ("detail-type", "events"):
        table.add_column(column)
    for detail_type, count in sorted(Counter(str(p.entry["DetailType"]) for p in planned).items()):
        table.add_row(detail_type, str(count))
    console.print(table)
    if planned:
        console.print(f"first {planned[0].at.isoformat()}, last {planned[-1].at.isoformat()}")
