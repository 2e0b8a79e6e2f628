"""Canonical business events: one envelope, one payload model per detail-type.

The envelope's event id is derived from the source and the source's own event id, so a replay or a
redelivery of the same business fact always carries the same event id (and dedupes downstream).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pssync.model.contract import ContractTerms
from pssync.money import CurrencyCode, ExactDecimal, Money

SCHEMA_VERSION = 1
INGEST_EVENT_SOURCE = "pssync.ingest"
WORKFLOW_EVENT_SOURCE = "pssync.workflows"
_EVENT_ID_NAMESPACE = uuid.UUID("6f2b7f0e-3a8e-4d4e-9d4f-5c2b1c9e8a71")


class SourceSystem(StrEnum):
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"
    DYNAMICS_365 = "dynamics365"
    KANTATA = "kantata"
    CERTINIA = "certinia"
    OPENAIR = "openair"
    JIRA = "jira"
    NETSUITE = "netsuite"
    SAP = "sap"
    ORACLE = "oracle"
    DYNAMICS_FINANCE = "dynamics_finance"
    PSSYNC = "pssync"


def canonical_event_id(source: str, source_event_id: str) -> str:
    """Deterministic: the same delivery from the same source always maps to the same event id."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{source}\x1f{source_event_id}"))


class Lineage(BaseModel):
    """The raw delivery an event came from, so an auditor can trace a revenue line to its webhook."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw_payload_ref: str = Field(description="e.g. s3://bucket/raw/<source>/<date>/<delivery>.json")
    raw_sha256: str
    delivery_id: str


class EventEnvelope(BaseModel):
    """Fields every canonical event carries, whatever its payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    bus_source: ClassVar[str] = INGEST_EVENT_SOURCE

    event_id: str = Field(description="Deterministic id derived from source + source_event_id")
    schema_version: int = SCHEMA_VERSION
    source: str = Field(description="Name of the configured inbound source (tenant-scoped)")
    source_system: SourceSystem
    source_event_id: str = Field(min_length=1, max_length=256, description="The idempotency key")
    source_version: str | None = Field(
        None, description="The source's ordering signal (sequence, commit timestamp, LastModifiedDate)"
    )
    correlation_id: str
    causation_id: str | None = None
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    lineage: Lineage | None = Field(None, description="Where the raw delivery behind this event is kept")


class ContractBookedData(BaseModel):
    """A closed-won deal with its MSA/SOW terms: becomes contract version 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    closed_won_at: AwareDatetime
    contract: ContractTerms


class ContractBooked(EventEnvelope):
    event_type: Literal["ContractBooked"] = "ContractBooked"
    data: ContractBookedData


ClosedWonRecordType = Literal["hubspot-deal", "salesforce-opportunity", "dataverse-opportunity"]


ClosedWonSignalKind = Literal["closed_won", "changed"]


class ClosedWonSignalData(BaseModel):
    """A CRM said a deal closed won, or changed while won, but sent only its id: the record is read before
    anything is booked or amended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_type: ClosedWonRecordType
    record_id: str = Field(min_length=1, max_length=64)
    closed_won_at: AwareDatetime = Field(
        description="When the CRM reported the deal won (for a `changed` signal: when the change was made)"
    )
    kind: ClosedWonSignalKind = Field(
        "closed_won",
        description="closed_won: the deal entered a won stage; changed: a property that can change the "
        "contract changed on a won deal. Either way the resolver books a won deal without a contract and "
        "amends a booked one whose terms differ from the contract's head version",
    )


