"""Function settings: environment variables validated by pydantic, read in one place.

Domain code never reads the environment; handlers ask for the settings model they need.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pssync.model.sources import SourceRegistry

# 72 h is the longest source retry horizon (HubSpot, Stripe); one more day of margin.
DEFAULT_IDEMPOTENCY_EXPIRY_SECONDS = 4 * 24 * 3600


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class IngestSettings(_Settings):
    event_bus_name: str
    idempotency_table_name: str
    source_registry: str
    raw_payload_bucket: str
    idempotency_expiry_seconds: int = Field(DEFAULT_IDEMPOTENCY_EXPIRY_SECONDS, ge=72 * 3600)

    def registry(self) -> SourceRegistry:
        return SourceRegistry.from_json(self.source_registry)


class BusinessTableSettings(_Settings):
    business_table_name: str


class DeliveryLogSettings(_Settings):
    delivery_log_table_name: str
    psa_connector: str = "shadow"
    erp_connector: str = "shadow"

    @field_validator("psa_connector", "erp_connector")
    @classmethod
    def _known_cutover_mode(cls, mode: str) -> str:
        # A typo must stop the function at its first settings load, not fall back to some mode.
        from pssync.connectors.cutover import CUTOVER_MODES

        if mode not in CUTOVER_MODES:
            raise ValueError(f"unknown cutover mode {mode!r}; use one of {', '.join(CUTOVER_MODES)}")
        return mode


class NetSuiteSettings(_Settings):
    """The NetSuite account of the ERP connector: credentials in Secrets Manager (JSON with account_id,
    client_id, certificate_id, private_key_pem), the account's internal-id mapping as JSON (not secret)."""

    netsuite_secret_id: str
    netsuite_mapping: str

    def mapping(self) -> dict[str, dict[str, str]]:
        tables = json.loads(self.netsuite_mapping)
        return {
            name: dict(tables.get(name, {})) for name in ("subsidiaries", "currencies", "items", "accounts")
        }


class KantataPsaSettings(_Settings):
    """The Kantata OX account of the PSA connector: the Secrets Manager secret holding {"access_token":
    ..., optional "base_url"} (its ARN, never the token) and the API host when the secret names none."""

    kantata_secret_id: str
    kantata_psa_base_url: str = "https://api.mavenlink.com"


class VendorConcurrencySettings(_Settings):
    """The table of vendor accounts' concurrency slots (pssync.adapters.leases) and NetSuite's limit."""

    concurrency_table_name: str
    netsuite_concurrency_limit: int = Field(5, ge=1, le=100)
    # Longer than one command's hold (NETSUITE_COMMAND_SECONDS plus a token fetch; every vendor call also
    # ends before its invocation does); a holder killed mid-command loses the slot when this runs out.
    concurrency_lease_seconds: int = Field(60, ge=30, le=900)


class DeadLetterSettings(_Settings):
    """SQS consumers: where a record failing its last receive is parked with its cause (infra: consume)."""

    dead_letter_queue_url: str | None = None
    max_receive_count: int = Field(5, ge=1, le=1000)


class EventBusSettings(_Settings):
    event_bus_name: str


class StartWorkflowSettings(_Settings):
    state_machine_arn: str
    workflow_name: str
    workflow_event_types: str  # comma-separated detail-types this workflow's inbox is for

    @property
    def starts_on(self) -> frozenset[str]:
        return frozenset(t for t in self.workflow_event_types.split(",") if t)


class EventRelaySettings(IngestSettings):
    """`salesforce_event_relay`: the ingest settings; relay sources are found in the registry by org id."""


class KantataPollerSettings(IngestSettings):
    """`kantata_poller`: the ingest settings plus the API, the cursor table and the overlap window."""

    cursor_table_name: str
    kantata_base_url: str = "https://api.mavenlink.com"
    kantata_token_secret_ids: tuple[tuple[str, str], ...] = Field(
        (), description='JSON {"<source name>": "<secret id>"} in the environment'
    )
    kantata_currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="Currency of rate_in_cents")
    kantata_overlap_seconds: int = Field(600, ge=0, le=9 * 24 * 3600)
    kantata_event_types: tuple[str, ...] = ("time_entry:created", "time_entry:updated", "time_entry:deleted")
    kantata_max_pages: int = Field(20, ge=1, le=1000)

    @field_validator("kantata_token_secret_ids", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        """Kept as pairs: settings are hashable (one set of adapters per configuration)."""
        if isinstance(value, str):
            value = json.loads(value)
        return tuple(sorted(value.items())) if isinstance(value, dict) else value

    def kantata_token_secret_id(self, source: str) -> str | None:
        return dict(self.kantata_token_secret_ids).get(source)

    @field_validator("kantata_event_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """The environment holds `a,b,c`."""
        return tuple(t.strip() for t in value.split(",") if t.strip()) if isinstance(value, str) else value


S = TypeVar("S", bound=_Settings)


def load_settings(model: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Field `event_bus_name` is read from EVENT_BUS_NAME; a missing required variable is an error."""
    env = os.environ if environ is None else environ
    values = {name: env[name.upper()] for name in model.model_fields if name.upper() in env}
    return model.model_validate(values)


class AwsClientSettings(_Settings):
    """Where boto3 clients point: the local runtime sets AWS_ENDPOINT_URL to its moto server."""

    aws_endpoint_url: str | None = None
    aws_region: str | None = None


class HandlerSettings(_Settings):
    """`PSSYNC_TRACING=active` (CDK sets it with `-c pssync:tracing=sdk`) runs the Powertools Tracer."""

    pssync_tracing: str = ""

    @property
    def sdk_tracing(self) -> bool:
        return self.pssync_tracing.lower() == "active"
