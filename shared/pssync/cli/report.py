"""`pssync report --out FILE.html [--as-of DATE]`: the finance report as one self-contained HTML page, read
from the local runtime (AWS_ENDPOINT_URL = the moto endpoint `pssync local up` prints) or a deployed stack
(the standard AWS credential chain), through the same reads as `pssync contract show` (the business table,
found by name) and `pssync dlq list` (dead-letter stores, found by tag).

Register with `app.command("report")(report_command)` in `pssync.cli`; `report_app` runs it on its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pssync.cli.contract import (
    BUSINESS_TABLE_FRAGMENT,
    DELIVERY_LOG_TABLE_FRAGMENT,
    AsOfOption,
    BusinessTableOption,
    DeliveryLogTableOption,
    _cutoff,
    _dynamodb,
    _table,
)
from pssync.ops.finance_report.gather import build_report
from pssync.ops.finance_report.model import FinanceReport, OpenException
from pssync.ops.finance_report.reconciliation import NotReconciliationRows, rows_from_document
from pssync.ops.finance_report.render import render
from pssync.revenue import RevenueRuleError
from pssync.workflows.provision import CONTRACT

console = Console(stderr=True)


def reconciliation_rows(path: Path | None) -> list[dict[str, Any]] | None:
    """What `pssync reconcile --format json` wrote (or any JSON array of row objects); None when not given."""
    if path is None:
        return None
    try:
        return rows_from_document(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, NotReconciliationRows) as error:
        raise typer.BadParameter(f"--reconciliation {path}: {error}") from None


def _open_exceptions(queue_prefix: str, now: datetime) -> list[OpenException]:
    from pssync import wiring
    from pssync.ops.finance_report.exceptions import SqsOpenExceptions

    return SqsOpenExceptions(wiring.client("sqs"), wiring.client("events"), queue_prefix).read(now)


def report_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML page", dir_okay=False)],
    as_of: AsOfOption = None,
    business_table: BusinessTableOption = None,
    delivery_log_table: DeliveryLogTableOption = None,
    queue_prefix: Annotated[
        str, typer.Option(help="Only dead-letter stores whose queue name starts with this (as `dlq list`)")
    ] = "",
    exceptions: Annotated[
        bool, typer.Option(help="Read the open exceptions from the dead-letter stores (SQS)")
    ] = True,
    reconciliation: Annotated[
        Path | None,
        typer.Option(
            help="Reconciliation to show: what `pssync reconcile --format json` wrote, or a JSON array "
            "of row objects; without it the report reconciles the portfolio itself (as `pssync reconcile`)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """One self-contained HTML page: revenue waterfall by period and obligation, contract balances and their
    rollforward, RPO by timing band, the reconciliation, open exceptions with their age, business metrics.

    Every figure is the revenue engine's per contract as known at --as-of (as `pssync contract show`), added
    up per currency. Operators need dynamodb:ListTables, Scan/Query/GetItem on the business table, and
    sqs:ListQueues, ListQueueTags, GetQueueAttributes, ReceiveMessage, ChangeMessageVisibility.
    """
    from pssync.adapters.aws import DynamoDBAggregateHeads, DynamoDBVersionStore

    cutoff = _cutoff(as_of)
    rows = reconciliation_rows(reconciliation)
    dynamodb = _dynamodb()
    business = _table(dynamodb, business_table, BUSINESS_TABLE_FRAGMENT)
    now = datetime.now(UTC)
    contract_ids = [head.aggregate_id for head in DynamoDBAggregateHeads(business, dynamodb).heads(CONTRACT)]
    parked = _open_exceptions(queue_prefix, now) if exceptions else []
    if rows is None:
        rows = _reconciled(dynamodb, business, delivery_log_table, contract_ids, cutoff)
    try:
        report = build_report(
            DynamoDBVersionStore(business, dynamodb),
            contract_ids,
            cutoff,
            generated_at=now,
            exceptions=parked,
            reconciliation=rows,
        )
    except RevenueRuleError as error:  # per contract these are listed; anything left is the portfolio's
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report), encoding="utf-8")
    _summary(report, out)


def _reconciled(
    dynamodb: Any, business: str, delivery_log_table: str | None, contract_ids: list[str], cutoff: Any
) -> list[dict[str, Any]]:
    """The portfolio reconciled as `pssync reconcile` does (same reads, same causes), as the page's rows."""
    from pssync.adapters.aws import DynamoDBVersionStore
    from pssync.ops.reconcile import DeliveryLogScan, reconcile_portfolio

    log = _table(dynamodb, delivery_log_table, DELIVERY_LOG_TABLE_FRAGMENT, business)
    portfolio = reconcile_portfolio(
        DynamoDBVersionStore(business, dynamodb),
        DeliveryLogScan(log, dynamodb).logged_commands(),
        contract_ids,
        cutoff,
    )
    return rows_from_document(portfolio.model_dump(mode="json"))


def _summary(report: FinanceReport, out: Path) -> None:
    for section in report.sections:
        b = section.balances
        console.print(
            f"{section.currency}: {section.contracts} contract(s), recognised "
            f"{b.recognised_to_date.amount:,}, receivable {b.receivable.amount:,}, "
            f"asset {b.contract_asset.amount:,}, liability "
            f"{b.contract_liability.amount:,}, RPO {section.rpo.remaining.amount:,}"
        )
    if report.not_measured:
        console.print(f"[yellow]{len(report.not_measured)} contract(s) not measured: listed on the page[/]")
    console.print(f"{len(report.exceptions)} open exception(s); written to {out}")


report_app = typer.Typer(pretty_exceptions_enable=False, help="The finance report.")
report_app.command("report")(report_command)


if __name__ == "__main__":  # `python -m pssync.cli.report` until `pssync report` is registered
    report_app()
