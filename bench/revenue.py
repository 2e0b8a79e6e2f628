"""Benchmark of the revenue engine on the reference portfolio.

N contracts, 36-month term, 5 obligations each: 3 ratable monthly over the 36 months, 1 point-in-time licence
satisfied in month 1, 1 implementation by progress over months 1-6 (25 % / 60 % / 100 % at the ends of months
2 / 4 / 6). One fixed price at a 6-15 % discount to the SSP total, allocated by relative SSP. One prospective
modification per contract at the start of month 13 raising the lifetime price by 10 %. The engine computes the
full monthly schedule (36 periods x 5 obligations) of every contract with month 12 closed.

Each size runs in a fresh subprocess: time is the median of several runs inside it (scenario validation and
engine run timed separately), memory is that process's peak RSS (ru_maxrss), reported raw and minus the
peak RSS of a process that only imports the package.

Full output (beside the engine-only figures): the scenario is written to a file first (untimed), then a fresh
subprocess runs what `pssync revrec run FILE --format csv --out OUT` runs (read the file, pre-scan, validate,
run and write contract by contract: every schedule line with zeros, every journal line, the balances) and
reports its wall and CPU time (median of the repeats), its peak RSS and, from one more untimed run, the
peak summed PSS of it and its workers (shared copy-on-write pages counted once). Its files are then
checked by this process, reading them as a stream: every contract's schedule sums to its modified price
and every journal entry balances (per contract, period and basis).

Correctness is checked outside the timed sections: every contract's lifetime revenue must equal its modified
price, and with --with-outputs every journal entry must balance. Any failure makes the run fail (exit 1):
timings of wrong figures are not reported.

    python -m bench.revenue                      # N = 1,000 and 10,000
    python -m bench.revenue --sizes 1000 10000 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported inside the worker: the baseline process measures the bare import
    from pssync.revenue import RevenueContract, RevenueResult, Scenario
    from pssync.revenue.result import JournalEntry

REPO = Path(__file__).resolve().parents[1]
START, END = date(2023, 1, 1), date(2025, 12, 31)
MODIFIED_ON = date(2024, 1, 1)  # start of month 13
CLOSE_OF_MONTH_12 = date(2024, 1, 5)
AS_OF = date(2024, 1, 31)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def portfolio(n: int, seed: int = 606) -> dict[str, Any]:
    """The reference portfolio as a decoded scenario document."""
    contracts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for versions, contract_events in _contracts(n, seed):
        contracts.extend(versions)
        events.extend(contract_events)
    events.append(_CLOSE)
    return {"schema_version": "1", "as_of": str(AS_OF), "contracts": contracts, "events": events}


def portfolio_json(n: int, seed: int = 606) -> bytes:
    """The reference portfolio as scenario file bytes, encoded contract by contract to stay small."""
    contracts: list[str] = []
    events: list[str] = []
    for versions, contract_events in _contracts(n, seed):
        contracts.extend(json.dumps(v, separators=(",", ":")) for v in versions)
        events.extend(json.dumps(e, separators=(",", ":")) for e in contract_events)
    events.append(json.dumps(_CLOSE))
    head = f'{{"schema_version":"1","as_of":"{AS_OF}",'
    return f'{head}"contracts":[{",".join(contracts)}],"events":[{",".join(events)}]}}'.encode()


_CLOSE = {"type": "period_close", "id": "close-2023-12", "on": str(CLOSE_OF_MONTH_12), "period": "2023-12"}
_PROGRESS = (("2023-02-28", "25"), ("2023-04-30", "60"), ("2023-06-30", "100"))


def _contracts(n: int, seed: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    rng = random.Random(seed)
    for i in range(n):
        cid = f"C{i:06d}"
        ratable_ssp = [Decimal(rng.randrange(12_000, 120_000)) for _ in range(3)]
        licence_ssp = Decimal(rng.randrange(20_000, 200_000))
        implementation_ssp = Decimal(rng.randrange(10_000, 100_000))
        ssp_total = sum(ratable_ssp) + licence_ssp + implementation_ssp
        discount = Decimal(rng.randrange(600, 1501)) / 10_000  # 6-15 %
        price = (ssp_total * (1 - discount)).quantize(Decimal("0.01"))
        common = {"contract_id": cid, "legal_entity": "LE-US", "currency": "USD"}
        versions = [
            {
                **common,
                "version": version,
                "effective_date": str(effective),
                "causing_event_id": f"{cid}-{cause}",
                "fixed_price": _money(price * factor),
                "obligations": _obligations(version, ratable_ssp, licence_ssp, implementation_ssp),
            }
            for version, effective, cause, factor in (
                (1, START, "won", Decimal(1)),
                (2, MODIFIED_ON, "amended", Decimal("1.10")),
            )
        ]
        yield versions, _events(cid)


def _obligations(
    version: int, ratable_ssp: list[Decimal], licence_ssp: Decimal, implementation_ssp: Decimal
) -> list[dict[str, Any]]:
    # In version 2 the ratable SSPs are those of the 24 remaining months (prospective modification).
    factor = Decimal(1) if version == 1 else Decimal(24) / Decimal(36)
    ratable = {"kind": "ratable", "start": str(START), "end": str(END), "basis": "period"}
    items: list[dict[str, Any]] = [
        {"id": f"service-{k}", "ssp": _money(ssp * factor), "pattern": ratable}
        for k, ssp in enumerate(ratable_ssp)
    ]
    items.append({"id": "licence", "ssp": _money(licence_ssp), "pattern": {"kind": "point_in_time"}})
    items.append(
        {"id": "implementation", "ssp": _money(implementation_ssp), "pattern": {"kind": "output_progress"}}
    )
    return items


def _events(cid: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {
            "type": "satisfied",
            "id": f"{cid}-lic",
            "contract_id": cid,
            "obligation_id": "licence",
            "on": "2023-01-20",
        }
    ]
    events.extend(
        {
            "type": "progress",
            "id": f"{cid}-p{percent}",
            "contract_id": cid,
            "obligation_id": "implementation",
            "on": month_end,
            "percent_complete": percent,
        }
        for month_end, percent in _PROGRESS
    )
    return events


# --- correctness checks ---------------------------------------------------------------------------------


class BenchCheckFailed(RuntimeError):
    """A benchmarked run computed wrong figures: its timings are not worth reporting."""


def expected_prices(scenario: Scenario) -> dict[str, Decimal]:
    """Lifetime price of each contract: the fixed price of its latest version."""
    latest: dict[str, RevenueContract] = {}
    for contract in scenario.contracts:
        if contract.contract_id not in latest or contract.version > latest[contract.contract_id].version:
            latest[contract.contract_id] = contract
    return {cid: contract.fixed_price for cid, contract in latest.items()}


def lifetime_revenue_mismatches(result: RevenueResult, prices: Mapping[str, Decimal]) -> list[str]:
    """Contracts whose revenue over the whole schedule differs from their price (or that have no result)."""
    mismatches = []
    computed = set()
    for outcome in result.run.contracts:
        computed.add(outcome.contract_id)
        lifetime = Decimal(sum(r[-1] for r in outcome.reported.values())).scaleb(-outcome.exponent)
        price = prices.get(outcome.contract_id)
        if lifetime != price:
            mismatches.append(f"{outcome.contract_id}: lifetime revenue {lifetime} != price {price}")
    mismatches.extend(f"{cid}: no result" for cid in sorted(set(prices) - computed))
    return mismatches


def unbalanced_journals(entries: Iterable[JournalEntry]) -> list[str]:
    """Journal entries whose debits and credits differ, in the transaction or the functional currency."""
    unbalanced = []
    for entry in entries:
        for currency, lines in (
            (entry.currency, entry.lines),
            (entry.functional_currency, entry.functional_lines),
        ):
            if lines is None:
                continue
            debits = sum((line.debit for line in lines), Decimal(0))
            credits = sum((line.credit for line in lines), Decimal(0))
            if debits != credits:
                unbalanced.append(
                    f"{entry.contract_id} {entry.period}: debits {debits} != credits {credits} {currency}"
                )
    return unbalanced


def _examples(row: Mapping[str, Any]) -> list[str]:
    return [*row.get("check_failures", []), *row.get("full_output_failure_examples", [])]


def verify(rows: Iterable[Mapping[str, Any]]) -> None:
    """Raise BenchCheckFailed when any size reported a failed correctness check."""
    failed = [
        f"n={row['n']}: {row['lifetime_revenue_mismatches']} lifetime revenue mismatch(es), "
        f"{row.get('unbalanced_journal_entries', 0)} unbalanced journal entr(ies), "
        f"{row.get('full_output_check_failures', 0)} failed check(s) of the streamed files, "
        f"e.g. {'; '.join(_examples(row)[:3])}"
        for row in rows
        if row["lifetime_revenue_mismatches"]
        or row.get("unbalanced_journal_entries", 0)
        or row.get("full_output_check_failures", 0)
    ]
    if failed:
        raise BenchCheckFailed("correctness checks failed: " + " | ".join(failed))


# --- measurement ----------------------------------------------------------------------------------------


def _worker(n: int, repeat: int, with_outputs: bool = False) -> dict[str, Any]:
    from pssync.revenue import parse_scenario, run_scenario

    document = portfolio_json(n)
    parse_s, engine_s, outputs_s, cpu_s = [], [], [], []
    output_lines = 0
    cells = 0
    failures: dict[str, None] = {}  # insertion-ordered set: every repeat computes the same figures
    unbalanced: dict[str, None] = {}
    for _ in range(repeat):
        gc.collect()
        before = os.times()
        t0 = time.perf_counter()
        scenario = parse_scenario(document)
        t1 = time.perf_counter()
        result = run_scenario(scenario)
        t2 = time.perf_counter()
        after = os.times()
        # CPU time beside wall time: on a shared machine waiting for a core inflates wall time only.
        cpu_s.append(after.user - before.user + after.system - before.system)
        parse_s.append(t1 - t0)
        engine_s.append(t2 - t1)
        if with_outputs:
            # Materialise the closing outputs as models: journals and balances up to as_of, RPO with bands.
            # One list at a time (as a caller would), the balance check of the journals left out of the time.
            journals = result.journals()
            t3 = time.perf_counter()
            unbalanced.update(dict.fromkeys(unbalanced_journals(journals)))
            check_s = time.perf_counter() - t3
            output_lines = len(journals)
            del journals
            output_lines += len(result.rollforward()) + len(result.rpo())
            outputs_s.append(time.perf_counter() - t2 - check_s)
        cells = sum(len(r) for c in result.run.contracts for r in c.reported.values())
        failures.update(dict.fromkeys(lifetime_revenue_mismatches(result, expected_prices(scenario))))
        del result, scenario
    return {
        "n": n,
        "cells": cells,
        "parse_s": parse_s,
        "engine_s": engine_s,
        "outputs_s": outputs_s,
        "cpu_s": cpu_s,
        "output_lines": output_lines,
        "lifetime_revenue_mismatches": len(failures),
        **({"unbalanced_journal_entries": len(unbalanced)} if with_outputs else {}),
        "check_failures": [*failures, *unbalanced][:10],
        "input_json_mb": round(len(document) / 2**20, 1),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def expected_prices_streamed(n: int, seed: int = 606) -> dict[str, Decimal]:
    """The lifetime price of each reference contract (its last version), without building the scenario."""
    return {
        versions[-1]["contract_id"]: Decimal(versions[-1]["fixed_price"])
        for versions, _ in _contracts(n, seed)
    }


def written_output_failures(schedule: Path, journals: Path, prices: Mapping[str, Decimal]) -> list[str]:
    """Read the streamed files back (one row at a time): each contract's schedule must sum to its price, each
    journal entry (contract, period, basis) must balance, and every contract must be there."""
    revenue: dict[str, Decimal] = {}
    with schedule.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            revenue[row["contract_id"]] = revenue.get(row["contract_id"], Decimal(0)) + Decimal(row["amount"])
    failures = [
        f"{cid}: streamed schedule sums to {revenue.get(cid)} != price {price}"
        for cid, price in prices.items()
        if revenue.get(cid) != price
    ]
    failures.extend(
        f"{cid}: streamed for a contract not in the portfolio" for cid in set(revenue) - set(prices)
    )
    balance: dict[tuple[str, str, str], Decimal] = {}
    with journals.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            key = (row["contract_id"], row["period"], row["basis"])
            balance[key] = balance.get(key, Decimal(0)) + Decimal(row["debit"]) - Decimal(row["credit"])
    failures.extend(
        f"{' '.join(key)}: streamed journal entry off by {off}" for key, off in balance.items() if off
    )
    if not balance:
        failures.append("no journal lines streamed")
    return failures


class TreeMemory:
    """Samples the summed PSS of this process and its children (Linux /proc; 0 elsewhere) every `interval_s`.

    PSS shares each page among the processes mapping it, so forked workers' copy-on-write pages count once:
    the memory the run really holds. Peak RSS summed over processes counts them once per process."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _children(pid: int) -> list[int]:
        found: list[int] = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as listing:
                    found.extend(int(child) for child in listing.read().split())
        except OSError:
            pass
        return found

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = 0
            for pid in (me, *self._children(me)):
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as rollup:
                        total += sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
                except OSError:
                    continue  # a worker that just ended
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(self.interval_s)


