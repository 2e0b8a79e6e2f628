"""Versioned JSON Schemas and sample payloads in events/, generated from the models.

`pssync schemas write` regenerates them; `pssync schemas check` (and a test) fails when the checked-in
files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pssync.model import examples
from pssync.model.events import CANONICAL_EVENTS, SCHEMA_VERSION, event_type_of
from pssync.openapi import openapi_document
from pssync.revenue import scenario_json_schema
from pssync.sources.standard_webhooks import ContractBookedNotice, StandardWebhooksMessage


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def expected_files() -> dict[str, str]:
    """Relative path under events/ -> exact file content."""
    files: dict[str, Any] = {}
    for model in CANONICAL_EVENTS:
        files[f"schemas/{_kebab(event_type_of(model))}.v{SCHEMA_VERSION}.json"] = _schema(model)
    files[f"schemas/webhooks/standard-webhooks-message.v{SCHEMA_VERSION}.json"] = _schema(
        StandardWebhooksMessage
    )
    files[f"schemas/webhooks/contract-booked-notice.v{SCHEMA_VERSION}.json"] = _schema(ContractBookedNotice)
    files[f"schemas/revrec-scenario.v{SCHEMA_VERSION}.json"] = scenario_json_schema()
    files["openapi/webhook-api.v1.json"] = openapi_document()
    files["samples/canonical/contract-booked.json"] = examples.contract_booked().model_dump(mode="json")
    files["samples/canonical/closed-won-signalled.json"] = examples.closed_won_signalled().model_dump(
        mode="json"
    )
    files["samples/canonical/engagement-activated.json"] = examples.engagement_activated().model_dump(
        mode="json"
    )
    files["samples/webhooks/standard-webhooks/contract-booked.json"] = examples.contract_booked_webhook()
    files["samples/canonical/contract-amended.json"] = examples.contract_amended().model_dump(mode="json")
    files["samples/webhooks/standard-webhooks/contract-amended.json"] = examples.contract_amended_webhook()
    return {path: json.dumps(doc, indent=2, sort_keys=True) + "\n" for path, doc in files.items()}


def write(events_dir: Path) -> list[Path]:
    written = []
    for relative, content in expected_files().items():
        path = events_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written


def drift(events_dir: Path) -> list[str]:
    """Files that are missing or differ from what the models generate."""
    return [
        relative
        for relative, content in expected_files().items()
        if not (events_dir / relative).is_file() or (events_dir / relative).read_text() != content
    ]
