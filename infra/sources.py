"""Inbound sources from CDK context, validated with pssync's own SourceConfig (one schema, one truth).

- `pssync:sources`: the source registry (cdk.json, or `-c pssync:sources='[...]'`). HTTP sources get their
  signing secret `pssync/<stage>/webhooks/<name>` unless the entry names one.
- `pssync:salesforce_event_relay`: partner event source names `aws.partner/salesforce.com/<orgId>/<channelId>`
  (none by default: nothing is created). Each org id must be a tenant of a `salesforce-event-relay` source.
- `pssync:kantata`: poller settings for the `kantata-poll` sources (schedule, overlap, API URL, currency).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pssync.errors import UnknownTenant
from pssync.model.sources import SignatureScheme, SourceConfig, SourceRegistry
from pssync.sources.salesforce.event_relay import relay_source_for

SOURCES_CONTEXT_KEY = "pssync:sources"
EVENT_RELAY_CONTEXT_KEY = "pssync:salesforce_event_relay"
KANTATA_CONTEXT_KEY = "pssync:kantata"
DEFAULT_SOURCES: list[dict[str, Any]] = [
    {"name": "crm", "scheme": "standard-webhooks", "system": "salesforce"}
]
_PARTNER_EVENT_SOURCE = re.compile(r"^aws\.partner/salesforce\.com/([A-Za-z0-9]{15,18})/([A-Za-z0-9]+)$")


def webhook_secret_name(stage: str, source_name: str) -> str:
    return f"pssync/{stage}/webhooks/{source_name}"


def kantata_token_secret_name(stage: str, source_name: str) -> str:
    return f"pssync/{stage}/kantata/{source_name}"


def _json(raw: object) -> object:
    """Context comes as the value itself (cdk.json) or as JSON text (`-c` passes strings)."""
    return json.loads(raw) if isinstance(raw, str) else raw


def parse_sources(raw: object, stage: str = "dev") -> list[SourceConfig]:
    raw = DEFAULT_SOURCES if raw is None else _json(raw)
    if not isinstance(raw, list) or not raw or not all(isinstance(item, dict) for item in raw):
        raise ValueError(f"context {SOURCES_CONTEXT_KEY} must be a non-empty JSON list of source objects")
    sources = []
    for item in raw:
        entry = dict(item)
        try:
            scheme = SignatureScheme(entry.get("scheme"))
        except ValueError:
            scheme = None
        if scheme is not None and scheme.is_http and not entry.get("secret_id") and "name" in entry:
            entry["secret_id"] = webhook_secret_name(stage, str(entry["name"]))
        try:
            sources.append(SourceConfig.model_validate(entry))
        except ValidationError as error:
            raise ValueError(f"{SOURCES_CONTEXT_KEY}: source {entry.get('name')!r}: {error}") from None
    try:
        SourceRegistry(sources)
    except ValueError as error:
        raise ValueError(f"{SOURCES_CONTEXT_KEY}: {error}") from None
    return sources


def registry_json(sources: list[SourceConfig]) -> str:
    """SOURCE_REGISTRY for every function that accepts events: the same JSON everywhere."""
    return json.dumps(
        [source.model_dump(mode="json", exclude_none=True) for source in sources], separators=(",", ":")
    )


@dataclass(frozen=True)
class EventRelayBus:
    event_source_name: str
    org_id: str
    source: SourceConfig


def parse_event_relay(raw: object, sources: list[SourceConfig]) -> list[EventRelayBus]:
    raw = [] if raw is None else _json(raw)
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise ValueError(
            f"context {EVENT_RELAY_CONTEXT_KEY} must be a JSON list of partner event source names"
        )
    buses = []
    registry = SourceRegistry(sources)
    for name in raw:
        match = _PARTNER_EVENT_SOURCE.match(name)
        if match is None:
            raise ValueError(
                f"{EVENT_RELAY_CONTEXT_KEY}: {name!r} is not aws.partner/salesforce.com/<org>/<ch>"
            )
        try:
            source = relay_source_for(registry, match.group(1))
        except UnknownTenant as error:
            raise ValueError(f"{EVENT_RELAY_CONTEXT_KEY}: {error.message}") from None
        buses.append(EventRelayBus(event_source_name=name, org_id=match.group(1), source=source))
    if len({bus.event_source_name for bus in buses}) != len(buses):
        raise ValueError(f"{EVENT_RELAY_CONTEXT_KEY}: duplicate partner event source names")
    return buses


class KantataPolling(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule_minutes: int = Field(1, ge=1, le=60)
    overlap_minutes: int = Field(10, ge=0, le=24 * 60)
    base_url: str = "https://api.mavenlink.com"
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    sources: tuple[SourceConfig, ...] = ()


def parse_kantata(raw: object, sources: list[SourceConfig]) -> KantataPolling | None:
    """None when no source uses the kantata-poll scheme: no poller, no schedule, no cursor table."""
    polled = tuple(s for s in sources if s.scheme is SignatureScheme.KANTATA_POLL)
    settings = {} if raw is None else _json(raw)
    if not isinstance(settings, dict):
        raise ValueError(f"context {KANTATA_CONTEXT_KEY} must be a JSON object")
    if not polled:
        if settings:
            raise ValueError(f"{KANTATA_CONTEXT_KEY} is set but no source uses the kantata-poll scheme")
        return None
    try:
        return KantataPolling.model_validate({**settings, "sources": polled})
    except ValidationError as error:
        raise ValueError(f"{KANTATA_CONTEXT_KEY}: {error}") from None