def _stream_worker(
    scenario: Path, out: Path, repeat: int, output_format: str, workers: int, columnar: bool | None = None
) -> dict[str, Any]:
    """What `pssync revrec run SCENARIO --format FORMAT --out OUT` does, timed from file in to files out."""
    from pssync.revenue.stream import write_report

    wall_s, cpu_s = [], []
    rows: dict[str, int] = {}
    processes = 1
    for _ in range(repeat):
        gc.collect()
        before = os.times()
        t0 = time.perf_counter()
        text = scenario.read_text(encoding="utf-8")
        summary = write_report(text, output_format, out, workers=workers, columnar=columnar)
        wall_s.append(time.perf_counter() - t0)
        after = os.times()
        # Worker processes are reaped before write_report returns: their CPU is in the children fields.
        cpu_s.append(sum(after[i] - before[i] for i in range(4)))
        rows, processes = summary.rows, summary.workers
        del summary
    # Memory from one more run, untimed: the sampler reads /proc in this process, where shard 0 runs.
    with TreeMemory() as memory:
        text = scenario.read_text(encoding="utf-8")
        write_report(text, output_format, out, workers=workers, columnar=columnar)
    return {
        "wall_s": wall_s,
        "pss_peak_kb": memory.peak_kb,
        "cpu_s": cpu_s,
        "rows": rows,
        "processes": processes,
        "output_mb": round(sum(p.stat().st_size for p in out.parent.iterdir()) / 2**20, 1),
        # With worker processes the peak RSS adds the largest worker's once per worker (an upper bound).
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        + (processes * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if processes > 1 else 0),
        "load_average_1m": round(os.getloadavg()[0], 1),  # other work on the machine: wall time waits on it
    }


