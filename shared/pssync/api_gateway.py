"""API Gateway proxy plumbing for the webhook handler: the request URL and the response documents.

Kept apart from the workflow step support so the ingest function does not import the workflows (and the
revenue engine behind them) at cold start.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from pssync.errors import IngestRejected
from pssync.ingest.schemes.base import ErrorResponse


def json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def rejection_response(error: IngestRejected) -> dict[str, Any]:
    return json_response(error.status, ErrorResponse(error=error.code, message=error.message).model_dump())


def request_url(event: dict[str, Any]) -> str:
    """Path plus query string of an API Gateway proxy event: some senders authenticate with `?key=`
    (Salesforce outbound messages) or sign the full URI (HubSpot v3)."""
    path = str(event.get("path", ""))
    query = event.get("multiValueQueryStringParameters") or {
        k: [v] for k, v in (event.get("queryStringParameters") or {}).items()
    }
    return f"{path}?{urlencode(query, doseq=True)}" if query else path
