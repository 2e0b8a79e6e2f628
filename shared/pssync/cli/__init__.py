"""The `pssync` command: local runtime, demo, schemas, dead-letter queues, contracts, close, revenue runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pssync.cli.close import close_app
from pssync.cli.contract import contract_app
from pssync.cli.events import events_app
from pssync.cli.imports import import_app
from pssync.cli.reconcile import reconcile_command
from pssync.cli.report import report_command
from pssync.revenue.cli import revrec_app

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="pssync: CRM / PSA / ERP / revenue sync, governed.",
)
local_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="The embedded local runtime (moto, no AWS account).",
)
schemas_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Event schemas and samples generated from the models.",
)
app.add_typer(local_app, name="local")
app.add_typer(schemas_app, name="schemas")
dlq_app = typer.Typer(
    no_args_is_help=True,
    help="Dead-letter stores: list, peek, replay. Uses the standard AWS configuration; against the local "
    "runtime set AWS_ENDPOINT_URL to the moto endpoint `pssync local up` prints.",
)
app.add_typer(dlq_app, name="dlq")
app.add_typer(contract_app, name="contract")
app.add_typer(close_app, name="close")
app.add_typer(events_app, name="events")
app.add_typer(import_app, name="import")
app.command("reconcile")(reconcile_command)
app.command("report")(report_command)
console = Console()


def _root() -> Path:
    from pssync.local.template import find_project_root

    return find_project_root()


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="Port of the webhook API on 127.0.0.1")] = 8787,
    stand_ins: Annotated[
        bool,
        typer.Option(
            "--stand-ins",
            help="Start the vendor stand-ins (test equipment: NetSuite, Kantata OX) and run the ERP and "
            "the PSA live against them",
        ),
    ] = False,
) -> None:
    """Serve POST /webhooks/{source} on 127.0.0.1 until interrupted."""
    from pssync.local.runtime import LocalRuntime

    with LocalRuntime(_root(), api_port=port, stand_ins=stand_ins) as runtime:
        console.print(f"webhook API: [bold]{runtime.api.url}/webhooks/{{source}}[/]")
        console.print(f"AWS endpoint (moto): {runtime.moto_url}   signing secrets: {runtime.secrets_file}")
        for route in runtime.resources.routes:
            console.print(f"  {route.method} {route.path} -> {route.function_name}")
        targets = {"netsuite": "ERP", "kantata": "PSA"}
        for vendor, url in runtime.stand_in_urls.items():
            console.print(
                f"{vendor} stand-in (test equipment, not {vendor}): {url}; {targets[vendor]} target: live"
            )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("stopping")


@app.command()
def demo(
    report: Annotated[Path, typer.Option(help="Where to write the JSON report")] = Path(
        "build/demo/report.json"
    ),
    targets: Annotated[
        str,
        typer.Option(
            help="shadow: record PSA/ERP commands only; live: the ERP writes to the NetSuite stand-in and "
            "the PSA to the Kantata OX stand-in (test equipment), which must end holding exactly what the "
            "delivery log says was delivered"
        ),
    ] = "shadow",
) -> None:
    """Play a quarter of a multi-country engagement over signed webhooks on the local runtime: bookings,
    time, expenses, milestones, a change order, invoices, payments and three month-end closes."""
    from pssync.local.demo import DEMO_CONTEXT, print_report, problems, run_demo, write_report
    from pssync.local.runtime import LocalRuntime

    if targets not in ("shadow", "live"):
        raise typer.BadParameter("use shadow or live", param_hint="--targets")
    root = _root()
    started = time.monotonic()
    with (
        console.status("synthesizing the CDK app and starting the local runtime"),
        LocalRuntime(root, context=DEMO_CONTEXT, stand_ins=targets == "live") as runtime,
    ):
        console.print(f"local runtime up in {time.monotonic() - started:.1f} s at {runtime.api.url}")
        result = run_demo(runtime, log=console.print)
    write_report(result, root / report)
    print_report(result, console)
    console.print(f"\nreport written to {report} ({time.monotonic() - started:.1f} s in all)")
    found = problems(result)
    for problem in found:
        console.print(f"[red]{problem}[/]")
    if found:
        raise typer.Exit(1)


@schemas_app.command("write")
def schemas_write() -> None:
    """Regenerate events/schemas and events/samples from the models."""
    from pssync import schemas

    for path in schemas.write(_root() / "events"):
        console.print(f"wrote {path}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when the checked-in schemas or samples drift from the models."""
    from pssync import schemas

    drifted = schemas.drift(_root() / "events")
    if drifted:
        for path in drifted:
            console.print(f"[red]drift[/]: events/{path}")
        raise typer.Exit(1)
    console.print("schemas and samples match the models")


