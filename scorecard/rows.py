"""The rows, in the order they run, and the one local runtime they share."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scorecard import (
    r1_duplicates,
    r2_faults,
    r3_recovery,
    r4_forged,
    r5_out_of_order,
    r6_timeout,
    r7_fuzzing,
    r8_static,
)
from scorecard.harness import CpuTimes, RowResult, Stack, running_stack
from scorecard.progress import Progress

Row = Callable[[Stack, int, int, Progress], RowResult]  # (stack, n, seed, progress)

# R4 first: it compares snapshots of everything, so nothing else may be running; R8 last: it greps the
# Lambda log of everything the run did. R3 replays what R2 parked, right after it.
ROWS: dict[str, Any] = {
    module.ID: module
    for module in (
        r4_forged,
        r1_duplicates,
        r5_out_of_order,
        r6_timeout,
        r2_faults,
        r3_recovery,
        r7_fuzzing,
        r8_static,
    )
}
NOT_IMPLEMENTED: dict[str, tuple[str, str]] = {}


def run_rows(
    wanted: list[str],
    *,
    quick: bool,
    seed: int,
    workdir: Path | None = None,
    quiet: bool = False,
    sizes: dict[str, int] | None = None,
    on_row: Callable[[list[RowResult], list[str]], None] | None = None,
) -> list[RowResult]:
    """Every wanted row on one runtime; N is the row's full or quick size unless `sizes` names another.
    `on_row(results so far, rows still to run)` after each row: a long run that is stopped keeps a report."""
    results: list[RowResult] = []
    display = None if quiet else Progress.rich()
    progress = Progress(display)
    implemented = [row for row in ROWS if row in wanted]  # always in the order of ROWS
    if implemented:
        if display is not None:
            display.start()
        try:
            progress.log("starting the local runtime (every webhook scheme configured)")
            started = time.monotonic()
            with running_stack(workdir) as stack:
                progress.log(f"runtime up in {time.monotonic() - started:.1f} s at {stack.runtime.api.url}")
                for row in implemented:
                    module = ROWS[row]
                    name = module.NAME
                    n = (sizes or {}).get(row, module.QUICK_N if quick else module.FULL_N)
                    row_started = time.monotonic()
                    cpu_before = CpuTimes.now()
                    try:
                        result = module.run(stack, n, seed, progress)
                    except Exception as error:  # a crashed row is a failed row, with its cause
                        result = RowResult(
                            id=row,
                            name=name,
                            seed=seed,
                            n=0,
                            wall_s=round(time.monotonic() - row_started, 1),
                            passed=False,
                            failures=[f"row crashed: {error!r}", *traceback.format_exc().splitlines()[-12:]],
                        )
                    cpu = CpuTimes.now() - cpu_before
                    if result.n:
                        # The runtime process is what bounds the rate (one interpreter: moto, dispatch,
                        # pollers): its CPU per unit of N is the figure a speed-up moves.
                        result.notes.append(
                            f"CPU: runtime process {cpu.runtime_s:.1f} s ({cpu.runtime_s / result.n:.3f} s "
                            f"per unit of N), Lambda containers {cpu.containers_s:.1f} s "
                            f"({cpu.containers_s / result.n:.3f} s per unit of N)"
                        )
                    issue_n = getattr(module, "ISSUE_N", None)
                    if issue_n and 0 < result.n < issue_n and result.wall_s:
                        rate = result.n / result.wall_s
                        result.notes.append(
                            f"N = {result.n}, not the {issue_n:,} issue 12 asks: at the rate measured here "
                            f"({rate:.2f} per s on the local runtime of this shared 2-core machine, load "
                            f"average {os.getloadavg()[0]:.0f} at the row's end) the issue's N would take "
                            f"about {issue_n / rate / 60:.0f} min"
                        )
                    # A failure quoting a request must not carry a secret into the report (a key in a URL).
                    result.failures = [
                        _redact(line, r8_static.needles(stack.secrets)) for line in result.failures
                    ]
                    progress.log(
                        f"{result.id} {result.name}: {'passed' if result.passed else 'FAILED'} "
                        f"(N={result.n}, {result.wall_s} s)"
                    )
                    results.append(result)
                    if on_row is not None:
                        on_row(sorted(results, key=lambda r: int(r.id[1:])), implemented[len(results) :])
        finally:
            if display is not None:
                display.stop()
    for row, (name, expectation) in NOT_IMPLEMENTED.items():
        if row in wanted or set(ROWS) <= set(wanted):  # named, or a run of every row
            results.append(
                RowResult(
                    id=row,
                    name=name,
                    seed=None,
                    n=0,
                    wall_s=0.0,
                    passed=None,
                    expectation=expectation,
                    status="not implemented",
                )
            )
    return sorted(results, key=lambda r: int(r.id[1:]))


def _redact(line: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        line = line.replace(secret, "[secret]")
    return line
