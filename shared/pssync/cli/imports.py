"""`pssync import contracts FILE [--apply]`: onboard contracts already in flight (`pssync.ops.onboarding`).

Dry run by default: every row is validated and reported (the field at fault for each rejected row), nothing
is written. With --apply the valid rows are recorded as version 1 with their history so far; the PSA and
the ERP are not called. Against the local runtime set AWS_ENDPOINT_URL to the moto endpoint `pssync local
up` prints; on AWS the standard credential chain is used (DynamoDB Query/GetItem/PutItem/TransactWriteItems
on the business table, PutItem on the delivery log).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pssync.cli.contract import (
    BUSINESS_TABLE_FRAGMENT,
    DELIVERY_LOG_TABLE_FRAGMENT,
    BusinessTableOption,
    DeliveryLogTableOption,
    FormatOption,
    OutputFormat,
    _dynamodb,
    _table,
)
from pssync.ops.onboarding import ImportReport, RowOutcome, UnreadableFile, import_contracts

import_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Onboard records that exist before pssync: contracts already in flight.",
)
console = Console()


@import_app.callback()
def _group() -> None:
    """Onboard records that exist before pssync: contracts already in flight."""
    # A callback keeps `contracts` a subcommand even while it is the only one.


@import_app.command("contracts")
def import_contracts_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="A .json list of rows ({contract, history, closed_won_at?}) or a .csv with the columns "
            "contract (the canonical terms as JSON), as_of, billed_to_date, recognised_to_date, "
            "collected_to_date (plain decimals in the contract's currency) and closed_won_at (optional)",
        ),
    ],
    apply: Annotated[
        bool, typer.Option("--apply", help="Record the valid rows (default: a dry run that writes nothing)")
    ] = False,
    output: FormatOption = OutputFormat.TABLE,
    business_table: BusinessTableOption = None,
    delivery_log_table: DeliveryLogTableOption = None,
) -> None:
    """Validate every row and report it; with --apply record each valid row as contract version 1 with its
    billed, recognised and collected to date and the opening balance they imply, and mark the PSA project
    and ERP billing schedule as already held at version 1. Importing the same file again changes nothing;
    a changed row for a contract already recorded is refused, never overwritten. Exits 1 when any row was
    rejected or refused."""
    from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore

    text = file.read_text(encoding="utf-8")
    dynamodb = _dynamodb()
    business = _table(dynamodb, business_table, BUSINESS_TABLE_FRAGMENT, delivery_log_table or "")
    log = _table(dynamodb, delivery_log_table, DELIVERY_LOG_TABLE_FRAGMENT, business)
    try:
        report = import_contracts(
            file.name,
            text,
            DynamoDBVersionStore(business, dynamodb),
            DynamoDBDeliveryLog(log, dynamodb),
            datetime.now(UTC),
            apply=apply,
        )
    except UnreadableFile as error:
        console.print(f"[red]{file}: {error}[/]")
        raise typer.Exit(2) from None
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        _render(report)
    if not report.ok:
        raise typer.Exit(1)


def _render(report: ImportReport) -> None:
    table = Table(title=f"{report.file}: {'applied' if report.applied else 'dry run (nothing written)'}")
    for column in (
        "row",
        "contract",
        "outcome",
        "receivable",
        "contract asset",
        "contract liability",
        "notes",
    ):
        table.add_column(column, overflow="fold")
    for row in report.rows:
        balances = row.balances
        notes = [f"{p.field}: {p.message}" for p in row.problems] + row.warnings
        if row.written:
            notes.append("wrote " + ", ".join(row.written))
        table.add_row(
            str(row.row),
            row.contract_id or "?",
            row.outcome.value,
            "" if balances is None else str(balances.receivable),
            "" if balances is None else str(balances.contract_asset),
            "" if balances is None else str(balances.contract_liability),
            "\n".join(notes),
        )
    console.print(table)
    counts = ", ".join(f"{report.count(o)} {o.value}" for o in RowOutcome if report.count(o))
    console.print(counts)
    if not report.applied and report.count(RowOutcome.WOULD_IMPORT):
        console.print("dry run: run again with --apply to record the rows marked would-import")
