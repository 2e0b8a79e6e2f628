"""Period close: recognise one legal entity's period for every contract, post balanced journals, lock it.

The close-period state machine runs: gate (open exceptions for the period block the close unless an
override reason is given), plan (the entity's contracts streamed into shard files on S3), one Distributed
Map child per shard (each contract's journal for the period, posted to the ERP), lock (the PERIOD
aggregate records the close, its totals and any override; PeriodClosed is emitted). A reopen needs a
reason and emits PeriodReopened; the next close posts only the difference to what was posted, as new
adjustment entries, never rewriting an earlier one.

Idempotency: the close id is the execution name (entity, period, attempt). Each contract's posted entries
live in its CLOSE_LEDGER (append-only, one version per entry, naming the close that posted it), so a
replayed shard finds what it posted and posts nothing twice; each ERP command's idempotency key is
`journal:<contract>:<period>:<kind>` with kind `recognition` or `adjustment-<n>`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import ContractTerms, Ratable, RatableBasis
from pssync.model.events import (
    JournalTotal,
    PeriodClosed,
    PeriodClosedData,
    PeriodReopened,
    PeriodReopenedData,
    SourceSystem,
    canonical_event_id,
)
from pssync.money import Money, minor_unit
from pssync.observability import elapsed_seconds
from pssync.ports import JsonObjects, StoredVersion, VersionConflict, VersionStore
from pssync.revenue.result import JournalEntry, JournalLine
from pssync.workflows.amendment import engine_versions
from pssync.workflows.delivery_facts import delivery_events
from pssync.workflows.provision import CONTRACT, PROJECT, CommandReceipt
from pssync.workflows.revenue import EngineVersion, to_engine_contract

WORKFLOW_SOURCE = "close-period"
PERIOD = "period"  # per legal entity: each period's status (locked / reopened), close id, totals, who and why
CLOSE_LEDGER = "close_ledger"  # per contract: every journal entry a close posted to the ERP
SHARD_SIZE = 200  # contract ids per shard file: one Lambda closes one shard well inside its timeout
PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
ENTITY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
RECOGNITION = "recognition"


# --- the request ------------------------------------------------------------------------------------


class CloseRequest(BaseModel):
    """What a close-period execution was asked to do; `close_id` is the execution name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["close", "reopen"]
    legal_entity: str = Field(pattern=ENTITY_PATTERN)
    period: str = Field(pattern=PERIOD_PATTERN)
    override_reason: str | None = Field(None, max_length=1024)
    reason: str | None = Field(None, max_length=1024)
    requested_by: str = Field(min_length=1, max_length=256)
    close_id: str = Field(min_length=1, max_length=80)
    requested_at: datetime

    @property
    def period_start(self) -> date:
        year, month = (int(part) for part in self.period.split("-"))
        return date(year, month, 1)

    @property
    def period_end(self) -> date:
        return period_end(self.period)


def period_end(period: str) -> date:
    year, month = (int(part) for part in period.split("-"))
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


def previous_period(today: date) -> str:
    """The period a scheduled close on the first days of a month closes: the month before."""
    last_month = today.replace(day=1) - timedelta(days=1)
    return f"{last_month.year:04d}-{last_month.month:02d}"


def execution_name(legal_entity: str, period: str, attempt: int, action: str) -> str:
    """Step Functions names allow [0-9A-Za-z_-]; entity codes are validated to a close superset."""
    safe = re.sub(r"[^0-9A-Za-z_-]", "_", legal_entity)
    return f"{safe}-{period}-a{attempt}-{action}"


ExecutionStatus = Callable[[str], str | None]
"""Execution name -> its status (RUNNING, SUCCEEDED, FAILED, ...), None when no such execution exists."""


class RequestDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    start: bool  # False: an execution for this request exists (running, or finished with nothing to redo)
    status: str | None
    attempt: int


