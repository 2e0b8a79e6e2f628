"""Ingest under a burst on the local runtime: 1,000 signed requests from a second process on 127.0.0.1.

Each request is a new approved time entry from a PSA posting Standard Webhooks (`BURST_SOURCE`, added to
the default source registry in the runtime's CDK context: time belongs to the PSA; a CRM source stating
it is refused with 422). 16 senders at once against the webhook function, which runs as on Lambda: in
containers (worker processes forked from the runtime's fork server), one event at a time each, as many as
the function's reserved concurrency allows (the template's ReservedConcurrentExecutions, else the local
default of 4). Requests beyond that wait for a free container here; on AWS they would scale out to more
containers, or be throttled (429) at a reserved limit. A warm-up burst grows the pool first, so the
measured bursts run on warm containers; the result reports the concurrency used, the containers started
and their cold starts (fork request to handler imported).

Baseline in the same run: the same burst at an unknown source (404), which costs the HTTP server, the
proxy-event translation and a round trip to a container but no verification or AWS calls. The machine's
cores bound what parallel containers buy: moto, the HTTP server and the containers share them.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BURST_SOURCE = {"name": "psa-webhooks", "scheme": "standard-webhooks", "system": "certinia"}
# infra/sources.py's default registry plus the PSA source (the context is part of the template cache key).
BURST_CONTEXT = {
    "pssync:sources": [{"name": "crm", "scheme": "standard-webhooks", "system": "salesforce"}, BURST_SOURCE]
}


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

    secrets_file = ROOT / "build" / "bench" / "burst-secrets.json"
    with LocalRuntime(ROOT, secrets_file=secrets_file, context=BURST_CONTEXT) as runtime:
        source = str(BURST_SOURCE["name"])
        secret = runtime.signing_secrets[source]["current"]
        function_name = next(
            r.function_name for r in runtime.resources.routes if r.path.startswith("/webhooks/")
        )
        function = runtime.host.function(function_name)
        _burst(runtime.api.url, source, secret, 50, concurrency)  # warm-up: grows the pool, first clients
        baseline = _burst(runtime.api.url, "no-such-source", secret, count, concurrency)
        signed = _burst(runtime.api.url, source, secret, count, concurrency)
        starts = [s for s in runtime.host.worker_starts if s.function == function_name]
        containers = {
            "function": function.folder,
            "concurrency": runtime.host.concurrency(function),
            "containers_started": len(starts),
            "cold_start_ms": [round(s.seconds * 1000) for s in starts],
            "handler_init_ms": [round(s.init_ms) for s in starts],
            "fork_server_preload_ms": round(runtime.host.fork_server_preload_ms),
        }
    return {
        "containers": containers,
        "signed": signed,
        "baseline_unknown_source": baseline,
        "p50_ratio": round(signed["p50_ms"] / baseline["p50_ms"], 2),
        "p99_ratio": round(signed["p99_ms"] / baseline["p99_ms"], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
