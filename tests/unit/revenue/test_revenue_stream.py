"""`pssync revrec run --format csv|jsonl|parquet --out FILE`: the streamed files equal the in-memory run.

The expected rows come from the report models of the whole-file run (`RevenueResult.schedule(include_zero=
True)`, `journals()`, `rollforward()`), written with the standard csv / json modules; the streamed files are
compared with them byte for byte after a canonical sort (the stream writes contracts in id order as the
engine does, the sort only makes a failure message independent of that).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_revenue_stream_portfolios import as_text, portfolios
from typer.testing import CliRunner

from bench.revenue import portfolio_json
from pssync.revenue import RevenueRuleError, parse_scenario, run_scenario
from pssync.revenue.cli import revrec_app
from pssync.revenue.output import (
    BALANCE_COLUMNS,
    JOURNAL_COLUMNS,
    SCHEDULE_COLUMNS,
    amount_text,
    balance_rows_of,
    journal_rows_of,
    schedule_rows_of,
)
from pssync.revenue.scenario_stream import ScenarioInvalid
from pssync.revenue.stream import write_report

KINDS = {"schedule": SCHEDULE_COLUMNS, "journals": JOURNAL_COLUMNS, "balances": BALANCE_COLUMNS}


def _expected(text: str, as_of: Any = None) -> dict[str, list[tuple[str, ...]]]:
    result = run_scenario(parse_scenario(text), as_of=as_of)
    return {
        "schedule": list(schedule_rows_of(result.schedule(include_zero=True))),
        "journals": list(journal_rows_of(result.journals())),
        "balances": list(balance_rows_of(result.rollforward())),
    }


def _csv_lines(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().splitlines(keepends=True)


def _assert_csv_equal(paths: dict[str, Path], expected: dict[str, list[tuple[str, ...]]]) -> None:
    for kind, columns in KINDS.items():
        written = paths[kind].read_text(encoding="utf-8").splitlines(keepends=True)
        wanted = _csv_lines(columns, expected[kind])
        assert written[0] == wanted[0]
        assert sorted(written[1:]) == sorted(wanted[1:]), kind


def _jsonl_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line, parse_float=Decimal)
        assert tuple(record) == columns
        rows.append(tuple(str(value) for value in record.values()))
    return rows


def _stream(tmp_path: Path, text: str, output_format: str, as_of: Any = None) -> dict[str, Path]:
    summary = write_report(text, output_format, tmp_path / f"report.{output_format}", as_of)
    assert summary.streamed
    return summary.paths


# --- equality with the in-memory run --------------------------------------------------------------------


def test_reference_portfolio_csv_equals_the_in_memory_run_byte_for_byte(tmp_path: Path) -> None:
    text = portfolio_json(40).decode()

    paths = _stream(tmp_path, text, "csv")

    expected = _expected(text)
    assert len(expected["schedule"]) == 40 * 5 * 36  # every line, zero ones included
    _assert_csv_equal(paths, expected)
    # The stream keeps the engine's order (contracts by id, obligations, periods): no sort was needed.
    written = paths["schedule"].read_text(encoding="utf-8").splitlines(keepends=True)
    assert written == _csv_lines(SCHEDULE_COLUMNS, expected["schedule"])


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(document=portfolios(), as_of=st.sampled_from([None, "2024-06-30", "2025-03-15"]))
def test_generated_portfolios_stream_equal_to_the_in_memory_run(
    tmp_path: Path, document: dict[str, Any], as_of: str | None
) -> None:
    from datetime import date

    text = as_text(document)
    as_of_day = date.fromisoformat(as_of) if as_of else None
    try:
        expected = _expected(text, as_of_day)
    except RevenueRuleError as refused:
        with pytest.raises(RevenueRuleError) as streamed:
            write_report(text, "csv", tmp_path / "refused.csv", as_of_day)
        assert streamed.value.reason == refused.reason
        assert not list(tmp_path.glob("refused*")), "a refused run leaves no file behind"
        return
    _assert_csv_equal(_stream(tmp_path, text, "csv", as_of_day), expected)


def test_jsonl_records_carry_the_same_values_as_the_csv(tmp_path: Path) -> None:
    text = as_text(_mixed_currency_portfolio())

    paths = _stream(tmp_path, text, "jsonl")

    expected = _expected(text)
    for kind, columns in KINDS.items():
        assert sorted(_jsonl_rows(paths[kind], columns)) == sorted(expected[kind]), kind
    assert any(row[3] == "functional" for row in expected["journals"]), "the example converts currencies"


def test_parquet_row_groups_hold_the_same_rows(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet output is the optional pyarrow extra")
    text = portfolio_json(12).decode()

    paths = _stream(tmp_path, text, "parquet")

    expected = _expected(text)
    for kind, columns in KINDS.items():
        table = pq.read_table(paths[kind])
        assert tuple(table.column_names) == columns
        rows = list(zip(*(table.column(name).to_pylist() for name in columns), strict=True))
        assert rows == expected[kind], kind


# --- amounts ------------------------------------------------------------------------------------------


@given(units=st.integers(min_value=-(10**15), max_value=10**15), exponent=st.sampled_from([0, 2, 3]))
def test_amount_text_is_the_decimal_text_of_the_minor_units(units: int, exponent: int) -> None:
    assert amount_text(exponent)(units) == str(Decimal(units).scaleb(-exponent))


# --- refusals: clear errors naming the place in the whole file, nothing written ---------------------------


def _three_contracts() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(portfolio_json(3))
    return document


def test_an_invalid_contract_far_down_the_file_is_named_by_its_position(tmp_path: Path) -> None:
    document = _three_contracts()
    document["contracts"][5]["fixed_price"] = 12.5  # a JSON float: refused by the money type

    with pytest.raises(ScenarioInvalid) as refused:
        write_report(as_text(document), "csv", tmp_path / "out.csv")

    assert [path for path, _ in refused.value.problems] == ["contracts[5].fixed_price"]
    assert list(tmp_path.iterdir()) == []


def test_a_duplicate_event_id_across_contracts_is_refused(tmp_path: Path) -> None:
    document = _three_contracts()
    document["events"][5]["id"] = document["events"][1]["id"]

    with pytest.raises(ScenarioInvalid) as refused:
        write_report(as_text(document), "jsonl", tmp_path / "out.jsonl")

    assert refused.value.problems == [("events[5].id", f"duplicate event id {document['events'][1]['id']}")]
    assert list(tmp_path.iterdir()) == []


def test_an_event_of_an_unknown_contract_is_refused(tmp_path: Path) -> None:
    document = _three_contracts()
    document["events"][2]["contract_id"] = "C999999"

    with pytest.raises(ScenarioInvalid) as refused:
        write_report(as_text(document), "csv", tmp_path / "out.csv")

    assert refused.value.problems == [("events[2].contract_id", "unknown contract C999999")]


def test_a_revenue_rule_refusal_names_the_event_in_the_whole_file(tmp_path: Path) -> None:
    document = _three_contracts()
    document["events"].append(
        {"type": "invoice", "id": "early", "contract_id": "C000002", "on": "2022-12-01", "amount": "10.00"}
    )
    position = len(document["events"]) - 1

    with pytest.raises(RevenueRuleError) as refused:
        write_report(as_text(document), "csv", tmp_path / "out.csv")

    assert refused.value.field == f"events[{position}].on"
    assert list(tmp_path.iterdir()) == [], (
        "the two contracts before it were written to .partial files, removed"
    )


def test_a_top_level_shape_the_pre_scan_does_not_read_falls_back_to_the_whole_file_parse(
    tmp_path: Path,
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        write_report("[1, 2]", "csv", tmp_path / "out.csv")


# --- the command ------------------------------------------------------------------------------------------


def test_command_writes_three_files_and_refuses_without_out(tmp_path: Path) -> None:
    scenario = tmp_path / "portfolio.json"
    scenario.write_bytes(portfolio_json(5))
    runner = CliRunner()

    written = runner.invoke(
        revrec_app, ["run", str(scenario), "--format", "csv", "--out", str(tmp_path / "r.csv")]
    )
    missing_out = runner.invoke(revrec_app, ["run", str(scenario), "--format", "jsonl"])

    assert written.exit_code == 0, written.output
    assert sorted(p.name for p in tmp_path.glob("r*")) == ["r.balances.csv", "r.csv", "r.journals.csv"]
    assert "schedule: 900 rows" in written.stderr
    assert missing_out.exit_code == 2
    assert "--out" in missing_out.stderr


def test_command_refusal_exits_2_with_the_field(tmp_path: Path) -> None:
    document = _three_contracts()
    document["contracts"][4]["currency"] = "usd"
    scenario = tmp_path / "bad.json"
    scenario.write_text(as_text(document))

    outcome = CliRunner().invoke(
        revrec_app, ["run", str(scenario), "--format", "csv", "--out", str(tmp_path / "r.csv")]
    )

    assert outcome.exit_code == 2
    assert "contracts[4].currency" in outcome.stderr
    assert not list(tmp_path.glob("r*"))


def _mixed_currency_portfolio() -> dict[str, Any]:
    """Three contracts: USD and JPY under the EUR-reporting entity (converted lines), EUR at home."""
    document: dict[str, Any] = json.loads(portfolio_json(3))
    document["functional_currency"] = {"LE-DE": "EUR"}
    document["fx_rates"] = [
        {"base": "USD", "quote": "EUR", "on": "2022-12-01", "rate": "0.91"},
        {"base": "USD", "quote": "EUR", "on": "2023-06-01", "rate": "0.87"},
    ]
    for version in document["contracts"]:
        if version["contract_id"] != "C000002":
            version["legal_entity"] = "LE-DE"
        if version["contract_id"] == "C000001":
            version["currency"] = "EUR"
    document["events"].append(
        {"type": "invoice", "id": "inv-1", "contract_id": "C000000", "on": "2023-02-01", "amount": "50000.00"}
    )
    document["events"].append(
        {"type": "payment", "id": "pay-1", "contract_id": "C000000", "on": "2023-03-01", "amount": "20000.00"}
    )
    return document


# --- worker processes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["csv", "jsonl"])
def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path: Path, output_format: str) -> None:
    text = as_text(_mixed_currency_portfolio())
    (tmp_path / "one").mkdir()
    (tmp_path / "three").mkdir()
    one = write_report(text, output_format, tmp_path / "one" / f"r.{output_format}")
    three = write_report(
        text, output_format, tmp_path / "three" / f"r.{output_format}", workers=3, min_shard=1
    )

    assert (one.workers, three.workers) == (1, 3)
    assert three.rows == one.rows
    for kind in KINDS:
        assert three.paths[kind].read_bytes() == one.paths[kind].read_bytes(), kind
    assert not [
        p for p in (tmp_path / "three").iterdir() if p.name not in {x.name for x in three.paths.values()}
    ]


def test_a_refusal_in_a_worker_is_the_callers_error_and_leaves_no_file(tmp_path: Path) -> None:
    document: dict[str, Any] = json.loads(portfolio_json(6))
    document["events"].append(
        {"type": "payment", "id": "early", "contract_id": "C000005", "on": "2022-12-01", "amount": "10.00"}
    )

    with pytest.raises(RevenueRuleError) as refused:
        write_report(as_text(document), "csv", tmp_path / "r.csv", workers=2, min_shard=1)

    assert refused.value.field == f"events[{len(document['events']) - 1}].on"
    assert list(tmp_path.iterdir()) == []


def test_a_pre_scan_that_drifted_from_the_engine_fails_the_run_instead_of_shifting_periods() -> None:
    from dataclasses import replace
    from datetime import date

    from pssync.revenue.scenario_stream import index_scenario
    from pssync.revenue.streaming import FrameCheck, frame_from_index, stream_runs

    index = index_scenario(portfolio_json(3).decode())
    frame = frame_from_index(index)
    late_start = replace(frame, first=date(2023, 2, 1))  # as if the pre-scan missed the January starts

    check = FrameCheck(late_start)
    with pytest.raises(RuntimeError, match="drifted from the engine"):
        list(stream_runs(index, late_start, index.contract_ids(), check))
    check = FrameCheck(replace(frame, last=date(2026, 6, 30)))  # a horizon longer than any fact
    list(stream_runs(index, check.frame, index.contract_ids(), check))
    with pytest.raises(RuntimeError, match="drifted from the engine"):
        check.finish()


def test_a_material_right_lapsing_after_every_other_fact_extends_the_horizon_as_in_the_whole_run(
    tmp_path: Path,
) -> None:
    """The engine's horizon runs to a material right's expiry (its price is recognised when it lapses); the
    pre-scan must read it too, or the stream stops at the last other fact and the frame check fails."""
    point = {"kind": "point_in_time", "satisfied_on": "2024-01-01"}
    voucher = {"kind": "material_right", "expires_on": "2024-09-15"}
    document: dict[str, Any] = {
        "schema_version": "1",
        "contracts": [
            {
                "contract_id": "EX49",
                "legal_entity": "LE-US",
                "version": 1,
                "currency": "USD",
                "effective_date": "2024-01-01",
                "causing_event_id": "EX49-won",
                "fixed_price": "100",
                "obligations": [
                    {"id": "A", "ssp": "100", "pattern": point},
                    {"id": "voucher", "ssp": "12", "pattern": voucher},
                ],
            }
        ],
        "events": [],
    }
    text = as_text(document)

    paths = _stream(tmp_path, text, "csv")

    expected = _expected(text)
    assert [row[3] for row in expected["schedule"] if row[2] == "voucher"][-1] == "2024-09"
    _assert_csv_equal(paths, expected)


def test_a_version_recorded_after_a_close_explains_the_open_periods_with_its_own_number(
    tmp_path: Path,
) -> None:
    """Version 2 takes effect on 3 January but is recorded on 5 March, after February closed: January and
    February stay reported with version 1, March with version 2. The ratable measure of both versions is one
    cached object (same term, same days), so a reference looked up once per measure kept version 1's number
    and event for March (found by the generated portfolios, reduced by hypothesis)."""
    ratable = {"kind": "ratable", "start": "2024-01-02", "end": "2024-01-22", "basis": "daily"}
    first = {
        "contract_id": "K000",
        "legal_entity": "LE-US",
        "version": 1,
        "currency": "USD",
        "effective_date": "2024-01-02",
        "causing_event_id": "K000-won",
        "fixed_price": "1",
        "obligations": [{"id": "o0", "ssp": "1", "pattern": ratable}],
    }
    amended = {
        **first,
        "version": 2,
        "effective_date": "2024-01-03",
        "causing_event_id": "K000-amended",
        "recorded_on": "2024-03-05",
    }
    close = {"type": "period_close", "id": "close-1", "on": "2024-03-04", "period": "2024-02"}
    text = as_text({"schema_version": "1", "contracts": [first, amended], "events": [close]})

    paths = _stream(tmp_path, text, "csv")

    expected = _expected(text)
    assert [(row[3], row[12], row[13]) for row in expected["schedule"]] == [
        ("2024-01", "1", "K000-won"),
        ("2024-02", "1", "K000-won"),
        ("2024-03", "2", "K000-amended"),
    ]
    _assert_csv_equal(paths, expected)
