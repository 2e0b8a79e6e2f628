"""`make bench`: cold start of ingest_webhook, ingest latency under moto, the revenue engine (engine only, and
full output: every schedule line, journal line and balance streamed from the scenario file to CSV files).

    python -m bench                          # everything; writes build/bench/results.json
    python -m bench --only coldstart --quick # one section, fewer repetitions
    python -m bench --only revenue --revenue-sizes 1000,10000,100000

Sections not run keep their previous figures in results.json (each section carries its own timestamp).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "build" / "bench" / "results.json"
SECTIONS = ("coldstart", "ingest", "sources", "revenue", "burst")
# Minutes each on the local runtime: run only when named (`--only propagation`, `--only close`).
LONG_SECTIONS = ("propagation", "close")
# Wide enough for the tables when the output is a pipe or a log (make bench | tee ...).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)
SERVICE_ABBREVIATIONS = {"dynamodb": "ddb", "events": "eb", "secretsmanager": "sm"}


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", choices=SECTIONS + LONG_SECTIONS, action="append", help="run only this section (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for iterating")
    parser.add_argument("--revenue-sizes", type=_sizes, default=[1_000, 10_000], metavar="N,N,...")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON (default: %(default)s)")
    return parser.parse_args(argv)


# --- sections ---------------------------------------------------------------------------------------------


def run_coldstart(quick: bool) -> dict[str, Any]:
    from bench import coldstart

    return coldstart.run(runs=5 if quick else 15, profile_runs=2 if quick else 5, log=console.print)


def run_ingest(quick: bool) -> dict[str, Any]:
    from bench import ingest

    return ingest.run(iterations=60 if quick else 300, warmup=10 if quick else 20)


def run_revenue(quick: bool, sizes: list[int]) -> dict[str, Any]:
    """A failed correctness check (lifetime revenue, balanced journals, the streamed files' sums and balance)
    raises BenchCheckFailed: the section fails and `make bench` exits 1 (a benchmark whose check cannot fail
    measures nothing)."""
    from bench import revenue

    result: dict[str, Any] = revenue.run(sizes, repeat=1 if quick else 3)
    return result


def run_sources(quick: bool) -> dict[str, Any]:
    from bench import sources

    return {"per_source": sources.run(rounds=100 if quick else 300)}


def print_sources(result: dict[str, Any]) -> None:
    table = Table(title="Verification + normalisation per event, in-process (baseline: parsing the body)")
    for column in ("source", "events", "bytes", "p50 µs/event", "p99 µs/event", "parse p50 µs", "ratio"):
        table.add_column(column, justify="right")
    for name, row in result["per_source"].items():
        table.add_row(
            name,
            str(row["events_per_delivery"]),
            str(row["body_bytes"]),
            str(row["p50_us_per_event"]),
            str(row["p99_us_per_event"]),
            str(row["baseline_parse_p50_us"]),
            f"x{row['ratio_to_parse']}",
        )
    console.print(table)


def run_burst(quick: bool) -> dict[str, Any]:
    from bench import burst

    return burst.run(count=200 if quick else 1000)


def run_propagation(quick: bool) -> dict[str, Any]:
    from bench import propagation

    burst = propagation.run(count=20 if quick else 100)
    paced = propagation.run(count=10 if quick else 30, pace_seconds=2.0)
    return {"burst": burst, "paced": paced}


def run_close(quick: bool) -> dict[str, Any]:
    from bench import close

    return close.run_close(1_000 if quick else 10_000, seed=8, log=console.print)


def print_json(result: dict[str, Any]) -> None:
    console.print_json(data=result, default=str)


def print_burst(result: dict[str, Any]) -> None:
    table = Table(title="Ingest burst on the local runtime (second process, 127.0.0.1)")
    for column in ("path", "requests", "statuses", "p50 ms", "p99 ms", "max ms", "req/s"):
        table.add_column(column, justify="right")
    for label, key in (
        ("signed time.approved", "signed"),
        ("baseline: unknown source", "baseline_unknown_source"),
    ):
        row = result[key]
        table.add_row(
            label,
            str(row["requests"]),
            json.dumps(row["statuses"]),
            str(row["p50_ms"]),
            str(row["p99_ms"]),
            str(row["max_ms"]),
            str(row["throughput_rps"]),
        )
    console.print(table)
    console.print(f"ratio to baseline: p50 x{result['p50_ratio']}, p99 x{result['p99_ratio']}")


# --- printing ---------------------------------------------------------------------------------------------


def _range(stats: dict[str, float]) -> str:
    return f"{stats['median_ms']:.1f}  ({stats['p25_ms']:.1f}-{stats['p75_ms']:.1f})"


def print_coldstart(result: dict[str, Any]) -> None:
    table = Table(title=f"Cold start: init of ingest_webhook, median of {result['runs']} fresh processes")
    table.add_column("handler")
    table.add_column("ready ms, median (IQR)", justify="right")
    table.add_column("import ms, median (IQR)", justify="right")
    table.add_column("modules", justify="right")
    table.add_column("boto3 at init")
    labels = {
        "empty": "empty baseline",
        "handler": "ingest_webhook, layer precompiled",
        "handler_shipped": "ingest_webhook, layer without .pyc (before 2026-11-25)",
        "handler_sdk_traced": "ingest_webhook, precompiled, Tracer on (pssync:tracing=sdk)",
    }
    for name, label in labels.items():
        row = result["variants"][name]
        table.add_row(
            label,
            _range(row["ready"]),
            _range(row["import"]),
            str(row["modules_loaded"]),
            "yes" if row["boto3_imported_at_init"] else "no",
        )
    console.print(table)
    console.print(
        f"ready, precompiled vs empty: x{result['ratio_ready_handler_to_empty']} "
        f"(+{result['difference_ready_ms']} ms); without .pyc vs empty: "
        f"x{result['ratio_ready_shipped_to_empty']} (+{result['difference_ready_shipped_ms']} ms); "
        f"median of per-round ratios: x{result['paired_ratio_ready_handler_to_empty']} / "
        f"x{result['paired_ratio_ready_shipped_to_empty']}"
    )
    console.print(
        f"Tracer on vs off (precompiled): +{result['difference_ready_sdk_traced_to_handler_ms']} ms, "
        f"median of per-round ratios x{result['paired_ratio_ready_sdk_traced_to_handler']}"
    )
    console.print(
        f"Python {result['python_version']} ({result['python']}); {result['platform_note']}; "
        f"bundle {'reused from cache' if result['bundle_cached'] else 'built'}: {result['bundle_dir']}"
    )
    if result.get("python_note"):
        console.print(f"[yellow]{result['python_note']}[/]")
    profile = result["import_profile"]
    imports = Table(title=f"Where init goes: -X importtime, median of {profile['runs']} runs (precompiled)")
    imports.add_column("module (cumulative)")
    imports.add_column("ms", justify="right")
    imports.add_column("module (self)")
    imports.add_column("ms", justify="right")
    imports.add_column("top-level package (self)")
    imports.add_column("ms", justify="right")
    columns = (profile["top_cumulative_ms"], profile["top_self_ms"], profile["self_by_top_level_package_ms"])
    for index in range(max(map(len, columns))):
        cells: list[str] = []
        for column in columns:
            if index < len(column):
                item = column[index]
                cells += [item.get("module") or item.get("package", ""), f"{item['ms']:.1f}"]
            else:
                cells += ["", ""]
        imports.add_row(*cells)
    console.print(imports)


def _call(operation: str, count: float) -> str:
    service, _, name = operation.partition(":")
    return f"{SERVICE_ABBREVIATIONS.get(service, service)}:{name}" + (f" x{count:g}" if count != 1 else "")


def print_ingest(result: dict[str, Any]) -> None:
    table = Table(
        title=f"Ingest handler in-process against moto: {result['iterations']} rounds "
        f"(after {result['warmup']} warm-up), {result['body_bytes']} B body"
    )
    table.add_column("path")
    for column in ("p50 ms", "p99 ms", "mean ms"):
        table.add_column(column, justify="right")
    table.add_column("AWS calls per request")
    labels = {
        "accepted": "accepted (new webhook-id)",
        "duplicate": "duplicate (same webhook-id)",
        "floor": "floor: put_item + put_events",
        "floor_matched": "floor: the accepted path's calls",
    }
    for name, label in labels.items():
        stats = result[name]
        calls = ", ".join(_call(op, n) for op, n in result["aws_calls_per_request"][name].items())
        table.add_row(
            label, f"{stats['p50_ms']:.2f}", f"{stats['p99_ms']:.2f}", f"{stats['mean_ms']:.2f}", calls
        )
    console.print(table)
    console.print(
        f"p50 accepted / floor: x{result['accepted_to_floor_p50_ratio']} "
        f"(median of per-round ratios x{result['accepted_to_floor_paired_ratio']}) "
        f"(+{result['accepted_minus_floor_p50_ms']} ms); duplicate / floor: "
        f"x{result['duplicate_to_floor_p50_ratio']} (x{result['duplicate_to_floor_paired_ratio']}); "
        "accepted minus its own calls: "
        f"{result['accepted_minus_floor_matched_p50_ms']} ms (handler CPU per request)"
    )


def print_revenue(result: dict[str, Any]) -> None:
    rows = result.get("sizes")
    if isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows):
        # One column per size, one row per scalar metric: stays readable however many metrics there are.
        table = Table(title="Revenue engine")
        table.add_column("metric")
        for row in rows:
            table.add_column(f"n={row.get('n', '?')}", justify="right")
        keys = [k for k, v in rows[0].items() if k != "n" and isinstance(v, int | float | str)]
        for key in keys:
            table.add_row(key, *(str(row.get(key, "")) for row in rows))
        console.print(table)
        extra = {k: v for k, v in result.items() if k != "sizes"}
        if extra:
            console.print(", ".join(f"{k}: {v}" for k, v in extra.items()))
    else:
        console.print("Revenue engine:", json.dumps(result, default=str)[:2000])


# --- main -------------------------------------------------------------------------------------------------


def _load_previous(path: Path) -> dict[str, Any]:
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = [s for s in SECTIONS + LONG_SECTIONS if s in (args.only or SECTIONS)]
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "bench", *sys.argv[1:]])
    results = _load_previous(args.output)
    results.update(
        {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
            "machine": {
                "uname_m": platform.machine(),
                "cpus": os.cpu_count(),
                "kernel": platform.release(),
                "driver_python": sys.version.split()[0],
            },
        }
    )
    runners = {
        "coldstart": (lambda: run_coldstart(args.quick), print_coldstart),
        "ingest": (lambda: run_ingest(args.quick), print_ingest),
        "revenue": (lambda: run_revenue(args.quick, args.revenue_sizes), print_revenue),
        "sources": (lambda: run_sources(args.quick), print_sources),
        "burst": (lambda: run_burst(args.quick), print_burst),
        "propagation": (lambda: run_propagation(args.quick), print_json),
        "close": (lambda: run_close(args.quick), print_json),
    }
    failed = []
    for section in sections:
        runner, printer = runners[section]
        console.rule(section)
        started = time.perf_counter()
        try:
            result = runner()
        except Exception:  # a failed section is reported; the others still run
            console.print(f"[red]{section}: failed[/]")
            console.print(traceback.format_exc())
            failed.append(section)
            results[section] = {
                "error": traceback.format_exc(limit=3),
                "measured_at": results["generated_at"],
            }
            continue
        result = {
            "measured_at": results["generated_at"],
            "quick": args.quick,
            "wall_s": round(time.perf_counter() - started, 1),
            **result,
        }
        results[section] = result
        printer(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"results: {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
