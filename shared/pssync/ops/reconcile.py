"""Reconciliation: per engagement, what the CRM, the PSA, the ERP and pssync's revenue engine hold, side by
side, with every variance and its cause where it can be named.

Pure over the VersionStore port and the delivery log's records (`contract_view.CommandLog`), as known at a
cut-off (`contract_view.Cutoff`); `contract_view` supplies the as-of view, the engine run and the balances.
What each system holds is what pssync told it: the PSA and ERP sides are the delivery log's commands (today
the shadow connector records them; the live connectors record exactly what was delivered).

Sign convention: a difference is the ERP's figure minus pssync's (positive: the ERP billed more).

Causes named:
- `version_not_received`: the PSA project or the ERP billing schedule is for a contract version older than
  the head (the PSA's budget or the ERP's date-triggered billing differs by what the versions differ by).
- `revenue_schedule_behind`: pssync's own revenue schedule was computed on an older contract version.
- `unbilled_milestone`: a milestone accepted in the milestone ledger without an invoice release to the ERP.
- `rate_difference`: billed time at a rate other than the contract's rate card for the role (the card of
  the contract version the time ledger rated the entry on).
- `billed_differs`: the ERP's invoiced to date differs from the invoices the engine booked (only when a
  receivables ledger records invoices).
- `deferred_revenue_differs`: pssync's contract liability differs from the ERP's implied deferred revenue
  (invoiced beyond recognised) (only when invoices are recorded: otherwise the engine books no billing).
- `unexplained`: what pssync expects billed by the cut-off differs from the ERP's invoiced to date by more
  than the named causes explain (a line recorded but not yet sent, a line the ERP holds that no ledger does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import ContractTerms, MilestoneBilling, TimeAndMaterialsBilling
from pssync.money import Money
from pssync.ops.contract_view import (
    ContractNotFound,
    Cutoff,
    KnownAt,
    LoggedCommand,
    balances,
    concerns,
    delivery_facts,
    zero,
)
from pssync.ports import StoredVersion, VersionStore
from pssync.revenue import RevenueRuleError
from pssync.workflows.amendment import engine_versions
from pssync.workflows.billed_lines import EntryState, ledger_entries
from pssync.workflows.billing import billing_schedule
from pssync.workflows.expenses import EXPENSE_LEDGER
from pssync.workflows.milestones import MILESTONE_LEDGER, milestone_statuses
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from pssync.workflows.time_approval import TIME_LEDGER

RECONCILIATION_CAUSE = "reconciliation_variance"  # the exception record's cause (`pssync dlq --cause`)
RECONCILIATION_WORKFLOW = "reconcile-portfolio"
RECONCILIATION_STEP = "ReconcileEngagement"
EXPENSE_LINE = "expense"  # the expense ledger's line kind (workflows.expenses)


class VarianceCause(StrEnum):
    VERSION_NOT_RECEIVED = "version_not_received"
    REVENUE_SCHEDULE_BEHIND = "revenue_schedule_behind"
    UNBILLED_MILESTONE = "unbilled_milestone"
    RATE_DIFFERENCE = "rate_difference"
    BILLED_DIFFERS = "billed_differs"
    DEFERRED_REVENUE_DIFFERS = "deferred_revenue_differs"
    UNEXPLAINED = "unexplained"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- tolerance -----------------------------------------------------------------------------------------


class ReconciliationTolerance(_Model):
    """The largest monetary variance per currency that raises nothing (a currency not listed: 0.00).

    From the environment as JSON (`{"EUR": "5.00", "USD": "5.00"}`); CDK context
    `pssync:reconciliation_tolerance`.
    A variance without an amount (a version a system has not received) always exceeds it.
    """

    per_currency: dict[str, Decimal] = Field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | Mapping[str, Any] | None) -> ReconciliationTolerance:
        if raw is None or raw == "":
            return cls()
        try:
            value = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"reconciliation tolerance is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise ValueError('reconciliation tolerance must be a JSON object like {"EUR": "5.00"}')
        amounts: dict[str, Decimal] = {}
        for currency, amount in value.items():
            if isinstance(amount, float):
                raise ValueError(f"tolerance for {currency}: give the amount as a string, not a float")
            try:
                money = Money.of(str(amount), str(currency))
            except (ValueError, InvalidOperation) as error:
                raise ValueError(f"tolerance for {currency!r}: {error}") from None
            if money.amount < 0:
                raise ValueError(f"tolerance for {currency} must not be negative")
            amounts[money.currency] = money.amount
        return cls(per_currency=amounts)

    def of(self, currency: str) -> Money:
        return Money(amount=self.per_currency.get(currency, Decimal(0)), currency=currency)

    def exceeded_by(self, amount: Money | None) -> bool:
        return amount is None or abs(amount.amount) > self.of(amount.currency).amount


# --- what `reconcile` returns --------------------------------------------------------------------------


class Variance(_Model):
    cause: VarianceCause
    system: str  # psa | erp | pssync
    measure: str
    pssync: str  # pssync's (or the contract's) figure, as text
    held: str  # what the system holds, as text
    amount: Money | None  # the monetary variance (the ERP's minus pssync's); None when not money
    detail: str
    reference: str | None = None  # the milestone, time entry or version concerned
    above_tolerance: bool = False


class CrmSide(_Model):
    contract_version: int
    recorded_at: str
    contract_value: Money
    budget_hours: int | None


class PsaSide(_Model):
    contract_version: int | None  # None: no project command delivered
    recorded_at: str | None
    budget_hours: int | None


class ErpSide(_Model):
    billing_schedule_version: int | None  # None: no billing schedule delivered
    scheduled_billing: Money | None  # the held schedule's fixed lines (None: open, T&M)
    scheduled_due_to_date: Money  # the held schedule's date-triggered lines due by the cut-off
    milestone_invoices: Money
    billed_time: Money
    rebilled_expenses: Money
    invoiced_to_date: Money


class PssyncSide(_Model):
    revenue_schedule_version: int | None
    revenue_schedule_contract_version: int | None
    scheduled_revenue: Money
    expected_billed_to_date: Money  # the head contract's due lines, accepted milestones, ledger lines
    recognised_to_date: Money
    engine_billed: Money | None  # invoices the engine booked; None without a receivables ledger
    receivable: Money
    contract_asset: Money
    contract_liability: Money


class EngagementReconciliation(_Model):
    contract_id: str
    currency: str
    measured_on: date
    crm: CrmSide
    psa: PsaSide
    erp: ErpSide
    pssync: PssyncSide
    billing_difference: Money  # the ERP's invoiced to date minus pssync's expected billed to date
    deferred_revenue_variance: Money | None  # pssync's contract liability minus the ERP's implied one
    variances: list[Variance]

    @property
    def above_tolerance(self) -> list[Variance]:
        return [v for v in self.variances if v.above_tolerance]


class PortfolioReconciliation(_Model):
    as_of: str
    measured_on: date
    tolerance: dict[str, Decimal]
    engagements: list[EngagementReconciliation]
    not_reconciled: dict[str, str] = Field(default_factory=dict)  # contract id -> why

    @property
    def above_tolerance(self) -> list[EngagementReconciliation]:
        return [e for e in self.engagements if e.above_tolerance]


class ReconciliationException(_Model):
    """The exception record sent to the exceptions queue for an engagement with variances above tolerance.

    Shaped like a workflow's exception record (workflow, failed_step, error) so `pssync dlq show` lists it
    with its cause; it carries no event, so `pssync dlq replay` leaves it (nothing to re-run: the next
    reconciliation tells whether it was resolved). `exception_id` names the engagement, the day and what
    was found: a second run on the same day with the same findings sends the same id.
    """

    kind: str = RECONCILIATION_CAUSE
    cause: str = RECONCILIATION_CAUSE
    workflow: str = RECONCILIATION_WORKFLOW
    failed_step: str = RECONCILIATION_STEP
    exception_id: str
    contract_id: str
    measured_on: date
    currency: str
    variances: list[Variance]
    error: dict[str, str]

    def message_attributes(self) -> dict[str, str]:
        """What a consumer parks a record with (`pssync dlq replay --cause reconciliation_variance`)."""
        return {
            "pssync-error": "ReconciliationVariance",
            "pssync-reason": RECONCILIATION_CAUSE,
            "pssync-message": self.error["Cause"][:256],
        }


def exception_for(engagement: EngagementReconciliation) -> ReconciliationException | None:
    found = engagement.above_tolerance
    if not found:
        return None
    causes = sorted({v.cause.value for v in found})
    fingerprint = ",".join(f"{v.cause}:{v.system}:{v.reference or v.measure}" for v in found)
    summary = "; ".join(f"{v.cause} ({v.system}): {v.detail}" for v in found)
    return ReconciliationException(
        exception_id=f"reconciliation:{engagement.contract_id}:{engagement.measured_on}:{fingerprint}",
        contract_id=engagement.contract_id,
        measured_on=engagement.measured_on,
        currency=engagement.currency,
        variances=found,
        error={
            "Error": "ReconciliationVariance",
            "Cause": f"{engagement.contract_id}: {', '.join(causes)}: {summary}"[:2000],
        },
    )


# --- reading what each system holds --------------------------------------------------------------------


def _recorded(logged: LoggedCommand) -> datetime:
    instant = datetime.fromisoformat(logged.recorded_at.replace("Z", "+00:00"))
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _known_commands(log: Iterable[LoggedCommand], contract_id: str, cutoff: Cutoff) -> list[LoggedCommand]:
    """The contract's commands known at the cut-off, oldest first (as `contract show` orders them)."""
    mine = [c for c in log if concerns(c.command, contract_id) and cutoff.knows(c.recorded_at)]
    return sorted(mine, key=lambda c: (_recorded(c), c.command.command_id))


