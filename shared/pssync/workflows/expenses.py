"""Apply approved expense: an approved expense reaches billing (rebilled at its markup) and progress.

The steps, in order: match the expense to its contract, obligation and expense policy; record it in the
contract's expense ledger (append-only: every approval, change and withdrawal is a new version), rebilling
it at cost plus the policy's markup when the policy admits it; send the rebilled line to the ERP; remeasure
revenue with every recorded cost; emit 'expense synced'.

The pure rules (matching, currency, category, markup, cap, changed-after-invoice) take plain values and
raise BusinessRuleViolation with a stable code; the steps around them read and append versions, each
idempotent on the causing event id, so a Step Functions retry, a redelivery or a replay changes nothing twice.

Revenue: an expense is a cost. Where its obligation measures progress cost-to-cost (InputCost), it is a
`CostEntry` for the engine. What is rebilled is billing only: the engine has no notion of reimbursement
revenue (it would be variable consideration the contract mapping does not declare), so the rebilled amount
goes to the ERP and the ledger, not into the revenue schedule.

"Invoiced" means, as for time: the expense's rebilled line was sent to the ERP (the ledger holds a `sent`
record for it). When InvoicePosted is consumed, an invoice line naming the expense is the stronger fact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import ContractTerms, ExpenseBilling, InputCost
from pssync.model.events import (
    ExpenseApproved,
    ExpenseApprovedData,
    ExpenseSynced,
    ExpenseSyncedData,
    completion_envelope,
)
from pssync.model.project import WbsElement
from pssync.money import Money, RoundingPolicy
from pssync.observability import elapsed_seconds
from pssync.ports import Clock, StoredVersion, VersionConflict, VersionStore
from pssync.workflows.amendment import is_newer
from pssync.workflows.billed_lines import (
    EntryState,
    billed_under_term,
    ledger_entries,
    refuse_rewrite_of_invoiced,
)
from pssync.workflows.delivery_facts import remeasure
from pssync.workflows.provision import CONTRACT, CommandReceipt, RevenueReceipt, contract_for_project
from pssync.workflows.revenue import EngineVersion

WORKFLOW_SOURCE = "apply-approved-expense"
EXPENSE_LINE = "expense"  # the ledger's version kind of an expense (beside "sent")
EXPENSE_LEDGER = "expense_ledger"  # per contract: every expense version and every rebilled line sent
REBILL_ROUNDING = RoundingPolicy.HALF_UP  # what invoices show


# --- values the steps pass on ----------------------------------------------------------------------------


class ExpenseMatch(BaseModel):
    """Which contract version, obligation and expense policy an expense belongs to."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    contract_version: int
    obligation_id: str | None  # None: a cost of the contract that no obligation measures
    wbs_code: str | None
    measure: Literal["input_cost", "none"]  # what the cost does to revenue
    policy_term: int | None  # index in terms.billing of the expense policy that applies, when one does
    rebillable: bool  # billable, on a billable WBS element, under a policy that admits its category


class RebilledLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    cost: Money
    markup_percent: Decimal
    markup: Money
    amount: Money  # cost plus markup: what the customer is billed


