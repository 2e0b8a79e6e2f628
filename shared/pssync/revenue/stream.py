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
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pssync.revenue.columnar import BulkSchedule
from pssync.revenue.columnar import available as columnar_available
from pssync.revenue.engine import EngineRun
from pssync.revenue.engine import run as run_engine
from pssync.revenue.errors import RevenueRuleError
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
from pssync.revenue.scenario_stream import (
    ScenarioIndex,
    ScenarioInvalid,
    StreamingUnsupported,
    index_scenario,
)
from pssync.revenue.streaming import FrameCheck, PortfolioFrame, frame_from_index, stream_runs

# Collect cycles every so many contracts: the pauses around each engine run keep the collector from
# rescanning, this keeps whatever cycles validation leaves from piling up.
_COLLECT_EVERY = 2_000
KINDS = ("schedule", "journals", "balances")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's cpuset narrows it), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity call on this platform (macOS)
        return os.cpu_count() or 1


@dataclass(slots=True)
class ReportSummary:
    contracts: int = 0
    rows: dict[str, int] = field(default_factory=lambda: {"schedule": 0, "journals": 0, "balances": 0})
    paths: dict[str, Path] = field(default_factory=dict)
    streamed: bool = True  # False: the file's shape made it fall back to the whole-file parse
    workers: int = 1


