"""Provision engagement: the steps that turn a booked contract into an active engagement.

Each step is idempotent on business keys (the causing event id, the contract version), so a Step
Functions retry, an SQS redelivery or an ops replay can run it again without a second effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import (
    ContractTerms,
    MilestoneBilling,
    OutputMilestones,
    TimeAndMaterialsBilling,
    scheduled_billing_total,
)
from pssync.model.events import (
    ContractBooked,
    EngagementActivated,
    EngagementActivatedData,
    EventEnvelope,
    completion_envelope,
)
from pssync.observability import elapsed_seconds
from pssync.ports import Connector, EventPublisher, VersionConflict, VersionStore
from pssync.workflows.billing import billing_schedule
from pssync.workflows.revenue import RevenueSchedule, revenue_schedule_for

CONTRACT = "contract"
REVENUE_SCHEDULE = "revenue_schedule"
PROJECT = "project"  # PSA project id -> the contracts it delivers (how approved time finds its contract)
CUSTOMER = "customer"  # a customer id (ours, or <system>:<its id there>) -> the contracts billed to it
WORKFLOW_SOURCE = "provision-engagement"


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    contract_id: str
    warnings: list[str]


class RecordedContract(BaseModel):
    model_config = ConfigDict(frozen=True)
    contract_id: str
    version: int
    newly_recorded: bool


class CommandReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)
    command_id: str
    external_id: str
    newly_recorded: bool


class RevenueReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)
    schedule_version: int
    periods: int
    total: str
    superseded: bool = False


def validate_master_data(event: ContractBooked) -> ValidationReport:
    """Cross-field rules the CRM cannot enforce; a violation is a business exception, not a retry."""
    terms = event.data.contract
    problems: list[str] = []
    obligation_ids = terms.obligation_ids()
    for element in terms.project.wbs:
        if element.obligation_id is not None and element.obligation_id not in obligation_ids:
            problems.append(f"WBS {element.code} references unknown obligation {element.obligation_id}")
    milestone_ids = {
        m
        for o in terms.obligations
        if isinstance(o.recognition, OutputMilestones)
        for m in o.recognition.milestone_ids
    }
    for line in billing_schedule(terms):
        if line.obligation_id is not None and line.obligation_id not in obligation_ids:
            problems.append(f"billing line {line.line_id} references unknown obligation {line.obligation_id}")
        if line.amount is not None and line.amount.currency != terms.currency:
            problems.append(f"billing line {line.line_id} is in {line.amount.currency}, not {terms.currency}")
        if line.trigger.startswith("milestone_accepted:") and milestone_ids:
            milestone = line.trigger.split(":", 1)[1]
            if milestone not in milestone_ids:
                problems.append(f"billing milestone {milestone} is not a milestone of any obligation")
    billed = scheduled_billing_total(terms)
    if billed is not None and billed != terms.transaction_price.amount:
        problems.append(
            f"billing terms total {billed} {terms.currency} "
            f"but the transaction price is {terms.transaction_price}"
        )
    if problems:
        raise BusinessRuleViolation("; ".join(problems), code="master_data_invalid")
    warnings = []
    if terms.legal_entity.functional_currency != terms.currency:
        warnings.append(
            f"contract currency {terms.currency} differs from the entity's functional currency "
            f"{terms.legal_entity.functional_currency}: revenue is remeasured at the FX policy rate"
        )
    return ValidationReport(contract_id=terms.contract_id, warnings=warnings)


def record_contract_version(event: ContractBooked, store: VersionStore, now: datetime) -> RecordedContract:
    """Version 1 of the contract, written once; a replay of the same event finds its own version."""
    terms = event.data.contract
    try:
        stored = store.append(
            CONTRACT,
            terms.contract_id,
            expected_version=0,
            body={
                "terms": terms.model_dump(mode="json"),
                "source_version": event.source_version,
                "lineage": lineage_of(event),
            },
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
        link_project(store, event, terms, now)
        return RecordedContract(contract_id=terms.contract_id, version=stored.version, newly_recorded=True)
    except VersionConflict:
        first = store.get(CONTRACT, terms.contract_id, 1)
        if first is not None and first.caused_by_event_id == event.event_id:
            link_project(store, event, terms, now)  # a retry after a crash between the two writes
            return RecordedContract(contract_id=terms.contract_id, version=1, newly_recorded=False)
        raise BusinessRuleViolation(
            f"contract {terms.contract_id} was already booked by another event; amendments must arrive as "
            "contract amended events",
            code="contract_already_booked",
        ) from None


def contract_for_project(
    store: VersionStore, project_id: str, wbs_code: str | None, subject: str
) -> tuple[ContractTerms, int]:
    """PSA project id -> the contracts recorded for it -> the one whose latest version plans that project
    (a WBS code may tell several apart). `subject` names what is being matched, for the exception."""
    index = store.head(PROJECT, project_id)
    candidates: list[tuple[ContractTerms, int]] = []
    for contract_id in index.body["contract_ids"] if index else []:
        head = store.head(CONTRACT, contract_id)
        if head is not None:
            terms = ContractTerms.model_validate(head.body["terms"])
            if terms.project.project_id == project_id:
                candidates.append((terms, head.version))
    if not candidates:
        raise BusinessRuleViolation(
            f"{subject}: project {project_id} belongs to no recorded contract", code="unknown_project"
        )
    if len(candidates) > 1 and wbs_code is not None:
        candidates = [(t, v) for t, v in candidates if any(w.code == wbs_code for w in t.project.wbs)]
    if len(candidates) != 1:
        ids = ", ".join(sorted(t.contract_id for t, _ in candidates)) or "none with that WBS code"
        raise BusinessRuleViolation(
            f"{subject}: project {project_id} delivers several contracts ({ids})", code="ambiguous_project"
        )
    return candidates[0]


def lineage_of(event: EventEnvelope) -> dict[str, str] | None:
    """The webhook behind a recorded version (raw payload reference, digest, delivery id), for audits."""
    return event.lineage.model_dump(mode="json") if event.lineage else None


def link_project(store: VersionStore, event: EventEnvelope, terms: ContractTerms, now: datetime) -> None:
    """Index the contract under its PSA project id (time and expenses find it) and under its customer, our
    id and each system's (an invoice that names no contract finds it). Append-only; no-ops when linked."""
    customer = terms.customer
    _link(store, event, PROJECT, terms.project.project_id, terms.contract_id, now)
    for key in [customer.customer_id, *(f"{s}:{cid}" for s, cid in sorted(customer.external_ids.items()))]:
        _link(store, event, CUSTOMER, key, terms.contract_id, now)


