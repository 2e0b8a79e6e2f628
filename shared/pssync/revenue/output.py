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
import operator
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from pathlib import Path
from typing import IO, Any, Protocol

from pssync.money import minor_unit
from pssync.revenue.engine import AccountingContract, ContractOutcome, EngineRun
from pssync.revenue.evaluation import Track
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.result.journals import entry_lines, functional_lines
from pssync.revenue.result.models import JournalEntry, RollforwardLine, ScheduleLine
from pssync.revenue.result.rollforward import Balances, account_balances, accounting_contract_name
from pssync.revenue.result.support import period_statuses

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
    "accounting_contract",  # empty when the contract is one accounting contract
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
    "accounting_contract",  # empty when the contract is one accounting contract
)
# Columns written as JSON numbers in JSONL (every other one is a string).
_NUMERIC = {"contract_version", "line"}
# causing_event_ids is one text column in every format: the ids joined by a space (business event ids hold
# none), so a row is the same tuple of text whatever the format.
_ID_SEPARATOR = " "


# --- amounts --------------------------------------------------------------------------------------------

_FORMATTERS: dict[int, Callable[[int], str]] = {}


def amount_text(exponent: int) -> Callable[[int], str]:
    """Minor units -> the exact decimal text `str(Decimal(units).scaleb(-exponent))` gives."""
    formatter = _FORMATTERS.get(exponent)
    if formatter is None:
        if exponent == 0:
            formatter = str
        else:
            pattern, scale = f"%d.%0{exponent}d", 10**exponent

            def formatter(units: int) -> str:
                if units < 0:
                    return f"-{pattern % divmod(-units, scale)}"
                return str(pattern % divmod(units, scale))

        _FORMATTERS[exponent] = formatter
    return formatter


def amount_texts(exponent: int, values: Iterable[int]) -> list[str]:
    """amount_text over a sequence. A contract's figures repeat a lot (about one in six is distinct in the
    reference portfolio: zero balances, an opening balance is the previous closing one, equal monthly
    revenue), so when fewer than half are distinct each distinct value is formatted once."""
    values = values if isinstance(values, list | array) else list(values)
    distinct = set(values)
    if 2 * len(distinct) < len(values):
        ordered = list(distinct)
        texts = dict(zip(ordered, _amount_texts(exponent, ordered), strict=True))
        return list(map(texts.__getitem__, values))
    return _amount_texts(exponent, values)


def _amount_texts(exponent: int, values: list[int] | array[int]) -> list[str]:
    """amount_text over a sequence, without a Python call per amount when none is negative (the usual case
    of revenue, cumulative revenue and balances)."""
    if exponent == 0:
        return list(map(str, values))
    if min(values, default=0) >= 0:
        pattern, scale = f"%d.%0{exponent}d", 10**exponent
        return [pattern % divmod(units, scale) for units in values]
    return list(map(amount_text(exponent), values))


# --- rows from an engine run -------------------------------------------------------------------------------


