"""The schedule formatted in bulk (columnar.py, pyarrow) writes the same bytes as the row path (output.py).

The row path is the one test_revenue_stream.py holds equal to the in-memory run; here the bulk path is held
byte-equal to it on generated portfolios (three currencies, functional amounts, lines missing before an
obligation exists), across batch boundaries, with identifiers CSV must quote, and for Parquet cell by cell.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_revenue_stream_portfolios import as_text, portfolios

from bench.revenue import portfolio_json
from pssync.revenue import RevenueRuleError
from pssync.revenue.output import amount_text
from pssync.revenue.stream import write_report

pa = pytest.importorskip("pyarrow", reason="the bulk path needs pyarrow (the optional parquet extra)")
pc = pytest.importorskip("pyarrow.compute")

from pssync.revenue import columnar  # noqa: E402 - after the skip: it is the pyarrow path under test

KINDS = ("schedule", "journals", "balances")


def _both(tmp_path: Path, text: str, output_format: str = "csv", as_of: date | None = None) -> list[Any]:
    """(bulk paths, row paths) of the same scenario."""
    written = []
    for bulk in (True, False):
        out = tmp_path / ("bulk" if bulk else "rows") / f"report.{output_format}"
        out.parent.mkdir(exist_ok=True)
        written.append(write_report(text, output_format, out, as_of, columnar=bulk).paths)
    return written


def _assert_same_bytes(bulk: dict[str, Path], rows: dict[str, Path]) -> None:
    for kind in KINDS:
        assert bulk[kind].read_bytes() == rows[kind].read_bytes(), kind


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    document=portfolios(),
    as_of=st.sampled_from([None, "2024-06-30", "2025-03-15"]),
    batch_rows=st.sampled_from([1, 7, 100, columnar.BATCH_ROWS]),
)
def test_bulk_schedule_csv_is_byte_equal_to_the_row_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    document: dict[str, Any],
    as_of: str | None,
    batch_rows: int,
) -> None:
    # Small batches put batch boundaries inside obligations and mix exponents (JPY 0, USD 2) in a batch.
    monkeypatch.setattr(columnar, "BATCH_ROWS", batch_rows)
    text = as_text(document)
    try:
        bulk, rows = _both(tmp_path, text, as_of=date.fromisoformat(as_of) if as_of else None)
    except RevenueRuleError:
        return  # refusals write nothing on either path (test_revenue_stream.py)
    _assert_same_bytes(bulk, rows)


def test_reference_portfolio_bulk_csv_is_byte_equal_to_the_row_path(tmp_path: Path) -> None:
    bulk, rows = _both(tmp_path, portfolio_json(30).decode())

    _assert_same_bytes(bulk, rows)
    assert len(bulk["schedule"].read_text(encoding="utf-8").splitlines()) == 1 + 30 * 5 * 36


@pytest.mark.parametrize("contract_id", ["K,1", 'K"1', "K\n1", "K 1 é"])
def test_identifiers_csv_must_quote_are_quoted_as_csv_writer_does(tmp_path: Path, contract_id: str) -> None:
    document = {
        "schema_version": "1",
        "as_of": "2024-03-31",
        "contracts": [
            {
                "contract_id": contract_id,
                "legal_entity": "LE,US",
                "version": 1,
                "currency": "USD",
                "effective_date": "2024-01-01",
                "causing_event_id": f"{contract_id}-won",
                "fixed_price": "1000",
                "obligations": [
                    {
                        "id": "o,1",
                        "ssp": "1000",
                        "pattern": {"kind": "ratable", "start": "2024-01-01", "end": "2024-12-31"},
                    }
                ],
            }
        ],
        "events": [],
    }
    bulk, rows = _both(tmp_path, as_text(document))

    _assert_same_bytes(bulk, rows)
    assert '"LE,US"' in bulk["schedule"].read_text(encoding="utf-8")


def test_bulk_parquet_holds_the_same_cells_as_the_row_path(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    bulk, rows = _both(tmp_path, portfolio_json(8).decode(), "parquet")

    for kind in KINDS:
        assert pq.read_table(bulk[kind]).equals(pq.read_table(rows[kind])), kind


@given(
    units=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=40),
    exponents=st.lists(st.sampled_from([0, 2, 3]), min_size=40, max_size=40),
)
def test_decimal_texts_are_the_decimal_text_of_the_minor_units(
    units: list[int], exponents: list[int]
) -> None:
    values = pa.array(units, pa.int64())
    per_line = pa.array(exponents[: len(units)], pa.int8())

    mixed = columnar.decimal_texts(pa, pc, values, per_line).to_pylist()
    single = columnar.decimal_texts(pa, pc, values, exponents[0]).to_pylist()

    assert mixed == [str(Decimal(u).scaleb(-e)) for u, e in zip(units, exponents, strict=False)]
    assert mixed == [amount_text(e)(u) for u, e in zip(units, exponents, strict=False)]
    assert single == [amount_text(exponents[0])(u) for u in units]
