"""OpenAPI 3.1 description of the webhook API, generated from the models (checked in under events/).

Request bodies are the vendors' formats: the schemes we define (Standard Webhooks messages) carry their
full schema; vendor-defined formats are described by media type and a pointer to the vendor's contract.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pssync.errors import (
    DeliveryInProgress,
    IngestRejected,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    UnknownSource,
    UnknownTenant,
    UnprocessableDelivery,
    UnsupportedMediaType,
)
from pssync.model.sources import SignatureScheme
from pssync.sources.base import AcceptedResponse, ErrorResponse
from pssync.sources.standard_webhooks import StandardWebhooksMessage

API_VERSION = "1.0.0"
_REF = "#/components/schemas/"

VENDOR_FORMATS: dict[SignatureScheme, tuple[str, str]] = {
    SignatureScheme.HUBSPOT: (
        "application/json",
        "HubSpot webhooks v3: a JSON array of up to 100 thin events; headers X-HubSpot-Signature-v3 and "
        "X-HubSpot-Request-Timestamp (ms).",
    ),
    SignatureScheme.JIRA: (
        "application/json",
        "Jira Cloud webhook (jira:issue_updated ...); header X-Hub-Signature: sha256=<hex>, "
        "X-Atlassian-Webhook-Identifier.",
    ),
    SignatureScheme.DATAVERSE: (
        "application/json",
        "Dataverse RemoteExecutionContext; header x-pssync-key (static key), OrganizationId allowlisted.",
    ),
    SignatureScheme.SALESFORCE_OUTBOUND: (
        "text/xml",
        "Salesforce Outbound Message (SOAP notifications); OrganizationId allowlisted; "
        "answered with a SOAP Ack.",
    ),
}

_REFUSALS: list[type[IngestRejected]] = [
    MalformedDelivery,
    SignatureInvalid,
    UnknownTenant,
    UnknownSource,
    DeliveryInProgress,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnprocessableDelivery,
]
_STATUS_TEXT = {
    400: "Stale timestamp or malformed body",
    401: "Missing or invalid signature",
    403: "Authentic, but from a tenant (portal, organisation, site) that is not configured",
    404: "Unknown source",
    409: "An identical delivery is being recorded; retry shortly",
    413: "Body larger than the source's limit",
    415: "Content-Type is not what the source's vendor sends (application/json, or text/xml for SOAP; UTF-8)",
    422: "Authentic and well-formed, but not a business event pssync accepts (the message names the field)",
    503: "Not recorded (a dependency is unavailable); retry with backoff",
}


def _component(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def openapi_document() -> dict[str, Any]:
    statuses = sorted({error.status for error in _REFUSALS} | {503})
    error_response = {"content": {"application/json": {"schema": {"$ref": _REF + "ErrorResponse"}}}}
    request_content: dict[str, Any] = {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": _REF + "StandardWebhooksMessage"},
                    *(
                        {
                            "description": description,
                            "type": "array" if scheme is SignatureScheme.HUBSPOT else "object",
                        }
                        for scheme, (media, description) in VENDOR_FORMATS.items()
                        if media == "application/json"
                    ),
                ]
            }
        },
        "text/xml": {
            "schema": {
                "type": "string",
                "description": VENDOR_FORMATS[SignatureScheme.SALESFORCE_OUTBOUND][1],
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pssync webhook ingestion",
            "version": API_VERSION,
            "description": "Each source verifies its own signature scheme over the raw body; nothing is "
            "written unless the delivery is authentic, fresh, from a configured tenant and a valid business "
            "event.",
        },
        "paths": {
            "/webhooks/{source}": {
                "post": {
                    "operationId": "receiveWebhook",
                    "summary": "Receive one delivery from a configured source",
                    "parameters": [
                        {
                            "name": "source",
                            "in": "path",
                            "required": True,
                            "description": "Configured source name (CDK context pssync:sources)",
                            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
                        },
                        *(
                            {
                                "name": header,
                                "in": "header",
                                "required": False,
                                "schema": {"type": "string"},
                                "description": "Standard Webhooks signature header",
                            }
                            for header in ("webhook-id", "webhook-timestamp", "webhook-signature")
                        ),
                    ],
                    "requestBody": {"required": True, "content": request_content},
                    "responses": {
                        "202": {
                            "description": "Accepted: the events are on the bus (or were already)",
                            "content": {"application/json": {"schema": {"$ref": _REF + "AcceptedResponse"}}},
                        },
                        **{
                            str(status): {"description": _STATUS_TEXT[status], **error_response}
                            for status in statuses
                        },
                    },
                }
            }
        },
        "components": {"schemas": _component([StandardWebhooksMessage, AcceptedResponse, ErrorResponse])},
    }
