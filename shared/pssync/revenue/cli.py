"""`pssync revrec ...`: run a revenue scenario file. The modules of the engine that touch files are this one
and stream.py (`--format csv|jsonl|parquet --out FILE`).

table / json output is rendered completely before anything is printed, and csv / jsonl / parquet files are
renamed into place only when every contract has run, so a failure never leaves partial output; bad input
exits with code 2 and a message naming the offending field.
"""

from __future__ import annotations

import io
import json
import time
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from pssync.revenue import (
    RevenueResult,
    RevenueRuleError,
    Scenario,
    parse_scenario,
    run_scenario,
    scenario_json_schema,
)
from pssync.revenue.output import ParquetUnavailable
from pssync.revenue.result import ContractCostLine, RollforwardLine, TerminationLine
from pssync.revenue.scenario_stream import ScenarioInvalid
from pssync.revenue.stream import available_cores, write_report

revrec_app = typer.Typer(help="Revenue recognition (ASC 606 / IFRS 15) from contract versions and events.")


# Each process holds ~60-100 MB of its own at 10,000 contracts: four keep a default run under the 400 MB
# issue 11 asks for on any machine; --workers asks for more.
DEFAULT_MAX_WORKERS = 4


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


_STREAMED = {OutputFormat.CSV, OutputFormat.JSONL, OutputFormat.PARQUET}


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(scenario)"


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code=2)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; exits with code 2 and a precise message when it is not valid."""
    try:
        document = path.read_bytes()
    except OSError as error:
        _fail(f"cannot read scenario {path}: {error.strerror}")
    try:
        # Amounts are JSON strings (or integers); a JSON float is refused by the money type, by name.
        return parse_scenario(document)
    except ValidationError as error:
        lines = [f"scenario {path} is invalid ({error.error_count()} error(s)):"]
        for detail in error.errors(include_url=False):
            lines.append(f"  {_field_path(tuple(detail['loc']))}: {detail['msg']}")
        _fail("\n".join(lines))
    raise AssertionError("unreachable")


def _render_table(result: RevenueResult) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, force_terminal=False, color_system=None)
    console.print(f"Revenue as of {result.as_of}")
    console.print(_allocation_table(result))
    if result.modifications():
        console.print(_modification_table(result))
    console.print(_schedule_table(result))
    console.print(_rpo_table(result))
    console.print(_balance_table(result))
    costs = result.contract_costs()
    if costs:
        console.print(_contract_cost_table(costs))
    terminations = result.terminations()
    if terminations:
        console.print(_termination_table(terminations))
    return buffer.getvalue()


def _render_json(result: RevenueResult) -> str:
    """The report; contract costs and terminations are added only when the scenario has them, so the output
    of every other scenario is what it was."""
    report = result.report().model_dump_json(indent=2)
    costs, terminations = result.contract_costs(), result.terminations()
    if not costs and not terminations:
        return report
    document = json.loads(report)
    if costs:
        document["contract_costs"] = [json.loads(line.model_dump_json()) for line in costs]
    if terminations:
        document["terminations"] = [json.loads(line.model_dump_json()) for line in terminations]
    return json.dumps(document, indent=2, ensure_ascii=False)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


def _allocation_table(result: RevenueResult) -> Table:
    table = _table("Allocation", "contract", "version", "obligation", "SSP", "allocated", "method")
    for allocated in result.allocations():
        table.add_row(
            allocated.contract_id,
            str(allocated.contract_version),
            allocated.obligation_id,
            "" if allocated.ssp is None else str(allocated.ssp),
            f"{allocated.allocated} {allocated.currency}",
            allocated.method,
        )
    return table


def _modification_table(result: RevenueResult) -> Table:
    table = _table("Modifications", "contract", "version", "effective", "treatment", "rationale")
    for m in result.modifications():
        table.add_row(m.contract_id, str(m.contract_version), str(m.effective_date), m.treatment, m.rationale)
    return table


def _schedule_table(result: RevenueResult) -> Table:
    statuses = {p.key: p.status for p in result.period_infos()}
    table = _table(
        "Revenue per period (closed / open / forecast)",
        "contract",
        "period",
        "status",
        "revenue",
        "of which adjustment",
    )
    for contract_id in result.contract_ids:
        outcome = result.contract(contract_id)
        adjustments: dict[str, Decimal] = {}
        for cell in result.schedule():
            if cell.contract_id == contract_id and cell.adjustment:
                adjustments[cell.period] = adjustments.get(cell.period, Decimal(0)) + cell.adjustment
        for period, amount in result.period_revenue(contract_id).items():
            if amount:
                table.add_row(
                    contract_id,
                    period,
                    statuses[period],
                    f"{amount} {outcome.currency}",
                    str(adjustments.get(period, "")),
                )
    return table


def _rpo_table(result: RevenueResult) -> Table:
    table = _table(
        "Remaining performance obligations",
        "contract",
        "obligation",
        "remaining",
        "<=12 months",
        "13-24 months",
        ">24 months",
        "unscheduled",
    )
    for r in result.rpo():
        table.add_row(
            r.contract_id,
            r.obligation_id,
            str(r.remaining),
            str(r.within_12_months),
            str(r.months_13_to_24),
            str(r.after_24_months),
            str(r.timing_not_scheduled),
        )
    return table


def _balance_table(result: RevenueResult) -> Table:
    """Closing balances of each accounting contract at its last movement. A terminated contract owes back
    what was received beyond revenue: a refund liability (IFRS 15.55), shown in place of a contract
    liability, since no goods or services remain to transfer for it (result/termination.py settlement)."""
    table = _table(
        "Contract balances (closing, as of)",
        "contract",
        "accounting contract",
        "period",
        "receivable",
        "contract asset",
        "contract liability",
        "refund liability",
    )
    # one settlement per accounting contract, or one for the whole contract when it settles net (then shown
    # on the contract's own row)
    terminations = result.terminations()
    refunds = {
        (line.contract_id, line.accounting_contract or line.contract_id): line.refund_liability
        for line in terminations
    }
    terminated = {line.contract_id for line in terminations}
    latest: dict[tuple[str, str], RollforwardLine] = {}
    for movement in result.rollforward():
        latest[(movement.contract_id, movement.accounting_contract or movement.contract_id)] = movement
    for (contract_id, accounting_contract), line in latest.items():
        refund = refunds.get((contract_id, accounting_contract))
        table.add_row(
            contract_id,
            accounting_contract,
            line.period,
            str(line.closing_receivable),
            str(line.closing_contract_asset),
            "-" if contract_id in terminated else str(line.closing_contract_liability),
            "" if refund is None else str(refund),
        )
    return table


def _contract_cost_table(costs: list[ContractCostLine]) -> Table:
    """Each contract cost asset at its last period up to as_of (the whole schedule is in --format json)."""
    table = _table(
        "Contract costs (IFRS 15.91-98, ASC 340-40)",
        "contract",
        "cost",
        "kind",
        "treatment",
        "period",
        "capitalised",
        "expensed",
        "amortisation",
        "impairment",
        "carrying amount",
    )
    latest: dict[tuple[str, str], ContractCostLine] = {}
    for line in costs:
        if line.status != "forecast":
            latest[(line.contract_id, line.cost_id)] = line
    for line in latest.values():
        table.add_row(
            line.contract_id,
            line.cost_id,
            line.kind,
            line.treatment,
            line.period,
            f"{line.capitalised} {line.currency}",
            str(line.expensed),
            str(line.amortisation),
            str(line.impairment),
            str(line.closing_carrying_amount),
        )
    return table


def _termination_table(terminations: list[TerminationLine]) -> Table:
    table = _table(
        "Terminations: settlement at as of",
        "contract",
        "accounting contract",
        "terminated",
        "revenue",
        "billed",
        "paid",
        "receivable kept",
        "still to invoice",
        "invoices to credit",
        "refund liability",
    )
    for t in terminations:
        table.add_row(
            t.contract_id,
            t.accounting_contract or ("net" if t.net_settlement_basis else ""),
            str(t.terminated_on),
            f"{t.revenue_recognised} {t.currency}",
            str(t.billed),
            str(t.paid),
            str(t.receivable_kept),
            str(t.still_to_invoice),
            str(t.invoices_to_credit),
            str(t.refund_liability),
        )
    return table


@revrec_app.command("run")
def run_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario JSON (schema: revrec-scenario.v1).")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Knowledge and reporting date.")
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table or json (printed); csv, jsonl or parquet: every schedule line, journal line and "
            "balance streamed contract by contract to --out FILE and FILE's .journals / .balances siblings.",
        ),
    ] = OutputFormat.TABLE,
    out: Annotated[
        Path | None, typer.Option("--out", help="Schedule file of csv / jsonl / parquet output.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="csv / jsonl: processes running contiguous shards of the contracts (the same bytes as one); "
            f"default: the cores available up to {DEFAULT_MAX_WORKERS}, one per 500 contracts at most.",
        ),
    ] = None,
) -> None:
    """Compute allocation, schedule, journals, waterfall, RPO and balances for a scenario."""
    as_of_day: date | None = as_of.date() if as_of else None
    if output_format in _STREAMED:
        if out is None:
            _fail(f"--format {output_format} writes files: give --out FILE")
        else:
            _stream(scenario, output_format, out, as_of_day, workers)
        return
    if out is not None:
        _fail(f"--out is for csv, jsonl or parquet output; --format {output_format} prints")
    loaded = load_scenario(scenario)
    try:
        result = run_scenario(loaded, as_of=as_of_day)
        rendered = _render_json(result) if output_format is OutputFormat.JSON else _render_table(result)
    except RevenueRuleError as error:
        _fail(f"revenue rule refused the scenario: {error}")
    typer.echo(rendered)


def _stream(
    scenario: Path, output_format: OutputFormat, out: Path, as_of: date | None, workers: int | None
) -> None:
    try:
        text = scenario.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read scenario {scenario}: {getattr(error, 'strerror', None) or error}")
    started = time.perf_counter()
    try:
        workers = workers or min(available_cores(), DEFAULT_MAX_WORKERS)
        summary = write_report(text, output_format.value, out, as_of, workers=workers)
    except ScenarioInvalid as error:
        lines = [f"scenario {scenario} is invalid ({len(error.problems)} error(s)):"]
        lines.extend(f"  {path}: {message}" for path, message in error.problems)
        _fail("\n".join(lines))
    except ValidationError as error:  # the whole-file parse, for a shape the pre-scan does not read
        lines = [f"scenario {scenario} is invalid ({error.error_count()} error(s)):"]
        for detail in error.errors(include_url=False):
            lines.append(f"  {_field_path(tuple(detail['loc']))}: {detail['msg']}")
        _fail("\n".join(lines))
    except json.JSONDecodeError as error:
        _fail(f"scenario {scenario} is not JSON: {error}")
    except RevenueRuleError as error:
        _fail(f"revenue rule refused the scenario: {error}")
    except (ParquetUnavailable, OSError) as error:
        _fail(str(error))
    else:
        elapsed = time.perf_counter() - started
        for kind, path in summary.paths.items():
            typer.echo(f"{kind}: {summary.rows[kind]} rows -> {path}", err=True)
        typer.echo(
            f"{summary.contracts} contracts in {elapsed:.1f} s ({summary.workers} process(es))", err=True
        )


@revrec_app.command("schema")
def schema_command() -> None:
    """Print the JSON schema of scenario files."""
    typer.echo(json.dumps(scenario_json_schema(), indent=2))