def decide_request(
    legal_entity: str, period: str, action: Literal["close", "reopen"], status_of: ExecutionStatus
) -> RequestDecision:
    """The execution a request maps to. Attempts number every close and reopen of a period in order: the
    latest attempt for the same action that is running or succeeded is the duplicate's answer; anything
    else (a reopen in between, a failed or blocked close) gets the next attempt number."""
    attempt = 0
    latest: tuple[str, str, str] | None = None  # (action, name, status)
    while True:
        found = None
        for candidate in ("close", "reopen"):
            name = execution_name(legal_entity, period, attempt + 1, candidate)
            status = status_of(name)
            if status is not None:
                found = (candidate, name, status)
                break
        if found is None:
            break
        attempt += 1
        latest = found
    if latest is not None and latest[0] == action and latest[2] in ("RUNNING", "SUCCEEDED"):
        return RequestDecision(name=latest[1], start=False, status=latest[2], attempt=attempt)
    name = execution_name(legal_entity, period, attempt + 1, action)
    return RequestDecision(name=name, start=True, status=None, attempt=attempt + 1)


def request_input(
    action: Literal["close", "reopen"],
    legal_entity: str,
    period: str,
    requested_by: str,
    *,
    override_reason: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The execution input; every key present (the ASL's first state reads each by path). The request
    time is stated here, not taken from `$$.Execution.StartTime`: moto's interpreter keeps that as a
    datetime its DescribeExecution cannot serialise (docs/toolchain.md)."""
    if action == "reopen" and not (reason or "").strip():
        raise BusinessRuleViolation("a reopen needs a reason", code="reopen_reason_missing")
    return {
        "action": action,
        "legal_entity": legal_entity,
        "period": period,
        "override_reason": (override_reason or "").strip() or None,
        "reason": (reason or "").strip() or None,
        "requested_by": requested_by,
        "requested_at": (now or datetime.now(UTC)).isoformat(),
    }


# --- the PERIOD aggregate ---------------------------------------------------------------------------


class PeriodOverride(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    exceptions: int
    requested_by: str


class Reopening(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    reopened_by: str
    reopened_at: datetime
    reopen_id: str


class PeriodState(BaseModel):
    """One period of one legal entity, as its PERIOD aggregate knows it."""

    model_config = ConfigDict(frozen=True)

    status: Literal["locked", "reopened"]
    close_id: str
    closed_on: date
    contracts: int
    shards: int
    journals: list[JournalTotal]
    override: PeriodOverride | None = None
    reopenings: list[Reopening] = Field(default_factory=list)

    @property
    def locked(self) -> bool:
        return self.status == "locked"


def period_states(head: StoredVersion | None) -> dict[str, PeriodState]:
    if head is None:
        return {}
    return {p: PeriodState.model_validate(s) for p, s in head.body["periods"].items()}


def _append_period(
    store: VersionStore,
    entity: str,
    head: StoredVersion | None,
    periods: Mapping[str, PeriodState],
    caused_by: str,
    now: datetime,
) -> StoredVersion:
    try:
        return store.append(
            PERIOD,
            entity,
            expected_version=head.version if head else 0,
            body={
                "legal_entity": entity,
                "periods": {p: s.model_dump(mode="json") for p, s in sorted(periods.items())},
            },
            caused_by_event_id=caused_by,
            correlation_id=caused_by,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        raise TransientDownstreamError(f"periods of {entity} changed concurrently") from None


def closed_period_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """The entity's locked periods as the engine's period closes (a FactCollector): a fact learned after
    a period was locked lands in the open period as an adjustment, never in the locked one."""
    terms = latest.terms
    if any(
        isinstance(o.recognition, Ratable) and o.recognition.basis is RatableBasis.FOUR_FOUR_FIVE
        for o in terms.obligations
    ):
        return []  # locked periods are calendar months; a 4-4-5 calendar has other period keys
    entity = terms.legal_entity.code
    return [
        engine.PeriodClose(id=f"period-close:{entity}:{period}", on=state.closed_on, period=period)
        for period, state in sorted(period_states(store.head(PERIOD, entity)).items())
        # the engine knows only the periods from the contract's start on
        if state.locked and period_end(period) >= terms.start_date
    ]


# --- gate -------------------------------------------------------------------------------------------


class ExceptionFact(BaseModel):
    """An open exception (a workflow exception record or a dead-lettered event), as the gate sees it."""

    model_config = ConfigDict(frozen=True)

    event_id: str | None
    event_type: str | None
    legal_entities: frozenset[str]  # empty: not attributable to any recorded contract
    on: date | None


_DATE_FIELDS = ("work_date", "incurred_on", "completed_on", "invoice_date", "received_on", "effective_date")


def _event_document(document: dict[str, Any]) -> dict[str, Any]:
    event = document.get("detail") if "detail" in document else document.get("event")
    return event if isinstance(event, dict) else {}


def _business_date(event: dict[str, Any]) -> date | None:
    data = event.get("data") or {}
    candidates = [data.get(f) for f in _DATE_FIELDS] + [(data.get("contract") or {}).get("start_date")]
    candidates.append(str(event.get("occurred_at") or "")[:10] or None)
    for value in candidates:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    return None


def _entity_of_contract(store: VersionStore, contract_id: str) -> str | None:
    head = store.head(CONTRACT, contract_id)
    return None if head is None else str(head.body["terms"]["legal_entity"]["code"])


def exception_fact(body: str, store: VersionStore) -> ExceptionFact:
    """Which entity and date an exception concerns: the contract's entity, found through the contract id
    or the PSA project index when the event does not carry the contract itself."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        document = None
    event = _event_document(document) if isinstance(document, dict) else {}
    data = event.get("data") or {}
    entities: set[str] = set()
    contract = data.get("contract") or {}
    if contract.get("legal_entity", {}).get("code"):
        entities.add(str(contract["legal_entity"]["code"]))
    elif data.get("contract_id"):
        entities.update(e for e in [_entity_of_contract(store, str(data["contract_id"]))] if e)
    elif data.get("project_id"):
        index = store.head(PROJECT, str(data["project_id"]))
        for contract_id in index.body["contract_ids"] if index else []:
            entities.update(e for e in [_entity_of_contract(store, contract_id)] if e)
    return ExceptionFact(
        event_id=event.get("event_id"),
        event_type=event.get("event_type") or (document or {}).get("detail-type"),
        legal_entities=frozenset(entities),
        on=_business_date(event),
    )


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Literal["proceed", "already_closed"]
    open_exceptions: int
    override: PeriodOverride | None = None
    unattributed: int = 0  # open exceptions no recorded contract explains (they change no figure here)


def gate(request: CloseRequest, state: PeriodState | None, exceptions: Iterable[ExceptionFact]) -> GateResult:
    """A locked period is closed already; open exceptions of the entity dated in the period block the
    close unless the request gives an override reason (recorded with the close)."""
    if state is not None and state.locked:
        return GateResult(outcome="already_closed", open_exceptions=0)
    start, end = request.period_start, request.period_end
    blocking: list[ExceptionFact] = []
    unattributed = 0
    for fact in exceptions:
        if fact.on is None or not start <= fact.on <= end:
            continue
        if not fact.legal_entities:
            unattributed += 1
        elif request.legal_entity in fact.legal_entities:
            blocking.append(fact)
    if blocking and request.override_reason is None:
        shown = ", ".join(f"{f.event_type} {f.event_id}" for f in blocking[:10])
        raise BusinessRuleViolation(
            f"{len(blocking)} open exception(s) for {request.legal_entity} in {request.period} block the "
            f"close ({shown}{', ...' if len(blocking) > 10 else ''}): resolve or replay them, or request "
            "the close with an override reason",
            code="open_exceptions",
        )
    override = (
        PeriodOverride(
            reason=request.override_reason, exceptions=len(blocking), requested_by=request.requested_by
        )
        if blocking and request.override_reason is not None
        else None
    )
    return GateResult(
        outcome="proceed", open_exceptions=len(blocking), override=override, unattributed=unattributed
    )


def gate_close(request: CloseRequest, store: VersionStore, exception_bodies: Iterable[str]) -> GateResult:
    state = period_states(store.head(PERIOD, request.legal_entity)).get(request.period)
    if state is not None and state.locked:
        return gate(request, state, ())
    return gate(request, state, (exception_fact(body, store) for body in exception_bodies))


# --- plan -------------------------------------------------------------------------------------------


class ClosePlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    manifest_key: str
    contracts: int
    shards: int


def close_prefix(close_id: str) -> str:
    return f"closes/{close_id}"


def entity_contract_ids(heads: Iterable[StoredVersion], legal_entity: str) -> Iterator[str]:
    """Contract ids whose latest version books the entity, in the order the heads stream in."""
    for head in heads:
        if head.body["terms"]["legal_entity"]["code"] == legal_entity:
            yield head.aggregate_id


def shards_of(contract_ids: Iterable[str], size: int = SHARD_SIZE) -> Iterator[list[str]]:
    """Fixed-size groups, produced as the ids stream in: no shard holds more than `size` ids in memory."""
    shard: list[str] = []
    for contract_id in contract_ids:
        shard.append(contract_id)
        if len(shard) == size:
            yield shard
            shard = []
    if shard:
        yield shard


def plan_close(
    request: CloseRequest,
    heads: Iterable[StoredVersion],
    put_json: Callable[[str, Any], None],
    bucket: str,
    size: int = SHARD_SIZE,
) -> ClosePlan:
    """Stream the entity's contract ids into shard files and write the manifest the Distributed Map
    reads (a JSON array of {shard, key}); re-planning the same close rewrites the same keys."""
    prefix = close_prefix(request.close_id)
    manifest: list[dict[str, Any]] = []
    contracts = 0
    for number, shard in enumerate(shards_of(entity_contract_ids(heads, request.legal_entity), size), 1):
        key = f"{prefix}/shards/shard-{number:05d}.json"
        put_json(key, shard)
        manifest.append({"shard": number, "key": key})
        contracts += len(shard)
    manifest_key = f"{prefix}/manifest.json"
    put_json(manifest_key, manifest)
    return ClosePlan(bucket=bucket, manifest_key=manifest_key, contracts=contracts, shards=len(manifest))


# --- journals ---------------------------------------------------------------------------------------

Amounts = dict[str, Decimal]  # account -> debit minus credit


def signed(lines: Iterable[JournalLine]) -> Amounts:
    amounts: Amounts = defaultdict(Decimal)
    for line in lines:
        amounts[line.account] += line.debit - line.credit
    return dict(amounts)


def journal_lines(amounts: Mapping[str, Decimal], currency: str) -> list[dict[str, str]]:
    """Non-zero accounts as Dr/Cr lines in the currency's minor unit, accounts in a stable order."""
    exponent = minor_unit(currency)
    zero = Decimal(0).scaleb(-exponent)
    lines = []
    for account in sorted(amounts):
        value = amounts[account]
        if value == 0:
            continue
        lines.append(
            {
                "account": account,
                "debit": str(value.quantize(zero) if value > 0 else zero),
                "credit": str((-value).quantize(zero) if value < 0 else zero),
            }
        )
    return lines


def check_balanced(lines: Sequence[Mapping[str, str]], currency: str, what: str) -> None:
    """Debits equal credits, exactly, in the currency's minor unit; anything else is never posted."""
    debits = sum((Decimal(line["debit"]) for line in lines), Decimal(0))
    credits = sum((Decimal(line["credit"]) for line in lines), Decimal(0))
    exponent = minor_unit(currency)
    fine = all(
        Decimal(line[side]) == Decimal(line[side]).quantize(Decimal(1).scaleb(-exponent))
        for line in lines
        for side in ("debit", "credit")
    )
    if debits != credits or not fine:
        raise BusinessRuleViolation(
            f"{what}: debits {debits} and credits {credits} {currency} do not balance",
            code="journal_unbalanced",
        )


def difference(target: Mapping[str, Decimal], posted: Mapping[str, Decimal]) -> Amounts:
    """What a new entry must post so the posted entries add up to the target: only the difference."""
    return {a: target.get(a, Decimal(0)) - posted.get(a, Decimal(0)) for a in {*target, *posted}}


def journal_kind(earlier_entries: int) -> str:
    return RECOGNITION if earlier_entries == 0 else f"adjustment-{earlier_entries}"


def journal_idempotency_key(contract_id: str, period: str, kind: str) -> str:
    return f"journal:{contract_id}:{period}:{kind}"


class PeriodFigures(BaseModel):
    """One contract's period as the engine computes it as of the period end."""

    model_config = ConfigDict(frozen=True)

    currency: str
    amounts: Amounts  # the period's journal, transaction currency
    functional_currency: str
    functional_amounts: Amounts | None  # None when the functional currency is the transaction one
    deferred_revenue: Decimal  # contract liability at the period end, transaction currency


def figures_from(
    journals: Sequence[JournalEntry], deferred_revenue: Decimal, currency: str, functional: str, period: str
) -> PeriodFigures:
    # One entry per accounting contract (a separate-contract modification posts its own): summed per account.
    amounts: dict[str, Decimal] = {}
    functional_amounts: dict[str, Decimal] | None = None
    for entry in (j for j in journals if j.period == period):
        for account, value in signed(entry.lines).items():
            amounts[account] = amounts.get(account, Decimal(0)) + value
        if entry.functional_lines is not None:
            functional_amounts = {} if functional_amounts is None else functional_amounts
            for account, value in signed(entry.functional_lines).items():
                functional_amounts[account] = functional_amounts.get(account, Decimal(0)) + value
    return PeriodFigures(
        currency=currency,
        amounts=amounts,
        functional_currency=functional,
        functional_amounts=functional_amounts,
        deferred_revenue=deferred_revenue,
    )


def period_figures(
    versions: list[EngineVersion], events: Sequence[engine.Event], period: str
) -> PeriodFigures | None:
    """The engine over every version and delivery fact, as of the period end (calendar months); None
    when pssync did not know the contract yet at that date."""
    latest = to_engine_contract(versions[-1])
    try:
        result = engine.schedule_for(
            latest,
            previous_versions=[to_engine_contract(v) for v in versions[:-1]],
            events=events,
            as_of=period_end(period),
        )
    except engine.RevenueRuleError as error:
        raise BusinessRuleViolation(
            f"revenue engine refused contract {latest.contract_id}: {error}", code="revenue_rule"
        ) from None
    if latest.contract_id not in result.contract_ids:
        return None
    outcome = result.contract(latest.contract_id)
    rollforward = next(
        (
            r
            for r in result.rollforward_totals()
            if r.contract_id == latest.contract_id and r.period == period
        ),
        None,
    )
    return figures_from(
        result.journals(),
        rollforward.closing_contract_liability if rollforward else Decimal(0),
        latest.currency,
        result.functional_currency(outcome),
        period,
    )


# --- close one contract -----------------------------------------------------------------------------


class PostedEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    command_id: str
    currency: str
    debits: Decimal
    credits: Decimal


class ContractClose(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    posted: PostedEntry | None
    deferred_revenue: Money | None
    replayed: bool = False


def _totals(lines: Sequence[Mapping[str, str]]) -> tuple[Decimal, Decimal]:
    return (
        sum((Decimal(line["debit"]) for line in lines), Decimal(0)),
        sum((Decimal(line["credit"]) for line in lines), Decimal(0)),
    )


def _posted_entry(body: Mapping[str, Any]) -> PostedEntry:
    debits, credits = _totals(body["lines"])
    return PostedEntry(
        kind=body["kind"],
        command_id=body["command_id"],
        currency=body["currency"],
        debits=debits,
        credits=credits,
    )


def journal_command(
    request: CloseRequest, terms: ContractTerms, kind: str, body: Mapping[str, Any]
) -> ConnectorCommand:
    return ConnectorCommand(
        target=Target.ERP,
        operation="post_journal_entry",
        external_id=f"{request.legal_entity}/{terms.contract_id}/{request.period}",
        idempotency_key=journal_idempotency_key(terms.contract_id, request.period, kind),
        payload={
            "legal_entity": request.legal_entity,
            "contract_id": terms.contract_id,
            "customer": terms.customer.model_dump(mode="json"),
            "period": request.period,
            "posting_date": request.period_end.isoformat(),
            "kind": kind,
            "currency": body["currency"],
            "lines": body["lines"],
            "functional_currency": body["functional_currency"],
            "functional_lines": body["functional_lines"],
            "close_id": request.close_id,
        },
        caused_by_event_id=request.close_id,
        correlation_id=request.close_id,
    )


def close_contract(
    request: CloseRequest,
    contract_id: str,
    store: VersionStore,
    deliver: Callable[[ConnectorCommand], CommandReceipt],
    now: datetime,
) -> ContractClose:
    """Post the contract's period journal (or, after a reopen, the difference to what was posted) once."""
    ledger = store.history(CLOSE_LEDGER, contract_id)
    of_period = [v.body for v in ledger if v.body["period"] == request.period]
    mine = next((b for b in of_period if b["close_id"] == request.close_id), None)
    contracts = store.history(CONTRACT, contract_id)
    if not contracts:
        raise BusinessRuleViolation(f"contract {contract_id} is not recorded", code="unknown_contract")
    versions = engine_versions(store, contract_id, contracts[-1].version)
    latest = versions[-1]
    events = delivery_events(store, contract_id, latest, also=(closed_period_facts,))
    figures = period_figures(versions, events, request.period)
    deferred = None if figures is None else Money(amount=figures.deferred_revenue, currency=figures.currency)
    if mine is not None:  # a replayed shard: this close posted it already
        return ContractClose(
            contract_id=contract_id, posted=_posted_entry(mine), deferred_revenue=deferred, replayed=True
        )
    if figures is None:
        return ContractClose(contract_id=contract_id, posted=None, deferred_revenue=None)
    posted = signed_sum(of_period, "lines")
    change = difference(figures.amounts, posted)
    functional_change: Amounts | None = None
    if figures.functional_amounts is not None:
        functional_change = difference(figures.functional_amounts, signed_sum(of_period, "functional_lines"))
    if not any(change.values()) and not any((functional_change or {}).values()):
        return ContractClose(contract_id=contract_id, posted=None, deferred_revenue=deferred)
    kind = journal_kind(len(of_period))
    body: dict[str, Any] = {
        "period": request.period,
        "kind": kind,
        "close_id": request.close_id,
        "currency": figures.currency,
        "lines": journal_lines(change, figures.currency),
        "functional_currency": figures.functional_currency,
        "functional_lines": (
            None
            if functional_change is None
            else journal_lines(functional_change, figures.functional_currency)
        ),
    }
    what = f"{kind} journal of {contract_id} for {request.period}"
    check_balanced(body["lines"], figures.currency, what)
    if body["functional_lines"] is not None:
        check_balanced(body["functional_lines"], figures.functional_currency, f"{what} (functional)")
    receipt = deliver(journal_command(request, latest.terms, kind, body))
    body["command_id"] = receipt.command_id
    try:
        store.append(
            CLOSE_LEDGER,
            contract_id,
            expected_version=ledger[-1].version if ledger else 0,
            body=body,
            caused_by_event_id=request.close_id,
            correlation_id=request.close_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        # Another close of this contract wrote meanwhile: the retry re-reads the ledger; the command's
        # idempotency key makes the ERP post at most once per kind.
        raise TransientDownstreamError(f"close ledger of {contract_id} changed concurrently") from None
    return ContractClose(contract_id=contract_id, posted=_posted_entry(body), deferred_revenue=deferred)


def signed_sum(bodies: Iterable[Mapping[str, Any]], field: str) -> Amounts:
    total: Amounts = defaultdict(Decimal)
    for body in bodies:
        for line in body.get(field) or []:
            total[line["account"]] += Decimal(line["debit"]) - Decimal(line["credit"])
    return dict(total)


# --- shards and their summaries ---------------------------------------------------------------------


class CurrencyTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    entries: int = 0
    debits: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)
    deferred_revenue: Decimal = Decimal(0)


class ShardSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    shard: int
    contracts: int
    posted: int
    replayed: int
    by_currency: dict[str, CurrencyTotals]


def shard_result_key(close_id: str, shard: int) -> str:
    return f"{close_prefix(close_id)}/results/shard-{shard:05d}.json"


def summarise_shard(shard: int, closes: Sequence[ContractClose]) -> ShardSummary:
    by_currency: dict[str, CurrencyTotals] = {}

    def add(currency: str, **amounts: Any) -> None:
        current = by_currency.get(currency, CurrencyTotals())
        by_currency[currency] = CurrencyTotals(
            entries=current.entries + amounts.get("entries", 0),
            debits=current.debits + amounts.get("debits", Decimal(0)),
            credits=current.credits + amounts.get("credits", Decimal(0)),
            deferred_revenue=current.deferred_revenue + amounts.get("deferred_revenue", Decimal(0)),
        )

    for close in closes:
        if close.posted is not None:
            add(close.posted.currency, entries=1, debits=close.posted.debits, credits=close.posted.credits)
        if close.deferred_revenue is not None:
            add(close.deferred_revenue.currency, deferred_revenue=close.deferred_revenue.amount)
    return ShardSummary(
        shard=shard,
        contracts=len(closes),
        posted=sum(1 for c in closes if c.posted is not None),
        replayed=sum(1 for c in closes if c.replayed),
        by_currency=by_currency,
    )


def close_shard(
    request: CloseRequest,
    shard: int,
    contract_ids: Sequence[str],
    store: VersionStore,
    deliver: Callable[[ConnectorCommand], CommandReceipt],
    now: datetime,
) -> ShardSummary:
    return summarise_shard(shard, [close_contract(request, c, store, deliver, now) for c in contract_ids])


def combine(summaries: Iterable[ShardSummary]) -> tuple[int, int, dict[str, CurrencyTotals]]:
    """(contracts, shards, totals per currency) over every shard's summary."""
    contracts = shards = 0
    totals: dict[str, CurrencyTotals] = {}
    for summary in summaries:
        contracts += summary.contracts
        shards += 1
        for currency, t in summary.by_currency.items():
            c = totals.get(currency, CurrencyTotals())
            totals[currency] = CurrencyTotals(
                entries=c.entries + t.entries,
                debits=c.debits + t.debits,
                credits=c.credits + t.credits,
                deferred_revenue=c.deferred_revenue + t.deferred_revenue,
            )
    return contracts, shards, dict(sorted(totals.items()))


def deferred_revenue_variance(
    ours: Mapping[str, Decimal], erp_reported: Mapping[str, Money] | None
) -> list[Money]:
    """pssync's deferred revenue minus the ERP's, per currency the ERP reports; empty when it reports none."""
    if not erp_reported:
        return []
    return [
        Money(amount=ours.get(currency, Decimal(0)) - reported.amount, currency=currency)
        for currency, reported in sorted(erp_reported.items())
    ]


# --- lock, reopen -----------------------------------------------------------------------------------


class LockResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    period_version: int
    newly_locked: bool
    contracts: int
    shards: int


def _workflow_envelope(cause_id: str, outcome: str, version: int, now: datetime) -> dict[str, Any]:
    """Deterministic: a replayed lock or reopen emits the same event id."""
    source_event_id = f"{cause_id}:{outcome}"
    return {
        "event_id": canonical_event_id(WORKFLOW_SOURCE, source_event_id),
        "source": WORKFLOW_SOURCE,
        "source_system": SourceSystem.PSSYNC,
        "source_event_id": source_event_id,
        "source_version": str(version),
        "correlation_id": cause_id,
        "causation_id": None,
        "occurred_at": now,
        "received_at": now,
    }


def lock_period(
    request: CloseRequest,
    gate_result: GateResult,
    summaries: Iterable[ShardSummary],
    store: VersionStore,
    now: datetime,
    erp_deferred_revenue: Mapping[str, Money] | None = None,
) -> tuple[LockResult, PeriodClosed]:
    """Record the close in the entity's PERIOD aggregate (once per close id) and build PeriodClosed."""
    contracts, shards, totals = combine(summaries)
    journals = [
        JournalTotal(currency=c, entries=t.entries, debits=t.debits, credits=t.credits)
        for c, t in totals.items()
        if t.entries
    ]
    for total in journals:
        if total.debits != total.credits:
            raise BusinessRuleViolation(
                f"{request.period} journals in {total.currency} do not balance: debits {total.debits}, "
                f"credits {total.credits}",
                code="journal_unbalanced",
            )
    head = store.head(PERIOD, request.legal_entity)
    history = store.history(PERIOD, request.legal_entity) if head else []
    mine = next((v for v in history if v.caused_by_event_id == request.close_id), None)
    if mine is not None:
        stored, newly = mine, False
    else:
        periods = period_states(head)
        previous = periods.get(request.period)
        if previous is not None and previous.locked:
            raise BusinessRuleViolation(
                f"{request.period} of {request.legal_entity} was locked by {previous.close_id} meanwhile",
                code="period_locked",
            )
        periods[request.period] = PeriodState(
            status="locked",
            close_id=request.close_id,
            closed_on=now.date(),
            contracts=contracts,
            shards=shards,
            journals=journals,
            override=gate_result.override,
            reopenings=previous.reopenings if previous else [],
        )
        stored, newly = (
            _append_period(store, request.legal_entity, head, periods, request.close_id, now),
            True,
        )
    state = period_states(stored)[request.period]
    closed = PeriodClosed(
        **_workflow_envelope(request.close_id, "closed", stored.version, now),
        data=PeriodClosedData(
            close_id=request.close_id,
            legal_entity=request.legal_entity,
            period=request.period,
            contracts=state.contracts,
            shards=state.shards,
            journals=state.journals,
            exceptions_overridden=state.override.exceptions if state.override else 0,
            override_reason=state.override.reason if state.override else None,
            deferred_revenue_variance=deferred_revenue_variance(
                {c: t.deferred_revenue for c, t in totals.items()}, erp_deferred_revenue
            ),
            locked=True,
            close_seconds=elapsed_seconds(request.requested_at, now),
        ),
    )
    return (
        LockResult(period_version=stored.version, newly_locked=newly, contracts=contracts, shards=shards),
        closed,
    )


def reopen_period(request: CloseRequest, store: VersionStore, now: datetime) -> PeriodReopened:
    """Unlock a locked period, with the reason and who asked; once per reopen request."""
    if not (request.reason or "").strip():
        raise BusinessRuleViolation("a reopen needs a reason", code="reopen_reason_missing")
    head = store.head(PERIOD, request.legal_entity)
    history = store.history(PERIOD, request.legal_entity) if head else []
    mine = next((v for v in history if v.caused_by_event_id == request.close_id), None)
    if mine is None:
        periods = period_states(head)
        state = periods.get(request.period)
        if state is None or not state.locked:
            raise BusinessRuleViolation(
                f"{request.period} of {request.legal_entity} is not locked: nothing to reopen",
                code="period_not_locked",
            )
        later = sorted(p for p, s in periods.items() if p > request.period and s.locked)
        if later:
            raise BusinessRuleViolation(
                f"{', '.join(later)} of {request.legal_entity} are locked after {request.period}: reopen "
                "them first (a closed period is never rewritten under a later one)",
                code="later_period_locked",
            )
        assert request.reason is not None
        periods[request.period] = state.model_copy(
            update={
                "status": "reopened",
                "reopenings": [
                    *state.reopenings,
                    Reopening(
                        reason=request.reason,
                        reopened_by=request.requested_by,
                        reopened_at=now,
                        reopen_id=request.close_id,
                    ),
                ],
            }
        )
        mine = _append_period(store, request.legal_entity, head, periods, request.close_id, now)
    state = period_states(mine)[request.period]
    reopening = next(r for r in state.reopenings if r.reopen_id == request.close_id)
    return PeriodReopened(
        **_workflow_envelope(request.close_id, "reopened", mine.version, now),
        data=PeriodReopenedData(
            legal_entity=request.legal_entity,
            period=request.period,
            reason=reopening.reason,
            reopened_by=reopening.reopened_by,
            reopen_count=len(state.reopenings),
        ),
    )


# --- what the steps receive, and how a request becomes an execution ----------------------------------


class ShardItem(BaseModel):
    """One manifest entry, as the Distributed Map hands it to a child execution."""

    model_config = ConfigDict(frozen=True)

    shard: int
    key: str


class CloseState(BaseModel):
    """The state a close-period step receives (see close_period.asl.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request: CloseRequest
    gate: GateResult | None = None
    plan: ClosePlan | None = None
    shard: ShardItem | None = None

    def require_gate(self) -> GateResult:
        if self.gate is None:
            raise ValueError("this step runs after GateClose; 'gate' is missing")
        return self.gate

    def require_plan(self) -> ClosePlan:
        if self.plan is None:
            raise ValueError("this step runs after PlanClose; 'plan' is missing")
        return self.plan

    def require_shard(self) -> ShardItem:
        if self.shard is None:
            raise ValueError("a shard step runs inside the Distributed Map; 'shard' is missing")
        return self.shard


def shard_summaries(objects: JsonObjects, close_id: str, expected: int) -> list[ShardSummary]:
    """Every shard's summary. One missing means a shard never finished: the close fails rather than lock
    a period without it (moto's Distributed Map does not apply ToleratedFailurePercentage; AWS does)."""
    summaries = [
        ShardSummary.model_validate(objects.get_json(key))
        for key in objects.keys(f"{close_prefix(close_id)}/results/")
    ]
    if len(summaries) != expected:
        raise BusinessRuleViolation(
            f"{len(summaries)} of {expected} shard results of {close_id} found: not locking the period",
            code="shard_results_missing",
        )
    return summaries


def submit_request(
    document: Mapping[str, Any],
    status_of: ExecutionStatus,
    start: Callable[[str, str], str],
) -> RequestDecision:
    """Start the execution a close or reopen request maps to, or name the one that answers it already."""
    decision = decide_request(document["legal_entity"], document["period"], document["action"], status_of)
    if decision.start:
        start(decision.name, json.dumps(dict(document)))
    return decision
