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
from pssync.revenue.result import RollforwardLine
from pssync.revenue.scenario_stream import ScenarioInvalid
from pssync.revenue.stream import write_report

revrec_app = typer.Typer(help="Revenue recognition (ASC 606 / IFRS 15) from contract versions and events.")


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
    return buffer.getvalue()


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
    table = _table(
        "Contract balances (closing, as of)",
        "contract",
        "period",
        "receivable",
        "contract asset",
        "contract liability",
    )
    latest: dict[str, RollforwardLine] = {}
    for movement in result.rollforward():
        latest[movement.contract_id] = movement
    for contract_id, line in latest.items():
        table.add_row(
            contract_id,
            line.period,
            str(line.closing_receivable),
            str(line.closing_contract_asset),
            str(line.closing_contract_liability),
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
        int,
        typer.Option(
            "--workers",
            min=1,
            help="csv / jsonl: processes running contiguous shards of the contracts (the same bytes as one).",
        ),
    ] = 1,
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
        rendered = (
            result.report().model_dump_json(indent=2)
            if output_format is OutputFormat.JSON
            else _render_table(result)
        )
    except RevenueRuleError as error:
        _fail(f"revenue rule refused the scenario: {error}")
    typer.echo(rendered)


def _stream(scenario: Path, output_format: OutputFormat, out: Path, as_of: date | None, workers: int) -> None:
    try:
        text = scenario.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read scenario {scenario}: {getattr(error, 'strerror', None) or error}")
    started = time.perf_counter()
    try:
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
