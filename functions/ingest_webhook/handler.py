"""POST /webhooks/{source}: verify, normalise, dedupe, publish; 2xx only once the events are on the bus."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from pssync.adapters.wiring import deduplicator, ingest_service
from pssync.api_gateway import json_response, rejection_response, request_url
from pssync.config import IngestSettings, load_settings
from pssync.errors import IngestRejected, TransientDownstreamError
from pssync.ingest.request import RawRequest
from pssync.ingest.schemes import scheme_for
from pssync.observability import BusinessMetric, logger, metrics


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    source = (event.get("pathParameters") or {}).get("source", "")
    try:
        request = RawRequest.from_api_gateway(
            method=event.get("httpMethod", "POST"),
            url=request_url(event),
            body=event.get("body"),
            is_base64_encoded=bool(event.get("isBase64Encoded")),
            headers=event.get("headers"),
            multi_value_headers=event.get("multiValueHeaders"),
        )
        settings = load_settings(IngestSettings)
        # Only configured names become a metric dimension: a path is attacker-chosen, series cost money.
        known = any(s.name == source for s in ingest_service(settings).registry)
        metrics.add_dimension(name="source", value=source if known else "unknown")
        # In-progress idempotency records expire with this invocation, not after a fixed hour.
        deduplicator(settings).config.register_lambda_context(context)
        service = ingest_service(settings)
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
