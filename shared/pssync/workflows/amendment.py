"""Propagate amendment: a new contract version reaches the PSA, the ERP and the revenue schedule, in order.

Ordering is the source's: an amendment whose version signal is not newer than what is recorded is ignored
(a late or duplicate delivery), never applied over newer terms. Every step is idempotent on the causing
event id, so retries, redeliveries and replays cannot apply an amendment twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict

from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.contract import ContractTerms
from pssync.model.events import (
    AmendmentPropagated,
    AmendmentPropagatedData,
    ContractAmended,
    completion_envelope,
)
from pssync.money import Money
from pssync.observability import elapsed_seconds
from pssync.ports import StoredVersion, VersionConflict, VersionStore
from pssync.workflows.provision import (
    CONTRACT,
    CommandReceipt,
    RevenueReceipt,
    lineage_of,
    link_project,
    store_revenue_schedule,
    terms_of,
)
from pssync.workflows.revenue import EngineVersion, classify_and_schedule

WORKFLOW_SOURCE = "propagate-amendment"


class VersionGuard(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["apply", "ignore"]
    contract_id: str
    recorded_version: int
    reason: str


class ContractDiff(BaseModel):
    model_config = ConfigDict(frozen=True)

    price_change: Money
    added_obligations: list[str]
    removed_obligations: list[str]
    changed_obligations: list[str]
    dates_changed: bool
    billing_changed: bool
    project_changed: bool


class RecordedAmendment(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    version: int
    previous_version: int
    newly_recorded: bool
    diff: ContractDiff
    # A newer version was recorded after the guard let this one through (a concurrent amendment won the
    # race): the same outcome as arriving late, so the workflow ends as ignored, with this reason.
    superseded: str | None = None


class Classification(BaseModel):
    model_config = ConfigDict(frozen=True)

    treatment: str
    rationale: str
    overridden: bool
    catch_up: dict[str, Money]


_EPOCH_MS_FLOOR = Decimal(10) ** 11  # 1973-03-03 in epoch ms: larger integers are instants, not sequences


def _ordering_key(signal: str) -> tuple[int, datetime | Decimal | str, Decimal]:
    """(kind, value, tiebreak): instants compare with instants whatever their spelling (ISO text,
    HubSpot's epoch ms, Event Relay's `commitTimestamp:commitNumber:...`), sequences as numbers, anything
    else as text."""
    head, _, rest = (
        signal.partition(":") if signal[:1].isdigit() and signal.count(":") == 3 else (signal, "", "")
    )
    tiebreak = Decimal(0)
    if rest:  # Event Relay: commitTimestamp:commitNumber:transactionKey:sequenceNumber
        number = rest.split(":", 1)[0]
        tiebreak = Decimal(number) if number.isdecimal() else Decimal(0)
    try:
        value = Decimal(head)
    except InvalidOperation:
        value = None
    if value is not None and value.is_finite():
        if value >= _EPOCH_MS_FLOOR:
            return (0, datetime.fromtimestamp(float(value / 1000), tz=UTC), tiebreak)  # seconds, not money
        return (1, value, tiebreak)
    try:
        instant = datetime.fromisoformat(signal.replace("Z", "+00:00"))
    except ValueError:
        return (2, signal, tiebreak)
    return (0, instant if instant.tzinfo else instant.replace(tzinfo=UTC), tiebreak)


def is_newer(incoming: str | None, recorded: str | None) -> bool:
    if recorded is None:
        return True
    if incoming is None:
        return False  # without a version signal, an amendment cannot prove it is not stale
    a, b = _ordering_key(incoming), _ordering_key(recorded)
    if a[0] != b[0]:
        raise BusinessRuleViolation(
            f"version signals {incoming!r} and {recorded!r} are not comparable", code="version_signal"
        )
    return (a[1], a[2]) > (b[1], b[2])


def _recorded_by(history: list[StoredVersion], event_id: str) -> StoredVersion | None:
    return next((v for v in history if v.caused_by_event_id == event_id), None)


def guard_contract_version(event: ContractAmended, store: VersionStore) -> VersionGuard:
    contract_id = event.data.contract.contract_id
    history = store.history(CONTRACT, contract_id)
    if not history:
        # Usually the booking is still being provisioned (no ordering across workflows): retry with
        # backoff; if it never appears, the retries run out into the exceptions queue for replay.
        raise TransientDownstreamError(f"contract {contract_id} is not recorded yet")
    mine = _recorded_by(history, event.event_id)
    if mine is not None:
        return VersionGuard(
            action="apply",
            contract_id=contract_id,
            recorded_version=mine.version,
            reason="this amendment was recorded before: continuing a replay",
        )
    head = history[-1]
    recorded_signal = head.body.get("source_version")
    if not is_newer(event.source_version, recorded_signal):
        return VersionGuard(
            action="ignore",
            contract_id=contract_id,
            recorded_version=head.version,
            reason=f"source version {event.source_version!r} is not newer than the recorded "
            f"{recorded_signal!r} (v{head.version})",
        )
    return VersionGuard(
        action="apply",
        contract_id=contract_id,
        recorded_version=head.version,
        reason=f"newer than v{head.version}",
    )


def diff_terms(before: ContractTerms, after: ContractTerms) -> ContractDiff:
    old = {o.obligation_id: o for o in before.obligations}
    new = {o.obligation_id: o for o in after.obligations}
    return ContractDiff(
        price_change=after.transaction_price - before.transaction_price,
        added_obligations=sorted(new.keys() - old.keys()),
        removed_obligations=sorted(old.keys() - new.keys()),
        changed_obligations=sorted(k for k in new.keys() & old.keys() if new[k] != old[k]),
        dates_changed=(before.start_date, before.end_date) != (after.start_date, after.end_date),
        billing_changed=before.billing != after.billing,
        project_changed=before.project != after.project,
    )


def record_amended_version(event: ContractAmended, store: VersionStore, now: datetime) -> RecordedAmendment:
    """Append version N+1, re-checking the ordering against the head it writes over."""
    terms = event.data.contract
    history = store.history(CONTRACT, terms.contract_id)
    mine = _recorded_by(history, event.event_id)
    if mine is not None:  # a retry or replay of this step
        link_project(store, event, terms, now)
        before = ContractTerms.model_validate(history[mine.version - 2].body["terms"])
        return RecordedAmendment(
            contract_id=terms.contract_id,
            version=mine.version,
            previous_version=mine.version - 1,
            newly_recorded=False,
            diff=diff_terms(before, terms),
        )
    if not history:
        raise BusinessRuleViolation(f"contract {terms.contract_id} was never booked", code="unknown_contract")
    head = history[-1]
    head_terms = ContractTerms.model_validate(head.body["terms"])
    if not is_newer(event.source_version, head.body.get("source_version")):
        return RecordedAmendment(
            contract_id=terms.contract_id,
            version=head.version,
            previous_version=head.version,
            newly_recorded=False,
            diff=diff_terms(head_terms, terms),
            superseded=f"v{head.version} (source version {head.body.get('source_version')!r}) was recorded "
            f"after the guard ran; {event.source_version!r} is not newer",
        )
    try:
        stored = store.append(
            CONTRACT,
            terms.contract_id,
            expected_version=head.version,
            body={
                "terms": terms.model_dump(mode="json"),
                "source_version": event.source_version,
                "effective_date": event.data.effective_date.isoformat(),
                "modification": event.data.modification.model_dump(mode="json"),
                "reason": event.data.reason,
                "lineage": lineage_of(event),
            },
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        # Someone appended first: retrying re-reads the head and re-checks the ordering.
        raise TransientDownstreamError(f"contract {terms.contract_id} changed concurrently") from None
    link_project(store, event, terms, now)  # an amendment may move the contract to another PSA project
    return RecordedAmendment(
        contract_id=terms.contract_id,
        version=stored.version,
        previous_version=head.version,
        newly_recorded=True,
        diff=diff_terms(head_terms, terms),
    )


def engine_versions(store: VersionStore, contract_id: str, up_to: int) -> list[EngineVersion]:
    versions = []
    for stored in store.history(CONTRACT, contract_id)[:up_to]:
        versions.append(
            EngineVersion(
                version=stored.version,
                terms=ContractTerms.model_validate(stored.body["terms"]),
                caused_by_event_id=stored.caused_by_event_id,
                effective_date=stored.body.get("effective_date"),
                modification=stored.body.get("modification"),
            )
        )
    return versions


def classify_modification(store: VersionStore, recorded: RecordedAmendment) -> Classification:
    _, line = classify_and_schedule(engine_versions(store, recorded.contract_id, recorded.version))
    if line is None:
        raise BusinessRuleViolation(f"the engine saw no modification at v{recorded.version}")
    currency = terms_of(store, recorded.contract_id, recorded.version).currency
    return Classification(
        treatment=line.treatment,
        rationale=line.rationale,
        overridden=line.overridden,
        catch_up={o: Money(amount=a, currency=currency) for o, a in line.catch_up_amounts.items()},
    )


def amendment_propagated(
    event: ContractAmended,
    recorded: RecordedAmendment,
    classification: Classification,
    psa: CommandReceipt,
    erp: CommandReceipt,
    revenue: RevenueReceipt,
    now: datetime,
) -> AmendmentPropagated:
    return AmendmentPropagated(
        **completion_envelope(WORKFLOW_SOURCE, event, "propagated", str(recorded.version), now),
        data=AmendmentPropagatedData(
            contract_id=recorded.contract_id,
            contract_version=recorded.version,
            previous_version=recorded.previous_version,
            treatment=classification.treatment,
            psa_command_id=psa.command_id,
            erp_command_id=erp.command_id,
            revenue_schedule_version=revenue.schedule_version,
            propagation_seconds=elapsed_seconds(event.data.amended_at, now),
        ),
    )


def remeasure_revenue(
    event: ContractAmended, recorded: RecordedAmendment, store: VersionStore, now: datetime
) -> RevenueReceipt:
    # Imported here: the delivery ledgers build on this module (engine_versions, is_newer).
    from pssync.workflows.delivery_facts import schedule_with_delivery

    versions = engine_versions(store, recorded.contract_id, recorded.version)
    # Delivery recorded so far (time, costs, milestones) keeps measuring progress after the amendment.
    schedule = schedule_with_delivery(store, recorded.contract_id, versions, now)
    return store_revenue_schedule(store, event, recorded.version, schedule, now)
