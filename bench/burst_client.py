"""The second process of the burst benchmark: sends N signed requests to 127.0.0.1, prints latencies as JSON.

Usage: python -m bench.burst_client URL SOURCE SECRET COUNT CONCURRENCY
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from pssync.local.webhook_client import standard_webhook_headers


def time_approved_body(index: int) -> bytes:
    """A distinct business fact per request, so every delivery is new work (no dedupe short-cut)."""
    return json.dumps(
        {
            "type": "time.approved",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "source_version": str(index),
                "time_entry_id": f"TE-{index}",
                "project_id": "P-BURST",
                "person_id": f"U-{index % 40}",
                "work_date": "2027-01-15",
                "hours": "7.5",
                "billable": True,
                "rate": {"amount": "180.00", "currency": "EUR"},
            },
        }
    ).encode()


def main() -> None:
    url, source, secret, count, concurrency = (
        sys.argv[1],
        sys.argv[2],
        sys.argv[3],
        int(sys.argv[4]),
        int(sys.argv[5]),
    )
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):  # this benchmark only ever targets this machine
        raise SystemExit(f"refusing to send load to {host}")
    bodies = [time_approved_body(i) for i in range(count)]
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:

        def send(body: bytes) -> tuple[float, int]:
            headers = standard_webhook_headers(secret, body, delivery_id=f"msg_{uuid.uuid4().hex}")
            started = time.perf_counter()
            response = client.post(f"{url}/webhooks/{source}", content=body, headers=headers)
            return (time.perf_counter() - started) * 1000, response.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(send, bodies))
        wall = time.perf_counter() - started
    print(
        json.dumps(
            {"latencies_ms": [r[0] for r in results], "statuses": [r[1] for r in results], "wall_s": wall}
        )
    )


if __name__ == "__main__":
    main()
