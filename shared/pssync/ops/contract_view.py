"""A contract as pssync knew it at a moment (`pssync contract show`) and one period's revenue walked back to
the facts, events and webhooks behind it (`pssync contract explain`).

Pure functions over the VersionStore port and the delivery log's records; they return plain pydantic
models (stable JSON with `model_dump(mode="json")`). What "known at" means: a version or a command counts
when its `recorded_at` (the instant pssync wrote it, UTC) is at or before the cut-off; later ones are hidden
and counted. Every figure comes from the stored versions or the revenue engine; this module only adds up
their lines (a schedule's total, billed and paid over periods), in Money.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from pssync import revenue as engine
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import ContractTerms
from pssync.model.events import Lineage
from pssync.money import Money, RoundingPolicy
from pssync.ports import StoredVersion, VersionStore
from pssync.revenue.result import PeriodInfo, RevenueResult
from pssync.workflows.amendment import ContractDiff, diff_terms, engine_versions
from pssync.workflows.delivery_facts import collectors
from pssync.workflows.expenses import EXPENSE_LEDGER
from pssync.workflows.milestones import MILESTONE_LEDGER
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from pssync.workflows.receivables import CONTRACT_BALANCES, OPENING_BALANCE, RECEIVABLES_LEDGER
from pssync.workflows.revenue import EngineVersion, RevenueSchedule, calendar_for, to_engine_contract
from pssync.workflows.time_approval import TIME_LEDGER

# Every aggregate the view reads for a contract (pk `<AGGREGATE>#<contract id>` in the business table).
# Beyond the contract and its revenue schedule, each is shown generically as a delivery ledger: add a new
# ledger's (or period journal's) name here and it appears in `show` and feeds `explain`.
CONTRACT_AGGREGATES: tuple[str, ...] = (
    CONTRACT,
    REVENUE_SCHEDULE,
    TIME_LEDGER,
    EXPENSE_LEDGER,
    MILESTONE_LEDGER,
    RECEIVABLES_LEDGER,
    OPENING_BALANCE,
    CONTRACT_BALANCES,
)
LEDGERS: tuple[str, ...] = tuple(a for a in CONTRACT_AGGREGATES if a not in (CONTRACT, REVENUE_SCHEDULE))
DECIDED_BY = "recorded_at: the instant pssync recorded a version or a command (UTC)"
# Zero at the currency's minor unit, so every amount in the JSON has the same shape ("0.00", not "0");
# rounding a zero is exact, the policy only has to be named.
ZERO_SCALE = RoundingPolicy.HALF_EVEN


def zero(currency: str) -> Money:
    return Money.zero(currency).rounded(ZERO_SCALE)


class ContractNotFound(LookupError):
    """No version of the contract was recorded by the cut-off."""


# --- the cut-off ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cutoff:
    """Versions recorded at or before `instant` are known; `on` is the date revenue is measured at."""

    instant: datetime
    on: date

    @classmethod
    def parse(cls, value: str | None, now: datetime) -> Cutoff:
        """A date means the end of that day (UTC); an instant is taken as it is (UTC when naive)."""
        if value is None:
            return cls(now, now.astimezone(UTC).date())
        if len(value) == 10:
            day = date.fromisoformat(value)
            end = datetime.combine(day + timedelta(days=1), time(), UTC) - timedelta(microseconds=1)
            return cls(end, day)
        instant = _instant(value)
        return cls(instant, instant.astimezone(UTC).date())

    def knows(self, recorded_at: str) -> bool:
        return _instant(recorded_at) <= self.instant


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class KnownAt:
    """A read-only VersionStore showing only the versions recorded by the cut-off.

    Every reader (the delivery-fact collectors included) sees the past through it, so `--as-of` hides
    later facts everywhere without each ledger knowing about it. Each history is read once: one view is
    one consistent snapshot, however many collectors read the same ledger.
    """

    def __init__(self, store: VersionStore, cutoff: Cutoff) -> None:
        self._store = store
        self._cutoff = cutoff
        self._read: dict[tuple[str, str], list[StoredVersion]] = {}

    def append(self, aggregate: str, aggregate_id: str, **_: Any) -> StoredVersion:
        raise PermissionError(f"{aggregate} {aggregate_id}: the as-of view is read-only")

    def _all(self, aggregate: str, aggregate_id: str) -> list[StoredVersion]:
        key = (aggregate, aggregate_id)
        if key not in self._read:
            self._read[key] = self._store.history(aggregate, aggregate_id)
        return self._read[key]

    def history(self, aggregate: str, aggregate_id: str) -> list[StoredVersion]:
        return [v for v in self._all(aggregate, aggregate_id) if self._cutoff.knows(v.recorded_at)]

    def hidden(self, aggregate: str, aggregate_id: str) -> int:
        return len(self._all(aggregate, aggregate_id)) - len(self.history(aggregate, aggregate_id))

    def head(self, aggregate: str, aggregate_id: str) -> StoredVersion | None:
        history = self.history(aggregate, aggregate_id)
        return history[-1] if history else None

    def get(self, aggregate: str, aggregate_id: str, version: int) -> StoredVersion | None:
        return _version(self.history(aggregate, aggregate_id), version)


def _version(history: list[StoredVersion], version: int) -> StoredVersion | None:
    return next((v for v in history if v.version == version), None)


class _Only:
    """The store with every ledger but one hidden: which ledger an engine fact came from."""

    def __init__(self, store: VersionStore, ledger: str) -> None:
        self._store = store
        self._ledger = ledger

    def _visible(self, aggregate: str) -> bool:
        return aggregate == self._ledger or aggregate not in LEDGERS

    def append(self, aggregate: str, aggregate_id: str, **_: Any) -> StoredVersion:
        raise PermissionError("read-only")

    def history(self, aggregate: str, aggregate_id: str) -> list[StoredVersion]:
        return self._store.history(aggregate, aggregate_id) if self._visible(aggregate) else []

    def head(self, aggregate: str, aggregate_id: str) -> StoredVersion | None:
        return self._store.head(aggregate, aggregate_id) if self._visible(aggregate) else None

    def get(self, aggregate: str, aggregate_id: str, version: int) -> StoredVersion | None:
        return self._store.get(aggregate, aggregate_id, version) if self._visible(aggregate) else None


# --- the delivery log ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedCommand:
    command: ConnectorCommand
    recorded_at: str


class CommandLog(Protocol):
    """Every command the delivery log recorded, with when (DynamoDBDeliveryLog's items)."""

    def logged_commands(self) -> Iterable[LoggedCommand]: ...


def concerns(command: ConnectorCommand, contract_id: str) -> bool:
    """Commands name their contract in the payload (project, billing schedule, billable lines) or by id."""
    return command.external_id == contract_id or command.payload.get("contract_id") == contract_id


# --- what `show` returns -------------------------------------------------------------------------------


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class ContractVersionView(_View):
    version: int
    recorded_at: str
    caused_by_event_id: str
    correlation_id: str
    source_version: str | None
    effective_date: str | None
    reason: str | None
    transaction_price: Money
    obligations: list[str]
    changes: ContractDiff | None  # against the previous version; None for the booking
    webhook: Lineage | None  # the raw delivery, when the version recorded its lineage


class CommandView(_View):
    target: str
    operation: str
    external_id: str
    idempotency_key: str
    command_id: str
    recorded_at: str
    caused_by_event_id: str


class ScheduleVersionView(_View):
    version: int
    recorded_at: str
    caused_by_event_id: str
    contract_version: int
    total: Money
    periods: list[str]
    allocations: dict[str, Money]
    unscheduled: dict[str, Money]


class LedgerVersionView(_View):
    version: int
    recorded_at: str
    caused_by_event_id: str
    body: dict[str, Any]


class LedgerView(_View):
    aggregate: str
    versions: list[LedgerVersionView]


class Balances(_View):
    """As at `measured_on`, from the revenue engine over the versions and facts known at the cut-off."""

    measured_on: date
    currency: str
    recognised_to_date: Money
    billed: Money
    collected: Money | None  # only when invoices or payments were recorded (a receivables ledger)
    receivable: Money
    contract_asset: Money
    contract_liability: Money
    basis: str


class ContractView(_View):
    contract_id: str
    as_of: datetime
    decided_by: str
    hidden_after_as_of: dict[str, int]  # aggregate (and "deliveries") -> versions recorded after the cut-off
    versions: list[ContractVersionView]
    deliveries: list[CommandView]
    revenue_schedule: list[ScheduleVersionView]
    revenue_schedule_head: RevenueSchedule | None
    ledgers: list[LedgerView]
    balances: Balances


def _lineage(body: dict[str, Any]) -> Lineage | None:
    recorded = body.get("lineage")
    return Lineage.model_validate(recorded) if recorded else None


def _terms(stored: StoredVersion) -> ContractTerms:
    return ContractTerms.model_validate(stored.body["terms"])


def contract_versions(history: list[StoredVersion]) -> list[ContractVersionView]:
    views = []
    previous: ContractTerms | None = None
    for stored in history:
        terms = _terms(stored)
        views.append(
            ContractVersionView(
                version=stored.version,
                recorded_at=stored.recorded_at,
                caused_by_event_id=stored.caused_by_event_id,
                correlation_id=stored.correlation_id,
                source_version=stored.body.get("source_version"),
                effective_date=stored.body.get("effective_date"),
                reason=stored.body.get("reason"),
                transaction_price=terms.transaction_price,
                obligations=[o.obligation_id for o in terms.obligations],
                changes=None if previous is None else diff_terms(previous, terms),
                webhook=_lineage(stored.body),
            )
        )
        previous = terms
    return views


def _schedule(stored: StoredVersion) -> RevenueSchedule:
    return RevenueSchedule.model_validate(stored.body["schedule"])


def schedule_versions(history: list[StoredVersion]) -> list[ScheduleVersionView]:
    views = []
    for stored in history:
        schedule = _schedule(stored)
        views.append(
            ScheduleVersionView(
                version=stored.version,
                recorded_at=stored.recorded_at,
                caused_by_event_id=stored.caused_by_event_id,
                contract_version=int(stored.body["contract_version"]),
                total=sum((line.amount for line in schedule.lines), zero(schedule.currency)),
                periods=schedule.periods(),
                allocations=schedule.allocations,
                unscheduled=schedule.unscheduled,
            )
        )
    return views


def deliveries(
    log: Iterable[LoggedCommand], contract_id: str, cutoff: Cutoff
) -> tuple[list[CommandView], int]:
    """The contract's commands known at the cut-off, oldest first, and how many were recorded after it."""
    mine = sorted(
        (c for c in log if concerns(c.command, contract_id)),
        key=lambda c: (_instant(c.recorded_at), c.command.command_id),
    )
    known = [c for c in mine if cutoff.knows(c.recorded_at)]
    views = [
        CommandView(
            target=str(c.command.target),
            operation=c.command.operation,
            external_id=c.command.external_id,
            idempotency_key=c.command.idempotency_key,
            command_id=c.command.command_id,
            recorded_at=c.recorded_at,
            caused_by_event_id=c.command.caused_by_event_id,
        )
        for c in known
    ]
    return views, len(mine) - len(known)


# --- the revenue engine, as known at the cut-off -------------------------------------------------------


def delivery_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """Every registered collector's engine events (each collector once)."""
    return [event for collect in dict.fromkeys(collectors()) for event in collect(store, contract_id, latest)]


def run_engine(
    versions: list[EngineVersion], events: Sequence[engine.Event], measured_on: date
) -> RevenueResult | None:
    """None when the contract is not yet in force on `measured_on` (nothing to measure)."""
    latest = versions[-1]
    contract = to_engine_contract(latest)
    if measured_on < contract.known_from:
        return None
    return engine.schedule_for(
        contract,
        previous_versions=[to_engine_contract(v) for v in versions[:-1]],
        events=events,
        calendar=calendar_for(latest.terms),
        as_of=measured_on,
    )


def balances(
    contract_id: str, versions: list[EngineVersion], events: Sequence[engine.Event], measured_on: date
) -> Balances:
    currency = versions[-1].terms.currency
    nothing = zero(currency)
    receivables_known = any(isinstance(e, engine.Invoice | engine.Payment) for e in events)
    result = run_engine(versions, events, measured_on)
    rollforward = (
        [] if result is None else [r for r in result.rollforward_totals() if r.contract_id == contract_id]
    )

    def money(amount: Any) -> Money:
        return Money(amount=amount, currency=currency)

    last = rollforward[-1] if rollforward else None
    billed = sum((money(r.billed) for r in rollforward), nothing)
    collected = sum((money(r.paid) for r in rollforward), nothing)
    if result is None:
        basis = f"the contract is not in force on {measured_on}: nothing recognised"
    elif receivables_known:
        basis = "revenue engine over the known versions and delivery facts, invoices and payments"
    else:
        basis = (
            "revenue engine over the known versions and delivery facts; no invoice or payment recorded "
            "(no receivables ledger yet): billed counts recorded invoices only, commands sent are listed "
            "under deliveries"
        )
    return Balances(
        measured_on=measured_on,
        currency=currency,
        recognised_to_date=nothing if result is None else money(result.recognised_to_date(contract_id)),
        billed=billed,
        collected=collected if receivables_known else None,
        receivable=money(last.closing_receivable) if last else nothing,
        contract_asset=money(last.closing_contract_asset) if last else nothing,
        contract_liability=money(last.closing_contract_liability) if last else nothing,
        basis=basis,
    )


# --- show ----------------------------------------------------------------------------------------------


def show(store: VersionStore, log: CommandLog, contract_id: str, cutoff: Cutoff) -> ContractView:
    known = KnownAt(store, cutoff)
    history = known.history(CONTRACT, contract_id)
    if not history:
        later = known.hidden(CONTRACT, contract_id)
        when = f"; {later} version(s) recorded after {cutoff.instant.isoformat()}" if later else ""
        raise ContractNotFound(f"contract {contract_id} is not recorded{when}")
    schedules = known.history(REVENUE_SCHEDULE, contract_id)
    commands, commands_hidden = deliveries(log.logged_commands(), contract_id, cutoff)
    versions = engine_versions(known, contract_id, len(history))
    events = delivery_facts(known, contract_id, versions[-1])
    hidden = {a: known.hidden(a, contract_id) for a in CONTRACT_AGGREGATES}
    return ContractView(
        contract_id=contract_id,
        as_of=cutoff.instant,
        decided_by=DECIDED_BY,
        hidden_after_as_of={**hidden, "deliveries": commands_hidden},
        versions=contract_versions(history),
        deliveries=commands,
        revenue_schedule=schedule_versions(schedules),
        revenue_schedule_head=_schedule(schedules[-1]) if schedules else None,
        ledgers=[
            LedgerView(
                aggregate=ledger,
                versions=[
                    LedgerVersionView(
                        version=v.version,
                        recorded_at=v.recorded_at,
                        caused_by_event_id=v.caused_by_event_id,
                        body=v.body,
                    )
                    for v in history
                ],
            )
            for ledger in LEDGERS
            if (history := known.history(ledger, contract_id))  # only the ledgers this contract has
        ],
        balances=balances(contract_id, versions, events, cutoff.on),
    )


def measured_when_recorded(
    versions: list[EngineVersion], events: Sequence[engine.Event], at: datetime
) -> date:
    """The day a workflow measured a schedule it recorded at `at`: the contract's start without delivery
    facts, else the latest of the facts, that day and the start (workflows.delivery_facts)."""
    start = to_engine_contract(versions[-1]).known_from
    if not events:
        return start
    return max([e.on for e in events] + [at.astimezone(UTC).date(), start])


# --- explain -------------------------------------------------------------------------------------------


class EventLink(_View):
    """A canonical event and the webhook it came from, when the version it caused recorded its lineage."""

    event_id: str
    webhook: Lineage | None


class FactView(_View):
    """One delivery fact the engine measured in the period, and the ledger version that recorded it."""

    obligation_id: str
    ledger: str | None  # None: no listed ledger recorded it (see CONTRACT_AGGREGATES)
    fact_id: str
    kind: str
    on: date
    detail: dict[str, Any]  # the engine's measure of the fact (a T&M entry is its billed amount in hours)
    ledger_version: int | None
    recorded: dict[str, Any] | None  # the ledger version's body: the fact as its workflow recorded it
    recorded_at: str | None
    event: EventLink | None


class ExplainedLine(_View):
    obligation_id: str
    description: str
    amount: Money  # as the stored schedule version has it
    method: str
    recognition: dict[str, Any]  # the obligation's recognition terms at that contract version
    allocated: Money | None
    inputs: str | None  # the engine's measure behind the figure (progress, days elapsed, hours...)
    recomputed: Money | None  # the engine's figure from the same versions and facts; equal to `amount`
    moved_by: str | None  # the engine's causing fact or event for the figure
    contract_version: int
    contract_event: EventLink
    facts: list[FactView]


class PeriodExplanation(_View):
    contract_id: str
    period: str
    as_of: datetime
    decided_by: str
    schedule_version: int
    schedule_recorded_at: str
    schedule_caused_by: EventLink
    total: Money
    lines: list[ExplainedLine]


def _link(event_id: str, caused: Iterable[StoredVersion]) -> EventLink:
    """The event with the lineage of the first version it caused that recorded one."""
    webhook = next((w for v in caused if v.caused_by_event_id == event_id and (w := _lineage(v.body))), None)
    return EventLink(event_id=event_id, webhook=webhook)


def _ledger_version(history: list[StoredVersion], fact_id: str) -> StoredVersion | None:
    """Collectors name a fact `<key>@<ledger version>` (the time ledger does: `<source>/<entry>@3`) or by its
    causing event. A version counts only if it names the key too, so a fact is never tied to a version of
    another ledger that happens to have that number."""
    key, at, number = fact_id.rpartition("@")
    stored = _version(history, int(number)) if at and number.isdecimal() else None
    if stored is not None and key in (str(value) for value in stored.body.values()):
        return stored
    return next((v for v in history if v.caused_by_event_id == fact_id), None)


def _facts_in(
    store: VersionStore,
    contract_id: str,
    latest: EngineVersion,
    period: PeriodWindow,
    caused: list[StoredVersion],
) -> dict[str, list[FactView]]:
    """Per obligation, the facts dated in the period, each traced to its ledger version and event.

    The collectors run once per listed ledger with the other listed ledgers hidden, so each fact is
    attributed to the ledger it came from; a fact no listed ledger explains (its ledger is not in
    CONTRACT_AGGREGATES yet) is still shown, untraced.
    """
    traced: dict[str, FactView] = {}
    untraced: dict[str, FactView] = {}
    for ledger in LEDGERS:
        history = store.history(ledger, contract_id)
        for fact in delivery_facts(_Only(store, ledger), contract_id, latest):
            if getattr(fact, "obligation_id", None) is None or not period.start <= fact.on <= period.end:
                continue
            source = _ledger_version(history, fact.id)
            view = FactView(
                obligation_id=str(getattr(fact, "obligation_id")),  # noqa: B009 - on obligation events only
                ledger=None if source is None else ledger,
                fact_id=fact.id,
                kind=str(getattr(fact, "type", type(fact).__name__)),
                on=fact.on,
                detail={k: str(v) for k, v in _fields_of(fact).items()},
                ledger_version=None if source is None else source.version,
                recorded=None if source is None else source.body,
                recorded_at=None if source is None else source.recorded_at,
                event=None if source is None else _link(source.caused_by_event_id, caused),
            )
            (untraced if source is None else traced)[fact.id] = view
    by_obligation: dict[str, list[FactView]] = {}
    for view in sorted({**untraced, **traced}.values(), key=lambda v: (v.on, v.fact_id)):  # traced wins
        by_obligation.setdefault(view.obligation_id, []).append(view)
    return by_obligation


def _fields_of(fact: engine.Event) -> dict[str, Any]:
    """An engine event's own fields (they are pydantic dataclasses), minus what the view shows apart."""
    shown_apart = ("id", "on", "recorded_on", "contract_id", "obligation_id", "type")
    return {f.name: getattr(fact, f.name) for f in fields(fact) if f.name not in shown_apart}


@dataclass(frozen=True)
class PeriodWindow:
    """A reporting period's first and last day (the engine's, or a calendar month)."""

    key: str
    start: date
    end: date


def explain(store: VersionStore, contract_id: str, period: str, cutoff: Cutoff) -> PeriodExplanation:
    """The period's lines of the revenue schedule known at the cut-off, each walked back to its obligation,
    allocation and method, the contract version and delivery facts behind it, their events and webhooks.

    The engine is run again over exactly what that schedule version was computed from (the contract
    versions up to its own, the facts recorded by its `recorded_at`) to name the measure behind each figure.
    """
    known = KnownAt(store, cutoff)
    schedules = known.history(REVENUE_SCHEDULE, contract_id)
    if not schedules:
        raise ContractNotFound(f"contract {contract_id} has no revenue schedule recorded by {cutoff.instant}")
    head = schedules[-1]
    schedule = _schedule(head)
    contract_version = int(head.body["contract_version"])
    recorded = _instant(head.recorded_at)
    then = KnownAt(store, Cutoff(recorded, recorded.astimezone(UTC).date()))
    # The contract versions up to the schedule's own (recorded before it), the facts as known when it was.
    contract_history = [v for v in known.history(CONTRACT, contract_id) if v.version <= contract_version]
    versions = engine_versions(known, contract_id, contract_version)
    latest = versions[-1]
    events = delivery_facts(then, contract_id, latest)
    result = run_engine(versions, events, measured_when_recorded(versions, events, recorded))
    engine_lines = (
        {}
        if result is None
        else {
            (line.obligation_id, line.period): line
            for line in result.schedule()
            if line.contract_id == contract_id
        }
    )
    window = _window(period, [] if result is None else result.period_infos())
    caused = [
        *contract_history,
        *(v for ledger in LEDGERS for v in then.history(ledger, contract_id)),
        *schedules,
    ]
    facts = {} if window is None else _facts_in(then, contract_id, latest, window, caused)
    terms = latest.terms
    obligations = {o.obligation_id: o for o in terms.obligations}
    lines = []
    for line in (line for line in schedule.lines if line.period == period):
        computed = engine_lines.get((line.obligation_id, period))
        obligation = obligations.get(line.obligation_id)
        version_stored = _version(contract_history, line.contract_version)
        assert version_stored is not None  # a schedule is written after the contract version it measures
        lines.append(
            ExplainedLine(
                obligation_id=line.obligation_id,
                description=obligation.description if obligation else "",
                amount=line.amount,
                method=line.method,
                recognition=obligation.recognition.model_dump(mode="json") if obligation else {},
                allocated=schedule.allocations.get(line.obligation_id),
                inputs=computed.inputs if computed else None,
                recomputed=Money(amount=computed.amount, currency=schedule.currency) if computed else None,
                moved_by=computed.causing_event_id if computed else None,
                contract_version=line.contract_version,
                contract_event=_link(version_stored.caused_by_event_id, caused),
                facts=facts.get(line.obligation_id, []),
            )
        )
    return PeriodExplanation(
        contract_id=contract_id,
        period=period,
        as_of=cutoff.instant,
        decided_by=DECIDED_BY,
        schedule_version=head.version,
        schedule_recorded_at=head.recorded_at,
        schedule_caused_by=_link(head.caused_by_event_id, caused),
        total=sum((line.amount for line in lines), zero(schedule.currency)),
        lines=lines,
    )


PERIOD_FORMAT = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$|^FY\d{4}-P\d{2}$")  # calendar month or 4-4-5


def _window(period: str, engine_periods: Sequence[PeriodInfo]) -> PeriodWindow | None:
    """The engine's period of that key, else the calendar month it names (a 4-4-5 label the engine did
    not reach has no facts to show)."""
    found = next((p for p in engine_periods if p.key == period), None)
    if found is not None:
        return PeriodWindow(found.key, found.start, found.end)
    month = PERIOD_FORMAT.match(period)
    if month is None or month.group(1) is None:
        return None
    first = date(int(month.group(1)), int(month.group(2)), 1)
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return PeriodWindow(period, first, after - timedelta(days=1))
