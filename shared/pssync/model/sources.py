"""The source registry: which inbound sources are ours, how each proves authenticity, where its secret is.

Adding a source is configuration (an entry here) plus, for a new vendor, one scheme class
(`pssync.ingest.schemes`). Anything not in the registry, or from a tenant not listed, is rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, model_validator

from pssync.errors import UnknownSource
from pssync.model.events import SourceSystem


class SignatureScheme(StrEnum):
    STANDARD_WEBHOOKS = "standard-webhooks"  # senders we control: NetSuite SuiteScript, Apex/Flow, plug-ins
    HUBSPOT = "hubspot"  # X-HubSpot-Signature-v3 (v1/v2 only with legacy_signatures)
    JIRA = "jira"  # X-Hub-Signature: sha256=<hex HMAC>
    DATAVERSE = "dataverse"  # static header key + organisation allowlist
    SALESFORCE_OUTBOUND = "salesforce-outbound"  # SOAP outbound messages: organisation allowlist, SOAP Ack
    SALESFORCE_EVENT_RELAY = "salesforce-event-relay"  # EventBridge partner bus: no HTTP endpoint
    KANTATA_POLL = "kantata-poll"  # polled Subscribed Events API: no HTTP endpoint

    @property
    def is_http(self) -> bool:
        return self not in (SignatureScheme.SALESFORCE_EVENT_RELAY, SignatureScheme.KANTATA_POLL)


# Schemes whose deliveries name a tenant (portal, organisation, site, account) that must be ours.
TENANT_SCHEMES = frozenset(
    {
        SignatureScheme.HUBSPOT,
        SignatureScheme.JIRA,
        SignatureScheme.DATAVERSE,
        SignatureScheme.SALESFORCE_OUTBOUND,
        SignatureScheme.SALESFORCE_EVENT_RELAY,
        SignatureScheme.KANTATA_POLL,
    }
)


class SystemRole(StrEnum):
    CRM = "crm"  # commercial intent: bookings and amendments
    PSA = "psa"  # delivery progress: approved time and expenses, milestones
    ERP = "erp"  # posted financial transactions: invoices and payments


# Which system of record plays which role (Dynamics 365 is both a CRM and, with its invoices, an ERP).
SYSTEM_ROLES: dict[SourceSystem, frozenset[SystemRole]] = {
    SourceSystem.SALESFORCE: frozenset({SystemRole.CRM}),
    SourceSystem.HUBSPOT: frozenset({SystemRole.CRM}),
    SourceSystem.DYNAMICS_365: frozenset({SystemRole.CRM, SystemRole.ERP}),
    SourceSystem.KANTATA: frozenset({SystemRole.PSA}),
    SourceSystem.CERTINIA: frozenset({SystemRole.PSA}),
    SourceSystem.OPENAIR: frozenset({SystemRole.PSA}),
    SourceSystem.JIRA: frozenset({SystemRole.PSA}),
    SourceSystem.NETSUITE: frozenset({SystemRole.ERP}),
    SourceSystem.SAP: frozenset({SystemRole.ERP}),
    SourceSystem.ORACLE: frozenset({SystemRole.ERP}),
    SourceSystem.DYNAMICS_FINANCE: frozenset({SystemRole.ERP}),
    SourceSystem.PSSYNC: frozenset(),
}
# Which role owns which inbound business event: the one system allowed to state that fact.
EVENT_OWNERS: dict[str, SystemRole] = {
    "ContractBooked": SystemRole.CRM,
    "ClosedWonSignalled": SystemRole.CRM,
    "ContractAmended": SystemRole.CRM,
    "TimeApproved": SystemRole.PSA,
    "ExpenseApproved": SystemRole.PSA,
    "MilestoneCompleted": SystemRole.PSA,
    "InvoicePosted": SystemRole.ERP,
    "PaymentReceived": SystemRole.ERP,
}


class CrmApiConfig(BaseModel):
    """Where thin events fetch the authoritative record (HubSpot, Salesforce REST)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: HttpUrl
    token_secret_id: str = Field(min_length=1, description='Secrets Manager id of {"access_token": ...}')
    timeout_seconds: float = Field(5.0, gt=0, le=30)


class SourceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="URL path segment /webhooks/{name}")
    scheme: SignatureScheme
    system: SourceSystem
    secret_id: str | None = Field(None, min_length=1, description="Secrets Manager id of {current, previous}")
    tolerance_seconds: int = Field(300, ge=1, le=3600, description="Replay window for signed timestamps")
    max_body_bytes: int = Field(256 * 1024, ge=1, le=10 * 1024 * 1024)
    tenants: list[str] = Field(
        default_factory=list,
        description="Portal ids (HubSpot), organisation ids (Salesforce, Dataverse), site hosts (Jira), "
        "account ids (Kantata) that are ours; required by schemes that carry a tenant",
    )
    legacy_signatures: bool = Field(False, description="HubSpot v1/v2 for a legacy app; off by default")
    own_client_ids: list[str] = Field(
        default_factory=list,
        description="Change origins / app ids of our own writes into this system: dropped (no sync loops)",
    )
    public_url: HttpUrl | None = Field(
        None, description="The URL the sender signs (HubSpot v3), when it differs from what API Gateway sees"
    )
    crm_api: CrmApiConfig | None = None
    owns: list[str] | None = Field(
        None,
        description="Event types this source may emit, when not what its system's role owns (EVENT_OWNERS)",
    )

    def may_emit(self, event_type: str) -> bool:
        """Data ownership: the CRM owns bookings and amendments, the PSA time and milestones, the ERP
        invoices and payments; a source states only the facts its system owns (or its `owns` list)."""
        if self.owns is not None:
            return event_type in self.owns
        owner = EVENT_OWNERS.get(event_type)
        return owner is not None and owner in SYSTEM_ROLES[self.system]

    @model_validator(mode="after")
    def _complete_for_its_scheme(self) -> SourceConfig:
        """Misconfiguration fails at synth time, not as a 401 for every delivery in production."""
        if self.scheme.is_http and self.secret_id is None:
            raise ValueError(f"source {self.name}: scheme {self.scheme} needs a secret_id (fail closed)")
        if self.scheme in TENANT_SCHEMES and not self.tenants:
            raise ValueError(
                f"source {self.name}: scheme {self.scheme} needs its tenants (portal/org/site ids)"
            )
        unknown = sorted(set(self.owns or ()) - set(EVENT_OWNERS))
        if unknown:
            raise ValueError(f"source {self.name}: owns names unknown event types {unknown}")
        if self.scheme is SignatureScheme.HUBSPOT and self.public_url is None:
            raise ValueError(f"source {self.name}: HubSpot v3 signs the full URL; set public_url to it")
        return self


class SourceRegistry:
    def __init__(self, sources: list[SourceConfig]) -> None:
        self._by_name = {s.name: s for s in sources}
        if len(self._by_name) != len(sources):
            raise ValueError("source names must be unique")

    @classmethod
    def from_json(cls, raw: str) -> SourceRegistry:
        return cls(TypeAdapter(list[SourceConfig]).validate_json(raw))

    def get(self, name: str) -> SourceConfig:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSource(f"no inbound source named {name!r} is configured") from None

    def __iter__(self) -> Iterator[SourceConfig]:
        return iter(self._by_name.values())
