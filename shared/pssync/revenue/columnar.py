"""Schedule lines formatted in bulk: integer columns in, CSV bytes or Arrow arrays out, no Python call a line.

The schedule is about 85 % of the lines a full run writes (1.8 million of 2.2 million at N = 10,000), and
building one tuple of texts per line in Python cost about 60 % of the run's CPU. Here each contract's figures
(`output.ContractLines`, the same integers the row builder formats) are appended to flat integer arrays; every
`batch_rows` lines they become Arrow arrays in one go:

- repeated texts (contract, legal entity, obligation, currencies) are one entry per obligation, taken into
  place by index; periods and statuses by period index;
- amounts are minor units as int64, cast to decimal128 at scale 0 and viewed at the currency's exponent, whose
  text is exactly `str(Decimal(units).scaleb(-exponent))` (what `output.amount_text` writes);
- CSV: the columns joined with "," and "\\n" element-wise; the joined array's data buffer is the CSV text.

Quoting: only identifiers can hold a character CSV must quote (comma, quote, line break). A batch with any
goes through `csv.writer`, so the bytes are those of the row path either way (tests/unit/revenue/
test_revenue_columnar.py holds the two byte-equal). Needs pyarrow (optional extra `parquet`); without it the
callers use the row path (`available()`).
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Sequence
from itertools import compress
from pathlib import Path
from typing import IO, Any

from pssync.revenue.output import SCHEDULE_COLUMNS, ContractLines, amount_text

# Lines per Arrow batch: big enough that the per-batch cost vanishes, small enough for flat memory (about
# 10 MB of CSV text per batch).
BATCH_ROWS = 65_536
PARQUET_ROW_GROUP = 131_072  # as output.ParquetSink
_QUOTED = ',"\r\n'
_NEEDS_QUOTES = '[,"\r\n]'


def available() -> bool:
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
    except ImportError:
        return False
    return True


class ScheduleColumns:
    """Schedule lines accumulated as integer columns; `take()` turns them into Arrow string arrays.

    `keys` and `statuses` are the run's period keys and statuses (one entry per period index)."""

    def __init__(self, keys: Sequence[str], statuses: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.pa: Any = pa
        self.pc: Any = pc
        self.keys = pa.array(keys, pa.string())
        self.statuses = pa.array(statuses, pa.string())
        self.period_count = len(keys)
        self.all_periods = array("i", range(len(keys)))
        self.plain_texts = not any(ch in text for text in (*keys, *statuses) for ch in _QUOTED)
        self._reset()

    def _reset(self) -> None:
        # One entry per obligation ("run" of lines): its repeated texts and the currencies' exponents.
        self.run_texts: list[list[str]] = [[], [], [], [], []]  # contract, entity, obligation, currency, fn
        self.run_exponents = array("b")
        self.run_functional_exponents = array("b")
        self.quoting_needed = False
        # One entry per line.
        self.run_of_line = array("i")
        self.period_of_line = array("i")
        self.amount = array("q")
        self.own = array("q")
        self.adjustment = array("q")
        self.cumulative = array("q")
        self.functional = array("q")
        self.versions: list[str] = []
        self.causes: list[str] = []

    def __len__(self) -> int:
        return len(self.run_of_line)

    def add(self, lines: ContractLines) -> None:
        # Whether an identifier needs quoting is checked per batch in take(), in Arrow.
        contracts, entities, obligations, currencies, functional_currencies = self.run_texts
        for obligation in lines.obligations:
            run = len(self.run_exponents)
            self.run_exponents.append(lines.exponent)
            self.run_functional_exponents.append(lines.functional_exponent)
            contracts.append(lines.contract_id)
            entities.append(lines.legal_entity)
            obligations.append(obligation.obligation_id)
            currencies.append(lines.currency)
            functional_currencies.append(lines.functional_currency)
            functional = obligation.amounts if obligation.functional is None else obligation.functional
            present = obligation.present
            if present is None:
                count = self.period_count
                self.period_of_line.extend(self.all_periods)
                self.amount.extend(obligation.amounts)
                self.own.extend(obligation.own)
                self.adjustment.extend(obligation.adjustment)
                self.cumulative.extend(obligation.cumulative)
                self.functional.extend(functional)
                self.versions.extend(obligation.versions)
                self.causes.extend(obligation.causes)
            else:
                count = sum(present)
                self.period_of_line.extend(compress(self.all_periods, present))
                self.amount.extend(compress(obligation.amounts, present))
                self.own.extend(compress(obligation.own, present))
                self.adjustment.extend(compress(obligation.adjustment, present))
                self.cumulative.extend(compress(obligation.cumulative, present))
                self.functional.extend(compress(functional, present))
                self.versions.extend(compress(obligation.versions, present))
                self.causes.extend(compress(obligation.causes, present))
            self.run_of_line.extend(array("i", [run]) * count)

    def take(self) -> tuple[list[Any], bool]:
        """The accumulated lines as one Arrow string array per schedule column (`output.SCHEDULE_COLUMNS`
        order), and whether any value needs CSV quoting; empties the accumulator."""
        pa, pc = self.pa, self.pc
        count = len(self.run_of_line)
        runs = _int_array(pa, pa.int32(), self.run_of_line)
        periods = _int_array(pa, pa.int32(), self.period_of_line)
        run_texts = [pa.array(texts, pa.string()) for texts in self.run_texts]
        contract, entity, obligation, currency, functional_currency = (
            pc.take(texts, runs) for texts in run_texts
        )
        line_exponents = _line_exponents(pa, pc, self.run_exponents, runs)
        functional_exponents = _line_exponents(pa, pc, self.run_functional_exponents, runs)
        causes = pa.array(self.causes, pa.string())
        if not self.quoting_needed and any(
            pc.any(pc.match_substring_regex(texts, _NEEDS_QUOTES)).as_py() for texts in (*run_texts, causes)
        ):
            self.quoting_needed = True
        amount = decimal_texts(pa, pc, _int_array(pa, pa.int64(), self.amount), line_exponents)
        # Without adjustments the own amounts are the amounts, and in the contract's currency the functional
        # amounts are too (same integers, same exponents: the same texts); compared rather than assumed.
        if self.own == self.amount:
            own = amount
        else:
            own = decimal_texts(pa, pc, _int_array(pa, pa.int64(), self.own), line_exponents)
        if self.functional == self.amount and self.run_functional_exponents == self.run_exponents:
            functional = amount
        else:
            functional = decimal_texts(
                pa, pc, _int_array(pa, pa.int64(), self.functional), functional_exponents
            )
        columns = [
            contract,
            entity,
            obligation,
            pc.take(self.keys, periods),
            pc.take(self.statuses, periods),
            currency,
            amount,
            own,
            decimal_texts(pa, pc, _int_array(pa, pa.int64(), self.adjustment), line_exponents),
            decimal_texts(pa, pc, _int_array(pa, pa.int64(), self.cumulative), line_exponents),
            functional_currency,
            functional,
            pa.array(self.versions, pa.string()),
            causes,
        ]
        if any(len(column) != count for column in columns):  # pragma: no cover - a bug here, never input
            raise AssertionError("schedule columns out of step")
        needs_quotes = self.quoting_needed or not self.plain_texts
        self._reset()
        return columns, needs_quotes


def _int_array(pa: Any, kind: Any, values: array[int]) -> Any:
    """A zero-copy Arrow view of a Python array of machine integers (the array must outlive the result's use:
    the callers keep it until the batch is written)."""
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _line_exponents(pa: Any, pc: Any, run_exponents: array[int], runs: Any) -> int | Any:
    """The exponent of every line: one int when all obligations of the batch share it (the usual case)."""
    distinct = set(run_exponents)
    if len(distinct) <= 1:
        return distinct.pop() if distinct else 0
    return pc.take(pa.array(run_exponents, pa.int8()), runs)


def decimal_texts(pa: Any, pc: Any, units: Any, exponent: int | Any) -> Any:
    """Minor units (int64 array) -> the exact decimal text of each, at one exponent or one per line."""
    if isinstance(exponent, int):
        if len(units) and pc.all(pc.equal(units, 0)).as_py():
            # A column of zeros (adjustments, the usual case): one text repeated, no decimal cast.
            return pa.repeat(pa.scalar(amount_text(exponent)(0), pa.string()), len(units))
        return _at_exponent(pa, units, exponent)
    distinct = sorted(set(exponent.to_pylist()))
    texts = _at_exponent(pa, units, distinct[0] if distinct else 0)
    for value in distinct[1:]:
        texts = pc.if_else(pc.equal(exponent, value), _at_exponent(pa, units, value), texts)
    return texts


def _at_exponent(pa: Any, units: Any, exponent: int) -> Any:
    if exponent == 0:
        return units.cast(pa.string())
    # decimal128(19, 0) holds every int64; the same 128-bit integers read at scale `exponent` are the amounts.
    return units.cast(pa.decimal128(19, 0)).view(pa.decimal128(19, exponent)).cast(pa.string())


class BulkSchedule:
    """The schedule file (csv, or parquet: a row group a batch) written in batches of `ScheduleColumns`."""

    def __init__(self, output_format: str, path: Path, header: bool = True, batch_rows: int | None = None):
        import pyarrow as pa

        self.pa: Any = pa
        self.output_format = output_format
        self.batch_rows = batch_rows or (BATCH_ROWS if output_format == "csv" else PARQUET_ROW_GROUP)
        self.rows = 0
        self.columns: ScheduleColumns | None = None
        self.periods: tuple[Sequence[str], Sequence[str]] | None = None
        self.file: IO[bytes] | None = None
        self.parquet: Any = None
        if output_format == "csv":
            self.file = path.open("wb", buffering=1 << 20)
            if header:
                self.file.write((",".join(SCHEDULE_COLUMNS) + "\n").encode("utf-8"))
        elif output_format == "parquet":
            import pyarrow.parquet as pq

            self.schema = pa.schema([(name, pa.string()) for name in SCHEDULE_COLUMNS])
            self.parquet = pq.ParquetWriter(str(path), self.schema, compression="zstd")
        else:
            raise ValueError(f"bulk schedule output is csv or parquet, not {output_format!r}")

    def add(self, lines: ContractLines, keys: Sequence[str], statuses: Sequence[str]) -> None:
        if self.columns is None or self.periods != (keys, statuses):  # one frame: once per file in practice
            self.flush()
            self.columns = ScheduleColumns(keys, statuses)
            self.periods = (keys, statuses)
        self.columns.add(lines)
        if len(self.columns) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if self.columns is None or not len(self.columns):
            return
        columns, needs_quotes = self.columns.take()
        self.rows += len(columns[0])
        if self.parquet is not None:
            self.parquet.write_table(self.pa.Table.from_arrays(columns, schema=self.schema))
        elif self.file is not None:
            if needs_quotes:
                self.file.write(_csv_module_text(columns).encode("utf-8"))
            else:
                self.file.write(csv_bytes(self.columns.pc, columns))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.parquet is not None:
            self.parquet.close()


def csv_bytes(pc: Any, columns: list[Any]) -> Any:
    """CSV text of string columns none of whose values needs quoting: one line per row, "\\n" after each."""
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*columns, ","), "", "\n")
    offsets, data = lines.buffers()[1:]
    bounds = memoryview(offsets).cast("i")
    start, end = bounds[lines.offset], bounds[lines.offset + len(lines)]
    return memoryview(data)[start:end] if data is not None else b""


def _csv_module_text(columns: list[Any]) -> str:
    """The batch through `csv.writer` (quotes what needs quoting): the same bytes as the row path."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(zip(*(c.to_pylist() for c in columns), strict=True))
    return buffer.getvalue()