def _latest(commands: Sequence[ConnectorCommand], target: Target, operation: str) -> ConnectorCommand | None:
    return next((c for c in reversed(commands) if c.target == target and c.operation == operation), None)


def _latest_per_record(commands: Sequence[ConnectorCommand], operation: str) -> list[ConnectorCommand]:
    """An upsert replaces the record it names: the latest command per external id is what the ERP holds."""
    latest: dict[str, ConnectorCommand] = {}
    for command in commands:
        if command.target == Target.ERP and command.operation == operation:
            latest[command.external_id] = command
    return list(latest.values())


def _root_budget_hours(project: Mapping[str, Any]) -> int | None:
    """The project's budget: its top-level WBS elements' hours (children break their parent down)."""
    hours = [w.get("budget_hours") for w in project.get("wbs", []) if w.get("parent_code") is None]
    known = [h for h in hours if h is not None]
    return sum(known) if known else None


def _money(document: Any) -> Money:
    return Money.model_validate(document)


def _sum(amounts: Iterable[Money], currency: str) -> Money:
    return sum(amounts, zero(currency))


def _due_by(lines: Iterable[Mapping[str, Any]], on: date, currency: str) -> Money:
    """Date-triggered lines (instalments, recurring fees) due on or before `on`: the ERP bills them itself."""
    return _sum(
        (
            _money(line["amount"])
            for line in lines
            if line.get("trigger") == "date"
            and line.get("amount") is not None
            and line.get("due_on") is not None
            and date.fromisoformat(str(line["due_on"])) <= on
        ),
        currency,
    )