class ClosedWonSignalled(EventEnvelope):
    """Thin CRM events become this at the webhook, which answers at once; `resolve_closed_won` reads the
    record (with retries, a DLQ and replay) and publishes the ContractBooked under `booking_event_id`, or,
    when the deal's contract is booked already and its terms changed, a ContractAmended under
    `amendment_event_id`."""

    event_type: Literal["ClosedWonSignalled"] = "ClosedWonSignalled"
    data: ClosedWonSignalData

    @property
    def booking_event_id(self) -> str:
        return canonical_event_id(self.source, self.source_event_id)

    def booking(self, data: ContractBookedData, source_version: str | None) -> ContractBooked:
        """The ContractBooked this signal resolves to: a direct booking's id, the signal as its cause."""
        return ContractBooked(
            event_id=self.booking_event_id,
            source=self.source,
            source_system=self.source_system,
            source_event_id=self.source_event_id,
            source_version=source_version,
            correlation_id=self.correlation_id,
            causation_id=self.event_id,
            occurred_at=self.occurred_at,
            received_at=self.received_at,
            lineage=self.lineage,
            data=data,
        )

    @property
    def amendment_event_id(self) -> str:
        """Apart from the booking's id: a signal resolved as a booking and replayed after its contract was
        recorded must not be mistaken for the amendment that version recorded."""
        return canonical_event_id(self.source, f"{self.source_event_id}\x1famended")

    def amendment(self, data: ContractAmendedData, source_version: str | None) -> ContractAmended:
        """The ContractAmended this signal resolves to when the booked contract's terms changed."""
        return ContractAmended(
            event_id=self.amendment_event_id,
            source=self.source,
            source_system=self.source_system,
            source_event_id=self.source_event_id,
            source_version=source_version,
            correlation_id=self.correlation_id,
            causation_id=self.event_id,
            occurred_at=data.amended_at,
            received_at=self.received_at,
            lineage=self.lineage,
            data=data,
        )

    @classmethod
    def of(
        cls,
        *,
        source: str,
        source_system: SourceSystem,
        source_event_id: str,
        source_version: str | None,
        closed_won_at: datetime,
        received_at: datetime,
        record_type: ClosedWonRecordType,
        record_id: str,
        kind: ClosedWonSignalKind = "closed_won",
    ) -> ClosedWonSignalled:
        """Ids derived once for every source: the signal's own, and the booking's as correlation id."""
        return cls(
            event_id=closed_won_signal_id(source, source_event_id),
            source=source,
            source_system=source_system,
            source_event_id=source_event_id,
            source_version=source_version,
            correlation_id=canonical_event_id(source, source_event_id),
            occurred_at=closed_won_at,
            received_at=received_at,
            data=ClosedWonSignalData(
                record_type=record_type, record_id=record_id, closed_won_at=closed_won_at, kind=kind
            ),
        )


def closed_won_signal_id(source: str, source_event_id: str) -> str:
    """The signal's own id: distinct from the booking's, which keeps the plain source event id."""
    return canonical_event_id(source, f"{source_event_id}\x1fclosed-won-signal")


class EngagementActivatedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_id: str
    contract_version: int
    project_id: str
    psa_command_id: str
    erp_command_id: str
    revenue_schedule_version: int
    transaction_price: Money
    activation_seconds: float = Field(
        description="Closed-won to activated, the 'quote-to-project activation time' metric"
    )


class AmendmentPropagatedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_id: str
    contract_version: int
    previous_version: int
    treatment: str
    psa_command_id: str
    erp_command_id: str
    revenue_schedule_version: int
    propagation_seconds: float = Field(description="Amended in the CRM to propagated everywhere: the lag")