def write_report(
    text: str,
    output_format: str,
    out: Path,
    as_of: date | None = None,
    workers: int = 1,
    min_shard: int = 500,
    columnar: bool | None = None,
) -> ReportSummary:
    """Write the three files for the scenario `text`. Raises ScenarioInvalid, pydantic.ValidationError (only
    on the whole-file fallback), json.JSONDecodeError, RevenueRuleError, or ParquetUnavailable; nothing is
    left at the output paths then.

    `workers` > 1 (csv / jsonl) splits the contracts, in id order, into that many contiguous shards run by
    forked processes, each writing its own part files, joined in shard order: the same bytes as one process
    (any sharding gives the same figures, test_revenue_sharding.py), in about 1/workers of the time when that
    many cores are free.

    `columnar`: the schedule formatted in bulk with pyarrow (columnar.py), or one row of texts per line
    (False); None: bulk when pyarrow is installed. Same bytes either way (test_revenue_columnar.py)."""
    summary = ReportSummary(paths=output_paths(out))
    if columnar is None:  # decided (pyarrow imported) once here, not again in each forked worker
        columnar = output_format in ("csv", "parquet") and columnar_available()
    partial = {kind: path.with_name(path.name + ".partial") for kind, path in summary.paths.items()}
    parts: list[Path] = []
    try:
        try:
            index = index_scenario(text)
        except StreamingUnsupported:
            # A shape the pre-scan does not read: the whole-file parse either names what is wrong or runs it.
            summary.streamed = False
            run = run_engine(Scenario.model_validate_json(text), as_of)
            _write(iter([run]), output_format, partial, summary, header=True, columnar=columnar)
        else:
            frame = frame_from_index(index, as_of)
            ids = index.contract_ids()
            # Below min_shard contracts a process, the fork costs more than it saves.
            shards = max(1, min(workers, len(ids) // min_shard)) if output_format != "parquet" else 1
            summary.workers = shards
            with _heap_frozen():
                if shards == 1:
                    check = FrameCheck(frame)
                    runs = stream_runs(index, frame, ids, check)
                    _write(runs, output_format, partial, summary, header=True, columnar=columnar)
                    check.finish()
                else:
                    parts = _write_in_processes(
                        index, frame, ids, shards, output_format, partial, summary, columnar
                    )
        for kind, path in partial.items():
            path.replace(summary.paths[kind])
    except BaseException:
        for path in [*partial.values(), *parts]:
            path.unlink(missing_ok=True)
        raise
    return summary


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave what exists now (modules, models, the index) out of the collector's passes while contracts run.

    None of it becomes cyclic garbage during the run, yet a full collection traversed all of it each time
    (measured at 10,000 contracts: about 30 ms a pass, none of it found unreachable). What the run creates
    is collected as before. Nothing is done when the caller froze objects itself: unfreezing would undo
    that too."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _write(
    runs: Iterator[EngineRun],
    output_format: str,
    paths: dict[str, Path],
    summary: ReportSummary,
    header: bool,
    columnar: bool | None = None,
) -> None:
    """columnar: schedule lines formatted in bulk (columnar.py, needs pyarrow; csv and parquet), False: one
    row of texts per line; None: bulk when pyarrow is installed. Both write the same bytes."""
    columns = {"schedule": SCHEDULE_COLUMNS, "journals": JOURNAL_COLUMNS, "balances": BALANCE_COLUMNS}
    bulk = output_format in ("csv", "parquet") and (columnar_available() if columnar is None else columnar)
    sinks: dict[str, RowSink] = {}
    schedule: BulkSchedule | None = None
    try:
        for kind in KINDS:
            if bulk and kind == "schedule":
                schedule = BulkSchedule(output_format, paths[kind], header)
            else:
                sinks[kind] = open_sink(output_format, paths[kind], columns[kind], header=header)
        for run in runs:
            run_rows = RunRows(run, FxConverter(run))
            for outcome in run.contracts:
                if schedule is not None:
                    lines, journals, balances = run_rows.contract_lines(outcome)
                    schedule.add(lines, run_rows.keys, run_rows.statuses)
                    rows = {"journals": journals, "balances": balances}
                else:
                    rows = dict(zip(KINDS, run_rows.contract(outcome), strict=True))
                for kind, kind_rows in rows.items():
                    summary.rows[kind] += len(kind_rows)
                    sinks[kind].write(kind_rows)
            summary.contracts += len(run.contracts)
            if summary.contracts % _COLLECT_EVERY == 0:
                gc.collect()
        if schedule is not None:
            schedule.flush()
            summary.rows["schedule"] += schedule.rows
    finally:
        closing: list[RowSink | BulkSchedule] = [*sinks.values(), *([schedule] if schedule else [])]
        for sink in closing:
            with contextlib.suppress(Exception):  # on failure, the original error is what the caller must see
                sink.close()


# --- worker processes -------------------------------------------------------------------------------------

# What a forked worker inherits (set just before the fork, cleared after): the index and the frame, shared
# copy-on-write rather than pickled.
_INHERITED: tuple[ScenarioIndex, PortfolioFrame] | None = None

_Job = tuple[list[str], str, dict[str, Path], bool | None]  # contract ids, format, part paths, columnar
_PartResult = tuple[str, Any]  # ("ok", (contracts, rows, check extremes)) or ("error", exception parts)


def _write_in_processes(
    index: ScenarioIndex,
    frame: PortfolioFrame,
    ids: list[str],
    shards: int,
    output_format: str,
    partial: dict[str, Path],
    summary: ReportSummary,
    columnar: bool | None,
) -> list[Path]:
    """Shard 0 runs in this process, straight into the partial files (so it is never copied); shards 1.. run
    in forked children writing part files, appended in shard order once every shard has run."""
    global _INHERITED  # set for the fork only: children read it, callers never see it
    bounds = [len(ids) * s // shards for s in range(shards + 1)]
    jobs = [
        (
            ids[bounds[s] : bounds[s + 1]],
            output_format,
            {k: p.with_name(f"{p.name}.{s}") for k, p in partial.items()},
            columnar,
        )
        for s in range(1, shards)
    ]
    parts = [path for _, _, paths, _ in jobs for path in paths.values()]
    _INHERITED = (index, frame)
    try:
        # The heap is frozen (_heap_frozen): the children's collections never traverse what they inherit,
        # so they do not write to (copy) those pages.
        with multiprocessing.get_context("fork").Pool(shards - 1) as pool:  # forks the children now
            pending = pool.map_async(_write_part, jobs)
            check = FrameCheck(frame)
            runs = stream_runs(index, frame, ids[: bounds[1]], check)
            _write(runs, output_format, partial, summary, header=True, columnar=columnar)
            _join_parts(pending.get(), jobs, check, partial, summary)
    except BaseException:
        for path in parts:
            path.unlink(missing_ok=True)
        raise
    finally:
        _INHERITED = None
    return parts


def _join_parts(
    results: list[_PartResult],
    jobs: list[_Job],
    check: FrameCheck,
    partial: dict[str, Path],
    summary: ReportSummary,
) -> None:
    """Check the whole frame with every shard's extremes, then append the children's parts in shard order."""
    for status, payload in results:
        if status == "error":
            raise _rebuilt(payload)
        contracts, rows, extremes = payload
        summary.contracts += contracts
        for kind in KINDS:
            summary.rows[kind] += rows[kind]
        check.merge(*extremes)
    check.finish()
    for kind in KINDS:
        for _, _, paths, _ in jobs:
            _append(paths[kind], partial[kind])
            paths[kind].unlink()


def _append(source: Path, target: Path) -> None:
    """source's bytes after target's: copied inside the kernel (copy_file_range, no round trip through this
    process), or through a 1 MiB buffer for whatever that call did not copy (another file system, say)."""
    with source.open("rb", buffering=0) as part, target.open("r+b", buffering=0) as joined:
        joined.seek(0, os.SEEK_END)
        size = os.fstat(part.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                step = os.copy_file_range(part.fileno(), joined.fileno(), size - copied)
                if step == 0:
                    break
                copied += step
        except OSError:
            if copied:
                raise  # it failed half way: a real I/O error, not a call the file system refuses
    if copied < size:
        with source.open("rb") as rest, target.open("ab") as tail:
            rest.seek(copied)
            shutil.copyfileobj(rest, tail, 1 << 20)


def _write_part(job: _Job) -> _PartResult:
    contract_ids, output_format, paths, columnar = job
    if _INHERITED is None:
        raise RuntimeError("a report part runs only in a process forked by write_report")
    index, frame = _INHERITED
    summary = ReportSummary()
    check = FrameCheck(frame)
    try:
        runs = stream_runs(index, frame, contract_ids, check)
        _write(runs, output_format, paths, summary, header=False, columnar=columnar)
    except RevenueRuleError as error:
        return "error", ("rule", error.reason, error.field)
    except ScenarioInvalid as error:
        return "error", ("invalid", error.problems, None)
    return "ok", (summary.contracts, summary.rows, check.extremes())


def _rebuilt(payload: tuple[str, Any, str | None]) -> Exception:
    kind, detail, field_path = payload
    if kind == "rule":
        return RevenueRuleError(detail, field_path)
    return ScenarioInvalid(detail)