def _full_output(
    n: int, repeat: int, workers: int = 1, output_format: str = "csv", path: str = "auto"
) -> dict[str, Any]:
    """Write the scenario file, stream it in a fresh subprocess, check the files; the figures of one size."""
    with tempfile.TemporaryDirectory(prefix="bench-revenue-") as workdir:
        scenario = Path(workdir) / "portfolio.json"
        scenario.write_bytes(portfolio_json(n))
        out = Path(workdir) / "out" / f"report.{output_format}"
        out.parent.mkdir()
        raw = _subprocess(
            "--stream-worker",
            str(scenario),
            "--out",
            str(out),
            "--repeat",
            str(repeat),
            "--format",
            output_format,
            "--stream-workers",
            str(workers),
            "--stream-path",
            path,
        )
        failures = (
            written_output_failures(
                out, out.with_name(f"{out.stem}.journals{out.suffix}"), expected_prices_streamed(n)
            )
            if output_format == "csv"
            else []
        )
    return {
        "full_output_median_s": round(statistics.median(raw["wall_s"]), 3),
        "full_output_cpu_median_s": round(statistics.median(raw["cpu_s"]), 3),
        "full_output_runs_s": [round(t, 3) for t in raw["wall_s"]],
        "full_output_peak_rss_mb": round(raw["maxrss_kb"] / 1024, 1),
        "full_output_peak_pss_mb": round(raw["pss_peak_kb"] / 1024, 1),
        "full_output_processes": raw["processes"],
        "full_output_path": path,
        "full_output_load_average_1m": raw["load_average_1m"],
        "full_output_schedule_lines": raw["rows"]["schedule"],
        "full_output_journal_lines": raw["rows"]["journals"],
        "full_output_balance_lines": raw["rows"]["balances"],
        "full_output_files_mb": raw["output_mb"],
        "full_output_check_failures": len(failures),
        "full_output_failure_examples": failures[:5],
    }