def _fixed_total(lines: Iterable[Mapping[str, Any]], currency: str) -> Money | None:
    lines = list(lines)
    if any(line.get("amount") is None and line.get("kind") == "time_and_materials" for line in lines):
        return None
    return _sum((_money(line["amount"]) for line in lines if line.get("amount") is not None), currency)


def _terms(stored: StoredVersion) -> ContractTerms:
    return ContractTerms.model_validate(stored.body["terms"])


def _billing_milestones(terms: ContractTerms) -> dict[str, Money]:
    return {
        m.milestone_id: m.amount
        for term in terms.billing
        if isinstance(term, MilestoneBilling)
        for m in term.milestones
    }


def _card_rate(terms: ContractTerms, role: str | None) -> Money | None:
    """The role's rate on any T&M rate card of the version (a one-line card rates every role)."""
    for term in terms.billing:
        if not isinstance(term, TimeAndMaterialsBilling):
            continue
        if role is not None:
            line = next((r for r in term.rate_card if r.role.casefold() == role.casefold()), None)
        else:
            line = term.rate_card[0] if len(term.rate_card) == 1 else None
        if line is not None:
            return line.hourly_rate
    return None


def _unbilled_milestones(
    milestone_history: list[StoredVersion], terms: ContractTerms, releases: Sequence[ConnectorCommand]
) -> tuple[Money, list[Variance]]:
    """What the accepted billing milestones bill, and one variance per accepted one never released."""
    currency = terms.currency
    billed_milestones = _billing_milestones(terms)
    released = {str(c.payload.get("milestone_id")) for c in releases}
    accepted = {
        key: status
        for key, status in milestone_statuses(milestone_history).items()
        if status.state == "accepted" and key in billed_milestones
    }
    variances = []
    for key in sorted(accepted):
        if key in released:
            continue
        decision = accepted[key].decision
        accepted_on = None if decision is None else decision.body.get("accepted_on")
        variances.append(
            Variance(
                cause=VarianceCause.UNBILLED_MILESTONE,
                system="erp",
                measure="milestone_invoice",
                pssync=f"accepted on {accepted_on}",
                held="no invoice release",
                amount=-billed_milestones[key],
                detail=f"milestone {key} was accepted on {accepted_on} but no invoice release reached the "
                f"ERP ({billed_milestones[key]} unbilled)",
                reference=key,
            )
        )
    return _sum((billed_milestones[key] for key in accepted), currency), variances