def _dead_letter_ops() -> Any:
    import boto3

    from pssync.ops.dead_letters import DeadLetterOps

    return DeadLetterOps(boto3.client("sqs"), boto3.client("events"))


@dlq_app.command("list")
def dlq_list(prefix: Annotated[str, typer.Option(help="Queue name prefix")] = "") -> None:
    """Every dead-letter store with its depth and where a replay sends its messages."""
    table = Table(title="Dead-letter stores")
    for col in ("queue", "replay kind", "replay target", "depth"):
        table.add_column(col)
    for store in _dead_letter_ops().stores(prefix):
        table.add_row(
            store.name, store.kind.value, store.target or "(workflow inbox by tag)", str(store.depth)
        )
    console.print(table)


@dlq_app.command("show")
def dlq_show(
    queue: Annotated[str, typer.Argument(help="Queue name or URL")],
    limit: Annotated[int, typer.Option(help="How many messages to show")] = 10,
) -> None:
    """Peek at messages without consuming them."""
    ops = _dead_letter_ops()
    table = Table(title=f"{queue}: first {limit} messages")
    for col in ("event id", "type", "contract / record", "failed step", "attempt", "cause"):
        table.add_column(col)
    for m in ops.peek(ops.store(queue), limit):
        table.add_row(
            m.event_id or "?",
            m.event_type or "?",
            m.contract_id or "",
            m.failed_step or "",
            "" if m.attempt is None else str(m.attempt),
            m.error or "(no cause recorded: the function crashed or timed out; see its log)",
        )
    console.print(table)


AuditTableOption = Annotated[
    str | None,
    typer.Option(
        "--audit-table",
        envvar="PSSYNC_REPLAY_AUDIT_TABLE",
        help="The replay audit table (stack output ReplayAuditTableName); found by name when omitted",
    ),
]


def _audit_log(table: str | None, near: str = "") -> Any:
    import boto3

    from pssync.ops.audit import ReplayAuditLog, find_audit_table

    dynamodb = boto3.client("dynamodb")
    try:
        name = table or find_audit_table(dynamodb, near)
    except LookupError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    return ReplayAuditLog(name, dynamodb)


def _age(value: str | None) -> Any:
    from pssync.ops.selection import parse_age

    if value is None:
        return None
    try:
        return parse_age(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@dlq_app.command("replay")
def dlq_replay(
    queue: Annotated[str, typer.Argument(help="Queue name or URL")],
    limit: Annotated[int | None, typer.Option(min=1, help="Replay at most this many messages")] = None,
    dry_run: Annotated[bool, typer.Option(help="Plan only: nothing is sent, deleted or recorded")] = False,
    cause: Annotated[
        list[str] | None,
        typer.Option(help="Only messages failed with this error type or reason code (repeatable)"),
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="Only events from this source name or system (repeatable)")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option(help="Only events of this type, e.g. ContractBooked (repeatable)")
    ] = None,
    event_id: Annotated[
        list[str] | None, typer.Option(help="Only the event with this business event id (repeatable)")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Only messages enqueued at least this long ago: 30m, 2h, 1d")
    ] = None,
    newer_than: Annotated[
        str | None, typer.Option(help="Only messages enqueued at most this long ago: 30m, 2h, 1d")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0.01, max=1000, help="At most this many messages per second")
    ] = None,
    audit_table: AuditTableOption = None,
    method: Annotated[
        str,
        typer.Option(
            help="auto: an SQS move task for a redrive DLQ replayed whole on AWS, else the receive loop; "
            "or move-task / receive-loop"
        ),
    ] = "auto",
) -> None:
    """Send dead-lettered messages back; safe to repeat (everything downstream dedupes on the event id).

    Messages the filters do not take stay in the store, unchanged, visible again when the run ends.
    On AWS a redrive DLQ replayed whole (no filter, no limit) moves by SQS StartMessageMoveTask.
    Every run except a dry run is recorded (who, when, filters, each message's outcome):
    `pssync dlq history`.
    """
    import os

    import boto3
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pssync.ops.audit import caller_identity
    from pssync.ops.dead_letters import MessageOutcome, ReplayedMessage, ReplayOutcome
    from pssync.ops.message_move import (
        MessageMover,
        MethodRequest,
        MoveTaskNotApplicable,
        audited_redrive,
    )
    from pssync.ops.selection import RateLimiter, ReplayFilter

    try:
        requested = MethodRequest(method)
    except ValueError:
        raise typer.BadParameter(f"--method {method!r}: use auto, move-task or receive-loop") from None

    selection = ReplayFilter(
        causes=frozenset(cause or ()),
        sources=frozenset(source or ()),
        event_types=frozenset(event_type or ()),
        event_ids=frozenset(event_id or ()),
        older_than=_age(older_than),
        newer_than=_age(newer_than),
    )
    limiter = None if rate is None else RateLimiter(rate, time.monotonic, time.sleep)
    ops = _dead_letter_ops()
    store = ops.store(queue)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[taken]} taken"),
        TimeElapsedColumn(),
    )
    run = None
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{store.name}", total=store.depth or None, taken=0)
        taken = 0

        def advance(message: ReplayedMessage | None) -> None:
            nonlocal taken
            taken += message is not None
            progress.update(task, advance=1, taken=taken)

        if dry_run:
            outcome: ReplayOutcome = ops.replay(
                store, selection=selection, limit=limit, dry_run=True, progress=advance
            )
        else:
            audit = _audit_log(audit_table, store.name)
            caller = caller_identity(boto3.client("sts"))

            def moved(count: int, total: int | None) -> None:
                progress.update(task, completed=count, total=total, taken=count)

            try:
                redriven = audited_redrive(
                    ops,
                    MessageMover(boto3.client("sqs")),
                    audit,
                    caller,
                    store,
                    # An endpoint override is the local runtime: moto has no StartMessageMoveTask.
                    move_task_available=not os.environ.get("AWS_ENDPOINT_URL"),
                    requested=requested,
                    selection=selection,
                    limit=limit,
                    limiter=limiter,
                    progress=advance,
                    move_progress=moved,
                )
            except MoveTaskNotApplicable as refused:
                console.print(f"[red]{refused}[/]")
                raise typer.Exit(2) from None
            run = redriven.run
            if redriven.move is not None:
                result = redriven.move
                console.print(
                    f"SQS move task {result.task_handle}: {result.status}, moved {result.moved}"
                    + (f" of {result.to_move}" if result.to_move is not None else "")
                    + (f" ({result.failure})" if result.failure else "")
                )
                if run is not None:
                    console.print(f"recorded as replay run {run.run_id} by {run.caller.arn}")
                if result.status != "COMPLETED":
                    raise typer.Exit(1)
                return
            assert redriven.loop is not None
            outcome = redriven.loop
            console.print(f"receive loop: {redriven.choice.reason}")
    verb = "would replay" if dry_run else "replayed"
    console.print(
        f"{verb} {outcome.replayed}, skipped {outcome.skipped}, "
        f"errors {outcome.count(MessageOutcome.ERROR)}, left {outcome.left} (not selected)"
    )
    for error in outcome.errors:
        console.print(f"[yellow]not replayed[/] {error}")
    if run is not None:
        console.print(f"recorded as replay run {run.run_id} by {run.caller.arn}")
    if outcome.errors:
        raise typer.Exit(1)


