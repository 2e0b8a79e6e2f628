"""API Gateway proxy plumbing for the webhook handler: request in, status and body out, metrics counted.

Kept apart from the workflow step support so the ingest function does not import the workflows (and the
revenue engine behind them) at cold start.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools.metrics import MetricUnit

from pssync.errors import IngestRejected, TransientDownstreamError
from pssync.ingest.service import IngestService
from pssync.observability import BusinessMetric, logger, metrics
from pssync.sources import scheme_for
from pssync.sources.base import ErrorResponse
from pssync.sources.request import RawRequest


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


def webhook_response(service: IngestService, event: dict[str, Any]) -> dict[str, Any]:
    """One API Gateway proxy event through the ingest service, answered as the source's scheme answers."""
    source = (event.get("pathParameters") or {}).get("source", "")
    # Only configured names become a metric dimension: a path is attacker-chosen, series cost money.
    known = any(s.name == source for s in service.registry)
    metrics.add_dimension(name="source", value=source if known else "unknown")
    try:
        request = RawRequest.from_api_gateway(
            method=event.get("httpMethod", "POST"),
            url=request_url(event),
            body=event.get("body"),
            is_base64_encoded=bool(event.get("isBase64Encoded")),
            headers=event.get("headers"),
            multi_value_headers=event.get("multiValueHeaders"),
        )
        result = service.ingest(source, request)
    except IngestRejected as error:
        logger.warning("webhook rejected", extra={"reason": error.code, "status": error.status})
        metrics.add_metric(name=BusinessMetric.WEBHOOK_REJECTED, unit=MetricUnit.Count, value=1)
        return rejection_response(error)
    except TransientDownstreamError as error:
        logger.error("webhook not recorded; sender should retry", extra={"reason": error.message})
        metrics.add_metric(name=BusinessMetric.WEBHOOK_NOT_RECORDED, unit=MetricUnit.Count, value=1)
        return json_response(503, {"error": "unavailable", "message": "try again later"})
    new = sum(1 for e in result.events if not e.duplicate)
    metrics.add_metric(name=BusinessMetric.WEBHOOK_ACCEPTED, unit=MetricUnit.Count, value=new)
    metrics.add_metric(
        name=BusinessMetric.WEBHOOK_DUPLICATE, unit=MetricUnit.Count, value=len(result.events) - new
    )
    logger.info("webhook accepted", extra={"delivery_id": result.delivery_id, "events": len(result.events)})
    reply = scheme_for(service.registry.get(source).scheme).acknowledge(result)
    return {"statusCode": reply.status, "headers": dict(reply.headers), "body": reply.body.decode("utf-8")}