def _rate_differences(
    time_states: Mapping[str, EntryState],
    history: list[StoredVersion],
    terms: ContractTerms,
    time_lines: Sequence[ConnectorCommand],
) -> list[Variance]:
    """Each billed time line's rate against the card of the contract version the ledger rated it on."""
    versions_terms = {stored.version: _terms(stored) for stored in history}
    by_entry = {state.entry: state for state in time_states.values()}
    variances = []
    for command in time_lines:
        state = by_entry.get(command.external_id)
        rated_on = terms
        if state is not None and state.body.get("contract_version") in versions_terms:
            rated_on = versions_terms[int(state.body["contract_version"])]
        role = command.payload.get("role")
        card = _card_rate(rated_on, role)
        billed_rate = _money(command.payload["rate"])
        if card is None or card == billed_rate:
            continue
        hours = Decimal(str(command.payload["hours"]))
        variances.append(
            Variance(
                cause=VarianceCause.RATE_DIFFERENCE,
                system="erp",
                measure="billed_rate",
                pssync=str(card),
                held=str(billed_rate),
                amount=Money(amount=(billed_rate.amount - card.amount) * hours, currency=terms.currency),
                detail=f"time entry {command.payload.get('time_entry_id')} ({role}, {hours} h) billed at "
                f"{billed_rate}/h, the rate card says {card}/h",
                reference=command.external_id,
            )
        )
    return variances


def _held_if_behind(held_version: int | None, head_version: int) -> str | None:
    """What a target holds ("nothing", "v2") when it is behind the contract's head version, else None."""
    if held_version is None:
        return "nothing"
    return f"v{held_version}" if held_version < head_version else None


def _version_not_received(
    system: str,
    measure: str,
    held: str,
    head_version: int,
    *,
    amount: Money | None,
    detail: str,
    reference: str,
) -> Variance:
    return Variance(
        cause=VarianceCause.VERSION_NOT_RECEIVED,
        system=system,
        measure=measure,
        pssync=f"v{head_version}",
        held=held,
        amount=amount,
        detail=detail,
        reference=reference,
    )


# --- one engagement ------------------------------------------------------------------------------------