# An index (a customer's contracts) is shared by every booking of that customer: a conflict there is another
# booking linking its own contract, so re-read and append again before handing the step back to a retry.
LINK_ATTEMPTS = 10


def _link(
    store: VersionStore, event: EventEnvelope, index: str, key: str, contract_id: str, now: datetime
) -> None:
    for _ in range(LINK_ATTEMPTS):
        head = store.head(index, key)
        linked: list[str] = list(head.body["contract_ids"]) if head else []
        if contract_id in linked:
            return
        try:
            store.append(
                index,
                key,
                expected_version=head.version if head else 0,
                body={"contract_ids": [*linked, contract_id]},
                caused_by_event_id=event.event_id,
                correlation_id=event.correlation_id,
                recorded_at=now.isoformat(),
            )
            return
        except VersionConflict:
            continue
    raise TransientDownstreamError(f"{index} {key} index changed concurrently {LINK_ATTEMPTS} times")


def terms_of(store: VersionStore, contract_id: str, version: int) -> ContractTerms:
    stored = store.get(CONTRACT, contract_id, version)
    if stored is None:
        raise BusinessRuleViolation(f"contract {contract_id} v{version} is not recorded")
    return ContractTerms.model_validate(stored.body["terms"])


def provision_project_command(event: EventEnvelope, terms: ContractTerms, version: int) -> ConnectorCommand:
    """Upsert of the PSA project for one contract version (WBS, billing model, entity, tax, currency)."""
    return ConnectorCommand(
        target=Target.PSA,
        operation="upsert_project",
        external_id=terms.project.project_id,
        idempotency_key=f"project:{terms.project.project_id}:contract-v{version}",
        payload={
            "project": terms.project.model_dump(mode="json"),
            "contract_id": terms.contract_id,
            "contract_version": version,
            "customer": terms.customer.model_dump(mode="json"),
            "legal_entity": terms.legal_entity.code,
            "currency": terms.currency,
            "billing_models": sorted({b.kind for b in terms.billing}),
            "tax_registration": terms.legal_entity.tax_registration,
            **project_plan_fields(terms),
        },
        caused_by_event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


def project_plan_fields(terms: ContractTerms) -> dict[str, Any]:
    """What a PSA holds of the contract beyond the WBS: title, dates, budget, milestones, T&M terms.

    JSON-able (amounts as Money JSON: decimal strings with their currency); vendor-neutral, so every PSA
    connector maps the same payload.
    """
    milestones = [
        {
            "milestone_id": m.milestone_id,
            "name": m.name,
            "amount": m.amount.model_dump(mode="json"),
            "obligation_id": m.obligation_id,
        }
        for term in terms.billing
        if isinstance(term, MilestoneBilling)
        for m in term.milestones
    ]
    time_and_materials = next(
        (
            {
                "rate_card": [line.model_dump(mode="json") for line in term.rate_card],
                "not_to_exceed": term.not_to_exceed.model_dump(mode="json") if term.not_to_exceed else None,
            }
            for term in terms.billing
            if isinstance(term, TimeAndMaterialsBilling)
        ),
        None,
    )
    return {
        "title": terms.title,
        "start_date": terms.start_date.isoformat(),
        "end_date": terms.end_date.isoformat(),
        "budget": terms.transaction_price.model_dump(mode="json"),
        "milestones": milestones,
        "time_and_materials": time_and_materials,
    }


def billing_schedule_command(event: EventEnvelope, terms: ContractTerms, version: int) -> ConnectorCommand:
    """Upsert of the ERP billing schedule for one contract version (replaces the previous version's)."""
    return ConnectorCommand(
        target=Target.ERP,
        operation="upsert_billing_schedule",
        external_id=terms.contract_id,
        idempotency_key=f"billing-schedule:{terms.contract_id}:v{version}",
        payload={
            "contract_id": terms.contract_id,
            "contract_version": version,
            "customer": terms.customer.model_dump(mode="json"),
            "legal_entity": terms.legal_entity.code,
            "currency": terms.currency,
            "project_id": terms.project.project_id,
            "lines": [line.model_dump(mode="json") for line in billing_schedule(terms)],
        },
        caused_by_event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


def send(connector: Connector, command: ConnectorCommand, now: datetime) -> CommandReceipt:
    recorded = connector.send(command, now.isoformat())
    return CommandReceipt(
        command_id=command.command_id, external_id=command.external_id, newly_recorded=recorded.first_time
    )


def store_revenue_schedule(
    store: VersionStore, event: EventEnvelope, contract_version: int, schedule: RevenueSchedule, now: datetime
) -> RevenueReceipt:
    """One revenue-schedule version per contract version; a replay finds the one it wrote."""
    for stored in reversed(store.history(REVENUE_SCHEDULE, schedule.contract_id)):
        if stored.body.get("contract_version") == contract_version:
            return RevenueReceipt(
                schedule_version=stored.version, periods=len(schedule.periods()), total=str(schedule.total())
            )
    head = store.head(REVENUE_SCHEDULE, schedule.contract_id)
    if head is not None and int(head.body.get("contract_version", 0)) > contract_version:
        # A later contract version's schedule is already current (an amendment overtook this step):
        # never write an older schedule over it.
        return RevenueReceipt(
            schedule_version=head.version,
            periods=len(schedule.periods()),
            total=str(schedule.total()),
            superseded=True,
        )
    body: dict[str, Any] = {
        "contract_version": contract_version,
        "schedule": schedule.model_dump(mode="json"),
    }
    try:
        version = store.append(
            REVENUE_SCHEDULE,
            schedule.contract_id,
            expected_version=head.version if head else 0,
            body=body,
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        ).version
    except VersionConflict:
        # Another writer moved the head between our read and write: retry the step, which re-reads it.
        raise TransientDownstreamError("revenue schedule changed concurrently") from None
    return RevenueReceipt(
        schedule_version=version, periods=len(schedule.periods()), total=str(schedule.total())
    )


def build_revenue_schedule(
    event: ContractBooked, contract: RecordedContract, store: VersionStore, now: datetime
) -> RevenueReceipt:
    terms = terms_of(store, contract.contract_id, contract.version)
    schedule = revenue_schedule_for(
        terms, contract_version=contract.version, caused_by_event_id=event.event_id
    )
    return store_revenue_schedule(store, event, contract.version, schedule, now)


def engagement_activated(
    event: ContractBooked,
    contract: RecordedContract,
    psa: CommandReceipt,
    erp: CommandReceipt,
    revenue: RevenueReceipt,
    now: datetime,
) -> EngagementActivated:
    terms = event.data.contract
    return EngagementActivated(
        **completion_envelope(WORKFLOW_SOURCE, event, "activated", str(contract.version), now),
        data=EngagementActivatedData(
            contract_id=terms.contract_id,
            contract_version=contract.version,
            project_id=terms.project.project_id,
            psa_command_id=psa.command_id,
            erp_command_id=erp.command_id,
            revenue_schedule_version=revenue.schedule_version,
            transaction_price=terms.transaction_price,
            activation_seconds=elapsed_seconds(event.data.closed_won_at, now),
        ),
    )


def emit_engagement_activated(publisher: EventPublisher, activated: EngagementActivated) -> str:
    publisher.publish([activated])
    return activated.event_id