class RunRows:
    """The three row lists of each contract of a run, built from the engine's arrays.

    Per contract, what the schedule and the journals both need is computed once: each obligation's
    contract version and causing event per period (one measure per track piece, `_references_by_obligation`),
    its own revenue per period and the balances. Schedule rows are zipped column-wise (constant columns
    repeated), so the per-line work is the amount text.
    """

    def __init__(self, run: EngineRun, fx: FxConverter) -> None:
        self.run = run
        self.fx = fx
        self.keys = [p.key for p in run.periods.periods]
        self.statuses = period_statuses(run, len(self.keys))

    def contract(self, outcome: ContractOutcome) -> tuple[list[Row], list[Row], list[Row]]:
        lines, journals, balances = self.contract_lines(outcome)
        return schedule_rows_from(lines, self.keys, self.statuses), journals, balances

    def contract_lines(self, outcome: ContractOutcome) -> tuple[ContractLines, list[Row], list[Row]]:
        """The schedule as integer figures (formatted in bulk by the caller), the journal and balance rows."""
        references = _references_by_obligation(outcome)
        own = {oid: outcome.own_amounts(oid) for oid in outcome.obligation_order}
        accounts = account_balances(self.run, outcome, _booked(outcome, own))
        return (
            self.schedule_lines(outcome, references, own),
            self._journals(outcome, references, own, accounts),
            self._balances(outcome, accounts),
        )

    def schedule_lines(
        self,
        outcome: ContractOutcome,
        references: dict[str, References],
        own: dict[str, array[int]],
    ) -> ContractLines:
        """The contract's schedule figures as integers per obligation. The row builder here and the column
        builder (columnar.py) both format these: they cannot disagree on which lines exist or their values."""
        functional = self.fx.functional_currency(outcome)
        lines = ContractLines(
            outcome.contract_id,
            outcome.legal_entity,
            outcome.currency,
            outcome.exponent,
            functional,
            outcome.exponent if functional == outcome.currency else minor_unit(functional),
            [],
        )
        for oid in outcome.obligation_order:
            versions, causes, present = references[oid]
            own_units, adjustment = own[oid], outcome.adjustment[oid]
            amounts = list(map(operator.add, own_units, adjustment)) if any(adjustment) else own_units
            converted = None
            if functional != outcome.currency:
                convert = self.fx.convert
                converted = [convert(u, outcome, k)[0] for k, u in enumerate(amounts)]
            lines.obligations.append(
                ObligationLines(
                    oid,
                    amounts,
                    own_units,
                    adjustment,
                    outcome.reported[oid],
                    converted,
                    versions,
                    causes,
                    present,
                )
            )
        return lines

    def _journals(
        self,
        outcome: ContractOutcome,
        references: dict[str, References],
        own: dict[str, array[int]],
        accounts: list[tuple[AccountingContract, list[Balances]]],
    ) -> list[Row]:
        """Journal rows of every accounting contract and period in one pass (`journal_rows_of` of
        `result.journals.journal_entries` gives the same rows: entry_lines / functional_lines are shared,
        and the causes are the schedule's references, which are `support.cause` of the same explanations)."""
        keys, fx = self.keys, self.fx
        contract_id, entity, currency = outcome.contract_id, outcome.legal_entity, outcome.currency
        functional = fx.functional_currency(outcome)
        converts = functional != currency
        # Texts of the magnitudes met so far (this contract's only: its amounts repeat, a period's revenue
        # is the next one's asset change, equal monthly amounts), keyed by the integer alone: one exponent.
        texts: dict[int, str] = {}
        format_amount = amount_text(outcome.exponent)
        zero = format_amount(0)
        lines: list[Row] = []
        for account, rows in accounts:
            name = accounting_contract_name(outcome, account) or ""
            revenue_causes = [
                (own[oid], outcome.adjustment[oid], *references[oid][1:]) for oid in account.obligations
            ]
            billing_causes = account.billing_causes
            for k, row in enumerate(rows):
                raw = entry_lines(row)
                if not raw:
                    continue
                # Invoice and payment ids of the period, then what caused each obligation's revenue, once each
                # (journals._causes).
                causes = list(billing_causes.get(k, ()))
                for own_units, adjustment, obligation_causes, present in revenue_causes:
                    if (own_units[k] or adjustment[k]) and (present is None or present[k]):
                        event_id = obligation_causes[k]
                        if event_id not in causes:
                            causes.append(event_id)
                key = keys[k]
                ids = _ID_SEPARATOR.join(causes)
                for number, (ledger_account, units) in enumerate(raw, start=1):
                    magnitude = units if units > 0 else -units
                    text = texts.get(magnitude)
                    if text is None:
                        text = texts[magnitude] = format_amount(magnitude)
                    lines.append(
                        (
                            contract_id,
                            entity,
                            key,
                            "transaction",
                            currency,
                            _NUMBER_TEXT[number],
                            ledger_account,
                            text if units > 0 else zero,
                            zero if units > 0 else text,
                            ids,
                            name,
                        )
                    )
                if converts:
                    lines.extend(
                        _functional_rows(
                            (contract_id, entity, key),
                            functional,
                            functional_lines(fx, outcome, k, raw),
                            ids,
                            name,
                        )
                    )
        return lines

    def _balances(
        self, outcome: ContractOutcome, accounts: list[tuple[AccountingContract, list[Balances]]]
    ) -> list[Row]:
        """Rows of the periods that moved; their figures formatted in one amount_texts call per account."""
        e, keys = outcome.exponent, self.keys
        contract_id, currency = outcome.contract_id, outcome.currency
        lines: list[Row] = []
        for account, rows in accounts:
            name = accounting_contract_name(outcome, account) or ""
            moved = [k for k, row in enumerate(rows) if any(row)]
            texts = iter(amount_texts(e, [units for k in moved for units in rows[k]]))
            figures = zip(*repeat(texts, _BALANCE_FIGURES), strict=True)
            lines.extend(
                (contract_id, keys[k], currency, *row_texts, name)
                for k, row_texts in zip(moved, figures, strict=True)
            )
        return lines