def reconcile_engagement(
    store: VersionStore,
    log: Iterable[LoggedCommand],
    contract_id: str,
    cutoff: Cutoff,
    tolerance: ReconciliationTolerance | None = None,
) -> EngagementReconciliation:
    tolerance = tolerance or ReconciliationTolerance()
    known = KnownAt(store, cutoff)
    history = known.history(CONTRACT, contract_id)
    if not history:
        raise ContractNotFound(f"contract {contract_id} is not recorded by {cutoff.instant.isoformat()}")
    head = history[-1]
    terms = _terms(head)
    currency = terms.currency
    on = cutoff.on
    logged = _known_commands(log, contract_id, cutoff)
    commands = [c.command for c in logged]
    variances: list[Variance] = []

    crm = CrmSide(
        contract_version=head.version,
        recorded_at=head.recorded_at,
        contract_value=terms.transaction_price,
        budget_hours=_root_budget_hours(terms.project.model_dump(mode="json")),
    )

    # PSA: the last project upsert delivered.
    project_logged = next(
        (
            c
            for c in reversed(logged)
            if c.command.target == Target.PSA and c.command.operation == "upsert_project"
        ),
        None,
    )
    project = None if project_logged is None else project_logged.command
    psa = PsaSide(
        contract_version=None if project is None else int(project.payload["contract_version"]),
        recorded_at=None if project_logged is None else project_logged.recorded_at,
        budget_hours=None if project is None else _root_budget_hours(project.payload.get("project", {})),
    )
    if (held := _held_if_behind(psa.contract_version, head.version)) is not None:
        variances.append(
            _version_not_received(
                "psa",
                "contract_version",
                held,
                head.version,
                amount=None,
                detail=f"the PSA project holds {held}, the contract is at v{head.version} "
                f"(budget {psa.budget_hours} h held, {crm.budget_hours} h in v{head.version})",
                reference=terms.project.project_id,
            )
        )

    # ERP: the last billing schedule delivered, the milestone invoices released, billed time and expenses.
    schedule_command = _latest(commands, Target.ERP, "upsert_billing_schedule")
    held_lines: list[Mapping[str, Any]] = (
        [] if schedule_command is None else schedule_command.payload["lines"]
    )
    head_lines = [line.model_dump(mode="json") for line in billing_schedule(terms)]
    releases = [c for c in commands if c.target == Target.ERP and c.operation == "release_milestone_invoice"]
    time_lines = _latest_per_record(commands, "upsert_billable_time")
    expense_lines = _latest_per_record(commands, "upsert_rebillable_expense")
    erp_due = _due_by(held_lines, on, currency)
    erp = ErpSide(
        billing_schedule_version=None
        if schedule_command is None
        else int(schedule_command.payload["contract_version"]),
        scheduled_billing=None if schedule_command is None else _fixed_total(held_lines, currency),
        scheduled_due_to_date=erp_due,
        milestone_invoices=_sum((_money(c.payload["amount"]) for c in releases), currency),
        billed_time=_sum((_money(c.payload["amount"]) for c in time_lines), currency),
        rebilled_expenses=_sum((_money(c.payload["amount"]) for c in expense_lines), currency),
        invoiced_to_date=zero(currency),
    )
    erp = erp.model_copy(
        update={
            "invoiced_to_date": erp.scheduled_due_to_date
            + erp.milestone_invoices
            + erp.billed_time
            + erp.rebilled_expenses
        }
    )
    expected_due = _due_by(head_lines, on, currency)
    named = zero(currency)  # the part of the billing difference the named causes explain
    if (held := _held_if_behind(erp.billing_schedule_version, head.version)) is not None:
        difference = erp_due - expected_due
        named = named + difference
        variances.append(
            _version_not_received(
                "erp",
                "billing_schedule_version",
                held,
                head.version,
                amount=difference,
                detail=f"the ERP billing schedule is {held}, the contract is at v{head.version}: "
                f"{erp_due} due by {on} on the held schedule, {expected_due} on v{head.version}'s",
                reference=terms.contract_id,
            )
        )

    # Milestones accepted (as the ledger knows at the cut-off) without a release; time billed off the card.
    milestone_history = known.history(MILESTONE_LEDGER, contract_id)
    expected_milestones, unbilled = _unbilled_milestones(milestone_history, terms, releases)
    time_states = ledger_entries(known.history(TIME_LEDGER, contract_id))
    rates = _rate_differences(time_states, history, terms, time_lines)
    for found in (*unbilled, *rates):
        assert found.amount is not None  # both are money
        named = named + found.amount
        variances.append(found)
    expected_time = _sum(
        (_money(s.body["line"]["amount"]) for s in time_states.values() if s.body.get("line") is not None),
        currency,
    )
    expense_states = ledger_entries(known.history(EXPENSE_LEDGER, contract_id), EXPENSE_LINE)
    expected_expenses = _sum(
        (_money(s.body["line"]["amount"]) for s in expense_states.values() if s.body.get("line") is not None),
        currency,
    )
    expected_billed = expected_due + expected_milestones + expected_time + expected_expenses
    billing_difference = erp.invoiced_to_date - expected_billed
    residual = billing_difference - named
    if residual.amount != 0:
        variances.append(
            Variance(
                cause=VarianceCause.UNEXPLAINED,
                system="erp",
                measure="invoiced_to_date",
                pssync=str(expected_billed),
                held=str(erp.invoiced_to_date),
                amount=residual,
                detail=f"the ERP invoiced {erp.invoiced_to_date} by {on}, pssync expects {expected_billed}; "
                f"{residual} is not explained by a named cause (a line recorded but not sent, or one no "
                "ledger holds)",
            )
        )

    # pssync: the revenue schedule and the engine's balances.
    schedules = known.history(REVENUE_SCHEDULE, contract_id)
    schedule_head = schedules[-1] if schedules else None
    schedule_contract_version = None if schedule_head is None else int(schedule_head.body["contract_version"])
    scheduled_revenue = (
        zero(currency)
        if schedule_head is None
        else _sum((_money(line["amount"]) for line in schedule_head.body["schedule"]["lines"]), currency)
    )
    if schedule_contract_version is None or schedule_contract_version < head.version:
        held = "nothing" if schedule_contract_version is None else f"v{schedule_contract_version}"
        variances.append(
            Variance(
                cause=VarianceCause.REVENUE_SCHEDULE_BEHIND,
                system="pssync",
                measure="revenue_schedule_contract_version",
                pssync=f"v{head.version}",
                held=held,
                amount=None,
                detail=f"pssync's revenue schedule was computed on {held}, "
                f"the contract is at v{head.version}",
            )
        )
    versions = engine_versions(known, contract_id, len(history))
    measured = balances(contract_id, versions, delivery_facts(known, contract_id, versions[-1]), on)
    engine_billed = measured.billed if measured.collected is not None else None
    deferred_variance: Money | None = None
    if engine_billed is not None:
        if engine_billed != erp.invoiced_to_date:
            variances.append(
                Variance(
                    cause=VarianceCause.BILLED_DIFFERS,
                    system="erp",
                    measure="billed_to_date",
                    pssync=str(engine_billed),
                    held=str(erp.invoiced_to_date),
                    amount=erp.invoiced_to_date - engine_billed,
                    detail=f"the engine booked {engine_billed} of invoices by {on}, the ERP was told to "
                    f"invoice {erp.invoiced_to_date}",
                )
            )
        implied = erp.invoiced_to_date - measured.recognised_to_date
        erp_deferred = implied if implied.amount > 0 else zero(currency)
        deferred_variance = measured.contract_liability - erp_deferred
        if deferred_variance.amount != 0:
            variances.append(
                Variance(
                    cause=VarianceCause.DEFERRED_REVENUE_DIFFERS,
                    system="erp",
                    measure="deferred_revenue",
                    pssync=str(measured.contract_liability),
                    held=str(erp_deferred),
                    amount=-deferred_variance,
                    detail=f"pssync's contract liability is {measured.contract_liability}, the ERP's "
                    f"invoiced beyond recognised is {erp_deferred}",
                )
            )

    return EngagementReconciliation(
        contract_id=contract_id,
        currency=currency,
        measured_on=on,
        crm=crm,
        psa=psa,
        erp=erp,
        pssync=PssyncSide(
            revenue_schedule_version=None if schedule_head is None else schedule_head.version,
            revenue_schedule_contract_version=schedule_contract_version,
            scheduled_revenue=scheduled_revenue,
            expected_billed_to_date=expected_billed,
            recognised_to_date=measured.recognised_to_date,
            engine_billed=engine_billed,
            receivable=measured.receivable,
            contract_asset=measured.contract_asset,
            contract_liability=measured.contract_liability,
        ),
        billing_difference=billing_difference,
        deferred_revenue_variance=deferred_variance,
        variances=[
            v.model_copy(update={"above_tolerance": tolerance.exceeded_by(v.amount)}) for v in variances
        ],
    )


