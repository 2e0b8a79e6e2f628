"""The full-output benchmark checks the streamed files themselves: a wrong line fails the bench."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.revenue import (
    BenchCheckFailed,
    expected_prices_streamed,
    portfolio_json,
    verify,
    written_output_failures,
)
from pssync.revenue.stream import write_report


def _streamed(tmp_path: Path, n: int) -> tuple[Path, Path]:
    summary = write_report(portfolio_json(n).decode(), "csv", tmp_path / "report.csv")
    return summary.paths["schedule"], summary.paths["journals"]


def test_streamed_files_of_the_reference_portfolio_pass_the_checks(tmp_path: Path) -> None:
    schedule, journals = _streamed(tmp_path, 4)

    assert written_output_failures(schedule, journals, expected_prices_streamed(4)) == []


def test_a_changed_schedule_amount_or_an_unbalanced_journal_line_fails_the_checks(tmp_path: Path) -> None:
    schedule, journals = _streamed(tmp_path, 4)
    lines = schedule.read_text().splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[6] = "0.01" if fields[6] != "0.01" else "0.02"  # the amount column of C000000's first line
    schedule.write_text("".join([lines[0], ",".join(fields), *lines[2:]]))
    journal_lines = journals.read_text().splitlines(keepends=True)
    journals.write_text("".join([*journal_lines[:-1], journal_lines[-1].replace(",0.00,", ",0.01,", 1)]))

    failures = written_output_failures(schedule, journals, expected_prices_streamed(4))

    assert any(f.startswith("C000000: streamed schedule sums to") for f in failures)
    assert any("streamed journal entry off by" in f for f in failures)
    with pytest.raises(BenchCheckFailed, match="failed check"):
        verify(
            [
                {
                    "n": 4,
                    "lifetime_revenue_mismatches": 0,
                    "full_output_check_failures": len(failures),
                    "full_output_failure_examples": failures,
                }
            ]
        )


def test_tree_memory_sees_a_child_process_holding_memory() -> None:
    """The sampler sums this process and its children: a child holding 64 MB of its own raises the peak."""
    import subprocess
    import sys

    from bench.revenue import TreeMemory

    with TreeMemory(interval_s=0.01) as alone:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    holding = "import time; b = bytearray(64 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.5)"
    with TreeMemory(interval_s=0.01) as with_child:
        subprocess.run([sys.executable, "-c", holding], check=True)  # noqa: S603 - our interpreter, fixed argv

    assert alone.peak_kb > 0
    assert with_child.peak_kb - alone.peak_kb > 48 * 1024
