"""`pssync reconcile`: every engagement (or one) as the CRM, the PSA, the ERP and pssync's revenue engine
hold it, side by side, with each variance and its cause, as known at --as-of. Read-only: the scheduled
function (`functions/reconcile_portfolio`) is what raises exception records and metrics.

Against the local runtime set AWS_ENDPOINT_URL to the moto endpoint `pssync local up` prints; against a
deployed stack the standard AWS credential chain. Tables are found by name as `pssync contract` finds them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pssync.cli.contract import (
    BUSINESS_TABLE_FRAGMENT,
    DELIVERY_LOG_TABLE_FRAGMENT,
    AsOfOption,
    BusinessTableOption,
    DeliveryLogTableOption,
    FormatOption,
    OutputFormat,
    find_table,
)
from pssync.money import Money
from pssync.ops.contract_view import Cutoff
from pssync.ops.reconcile import (
    DeliveryLogScan,
    PortfolioReconciliation,
    ReconciliationTolerance,
    reconcile_portfolio,
)
from pssync.revenue import RevenueRuleError

console = Console()

ContractOption = Annotated[
    list[str] | None,
    typer.Option("--contract", help="Reconcile only this contract (repeatable); default: every contract"),
]
ToleranceOption = Annotated[
    str | None,
    typer.Option(
        "--tolerance",
        envvar="RECONCILIATION_TOLERANCE",
        help='Per currency, the largest monetary variance not flagged, as JSON: {"EUR": "5.00"}. '
        "Default 0.00 in every currency",
    ),
]


def reconcile_command(
    contract: ContractOption = None,
    as_of: AsOfOption = None,
    output: FormatOption = OutputFormat.TABLE,
    tolerance: ToleranceOption = None,
    business_table: BusinessTableOption = None,
    delivery_log_table: DeliveryLogTableOption = None,
) -> None:
    """Per engagement: CRM contract value, PSA budget, ERP billing schedule and invoiced to date, pssync's
    revenue schedule and balances, side by side, with the variances and their causes."""
    from pssync import wiring
    from pssync.adapters.aws import DynamoDBAggregateHeads, DynamoDBVersionStore
    from pssync.workflows.provision import CONTRACT

    try:
        cutoff = Cutoff.parse(as_of, datetime.now(UTC))
    except ValueError as error:
        raise typer.BadParameter(f"--as-of {as_of!r}: {error}") from None
    try:
        limits = ReconciliationTolerance.parse(tolerance)
    except ValueError as error:
        raise typer.BadParameter(f"--tolerance: {error}") from None
    dynamodb = wiring.client("dynamodb")
    try:
        business = business_table or find_table(dynamodb, BUSINESS_TABLE_FRAGMENT, delivery_log_table or "")
        log = delivery_log_table or find_table(dynamodb, DELIVERY_LOG_TABLE_FRAGMENT, business)
    except LookupError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    contract_ids = contract or [
        h.aggregate_id for h in DynamoDBAggregateHeads(business, dynamodb).heads(CONTRACT)
    ]
    try:
        portfolio = reconcile_portfolio(
            DynamoDBVersionStore(business, dynamodb),
            DeliveryLogScan(log, dynamodb).logged_commands(),
            contract_ids,
            cutoff,
            limits,
        )
    except RevenueRuleError as error:  # the engine refuses a contract's terms: name it, never a trace
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(_document(portfolio), indent=2, sort_keys=True))
    else:
        _render(portfolio)
    if contract and portfolio.not_reconciled:
        raise typer.Exit(1)  # a contract asked for by name and not found is an error, not an empty report


def _document(portfolio: PortfolioReconciliation) -> dict[str, Any]:
    document = portfolio.model_dump(mode="json")
    document["above_tolerance"] = [e.contract_id for e in portfolio.above_tolerance]
    return document


def _money(value: Money | None) -> str:
    return "" if value is None else f"{value.amount} {value.currency}"


def _version(value: int | None) -> str:
    return "none" if value is None else f"v{value}"


def _render(portfolio: PortfolioReconciliation) -> None:
    limits = ", ".join(f"{c} {a}" for c, a in sorted(portfolio.tolerance.items())) or "0.00 in every currency"
    console.print(
        f"[bold]Reconciliation[/] as known at {portfolio.as_of}, measured on {portfolio.measured_on}; "
        f"tolerance {limits}"
    )
    table = Table(title="Side by side (ERP figures are what pssync delivered to it)")
    for column in (
        "contract",
        "CRM value",
        "CRM / PSA / ERP / revenue versions",
        "PSA budget h",
        "ERP invoiced to date",
        "pssync expects billed",
        "recognised to date",
        "receivable / asset / liability",
        "variances",
    ):
        table.add_column(column, overflow="fold")
    for e in portfolio.engagements:
        flagged = len(e.above_tolerance)
        table.add_row(
            e.contract_id,
            _money(e.crm.contract_value),
            " / ".join(
                _version(v)
                for v in (
                    e.crm.contract_version,
                    e.psa.contract_version,
                    e.erp.billing_schedule_version,
                    e.pssync.revenue_schedule_contract_version,
                )
            ),
            f"{e.psa.budget_hours} (CRM {e.crm.budget_hours})",
            _money(e.erp.invoiced_to_date),
            _money(e.pssync.expected_billed_to_date),
            _money(e.pssync.recognised_to_date),
            " / ".join(
                _money(m) for m in (e.pssync.receivable, e.pssync.contract_asset, e.pssync.contract_liability)
            ),
            "none" if not e.variances else f"{len(e.variances)} ({flagged} above tolerance)",
        )
    console.print(table)

    variances = [(e.contract_id, v) for e in portfolio.engagements for v in e.variances]
    if variances:
        table = Table(title="Variances (amount: the ERP's minus pssync's)")
        for column in ("contract", "cause", "system", "pssync", "held", "amount", "flagged", "detail"):
            table.add_column(column, overflow="fold")
        for contract_id, v in variances:
            table.add_row(
                contract_id,
                v.cause.value,
                v.system,
                v.pssync,
                v.held,
                _money(v.amount),
                "[red]yes[/]" if v.above_tolerance else "within tolerance",
                v.detail,
            )
        console.print(table)
    else:
        console.print("[green]No variance.[/]")
    for contract_id, why in sorted(portfolio.not_reconciled.items()):
        console.print(f"[yellow]{contract_id} not reconciled: {why}[/]")


reconcile_app = typer.Typer(
    pretty_exceptions_enable=False,
    help="Reconcile engagements across the CRM, PSA, ERP and the revenue engine.",
)
reconcile_app.command("reconcile")(reconcile_command)