# --- the portfolio -------------------------------------------------------------------------------------


def reconcile_portfolio(
    store: VersionStore,
    log: Iterable[LoggedCommand],
    contract_ids: Iterable[str],
    cutoff: Cutoff,
    tolerance: ReconciliationTolerance | None = None,
) -> PortfolioReconciliation:
    """Every contract named; one the cut-off does not know, or whose data cannot be read, is listed apart
    with why, never dropped silently. The delivery log is read once."""
    tolerance = tolerance or ReconciliationTolerance()
    # Indexed once by the contract each command may concern (`contract_view.concerns`): scanning the whole
    # log per engagement made a portfolio quadratic (a quarter of the time at 100 engagements).
    by_contract: dict[str, list[LoggedCommand]] = {}
    for logged in log:
        keys = {logged.command.external_id, str(logged.command.payload.get("contract_id"))}
        for key in keys:
            by_contract.setdefault(key, []).append(logged)
    engagements: list[EngagementReconciliation] = []
    not_reconciled: dict[str, str] = {}
    for contract_id in sorted(set(contract_ids)):
        try:
            engagements.append(
                reconcile_engagement(store, by_contract.get(contract_id, []), contract_id, cutoff, tolerance)
            )
        except (ContractNotFound, RevenueRuleError) as error:
            # One contract the engine refuses (its terms) must not stop the portfolio's reconciliation.
            not_reconciled[contract_id] = f"{type(error).__name__}: {error}"
    return PortfolioReconciliation(
        as_of=cutoff.instant.isoformat(),
        measured_on=cutoff.on,
        tolerance=tolerance.per_currency,
        engagements=engagements,
        not_reconciled=not_reconciled,
    )