def _functional_rows(
    head: tuple[str, str, str], currency: str, entry: list[tuple[str, int]], ids: str, name: str
) -> list[Row]:
    """The journal rows of an entry's lines converted into the functional currency."""
    text = amount_text(minor_unit(currency))
    zero = text(0)
    return [
        (
            *head,
            "functional",
            currency,
            _NUMBER_TEXT[number],
            ledger_account,
            text(units) if units > 0 else zero,
            zero if units > 0 else text(-units),
            ids,
            name,
        )
        for number, (ledger_account, units) in enumerate(entry, start=1)
    ]


# revenue, billed, paid and the six opening / closing balances (rollforward.Balances)
_BALANCE_FIGURES = len(BALANCE_COLUMNS) - 4
_NUMBER_TEXT = {number: str(number) for number in range(1, 1000)}


@dataclass(slots=True)
class ObligationLines:
    """One obligation's schedule figures per period of the run, in minor units."""

    obligation_id: str
    amounts: Sequence[int]  # own + adjustment
    own: Sequence[int]
    adjustment: Sequence[int]
    cumulative: Sequence[int]
    functional: Sequence[int] | None  # None: the functional currency is the contract's, the amounts apply
    versions: list[str]  # contract version in force per period (text)
    causes: list[str]  # the event that last moved the figure per period
    present: list[bool] | None  # None: a line in every period; else the periods the obligation existed in


@dataclass(slots=True)
class ContractLines:
    contract_id: str
    legal_entity: str
    currency: str
    exponent: int
    functional_currency: str
    functional_exponent: int
    obligations: list[ObligationLines]


def schedule_rows_from(lines: ContractLines, keys: Sequence[str], statuses: Sequence[str]) -> list[Row]:
    """Rows of text, one Python tuple per line (the path without pyarrow; columnar.py is the bulk one)."""
    e = lines.exponent
    rows: list[Row] = []
    for obligation in lines.obligations:
        amount_strs = amount_texts(e, obligation.amounts)
        if obligation.amounts is obligation.own:
            own_strs = amount_strs
            adjustment_strs = [amount_text(e)(0)] * len(amount_strs)
        else:
            own_strs = amount_texts(e, obligation.own)
            adjustment_strs = amount_texts(e, obligation.adjustment)
        if obligation.functional is None:
            functional_strs = amount_strs
        else:
            functional_strs = amount_texts(lines.functional_exponent, obligation.functional)
        zipped = zip(
            repeat(lines.contract_id),
            repeat(lines.legal_entity),
            repeat(obligation.obligation_id),
            keys,
            statuses,
            repeat(lines.currency),
            amount_strs,
            own_strs,
            adjustment_strs,
            amount_texts(e, obligation.cumulative),
            repeat(lines.functional_currency),
            functional_strs,
            obligation.versions,
            obligation.causes,
        )
        rows.extend(zipped if obligation.present is None else compress(zipped, obligation.present))
    return rows


# Per obligation: the contract version (text) and the causing event id in force per period ("" where the
# obligation did not exist yet), and the periods it existed in (None: all of them).
References = tuple[list[str], list[str], list[bool] | None]


def _references_by_obligation(outcome: ContractOutcome) -> dict[str, References]:
    """Per obligation, what explains each period's figure with the knowledge the period was reported with:
    the version in force and `support.cause` of the explanation (the event that last moved the figure, else
    the one that caused the version). One measure per track piece; the per-period explanations themselves
    (inputs, progress texts) are never built."""
    per_period = outcome.knowledge_tracks
    count = len(per_period)
    references: dict[str, References] = {}
    if per_period and all(d is per_period[0] for d in per_period):  # one state of knowledge for all periods
        for oid in outcome.obligation_order:
            references[oid] = _whole_track(per_period[0].get(oid), count)
        return references
    tables: dict[int, tuple[list[str], list[str], int]] = {}  # per track (alive in outcome): its references
    for oid in outcome.obligation_order:
        tracks = [known.get(oid) for known in per_period]
        first = tracks[0]
        if first is not None and all(track is first for track in tracks):  # one state of knowledge
            references[oid] = _whole_track(first, count)
            continue
        versions: list[str] = []
        causes: list[str] = []
        present: list[bool] = []
        for k, track in enumerate(tracks):
            if track is None:
                versions.append("")
                causes.append("")
                present.append(False)
                continue
            table = tables.get(id(track))
            if table is None:
                table = tables[id(track)] = _track_references(track)
            versions.append(table[0][k])
            causes.append(table[1][k])
            present.append(k >= table[2])
        references[oid] = (versions, causes, None if all(present) else present)
    return references


