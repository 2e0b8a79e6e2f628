"""Report rows of an engine run as flat tuples of text, and writers that stream them to CSV, JSONL or Parquet.

Rows are made straight from the engine's integer arrays: no pydantic model per line and no Decimal per
amount. Amounts are exact decimal strings, the same text as `str()` of the report models' Decimals (minor
units with the currency's exponent: the engine's rounding already happened, nothing is rounded here).

Three row kinds, one file each (`--out report.csv` writes report.csv, report.journals.csv,
report.balances.csv):
- schedule: one row per contract, obligation and period once the obligation exists (zero rows included),
  the fields of `ScheduleLine` that state the figure and what explains it: contract_version and
  causing_event_id reference the contract version and the event that last moved it (the method and inputs
  are in `pssync revrec run --format json` of that contract);
- journals: one row per journal line, `basis` transaction or functional (the functional lines only when the
  legal entity's functional currency differs);
- balances: the contract balance rollforward (`RollforwardLine`), periods up to as_of that moved.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from pssync.money import minor_unit
from pssync.revenue.engine import EngineRun
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.result.journals import entry_figures
from pssync.revenue.result.models import JournalEntry, RollforwardLine, ScheduleLine
from pssync.revenue.result.rollforward import balances
from pssync.revenue.result.support import Explained, explainer, period_status

Row = tuple[str, ...]

SCHEDULE_COLUMNS: Row = (
    "contract_id",
    "legal_entity",
    "obligation_id",
    "period",
    "status",
    "currency",
    "amount",
    "own_amount",
    "adjustment",
    "cumulative",
    "functional_currency",
    "functional_amount",
    "contract_version",
    "causing_event_id",
)
JOURNAL_COLUMNS: Row = (
    "contract_id",
    "legal_entity",
    "period",
    "basis",
    "currency",
    "line",
    "account",
    "debit",
    "credit",
    "causing_event_ids",
)
BALANCE_COLUMNS: Row = (
    "contract_id",
    "period",
    "currency",
    "revenue",
    "billed",
    "paid",
    "opening_receivable",
    "closing_receivable",
    "opening_contract_asset",
    "closing_contract_asset",
    "opening_contract_liability",
    "closing_contract_liability",
)
# Columns written as JSON numbers in JSONL (every other one is a string).
_NUMERIC = {"contract_version", "line"}
# causing_event_ids is one text column in every format: the ids joined by a space (business event ids hold
# none), so a row is the same tuple of text whatever the format.
_ID_SEPARATOR = " "


# --- amounts --------------------------------------------------------------------------------------------

_FORMATTERS: dict[int, Callable[[int], str]] = {}
_CACHE_LIMIT = 1 << 16


def amount_text(exponent: int) -> Callable[[int], str]:
    """Minor units -> the exact decimal text `str(Decimal(units).scaleb(-exponent))` gives, with a bounded
    cache: schedules repeat their amounts (equal monthly amounts, zeros) more than they vary."""
    formatter = _FORMATTERS.get(exponent)
    if formatter is not None:
        return formatter
    if exponent == 0:
        formatter = str
    else:
        scale = 10**exponent
        cache: dict[int, str] = {}

        def formatter(units: int) -> str:
            text = cache.get(units)
            if text is None:
                whole, fraction = divmod(-units if units < 0 else units, scale)
                text = f"{'-' if units < 0 else ''}{whole}.{fraction:0{exponent}d}"
                if len(cache) < _CACHE_LIMIT:
                    cache[units] = text
            return text

    _FORMATTERS[exponent] = formatter
    return formatter


# --- rows from an engine run -------------------------------------------------------------------------------


def schedule_rows(run: EngineRun, fx: FxConverter) -> Iterator[Row]:
    """Every schedule line (zero ones included) in the order of `RevenueResult.schedule(include_zero=True)`
    (contracts by id, obligations, periods)."""
    periods = run.periods.periods
    keys = [p.key for p in periods]
    statuses = [period_status(run, k) for k in range(len(periods))]
    for outcome in run.contracts:
        text = amount_text(outcome.exponent)
        functional = fx.functional_currency(outcome)
        converted_text = None if functional == outcome.currency else amount_text(minor_unit(functional))
        contract_id, entity, currency = outcome.contract_id, outcome.legal_entity, outcome.currency
        explained_tables: dict[int, list[Explained | None]] = {}  # per track: explain_all() once
        for oid in outcome.obligation_order:
            own, adjustment, reported = (
                outcome.own_amounts(oid),
                outcome.adjustment[oid],
                outcome.reported[oid],
            )
            for k, tracks in enumerate(outcome.knowledge_tracks):
                track = tracks.get(oid)
                if (
                    track is None
                ):  # the obligation did not exist in the knowledge the period was reported with
                    continue
                table = explained_tables.get(id(track))
                if table is None:
                    table = explained_tables[id(track)] = track.explain_all()
                explained = table[k]
                if explained is None:
                    continue
                segment, measure, i = explained
                causes = measure.causes
                event_id = (causes[i] if causes else None) or segment.version.contract.causing_event_id
                own_k, adjustment_k = own[k], adjustment[k]
                amount = own_k + adjustment_k
                amount_str = text(amount)
                yield (
                    contract_id,
                    entity,
                    oid,
                    keys[k],
                    statuses[k],
                    currency,
                    amount_str,
                    text(own_k) if adjustment_k else amount_str,
                    text(adjustment_k),
                    text(reported[k]),
                    functional,
                    amount_str
                    if converted_text is None
                    else converted_text(fx.convert(amount, outcome, k)[0]),
                    _VERSION_TEXT.get(segment.version.number) or str(segment.version.number),
                    event_id,
                )


_VERSION_TEXT = {number: str(number) for number in range(1, 1000)}


def journal_rows(run: EngineRun, fx: FxConverter) -> Iterator[Row]:
    keys = [p.key for p in run.periods.periods]
    for outcome in run.contracts:
        own_by_obligation = {oid: outcome.own_amounts(oid) for oid in outcome.obligation_order}
        explain = explainer(outcome)
        for k, row in enumerate(balances(run, outcome)):
            figures = entry_figures(fx, outcome, k, row, own_by_obligation, explain)
            if figures is None:
                continue
            raw, functional, converted, causes = figures
            head = (outcome.contract_id, outcome.legal_entity, keys[k])
            ids = _ID_SEPARATOR.join(causes)
            bases = [("transaction", outcome.currency, raw)]
            if converted is not None:
                bases.append(("functional", functional, converted))
            for basis, currency, lines in bases:
                text = amount_text(minor_unit(currency))
                for number, (account, units) in enumerate(lines, start=1):
                    debit, credit = (units, 0) if units > 0 else (0, -units)
                    yield (*head, basis, currency, str(number), account, text(debit), text(credit), ids)


def balance_rows(run: EngineRun) -> Iterator[Row]:
    keys = [p.key for p in run.periods.periods]
    for outcome in run.contracts:
        text = amount_text(outcome.exponent)
        for k, row in enumerate(balances(run, outcome)):
            if any(row):
                yield (outcome.contract_id, keys[k], outcome.currency, *(text(units) for units in row))


# --- the same rows from the report models (what the stream is held equal to) ------------------------------


def schedule_rows_of(lines: Iterable[ScheduleLine]) -> Iterator[Row]:
    for line in lines:
        yield (
            line.contract_id,
            line.legal_entity,
            line.obligation_id,
            line.period,
            line.status,
            line.currency,
            str(line.amount),
            str(line.own_amount),
            str(line.adjustment),
            str(line.cumulative),
            line.functional_currency,
            str(line.functional_amount),
            str(line.contract_version),
            line.causing_event_id,
        )


def journal_rows_of(entries: Iterable[JournalEntry]) -> Iterator[Row]:
    for entry in entries:
        head = (entry.contract_id, entry.legal_entity, entry.period)
        ids = _ID_SEPARATOR.join(entry.causing_event_ids)
        bases = [("transaction", entry.currency, entry.lines)]
        if entry.functional_lines is not None:
            bases.append(("functional", entry.functional_currency, entry.functional_lines))
        for basis, currency, lines in bases:
            for number, line in enumerate(lines, start=1):
                yield (
                    *head,
                    basis,
                    currency,
                    str(number),
                    line.account,
                    str(line.debit),
                    str(line.credit),
                    ids,
                )


def balance_rows_of(lines: Iterable[RollforwardLine]) -> Iterator[Row]:
    for line in lines:
        yield (
            line.contract_id,
            line.period,
            line.currency,
            *(
                str(value)
                for value in (
                    line.revenue,
                    line.billed,
                    line.paid,
                    line.opening_receivable,
                    line.closing_receivable,
                    line.opening_contract_asset,
                    line.closing_contract_asset,
                    line.opening_contract_liability,
                    line.closing_contract_liability,
                )
            ),
        )


# --- writers ---------------------------------------------------------------------------------------------


class RowSink(Protocol):
    def write(self, rows: Iterable[Row]) -> None: ...

    def close(self) -> None: ...


class CsvSink:
    """RFC 4180 text as `csv.writer` writes it. Rows are joined with commas in one go and the batch checked
    for characters that need quoting (a comma, quote or line break inside a field: only identifiers can hold
    them); a batch that has any goes through `csv.writer`, so the bytes are the same either way."""

    def __init__(self, path: Path, columns: Row) -> None:
        self.file: IO[str] = path.open("w", newline="", encoding="utf-8", buffering=1 << 20)
        self.writer = csv.writer(self.file, lineterminator="\n")
        self.writer.writerow(columns)
        self.separators = len(columns) - 1

    def write(self, rows: Iterable[Row]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        text = "\n".join(map(",".join, rows))
        if (
            text.count(",") == self.separators * len(rows)
            and text.count("\n") == len(rows) - 1
            and '"' not in text
            and "\r" not in text
        ):
            if rows:
                self.file.write(text + "\n")
        else:
            self.writer.writerows(rows)

    def close(self) -> None:
        self.file.close()


class JsonlSink:
    """One JSON object per row, from a template: only the identifier columns (free text) go through the JSON
    encoder, each distinct value once; amounts, periods and statuses need no escaping."""

    _FREE_TEXT = {
        "contract_id",
        "legal_entity",
        "obligation_id",
        "causing_event_id",
        "account",
        "causing_event_ids",
    }

    def __init__(self, path: Path, columns: Row) -> None:
        self.file: IO[str] = path.open("w", encoding="utf-8", buffering=1 << 20)
        self.columns = columns
        self.quoted: dict[str, str] = {}
        parts = []
        for name in columns:
            if name in _NUMERIC or name in self._FREE_TEXT:
                parts.append(f'"{name}":{{}}')
            else:
                parts.append(f'"{name}":"{{}}"')
        self.template = "{{" + ",".join(parts) + "}}\n"
        self.encoders: list[Callable[[str], str]] = [self._encoder(name) for name in columns]

    def _encoder(self, name: str) -> Callable[[str], str]:
        if name in self._FREE_TEXT:
            return self._quote
        return str

    def _quote(self, value: str) -> str:
        quoted = self.quoted.get(value)
        if quoted is None:
            quoted = json.dumps(value, ensure_ascii=False)
            if len(self.quoted) < _CACHE_LIMIT:
                self.quoted[value] = quoted
        return quoted

    def write(self, rows: Iterable[Row]) -> None:
        template, encoders = self.template.format, self.encoders
        self.file.write(
            "".join(
                template(*(encode(value) for encode, value in zip(encoders, row, strict=True)))
                for row in rows
            )
        )

    def close(self) -> None:
        self.file.close()


class ParquetSink:
    """Row groups written as rows arrive (`batch` rows each): memory holds one batch, never the file. Every
    column is a string (amounts keep their exact decimal text; a decimal column would need one scale for all
    currencies). Needs pyarrow, an optional dependency imported only here."""

    def __init__(self, path: Path, columns: Row, batch: int = 131_072) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as error:  # pragma: no cover - depends on the installation
            raise ParquetUnavailable from error
        self.pa = pa
        self.columns = columns
        self.schema = pa.schema([(name, pa.string()) for name in columns])
        self.writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        self.batch = batch
        self.pending: list[Row] = []

    def write(self, rows: Iterable[Row]) -> None:
        self.pending.extend(rows)
        if len(self.pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            arrays: list[Any] = [
                self.pa.array(column, self.pa.string()) for column in zip(*self.pending, strict=True)
            ]
            self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))
            self.pending = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


class ParquetUnavailable(RuntimeError):
    def __init__(self) -> None:
        super().__init__("parquet output needs pyarrow: pip install 'pssync[parquet]' (or 'pyarrow>=18')")


FORMATS = ("csv", "jsonl", "parquet")


def output_paths(out: Path) -> dict[str, Path]:
    """schedule -> the --out file; journals and balances beside it: report.csv, report.journals.csv, ..."""
    return {
        "schedule": out,
        "journals": out.with_name(f"{out.stem}.journals{out.suffix}"),
        "balances": out.with_name(f"{out.stem}.balances{out.suffix}"),
    }


def open_sink(output_format: str, path: Path, columns: Row) -> RowSink:
    if output_format == "csv":
        return CsvSink(path, columns)
    if output_format == "jsonl":
        return JsonlSink(path, columns)
    if output_format == "parquet":
        return ParquetSink(path, columns)
    raise ValueError(f"unknown output format {output_format!r}: one of {', '.join(FORMATS)}")