class RecordedExpense(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    ledger_version: int
    entry: str  # the ledger's key of the expense: <source>/<expense id>
    entry_version: str | None
    outcome: Literal["recorded", "withdrawn", "unchanged"]
    reason: str
    newly_recorded: bool
    cost: Money  # what the expense now costs (zero once withdrawn)
    line: RebilledLine | None = None


class ExpenseCommandReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    command_id: str | None
    sent: bool
    newly_recorded: bool
    reason: str


# --- pure rules ---------------------------------------------------------------------------------------


def _obligation_of(element: WbsElement, by_code: dict[str, WbsElement]) -> str | None:
    """A WBS element delivers its own obligation, else its nearest ancestor's."""
    seen: set[str] = set()
    current: WbsElement | None = element
    while current is not None and current.code not in seen:
        if current.obligation_id is not None:
            return current.obligation_id
        seen.add(current.code)
        current = by_code.get(current.parent_code) if current.parent_code else None
    return None


def expense_policies(terms: ContractTerms) -> list[tuple[int, ExpenseBilling]]:
    return [(i, t) for i, t in enumerate(terms.billing) if isinstance(t, ExpenseBilling)]


def check_currency(amount: Money, contract_currency: str, expense_id: str) -> None:
    """Costs and rebilled lines are in the contract currency; pssync converts nothing here."""
    if amount.currency != contract_currency:
        raise BusinessRuleViolation(
            f"expense {expense_id} is in {amount.currency}, the contract in {contract_currency}",
            code="currency_mismatch",
        )


def category_admitted(policy: ExpenseBilling, category: str | None) -> bool:
    """No category list rebills every category; a list rebills only those named (case-insensitive)."""
    if policy.rebillable_categories is None:
        return True
    return category is not None and category.casefold() in {
        c.casefold() for c in policy.rebillable_categories
    }


def _policy_for(
    policies: list[tuple[int, ExpenseBilling]], obligation_id: str | None
) -> tuple[int, ExpenseBilling] | None:
    """The policy scoped to the obligation, else the contract-wide one (no obligation named)."""
    scoped = next((p for p in policies if obligation_id and p[1].obligation_id == obligation_id), None)
    return scoped or next((p for p in policies if p[1].obligation_id is None), None)


def match_expense(expense: ExpenseApprovedData, terms: ContractTerms, contract_version: int) -> ExpenseMatch:
    """The obligation an expense supports: its WBS element's (inherited from the parent); without a WBS
    code, the one the contract's expense policy names; else none (a cost no obligation measures). An unknown
    WBS code is a business exception; so is a billable expense that several scoped policies could claim."""
    check_currency(expense.amount, terms.currency, expense.expense_id)
    by_code = {w.code: w for w in terms.project.wbs}
    element: WbsElement | None = None
    obligation_id: str | None = None
    if expense.wbs_code is not None:
        element = by_code.get(expense.wbs_code)
        if element is None:
            raise BusinessRuleViolation(
                f"WBS {expense.wbs_code} is not in project {terms.project.project_id} "
                f"(contract {terms.contract_id} v{contract_version})",
                code="unknown_wbs",
            )
        obligation_id = _obligation_of(element, by_code)
    policies = expense_policies(terms)
    if element is None:  # a WBS element that names no obligation is an answer too (internal work)
        scoped = sorted({t.obligation_id for _, t in policies if t.obligation_id is not None})
        if len(scoped) == 1:
            obligation_id = scoped[0]
        elif scoped and expense.billable and not any(t.obligation_id is None for _, t in policies):
            raise BusinessRuleViolation(
                f"expense {expense.expense_id} names no WBS element and the expense policies of contract "
                f"{terms.contract_id} v{contract_version} cover several obligations ({', '.join(scoped)})",
                code="ambiguous_expense_policy",
            )
    obligations = {o.obligation_id: o for o in terms.obligations}
    if obligation_id is not None and obligation_id not in obligations:
        raise BusinessRuleViolation(
            f"expense {expense.expense_id} matches obligation {obligation_id}, which contract "
            f"{terms.contract_id} v{contract_version} does not have",
            code="unmatched_obligation",
        )
    policy = _policy_for(policies, obligation_id)
    rebillable = (
        expense.billable
        and (element is None or element.billable)
        and policy is not None
        and category_admitted(policy[1], expense.category)
    )
    measures_cost = obligation_id is not None and isinstance(
        obligations[obligation_id].recognition, InputCost
    )
    return ExpenseMatch(
        contract_id=terms.contract_id,
        contract_version=contract_version,
        obligation_id=obligation_id,
        wbs_code=expense.wbs_code,
        measure="input_cost" if measures_cost else "none",
        policy_term=policy[0] if policy is not None else None,
        rebillable=rebillable,
    )


def rebill(cost: Money, markup_percent: Decimal, line_id: str) -> RebilledLine:
    """Cost plus markup, the total rounded to the minor unit by REBILL_ROUNDING; the markup is what the
    rounded total adds to the cost, so cost + markup is exactly what is billed."""
    amount = Money(amount=cost.amount * (100 + markup_percent) / 100, currency=cost.currency).rounded(
        REBILL_ROUNDING
    )
    return RebilledLine(
        line_id=line_id, cost=cost, markup_percent=markup_percent, markup=amount - cost, amount=amount
    )


def check_cap(policy: ExpenseBilling, rebilled_before: Money, amount: Money) -> None:
    """Not-to-exceed (markup included): a line that would pass it is refused, never billed in part."""
    cap = policy.not_to_exceed
    if cap is None:
        return
    after = rebilled_before + amount
    if after.amount > cap.amount:
        raise BusinessRuleViolation(
            f"rebilling {amount} would take rebilled expenses to {after}, past the not-to-exceed of {cap} "
            f"({rebilled_before} rebilled before)",
            code="expense_over_cap",
        )


def billing_facts(expense: ExpenseApprovedData, match: ExpenseMatch) -> dict[str, Any]:
    """What billing and revenue depend on; a change in anything else (the description) changes nothing."""
    return {
        "approved": expense.approved,
        "amount": str(expense.amount.amount),
        "currency": expense.amount.currency,
        "incurred_on": expense.incurred_on.isoformat(),
        "person_id": expense.person_id,
        "category": expense.category,
        "rebillable": match.rebillable,
        "obligation_id": match.obligation_id,
        "wbs_code": match.wbs_code,
    }


def check_not_invoiced(entry: str, previous: EntryState | None, facts: dict[str, Any]) -> None:
    """An expense whose line was rebilled (sent to the ERP) is never rewritten: its change is for review."""
    refuse_rewrite_of_invoiced(
        f"expense {entry} was {{what}} after it was rebilled",
        previous,
        facts,
        code="expense_changed_after_invoice",
    )


# --- the expense ledger -----------------------------------------------------------------------------------


def entry_key(event: ExpenseApproved) -> str:
    return f"{event.source}/{event.data.expense_id}"


# --- steps ------------------------------------------------------------------------------------------------


def _terms(stored: StoredVersion) -> ContractTerms:
    return ContractTerms.model_validate(stored.body["terms"])


def match_approved_expense(event: ExpenseApproved, store: VersionStore) -> ExpenseMatch:
    """The contract whose latest version plans the expense's PSA project, then its obligation and policy."""
    data = event.data
    terms, version = contract_for_project(store, data.project_id, data.wbs_code, f"expense {data.expense_id}")
    return match_expense(data, terms, version)


def record_expense(
    event: ExpenseApproved, match: ExpenseMatch, store: VersionStore, now: datetime
) -> RecordedExpense:
    """Append the expense (and its rebilled line) to the contract's expense ledger, once per event and
    expense version."""
    key = entry_key(event)
    history = store.history(EXPENSE_LEDGER, match.contract_id)
    mine = next(
        (v for v in history if v.caused_by_event_id == event.event_id and v.body["kind"] == "expense"), None
    )
    if mine is not None:  # a retry or replay of this step
        return _recorded(match.contract_id, mine, newly=False, reason="recorded before: continuing a replay")
    states = ledger_entries(history, EXPENSE_LINE)
    previous = states.get(key)
    facts = billing_facts(event.data, match)
    head_version = history[-1].version if history else 0
    currency = event.data.amount.currency

    def unchanged(reason: str) -> RecordedExpense:
        return RecordedExpense(
            contract_id=match.contract_id,
            ledger_version=previous.ledger_version if previous else head_version,
            entry=key,
            entry_version=event.source_version,
            outcome="unchanged",
            reason=reason,
            newly_recorded=False,
            cost=Money.model_validate(previous.body["cost"]) if previous else Money.zero(currency),
        )

    if previous is not None:
        if previous.facts == facts:
            return unchanged(f"same billing facts as ledger v{previous.ledger_version}: nothing to change")
        if (
            previous.entry_version is not None
            and event.source_version is not None
            and not is_newer(event.source_version, previous.entry_version)
        ):
            return unchanged(
                f"expense version {event.source_version!r} is not newer than the recorded "
                f"{previous.entry_version!r}: a late copy, ignored"
            )
        check_not_invoiced(key, previous, facts)
    elif not event.data.approved:
        return unchanged("withdrawn before anything was recorded: nothing to withdraw")

    cost = event.data.amount if event.data.approved else Money.zero(currency)
    line: RebilledLine | None = None
    if event.data.approved and match.rebillable and match.policy_term is not None:
        contract = store.get(CONTRACT, match.contract_id, match.contract_version)
        if contract is None:
            raise BusinessRuleViolation(
                f"contract {match.contract_id} v{match.contract_version} is not recorded"
            )
        policy = _terms(contract).billing[match.policy_term]
        assert isinstance(policy, ExpenseBilling)
        line = rebill(cost, policy.markup_percent, f"{key}@{head_version + 1}")
        check_cap(
            policy,
            billed_under_term(states, "policy_term", match.policy_term, currency, excluding=key),
            line.amount,
        )
    body = {
        "kind": "expense",
        "entry": key,
        "expense_id": event.data.expense_id,
        "entry_version": event.source_version,
        "contract_version": match.contract_version,
        "obligation_id": match.obligation_id,
        "measure": match.measure,
        "policy_term": match.policy_term if line is not None else None,
        "incurred_on": event.data.incurred_on.isoformat(),
        "category": event.data.category,
        "cost": cost.model_dump(mode="json"),
        "facts": facts,
        "line": None if line is None else line.model_dump(mode="json"),
        "approved_at": event.occurred_at.isoformat(),
    }
    try:
        stored = store.append(
            EXPENSE_LEDGER,
            match.contract_id,
            expected_version=head_version,
            body=body,
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        # Another expense of the contract was recorded meanwhile: retrying re-reads the ledger and re-checks
        # the cap against it (the cap check and the write are one conditional append).
        raise TransientDownstreamError(
            f"expense ledger of {match.contract_id} changed concurrently"
        ) from None
    return _recorded(match.contract_id, stored, newly=True, reason="recorded")


def _recorded(contract_id: str, stored: StoredVersion, *, newly: bool, reason: str) -> RecordedExpense:
    body = stored.body
    return RecordedExpense(
        contract_id=contract_id,
        ledger_version=stored.version,
        entry=body["entry"],
        entry_version=body.get("entry_version"),
        outcome="recorded" if body["facts"]["approved"] else "withdrawn",
        reason=reason,
        newly_recorded=newly,
        cost=Money.model_validate(body["cost"]),
        line=None if body.get("line") is None else RebilledLine.model_validate(body["line"]),
    )


def rebilled_expense_command(
    event: ExpenseApproved, recorded: RecordedExpense, terms: ContractTerms
) -> ConnectorCommand:
    """Upsert of one rebilled expense line in the ERP, keyed by the expense and its version."""
    assert recorded.line is not None
    data, line = event.data, recorded.line
    return ConnectorCommand(
        target=Target.ERP,
        operation="upsert_rebillable_expense",
        external_id=recorded.entry,
        idempotency_key=f"expense:{recorded.entry}:{recorded.entry_version or line.line_id}",
        payload={
            "contract_id": terms.contract_id,
            "customer": terms.customer.model_dump(mode="json"),
            "legal_entity": terms.legal_entity.code,
            "currency": terms.currency,
            "project_id": terms.project.project_id,
            "line_id": line.line_id,
            "expense_id": data.expense_id,
            "person_id": data.person_id,
            "category": data.category,
            "incurred_on": data.incurred_on.isoformat(),
            "description": data.description,
            "cost": line.cost.model_dump(mode="json"),
            "markup_percent": str(line.markup_percent),
            "markup": line.markup.model_dump(mode="json"),
            "amount": line.amount.model_dump(mode="json"),
        },
        caused_by_event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


@dataclass(frozen=True)
class PendingSend:
    """What the send step should do: nothing (with the reason), or send this command."""

    command: ConnectorCommand | None
    reason: str


def pending_send(event: ExpenseApproved, recorded: RecordedExpense, store: VersionStore) -> PendingSend:
    if recorded.line is None:
        return PendingSend(None, "nothing to rebill: not rebillable, or withdrawn before it was invoiced")
    state = ledger_entries(store.history(EXPENSE_LEDGER, recorded.contract_id), EXPENSE_LINE).get(
        recorded.entry
    )
    if state is None or state.ledger_version != recorded.ledger_version:
        return PendingSend(None, "superseded by a later version of the expense before it was sent")
    contract = store.get(CONTRACT, recorded.contract_id, int(state.body["contract_version"]))
    assert contract is not None
    return PendingSend(rebilled_expense_command(event, recorded, _terms(contract)), "sent")


def mark_sent(
    event: ExpenseApproved, recorded: RecordedExpense, command_id: str, store: VersionStore, now: datetime
) -> None:
    """The line is invoiced from now on: later changes to the expense are exceptions for review."""
    history = store.history(EXPENSE_LEDGER, recorded.contract_id)
    if any(v.body["kind"] == "sent" and v.body["line_version"] == recorded.ledger_version for v in history):
        return
    try:
        store.append(
            EXPENSE_LEDGER,
            recorded.contract_id,
            expected_version=history[-1].version,
            body={
                "kind": "sent",
                "entry": recorded.entry,
                "line_version": recorded.ledger_version,
                "command_id": command_id,
            },
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        raise TransientDownstreamError(
            f"expense ledger of {recorded.contract_id} changed concurrently"
        ) from None


def send_rebillable_expense(
    event: ExpenseApproved,
    recorded: RecordedExpense,
    store: VersionStore,
    deliver: Callable[[ConnectorCommand], CommandReceipt],
    clock: Clock,
) -> ExpenseCommandReceipt:
    """Deliver the line (an idempotent upsert), then mark it sent: from then on it counts as invoiced."""
    pending = pending_send(event, recorded, store)
    if pending.command is None:
        return ExpenseCommandReceipt(command_id=None, sent=False, newly_recorded=False, reason=pending.reason)
    receipt = deliver(pending.command)
    mark_sent(event, recorded, receipt.command_id, store, clock.now())
    return ExpenseCommandReceipt(
        command_id=receipt.command_id, sent=True, newly_recorded=receipt.newly_recorded, reason="sent"
    )


def engine_cost_events(
    contract_id: str, history: list[StoredVersion], latest: EngineVersion
) -> list[engine.CostEntry]:
    """Every approved expense on an obligation the latest version measures cost-to-cost, at its cost (the
    markup is billing, not cost). Judged against the latest terms, so an amendment that changes an
    obligation's method re-reads the same ledger."""
    cost_to_cost = {o.obligation_id for o in latest.terms.obligations if isinstance(o.recognition, InputCost)}
    events: list[engine.CostEntry] = []
    for state in ledger_entries(history, EXPENSE_LINE).values():
        body = state.body
        cost = Money.model_validate(body["cost"])
        if not body["facts"]["approved"] or body["obligation_id"] not in cost_to_cost or cost.amount == 0:
            continue
        events.append(
            engine.CostEntry(
                id=f"{body['entry']}@{state.ledger_version}",
                on=date.fromisoformat(body["incurred_on"]),
                contract_id=contract_id,
                obligation_id=body["obligation_id"],
                amount=cost.amount,
            )
        )
    return events


def expense_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """The expense ledger's collector (workflows.delivery_facts)."""
    return list(engine_cost_events(contract_id, store.history(EXPENSE_LEDGER, contract_id), latest))


def remeasure_revenue(
    event: ExpenseApproved, recorded: RecordedExpense, store: VersionStore, now: datetime
) -> RevenueReceipt:
    """The schedule with every recorded delivery fact, expenses included; a new version only when it differs
    from the current one (most expenses move no revenue), once per causing event."""
    return remeasure(
        event,
        recorded.contract_id,
        store,
        now,
        ledger=EXPENSE_LEDGER,
        also=(expense_facts,),
        only_when_changed=True,
    )


def expense_synced(
    event: ExpenseApproved,
    match: ExpenseMatch,
    recorded: RecordedExpense,
    erp: ExpenseCommandReceipt,
    revenue: RevenueReceipt,
    now: datetime,
) -> ExpenseSynced:
    outcome: Literal["rebilled", "cost_only", "withdrawn"] = (
        "withdrawn" if recorded.outcome == "withdrawn" else "rebilled" if erp.sent else "cost_only"
    )
    line = recorded.line if outcome == "rebilled" else None
    return ExpenseSynced(
        **completion_envelope(WORKFLOW_SOURCE, event, "synced", str(recorded.ledger_version), now),
        data=ExpenseSyncedData(
            contract_id=recorded.contract_id,
            contract_version=match.contract_version,
            expense_id=event.data.expense_id,
            obligation_id=match.obligation_id,
            outcome=outcome,
            cost=recorded.cost,
            billed=line.amount if line else None,
            markup=line.markup if line else None,
            erp_command_id=erp.command_id,
            revenue_schedule_version=revenue.schedule_version,
            sync_seconds=elapsed_seconds(event.occurred_at, now),
        ),
    )