def _whole_track(track: Track | None, count: int) -> References:
    """References of every period from one track (None: the obligation exists in none of the periods)."""
    if track is None:
        return [""] * count, [""] * count, [False] * count
    versions, causes, first_index = _track_references(track)
    return versions, causes, None if first_index == 0 else [k >= first_index for k in range(count)]


def _track_references(track: Track) -> tuple[list[str], list[str], int]:
    """(contract version, causing event id) at every index of the track, "" before its first piece, and the
    index of its first piece: per piece one segment and one measure (`Track.explained_pieces`)."""
    count = len(track.days)
    pieces = track.explained_pieces()
    first_index = pieces[0][0] if pieces else count
    versions = [""] * first_index
    causes = [""] * first_index
    for first, end, segment, measure in pieces:
        number = segment.version.number
        default = segment.version.contract.causing_event_id
        versions.extend(repeat(_NUMBER_TEXT.get(number) or str(number), end - first))
        if measure.causes:
            causes.extend([cause or default for cause in measure.causes[: end - first]])
        else:
            causes.extend(repeat(default, end - first))
    return versions, causes, first_index


def _booked(outcome: ContractOutcome, own: dict[str, array[int]]) -> list[int]:
    """Revenue booked per period for the whole contract (rollforward.booked, from the own amounts at hand)."""
    order = outcome.obligation_order
    figures = [own[oid] for oid in order] + [outcome.adjustment[oid] for oid in order]
    if not figures:
        return [0] * len(outcome.billed)
    # One sum per period over every obligation's own amount and adjustment (zip stops at the shortest, as
    # adding to a list of len(billed) zeros did).
    return list(map(sum, zip(*figures, strict=False)))[: len(outcome.billed)]


def schedule_rows(run: EngineRun, fx: FxConverter) -> Iterator[Row]:
    """Every schedule line (zero ones included) in the order of `RevenueResult.schedule(include_zero=True)`
    (contracts by id, obligations, periods)."""
    rows = RunRows(run, fx)
    for outcome in run.contracts:
        yield from rows.contract(outcome)[0]


def journal_rows(run: EngineRun, fx: FxConverter) -> Iterator[Row]:
    rows = RunRows(run, fx)
    for outcome in run.contracts:
        yield from rows.contract(outcome)[1]


def balance_rows(run: EngineRun) -> Iterator[Row]:
    rows = RunRows(run, FxConverter(run))
    for outcome in run.contracts:
        yield from rows.contract(outcome)[2]


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
                    entry.accounting_contract or "",
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
            line.accounting_contract or "",
        )


# --- writers ---------------------------------------------------------------------------------------------


class RowSink(Protocol):
    def write(self, rows: Iterable[Row]) -> None: ...

    def close(self) -> None: ...


class CsvSink:
    """RFC 4180 text as `csv.writer` writes it. Rows are joined with commas in one go and the batch checked
    for characters that need quoting (a comma, quote or line break inside a field: only identifiers can hold
    them); a batch that has any goes through `csv.writer`, so the bytes are the same either way."""

    def __init__(self, path: Path, columns: Row, header: bool = True) -> None:
        self.file: IO[str] = path.open("w", newline="", encoding="utf-8", buffering=1 << 20)
        self.writer = csv.writer(self.file, lineterminator="\n")
        if header:
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
            if len(self.quoted) < 1 << 16:  # identifiers repeat within a contract: a bounded cache
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


def open_sink(output_format: str, path: Path, columns: Row, header: bool = True) -> RowSink:
    """header=False: a part of a file written by several processes (CSV only has a header line)."""
    if output_format == "csv":
        return CsvSink(path, columns, header)
    if output_format == "jsonl":
        return JsonlSink(path, columns)
    if output_format == "parquet":
        return ParquetSink(path, columns)
    raise ValueError(f"unknown output format {output_format!r}: one of {', '.join(FORMATS)}")