@dlq_app.command("history")
def dlq_history(
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first")] = 20,
    run: Annotated[str | None, typer.Option(help="Show every message of this run")] = None,
    audit_table: AuditTableOption = None,
) -> None:
    """The replay audit log: who replayed what, when, with which filters, and what came of it."""
    from pssync.ops.dead_letters import MessageOutcome

    audit = _audit_log(audit_table)
    if run is not None:
        try:
            found = audit.run(run)
        except KeyError as error:
            console.print(f"[red]{error.args[0]}[/]")
            raise typer.Exit(1) from None
        table = Table(title=f"Replay run {found.run_id}: {found.store} by {found.caller.arn}")
        for col in ("message id", "event id", "outcome", "detail"):
            table.add_column(col, overflow="fold")
        for message in found.messages:
            table.add_row(message.message_id, message.event_id or "?", message.outcome.value, message.detail)
        console.print(table)
        return
    table = Table(title=f"Replay runs (latest {limit}) in {audit.table_name}")
    columns = ("started (UTC)", "run", "who", "store", "filters", "replayed", "skipped", "errors", "left")
    for col in (*columns, "status", "event ids"):
        table.add_column(col, overflow="fold")  # an audit trail is never cut short with an ellipsis
    for entry in audit.history(limit):
        ids = entry.event_ids
        table.add_row(
            entry.started_at[:19].replace("T", " "),
            entry.run_id,
            entry.caller.arn,
            f"{entry.store} ({entry.method})",  # receive-loop, move-task, start-replay or re-put
            json.dumps(entry.filters, separators=(",", ":")) if entry.filters else "(all)",
            str(entry.count(MessageOutcome.REPLAYED)),
            str(entry.count(MessageOutcome.SKIPPED)),
            str(entry.count(MessageOutcome.ERROR)),
            str(entry.left),
            entry.status.value + (f": {entry.failure}" if entry.failure else ""),
            ", ".join(ids[:5]) + (f" (+{len(ids) - 5}: --run {entry.run_id})" if len(ids) > 5 else ""),
        )
    console.print(table)


app.add_typer(revrec_app, name="revrec", help="Revenue recognition (ASC 606 / IFRS 15) runs.")


def main() -> None:
    app(prog_name="pssync")


if __name__ == "__main__":
    main()
