"""Webhook sources, from CDK context `pssync:sources` (cdk.json, or `-c pssync:sources='[...]'`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SOURCES_CONTEXT_KEY = "pssync:sources"
DEFAULT_SOURCES: list[dict[str, Any]] = [
    {"name": "crm", "scheme": "standard-webhooks", "system": "salesforce"}
]
DEFAULT_TOLERANCE_SECONDS = 300
DEFAULT_MAX_BODY_BYTES = 256 * 1024
# The name is a URL path segment (/webhooks/{source}) and part of the secret name.
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class WebhookSource:
    name: str
    scheme: str
    system: str
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def secret_name(self, stage: str) -> str:
        return f"pssync/{stage}/webhooks/{self.name}"


def parse_sources(raw: object) -> list[WebhookSource]:
    """Accepts the list itself (cdk.json) or its JSON text (`-c` on the command line passes strings)."""
    if raw is None:
        raw = DEFAULT_SOURCES
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"context {SOURCES_CONTEXT_KEY} must be a non-empty JSON list of sources")
    sources = [WebhookSource(**item) for item in raw]
    names = [source.name for source in sources]
    invalid = [name for name in names if not _SOURCE_NAME.match(name)]
    if invalid:
        raise ValueError(f"{SOURCES_CONTEXT_KEY}: source names must match {_SOURCE_NAME.pattern}: {invalid}")
    if len(set(names)) != len(names):
        raise ValueError(f"{SOURCES_CONTEXT_KEY}: duplicate source names in {names}")
    return sources
