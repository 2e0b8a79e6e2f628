"""Ingest under a burst on the local runtime: 1,000 signed requests from a second process on 127.0.0.1.

Baseline in the same run: the same burst at an unknown source (404), which costs the HTTP server, the
proxy-event translation and the in-process Lambda host but no verification or AWS calls. The local
runtime serialises handler invocations (one Lambda container), so the p99 includes queueing: it is a
property of the local runtime, not of API Gateway + Lambda, which scale out.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _burst(url: str, source: str, secret: str, count: int, concurrency: int) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603 - fixed argv: this interpreter and our own module
        [sys.executable, "-m", "bench.burst_client", url, source, secret, str(count), str(concurrency)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout  # fmt: skip
    result = json.loads(output)
    latencies = result["latencies_ms"]
    statuses: dict[str, int] = {}
    for status in result["statuses"]:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": count,
        "concurrency": concurrency,
        "statuses": statuses,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "throughput_rps": round(count / result["wall_s"], 1),
    }


def run(count: int = 1000, concurrency: int = 16) -> dict[str, Any]:
    from pssync.local.runtime import LocalRuntime

    with LocalRuntime(ROOT, secrets_file=ROOT / "build" / "bench" / "burst-secrets.json") as runtime:
        source = runtime.source_registry()[0]["name"]
        secret = runtime.signing_secrets[source]["current"]
        _burst(runtime.api.url, source, secret, 50, concurrency)  # warm-up: imports, first clients
        baseline = _burst(runtime.api.url, "no-such-source", secret, count, concurrency)
        signed = _burst(runtime.api.url, source, secret, count, concurrency)
    return {
        "signed": signed,
        "baseline_unknown_source": baseline,
        "p50_ratio": round(signed["p50_ms"] / baseline["p50_ms"], 2),
        "p99_ratio": round(signed["p99_ms"] / baseline["p99_ms"], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
