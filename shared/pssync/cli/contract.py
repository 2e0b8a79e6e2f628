"""`pssync contract show` and `pssync contract explain`: one contract as pssync knew it, on the local runtime
(AWS_ENDPOINT_URL = the moto endpoint `pssync local up` prints) or a deployed stack (the standard AWS
credential chain). The views are built by `pssync.ops.contract_view`; this module finds the tables, reads
the delivery log and renders."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pssync.model.events import Lineage
from pssync.money import Money
from pssync.ops.contract_view import (
    PERIOD_FORMAT,
    ContractNotFound,
    ContractView,
    Cutoff,
    PeriodExplanation,
    explain,
    show,
)
from pssync.ops.reconcile import DeliveryLogScan
from pssync.revenue import RevenueRuleError
from pssync.workflows.amendment import ContractDiff

contract_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="One contract: its versions, what each system was told, revenue and balances, as known at a moment. "
    "Uses the standard AWS configuration; against the local runtime set AWS_ENDPOINT_URL to the moto "
    "endpoint `pssync local up` prints.",
)
console = Console()
# Fragments of the tables' names, locally (the logical id) and as CloudFormation names them
# (`<stack>-TablesBusinessTable<hash>-<suffix>`), as `pssync dlq` finds the replay audit table.
BUSINESS_TABLE_FRAGMENT = "BusinessTable"
DELIVERY_LOG_TABLE_FRAGMENT = "DeliveryLogTable"


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


BusinessTableOption = Annotated[
    str | None,
    typer.Option(
        "--business-table",
        envvar="PSSYNC_BUSINESS_TABLE",
        help="The business table (versions); found by name when omitted",
    ),
]
DeliveryLogTableOption = Annotated[
    str | None,
    typer.Option(
        "--delivery-log-table",
        envvar="PSSYNC_DELIVERY_LOG_TABLE",
        help="The delivery log table (commands to the PSA and ERP); found by name when omitted",
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Show what pssync had recorded by then: a date (the end of that day, UTC) or an ISO instant. "
        "A version or command counts by its recorded_at. Default: now",
    ),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table or json")]


# --- resources -----------------------------------------------------------------------------------------


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def find_table(dynamodb: Any, fragment: str, near: str = "") -> str:
    """The one table whose name holds `fragment`; with several stacks in an account, the one sharing the
    longest name prefix with `near` (CloudFormation starts every table's name with the stack name)."""
    names = [
        str(name)
        for page in dynamodb.get_paginator("list_tables").paginate()
        for name in page.get("TableNames", [])
        if fragment in name
    ]
    if len(names) > 1 and near:
        best = max(_shared_prefix(name, near) for name in names)
        names = [name for name in names if _shared_prefix(name, near) == best]
    if len(names) == 1:
        return names[0]
    found = "none" if not names else ", ".join(sorted(names))
    raise LookupError(f"cannot tell which table holds {fragment!r} (found: {found}); name it with an option")


def _dynamodb() -> Any:
    from pssync import wiring

    return wiring.client("dynamodb")  # AWS_ENDPOINT_URL and AWS_REGION as every pssync client reads them


def _table(dynamodb: Any, named: str | None, fragment: str, near: str = "") -> str:
    if named:
        return named
    try:
        return find_table(dynamodb, fragment, near)
    except LookupError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None


def _cutoff(as_of: str | None) -> Cutoff:
    try:
        return Cutoff.parse(as_of, datetime.now(UTC))
    except ValueError as error:
        raise typer.BadParameter(f"--as-of {as_of!r}: {error}") from None


def _print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


# --- show ----------------------------------------------------------------------------------------------


@contract_app.command("show")
def show_command(
    contract_id: Annotated[str, typer.Argument(help="The contract id, e.g. C-2027-0101")],
    as_of: AsOfOption = None,
    output: FormatOption = OutputFormat.TABLE,
    business_table: BusinessTableOption = None,
    delivery_log_table: DeliveryLogTableOption = None,
) -> None:
    """Versions, what each system was told, revenue schedule, ledgers and balances, as known at --as-of.

    Each contract version shows what changed, the event that caused it and its webhook (when recorded).
    """
    from pssync.adapters.aws import DynamoDBVersionStore

    cutoff = _cutoff(as_of)
    dynamodb = _dynamodb()
    business = _table(dynamodb, business_table, BUSINESS_TABLE_FRAGMENT, delivery_log_table or "")
    log = _table(dynamodb, delivery_log_table, DELIVERY_LOG_TABLE_FRAGMENT, business)
    try:
        view = show(
            DynamoDBVersionStore(business, dynamodb), DeliveryLogScan(log, dynamodb), contract_id, cutoff
        )
    except (ContractNotFound, RevenueRuleError) as error:  # not recorded, or the engine refuses its terms
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    if output is OutputFormat.JSON:
        _print_json(view.model_dump(mode="json"))
    else:
        _render_show(view)


def _money(value: Money | None) -> str:
    return "" if value is None else f"{value.amount} {value.currency}"


def _webhook(lineage: Lineage | None) -> str:
    return (
        "(not recorded)" if lineage is None else f"{lineage.raw_payload_ref} (delivery {lineage.delivery_id})"
    )


def _changes(diff: ContractDiff | None) -> str:
    if diff is None:
        return "booked"
    parts = []
    if diff.price_change.amount:
        parts.append(f"price {diff.price_change.amount:+} {diff.price_change.currency}")
    parts += [f"+{o}" for o in diff.added_obligations]
    parts += [f"-{o}" for o in diff.removed_obligations]
    parts += [f"~{o}" for o in diff.changed_obligations]
    flags = {"dates": diff.dates_changed, "billing": diff.billing_changed, "project": diff.project_changed}
    parts += [name for name, changed in flags.items() if changed]
    return ", ".join(parts) or "no contractual change"


def _summary(body: dict[str, Any]) -> str:
    """A ledger version's scalar facts, for the table; the JSON output carries the whole body."""
    return ", ".join(f"{k}={v}" for k, v in sorted(body.items()) if isinstance(v, str | int | float | bool))


def _render_show(view: ContractView) -> None:
    hidden = {k: v for k, v in view.hidden_after_as_of.items() if v}
    console.print(
        f"[bold]{view.contract_id}[/] as known at {view.as_of.isoformat()} ({view.decided_by})"
        + (f"; recorded later, hidden: {hidden}" if hidden else "")
    )
    table = Table(title="Contract versions")
    for col in ("v", "recorded at", "caused by event", "source version", "price", "changes", "webhook"):
        table.add_column(col, overflow="fold")
    for v in view.versions:
        table.add_row(
            str(v.version),
            v.recorded_at,
            v.caused_by_event_id,
            v.source_version or "",
            _money(v.transaction_price),
            _changes(v.changes) + (f" (effective {v.effective_date})" if v.effective_date else ""),
            _webhook(v.webhook),
        )
    console.print(table)

    table = Table(title="What each system was told (delivery log)")
    for col in ("recorded at", "target", "operation", "external id", "idempotency key", "caused by event"):
        table.add_column(col, overflow="fold")
    for c in view.deliveries:
        table.add_row(
            c.recorded_at, c.target, c.operation, c.external_id, c.idempotency_key, c.caused_by_event_id
        )
    console.print(table)

    table = Table(title="Revenue schedule versions")
    for col in ("v", "recorded at", "contract v", "total", "periods", "unscheduled", "caused by event"):
        table.add_column(col, overflow="fold")
    for s in view.revenue_schedule:
        table.add_row(
            str(s.version),
            s.recorded_at,
            str(s.contract_version),
            _money(s.total),
            f"{s.periods[0]}..{s.periods[-1]}" if s.periods else "",
            ", ".join(f"{o} {_money(m)}" for o, m in sorted(s.unscheduled.items())),
            s.caused_by_event_id,
        )
    console.print(table)
    head = view.revenue_schedule_head
    if head is not None:
        obligations = sorted(head.allocations.keys() | {line.obligation_id for line in head.lines})
        table = Table(title=f"Revenue schedule v{view.revenue_schedule[-1].version} ({head.currency})")
        table.add_column("period")
        for o in obligations:
            table.add_column(o, justify="right")
        by_period: dict[str, dict[str, str]] = {}
        for line in head.lines:
            by_period.setdefault(line.period, {})[line.obligation_id] = str(line.amount.amount)
        for period in sorted(by_period):
            table.add_row(period, *(by_period[period].get(o, "") for o in obligations))
        allocated = [str(head.allocations[o].amount) if o in head.allocations else "" for o in obligations]
        table.add_row("allocated", *allocated, style="bold")
        console.print(table)

    for ledger in view.ledgers:
        table = Table(title=f"Ledger {ledger.aggregate}")
        for col in ("v", "recorded at", "caused by event", "facts"):
            table.add_column(col, overflow="fold")
        for lv in ledger.versions:
            table.add_row(str(lv.version), lv.recorded_at, lv.caused_by_event_id, _summary(lv.body))
        console.print(table)

    b = view.balances
    table = Table(title=f"Balances on {b.measured_on} ({b.currency})")
    for col in (
        "recognised to date",
        "billed",
        "collected",
        "receivable",
        "contract asset",
        "contract liability",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        str(b.recognised_to_date.amount),
        str(b.billed.amount),
        "(no receivables ledger)" if b.collected is None else str(b.collected.amount),
        str(b.receivable.amount),
        str(b.contract_asset.amount),
        str(b.contract_liability.amount),
    )
    console.print(table)
    console.print(b.basis)


# --- explain -------------------------------------------------------------------------------------------


@contract_app.command("explain")
def explain_command(
    contract_id: Annotated[str, typer.Argument(help="The contract id")],
    period: Annotated[str, typer.Option("--period", help="YYYY-MM (or the 4-4-5 period label)")],
    as_of: AsOfOption = None,
    output: FormatOption = OutputFormat.TABLE,
    business_table: BusinessTableOption = None,
) -> None:
    """One period's revenue walked back to the facts, events and webhooks behind it.

    Each schedule line -> its obligation, allocation and method -> the contract version and the delivery
    facts that drive it -> their canonical events -> their webhooks (when recorded).
    """
    from pssync.adapters.aws import DynamoDBVersionStore

    if not PERIOD_FORMAT.match(period):
        raise typer.BadParameter(f"--period {period!r}: expected YYYY-MM or a 4-4-5 label like FY2027-P03")
    cutoff = _cutoff(as_of)
    dynamodb = _dynamodb()
    business = _table(dynamodb, business_table, BUSINESS_TABLE_FRAGMENT)
    try:
        explained = explain(DynamoDBVersionStore(business, dynamodb), contract_id, period, cutoff)
    except (ContractNotFound, RevenueRuleError) as error:  # not recorded, or the engine refuses its terms
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    if output is OutputFormat.JSON:
        _print_json(explained.model_dump(mode="json"))
    else:
        _render_explain(explained)


def _render_explain(e: PeriodExplanation) -> None:
    console.print(
        f"[bold]{e.contract_id} {e.period}[/]: {_money(e.total)} in revenue schedule v{e.schedule_version} "
        f"(recorded {e.schedule_recorded_at}, caused by event {e.schedule_caused_by.event_id}); "
        f"as known at {e.as_of.isoformat()}"
    )
    if not e.lines:
        console.print("no revenue in this period")
        return
    table = Table(title="Schedule lines")
    columns = (
        "obligation",
        "amount",
        "method",
        "allocated",
        "engine inputs",
        "recomputed",
        "contract version",
    )
    for col in columns:
        table.add_column(col, overflow="fold")
    for line in e.lines:
        table.add_row(
            f"{line.obligation_id}: {line.description}",
            _money(line.amount),
            f"{line.method} ({json.dumps(line.recognition, sort_keys=True)})",
            _money(line.allocated),
            line.inputs or "",
            _money(line.recomputed),
            f"v{line.contract_version} <- event {line.contract_event.event_id} <- "
            f"{_webhook(line.contract_event.webhook)}",
        )
    console.print(table)
    table = Table(title="Delivery facts behind the period")
    for col in ("obligation", "ledger", "fact", "on", "as recorded", "recorded at", "event", "webhook"):
        table.add_column(col, overflow="fold")
    for line in e.lines:
        for fact in line.facts:
            table.add_row(
                line.obligation_id,
                f"{fact.ledger} v{fact.ledger_version}" if fact.ledger else "(ledger not listed)",
                f"{fact.kind} {fact.fact_id}",
                fact.on.isoformat(),
                _summary(fact.recorded or {}) + " (engine: " + _summary(fact.detail) + ")",
                fact.recorded_at or "",
                fact.event.event_id if fact.event else "(not traced)",
                _webhook(fact.event.webhook if fact.event else None),
            )
    console.print(table)
