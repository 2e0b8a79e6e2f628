"""`make scorecard`: every implemented row on one local runtime, reports/scorecard.{md,json}, exit 1 on a
failed row.

python -m scorecard [--quick] [--only R4 R1 ...] [--seed N] [--n R5=100 ...] [--out DIR] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scorecard.harness import RowResult
from scorecard.report import write_reports
from scorecard.rows import NOT_IMPLEMENTED, ROWS, run_rows
from scorecard.senders import ROOT

DEFAULT_SEED = 20261130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scorecard", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the CI size of every row (small N)")
    parser.add_argument("--only", nargs="+", metavar="ROW", help=f"rows to run, of {', '.join(ROWS)}")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=ROOT / "reports", help="where scorecard.md/.json go")
    parser.add_argument("--workdir", type=Path, default=None, help="secrets and Lambda log of the run")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--n", nargs="+", default=[], metavar="ROW=N", help="another N for a row, e.g. --n R5=100"
    )
    args = parser.parse_args(argv)

    wanted = [r.upper() for r in (args.only or list(ROWS))]
    unknown = [r for r in wanted if r not in ROWS and r not in NOT_IMPLEMENTED]
    if unknown:
        parser.error(f"unknown rows {unknown}; implemented: {', '.join(ROWS)}")
    try:
        sizes = {row.upper(): int(n) for row, _, n in (item.partition("=") for item in args.n)}
    except ValueError:
        parser.error("--n takes ROW=N, e.g. R5=100")
    started = time.monotonic()

    def report_so_far(done: list[RowResult], pending: list[str]) -> None:
        if pending:
            write_reports(
                done,
                args.out,
                quick=args.quick,
                seed=args.seed,
                wall_s=time.monotonic() - started,
                pending=pending,
            )

    results = run_rows(
        wanted,
        quick=args.quick,
        seed=args.seed,
        workdir=args.workdir,
        quiet=args.quiet,
        sizes=sizes,
        on_row=report_so_far,
    )
    md, js = write_reports(
        results, args.out, quick=args.quick, seed=args.seed, wall_s=time.monotonic() - started
    )
    failed = [r.id for r in results if r.passed is False]
    print(
        f"scorecard: {md} and {js}; "
        + (f"FAILED rows: {', '.join(failed)}" if failed else "every implemented row passed")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