class AmendmentPropagated(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["AmendmentPropagated"] = "AmendmentPropagated"
    data: AmendmentPropagatedData


class EngagementActivated(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["EngagementActivated"] = "EngagementActivated"
    data: EngagementActivatedData


class TimeSyncedData(BaseModel):
    """An approved time entry reached billing and revenue (or was withdrawn before it was invoiced)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_id: str
    contract_version: int
    time_entry_id: str
    entry_version: str | None
    obligation_id: str
    wbs_code: str | None
    outcome: Literal["billed", "not_billable", "withdrawn"]
    hours: ExactDecimal
    amount: Money | None = Field(None, description="The billable line (hours x rate card), when billed")
    erp_command_id: str | None = None
    revenue_schedule_version: int
    sync_seconds: float = Field(
        description="Approved in the PSA to synced everywhere: billable time sync lag"
    )


class ExpenseSyncedData(BaseModel):
    """An approved expense reached billing (rebilled at its markup) and/or cost-to-cost progress."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_id: str
    contract_version: int
    expense_id: str
    obligation_id: str | None
    outcome: Literal["rebilled", "cost_only", "withdrawn"]
    cost: Money
    billed: Money | None = Field(None, description="Cost plus markup, when rebilled")
    markup: Money | None = None
    erp_command_id: str | None = None
    revenue_schedule_version: int
    sync_seconds: float = Field(description="Approved in the PSA to synced everywhere")


class ExpenseSynced(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["ExpenseSynced"] = "ExpenseSynced"
    data: ExpenseSyncedData


class MilestoneInvoicedData(BaseModel):
    """An accepted milestone's invoice was released to the ERP and its output-method revenue recognised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_id: str
    contract_version: int
    milestone_id: str
    obligation_id: str | None
    acceptance: Literal["explicit", "passive"]
    completed_on: date
    accepted_on: date
    invoice_amount: Money | None = Field(None, description="None when the contract bills nothing on it")
    erp_command_id: str | None = None
    revenue_schedule_version: int
    cycle_seconds: float = Field(
        description="Milestone completed to invoice released: the milestone-to-invoice cycle time"
    )


class MilestoneInvoiced(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["MilestoneInvoiced"] = "MilestoneInvoiced"
    data: MilestoneInvoicedData


class ContractBalancesData(BaseModel):
    """A contract's balances after an invoice or payment (ASC 606-10-45: netted per contract)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_id: str
    document: Literal["invoice", "payment"]
    document_id: str
    as_of: date
    billed_to_date: Money
    collected_to_date: Money
    recognised_to_date: Money
    receivable: Money
    contract_asset: Money
    contract_liability: Money


class ContractBalancesUpdated(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["ContractBalancesUpdated"] = "ContractBalancesUpdated"
    data: ContractBalancesData


class JournalTotal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: CurrencyCode
    entries: int
    debits: ExactDecimal
    credits: ExactDecimal


class PeriodClosedData(BaseModel):
    """A legal entity's period was recognised for every contract, journaled to the ERP and locked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    close_id: str
    legal_entity: str
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    contracts: int
    shards: int
    journals: list[JournalTotal]
    exceptions_overridden: int = 0
    override_reason: str | None = None
    deferred_revenue_variance: list[Money] = Field(
        default_factory=list, description="pssync's deferred revenue minus the ERP's, per currency"
    )
    locked: bool
    close_seconds: float


class PeriodClosed(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["PeriodClosed"] = "PeriodClosed"
    data: PeriodClosedData


class PeriodReopenedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    legal_entity: str
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    reason: str = Field(min_length=1, max_length=1024)
    reopened_by: str
    reopen_count: int = Field(ge=1)


class PeriodReopened(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["PeriodReopened"] = "PeriodReopened"
    data: PeriodReopenedData


class TimeSynced(EventEnvelope):
    bus_source: ClassVar[str] = WORKFLOW_EVENT_SOURCE
    event_type: Literal["TimeSynced"] = "TimeSynced"
    data: TimeSyncedData


class ModificationFacts(BaseModel):
    """What the amendment's author knows that the terms alone do not say (ASC 606-10-25-12/13).

    Left at their defaults, the revenue engine derives the treatment: added obligations are distinct,
    pricing at SSP is computed from the SSPs, remaining distinctness follows each obligation's pattern.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    added_goods_distinct: bool = True
    priced_at_ssp: bool | None = None
    remaining_distinct: dict[str, bool] = Field(default_factory=dict)
    override: Literal["separate_contract", "prospective", "cumulative_catch_up", "mixed"] | None = None
    rationale: str | None = Field(None, description="Required with an override")


class ContractAmendedData(BaseModel):
    """A new version of the contract's terms (value, dates, obligations, billing), as the CRM states it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amended_at: AwareDatetime
    effective_date: date
    reason: str | None = None
    modification: ModificationFacts = Field(default_factory=ModificationFacts)
    contract: ContractTerms


class ContractAmended(EventEnvelope):
    event_type: Literal["ContractAmended"] = "ContractAmended"
    data: ContractAmendedData


class TimeApprovedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time_entry_id: str
    project_id: str
    person_id: str
    work_date: date
    hours: ExactDecimal = Field(ge=0)
    billable: bool
    approved: bool = Field(True, description="False when an approval is withdrawn (entry rejected/deleted)")
    rate: Money | None = Field(None, description="Bill rate per hour when the PSA sends it")
    wbs_code: str | None = None
    role: str | None = None
    notes: str | None = None


class TimeApproved(EventEnvelope):
    event_type: Literal["TimeApproved"] = "TimeApproved"
    data: TimeApprovedData


class ExpenseApprovedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    expense_id: str
    project_id: str
    person_id: str | None = None
    incurred_on: date
    amount: Money
    billable: bool
    approved: bool = Field(True, description="False when an approval is withdrawn (expense rejected/deleted)")
    category: str | None = None
    wbs_code: str | None = None
    description: str | None = None


class ExpenseApproved(EventEnvelope):
    event_type: Literal["ExpenseApproved"] = "ExpenseApproved"
    data: ExpenseApprovedData


class MilestoneCompletedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    milestone_id: str
    project_id: str
    contract_id: str | None = None
    completed_on: date
    accepted_on: date | None = Field(None, description="Explicit acceptance; None while only completed")
    acceptance: Literal["pending", "explicit", "passive", "rejected"] = Field(
        "pending",
        description="pending: completed, awaiting the customer (passive acceptance after the contract's "
        "acceptance_days); explicit/passive: accepted; rejected: the customer objected (cancels the timer)",
    )
    rejected_on: date | None = None
    reason: str | None = Field(None, max_length=1024, description="The customer's reason for a rejection")


class MilestoneCompleted(EventEnvelope):
    event_type: Literal["MilestoneCompleted"] = "MilestoneCompleted"
    data: MilestoneCompletedData


class InvoiceLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    amount: Money
    billing_line_id: str | None = None
    obligation_id: str | None = None


class InvoicePostedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_id: str
    invoice_number: str | None = None
    contract_id: str | None = None
    customer_id: str
    invoice_date: date
    due_date: date | None = None
    lines: list[InvoiceLine] = Field(min_length=1)
    tax: Money | None = None
    total: Money


class InvoicePosted(EventEnvelope):
    event_type: Literal["InvoicePosted"] = "InvoicePosted"
    data: InvoicePostedData


class PaymentReceivedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_id: str
    customer_id: str
    received_on: date
    amount: Money
    invoice_ids: list[str] = Field(default_factory=list)


class PaymentReceived(EventEnvelope):
    event_type: Literal["PaymentReceived"] = "PaymentReceived"
    data: PaymentReceivedData


CANONICAL_EVENTS: tuple[type[EventEnvelope], ...] = (
    ClosedWonSignalled,
    ContractBooked,
    ContractAmended,
    TimeApproved,
    ExpenseApproved,
    MilestoneCompleted,
    InvoicePosted,
    PaymentReceived,
    EngagementActivated,
    AmendmentPropagated,
    TimeSynced,
    ExpenseSynced,
    MilestoneInvoiced,
    ContractBalancesUpdated,
    PeriodClosed,
    PeriodReopened,
)


def completion_envelope(
    workflow: str, cause: EventEnvelope, outcome: str, source_version: str, now: datetime
) -> dict[str, Any]:
    """Envelope fields of an event a workflow emits about `cause`: deterministic (a replayed step emits the
    same event id), correlated with the cause and naming it as causation."""
    source_event_id = f"{cause.event_id}:{outcome}"
    return {
        "event_id": canonical_event_id(workflow, source_event_id),
        "source": workflow,
        "source_system": SourceSystem.PSSYNC,
        "source_event_id": source_event_id,
        "source_version": source_version,
        "correlation_id": cause.correlation_id,
        "causation_id": cause.event_id,
        "occurred_at": now,
        "received_at": now,
    }


def event_type_of(model: type[EventEnvelope]) -> str:
    default = model.model_fields["event_type"].default
    assert isinstance(default, str)
    return default