def variance_totals(portfolio: PortfolioReconciliation) -> dict[str, Money]:
    """Per currency, the absolute monetary variances above tolerance (what the variance metric reports)."""
    totals: dict[str, Money] = {}
    for engagement in portfolio.engagements:
        for variance in engagement.above_tolerance:
            if variance.amount is None:
                continue
            currency = variance.amount.currency
            totals[currency] = totals.get(currency, zero(currency)) + Money(
                amount=abs(variance.amount.amount), currency=currency
            )
    return totals


def deferred_revenue_variances(portfolio: PortfolioReconciliation) -> dict[str, Money]:
    """Per currency, pssync's deferred revenue minus the ERP's implied one, over the compared engagements."""
    totals: dict[str, Money] = {}
    for engagement in portfolio.engagements:
        variance = engagement.deferred_revenue_variance
        if variance is not None:
            totals[variance.currency] = totals.get(variance.currency, zero(variance.currency)) + variance
    return totals


# --- the scheduled run ---------------------------------------------------------------------------------


class ExceptionSink(Protocol):
    def send(self, record: ReconciliationException) -> None: ...


class ReconciliationRun(_Model):
    """What one run found and raised: the figures the metrics report."""

    measured_on: date
    engagements: int
    not_reconciled: int
    engagements_above_tolerance: list[str]
    variances_by_cause: dict[str, int]  # above tolerance
    variance_amounts: dict[str, Decimal]  # per currency, absolute, above tolerance
    deferred_revenue_variances: dict[str, Decimal]  # per currency, pssync minus the ERP's implied
    exceptions_sent: list[str]


def run_reconciliation(
    store: VersionStore,
    log: Iterable[LoggedCommand],
    contract_ids: Iterable[str],
    cutoff: Cutoff,
    tolerance: ReconciliationTolerance,
    exceptions: ExceptionSink,
) -> ReconciliationRun:
    """Reconcile the portfolio and send one exception record per engagement with variances above
    tolerance. Sent before anything is recorded, so a retried run may send a record twice: its
    `exception_id` (the engagement, the day, the findings) tells a reader they are the same."""
    portfolio = reconcile_portfolio(store, log, contract_ids, cutoff, tolerance)
    sent: list[str] = []
    causes: dict[str, int] = {}
    for engagement in portfolio.engagements:
        record = exception_for(engagement)
        if record is None:
            continue
        exceptions.send(record)
        sent.append(record.exception_id)
        for variance in record.variances:
            causes[variance.cause.value] = causes.get(variance.cause.value, 0) + 1
    return ReconciliationRun(
        measured_on=portfolio.measured_on,
        engagements=len(portfolio.engagements),
        not_reconciled=len(portfolio.not_reconciled),
        engagements_above_tolerance=[e.contract_id for e in portfolio.above_tolerance],
        variances_by_cause=causes,
        variance_amounts={c: m.amount for c, m in variance_totals(portfolio).items()},
        deferred_revenue_variances={c: m.amount for c, m in deferred_revenue_variances(portfolio).items()},
        exceptions_sent=sent,
    )


class SqsExceptionQueue:
    """The exceptions queue every workflow's Catch writes to; the record's cause in message attributes."""

    def __init__(self, queue_url: str, client: Any) -> None:
        self._url = queue_url
        self._client = client

    def send(self, record: ReconciliationException) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=record.model_dump_json(),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in record.message_attributes().items()
            },
        )


class DeliveryLogScan:
    """Every delivered command of the delivery log with when it was recorded (DynamoDBDeliveryLog's items);
    refusals (`refused#` items, no `command`) are not deliveries and are skipped. A Scan: the log is keyed
    by target record, not by contract."""

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client

    def logged_commands(self) -> Iterator[LoggedCommand]:
        for page in self._client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            for item in page["Items"]:
                if "command" in item:
                    yield LoggedCommand(
                        ConnectorCommand.model_validate_json(item["command"]["S"]), item["recorded_at"]["S"]
                    )