def _baseline() -> dict[str, Any]:
    import pssync.revenue  # noqa: F401 - the import is what is measured

    return {"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def _subprocess(*args: str) -> dict[str, Any]:
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "bench.revenue", *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def run(
    sizes: list[int],
    repeat: int = 3,
    with_outputs: bool = False,
    full_output: bool = True,
    stream_workers: int = 1,
    stream_path: str = "auto",
) -> dict[str, Any]:
    """Run each size in a fresh subprocess; medians of `repeat` runs and peak memory per size.

    with_outputs also builds the journals, rollforward and RPO models after each run (timed separately;
    their memory then counts in the peak). full_output streams the whole schedule, journals and balances
    from the scenario file to CSV files in another fresh subprocess (`_full_output`, with `stream_workers`
    processes). Raises BenchCheckFailed when a correctness check failed.
    """
    baseline_kb = _subprocess("--baseline")["maxrss_kb"]
    rows = []
    for n in sizes:
        extra = ["--with-outputs"] if with_outputs else []
        raw = _subprocess("--worker", str(n), "--repeat", str(repeat), *extra)
        engine, parse = statistics.median(raw["engine_s"]), statistics.median(raw["parse_s"])
        rows.append(
            {
                "n": n,
                "schedule_cells": raw["cells"],
                "engine_median_s": round(engine, 3),
                "parse_median_s": round(parse, 3),
                "total_median_s": round(engine + parse, 3),
                "total_cpu_median_s": round(statistics.median(raw["cpu_s"]), 3),
                "engine_runs_s": [round(t, 3) for t in raw["engine_s"]],
                "parse_runs_s": [round(t, 3) for t in raw["parse_s"]],
                "engine_us_per_contract": round(engine / n * 1e6, 1),
                "peak_rss_mb": round(raw["maxrss_kb"] / 1024, 1),
                "peak_rss_minus_import_baseline_mb": round((raw["maxrss_kb"] - baseline_kb) / 1024, 1),
                "input_json_mb": raw["input_json_mb"],
                "lifetime_revenue_mismatches": raw["lifetime_revenue_mismatches"],
                **(
                    {
                        "unbalanced_journal_entries": raw["unbalanced_journal_entries"],
                        "outputs_median_s": round(statistics.median(raw["outputs_s"]), 3),
                        "output_lines": raw["output_lines"],
                    }
                    if with_outputs
                    else {}
                ),
                "check_failures": raw["check_failures"],
                **(_full_output(n, repeat, stream_workers, path=stream_path) if full_output else {}),
            }
        )
    verify(rows)
    return {"baseline_import_rss_mb": round(baseline_kb / 1024, 1), "repeat": repeat, "sizes": rows}


# --stream-path: write_report's `columnar` (None: bulk when pyarrow is installed).
_STREAM_PATHS: dict[str, bool | None] = {"auto": None, "bulk": True, "rows": False}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--with-outputs", action="store_true", help="also build journals, rollforward and RPO"
    )
    parser.add_argument(
        "--engine-only", action="store_true", help="leave out the full-output (streamed files) figures"
    )
    parser.add_argument(
        "--stream-workers",
        type=int,
        default=1,
        help="processes of the full-output run (revrec run --workers)",
    )
    parser.add_argument(
        "--stream-path",
        choices=list(_STREAM_PATHS),
        default="auto",
        help="schedule formatting of the full-output run: bulk (pyarrow), rows (pure Python), auto",
    )
    parser.add_argument("--stream-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", default="csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline:
        print(json.dumps(_baseline()))
    elif args.stream_worker:
        print(
            json.dumps(
                _stream_worker(
                    args.stream_worker,
                    args.out,
                    args.repeat,
                    args.format,
                    args.stream_workers,
                    _STREAM_PATHS[args.stream_path],
                )
            )
        )
    elif args.worker:
        print(json.dumps(_worker(args.worker, args.repeat, args.with_outputs)))
    else:
        try:
            figures = run(
                args.sizes,
                args.repeat,
                args.with_outputs,
                not args.engine_only,
                args.stream_workers,
                args.stream_path,
            )
            print(json.dumps(figures, indent=2))
        except BenchCheckFailed as error:
            sys.exit(f"bench.revenue: {error}")


if __name__ == "__main__":
    main()
