"""Scenario file in, schedule / journals / balances files out, one contract at a time.

`write_report(text, output_format, out)` indexes the file (scenario_stream.py), fixes the portfolio frame,
then for each contract in id order: validates its versions and events, runs the engine (streaming.py),
writes its rows (output.py) and drops everything before the next contract. Memory holds the file's text, the
index of element spans and one contract; never the portfolio's objects or its lines.

Files are written under temporary names and renamed only when every contract has run, so a refusal (a
revenue rule, an invalid contract further down the file) leaves no partial output behind.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pssync.revenue.engine import EngineRun
from pssync.revenue.engine import run as run_engine
from pssync.revenue.models import Scenario
from pssync.revenue.output import (
    BALANCE_COLUMNS,
    JOURNAL_COLUMNS,
    SCHEDULE_COLUMNS,
    RowSink,
    RunRows,
    open_sink,
    output_paths,
)
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.scenario_stream import StreamingUnsupported, index_scenario
from pssync.revenue.streaming import frame_from_index, stream_runs

# Collect cycles every so many contracts: the pauses around each engine run keep the collector from
# rescanning, this keeps whatever cycles validation leaves from piling up.
_COLLECT_EVERY = 2_000
KINDS = ("schedule", "journals", "balances")


@dataclass(slots=True)
class ReportSummary:
    contracts: int = 0
    rows: dict[str, int] = field(default_factory=lambda: {"schedule": 0, "journals": 0, "balances": 0})
    paths: dict[str, Path] = field(default_factory=dict)
    streamed: bool = True  # False: the file's shape made it fall back to the whole-file parse


def write_report(
    text: str,
    output_format: str,
    out: Path,
    as_of: date | None = None,
    whole_file_parse: type[Scenario] | None = None,
) -> ReportSummary:
    """Write the three files for the scenario `text`. Raises ScenarioInvalid, pydantic.ValidationError (only
    on the whole-file fallback), json.JSONDecodeError, RevenueRuleError, or ParquetUnavailable; nothing is
    left at the output paths then."""
    summary = ReportSummary(paths=output_paths(out))
    partial = {kind: path.with_name(path.name + ".partial") for kind, path in summary.paths.items()}
    sinks: dict[str, RowSink] = {}
    try:
        runs = _runs(text, as_of, summary, whole_file_parse or Scenario)
        sinks = {
            "schedule": open_sink(output_format, partial["schedule"], SCHEDULE_COLUMNS),
            "journals": open_sink(output_format, partial["journals"], JOURNAL_COLUMNS),
            "balances": open_sink(output_format, partial["balances"], BALANCE_COLUMNS),
        }
        for run in runs:
            run_rows = RunRows(run, FxConverter(run))
            for outcome in run.contracts:
                for kind, rows in zip(KINDS, run_rows.contract(outcome), strict=True):
                    summary.rows[kind] += len(rows)
                    sinks[kind].write(rows)
            summary.contracts += len(run.contracts)
            if summary.contracts % _COLLECT_EVERY == 0:
                gc.collect()
        for sink in sinks.values():
            sink.close()
        for kind, path in partial.items():
            path.replace(summary.paths[kind])
    except BaseException:
        for sink in sinks.values():
            with contextlib.suppress(Exception):  # the original error is what the caller must see
                sink.close()
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    return summary


def _runs(
    text: str, as_of: date | None, summary: ReportSummary, model: type[Scenario]
) -> Iterator[EngineRun]:
    try:
        index = index_scenario(text)
    except StreamingUnsupported:
        # A shape the pre-scan does not read: the whole-file parse either names what is wrong or runs it.
        summary.streamed = False
        return iter([run_engine(model.model_validate_json(text), as_of)])
    frame = frame_from_index(index, as_of)
    return stream_runs(index, frame)
