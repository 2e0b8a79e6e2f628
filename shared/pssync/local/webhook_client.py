"""Sending signed webhooks the way a sender we control does (used by the demo, tests and benchmarks)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook


def standard_webhook_headers(
    secret: str, body: bytes, *, delivery_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    sent = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(delivery_id, datetime.fromtimestamp(sent, tz=UTC), body.decode("utf-8"))
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(sent),
        "webhook-signature": signature,
    }


def post_webhook(
    client: httpx.Client, base_url: str, source: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return client.post(f"{base_url}/webhooks/{source}", content=body, headers=headers)
