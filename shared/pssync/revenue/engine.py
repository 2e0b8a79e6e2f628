"""The revenue computation: contract versions and events in, cumulative revenue per obligation and period out.

Model. An obligation's revenue is a sequence of *segments*, one per contract version that changed how it is
measured. In a segment, cumulative revenue at day t is

    inception / catch-up:  A(t) x p(t)                        (A: allocated price, p: progress)
    prospective:           R + A(t) x (p(t) - p0) / (1 - p0)  (R, p0: revenue and progress at the
                                                               modification; A: the remaining price)
    frozen:                R                                  (satisfied or removed before a change)
    transferred:           R + A(t)                           (nothing left to transfer: p0 = 1, or a
                                                               price change after everything was)

all in integer minor units, rounded half away from zero once per cumulative figure, so per-period amounts are
differences of cumulative figures and always add up to the allocated price at completion.

Period close. Period k is reported with the knowledge it had when it was closed (facts recorded on or before
its close date); open and future periods use the knowledge at `as_of`. Reported revenue of period k is
C_k(k) - C_{k-1}(k-1), split into the period's own revenue C_k(k) - C_k(k-1) and an adjustment for earlier
periods C_k(k-1) - C_{k-1}(k-1). Closed figures are thus never rewritten; late facts land in the first open
period as adjustments.

Where the pieces are:
- compiled.py: versions in minor units; consideration.py: transaction price and allocation groups;
- modification.py: classification of a modification; segments.py: segments from versions;
- evaluation.py: segments evaluated into tracks; computation.py: one contract, one state of knowledge;
- knowledge.py: period close cut-offs; period_figures.py: reported / own / adjustment; billing.py: billing.
This module runs them over a scenario.
"""

from __future__ import annotations

import gc
from array import array
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from pssync.revenue.billing import billing_buckets
from pssync.revenue.compiled import CompiledVersion, compile_version, to_minor_units
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.evaluation import Track
from pssync.revenue.knowledge import (
    close_days,
    contract_history,
    knowledge_cut_offs,
    states_of_knowledge,
)
from pssync.revenue.models import (
    ContractCost,
    ContractEvent,
    CostsToProvideEstimate,
    Invoice,
    MaterialRightPattern,
    ModificationTreatment,
    Payment,
    PeriodClose,
    PointInTimePattern,
    ProgressRounding,
    RatablePattern,
    RoyaltyReported,
    Scenario,
)
from pssync.revenue.modification import ModificationRecord
from pssync.revenue.period_figures import period_figures
from pssync.revenue.periods import PeriodIndex, periods_covering
from pssync.revenue.royalties import royalty_targets


@dataclass(slots=True)
class AccountingContract:
    """A contract whose balances are netted on their own (IFRS 15.105): the contract itself, or one created by
    a modification accounted for as a separate contract (IFRS 15.20), id `<contract_id>/m<version>`."""

    id: str
    obligations: list[str]
    billed: array[int]  # invoices booked per period
    paid: array[int]
    billing_causes: dict[int, list[str]]  # period index -> invoice / payment ids


def separate_contract_id(contract_id: str, version: int) -> str:
    return f"{contract_id}/m{version}"


@dataclass(slots=True)
class ContractOutcome:
    """Everything computed for one contract; the result module turns it into reports."""

    contract_id: str
    legal_entity: str
    currency: str
    exponent: int
    latest: CompiledVersion
    obligation_order: list[str]
    tracks: dict[str, Track]  # knowledge at as_of
    reported: dict[str, array[int]]  # reported cumulative per period (closed periods frozen)
    # the period's own revenue, stored when some period saw other knowledge (else derived: own_amounts)
    own: dict[str, array[int]]
    adjustment: dict[str, array[int]]  # corrections of earlier periods booked in this period
    knowledge_tracks: list[dict[str, Track]]  # per period: the tracks the period was reported with
    modifications: list[ModificationRecord]
    billed: array[int]  # invoices booked per period
    paid: array[int]
    billing_causes: dict[int, list[str]]  # period index -> invoice / payment ids
    # the contract itself first, then one per separate-contract modification (billed / paid: their sums)
    accounting: list[AccountingContract]

    def own_amounts(self, obligation_id: str) -> array[int]:
        """Revenue earned in each period with the knowledge the period was reported with."""
        stored = self.own.get(obligation_id)
        if stored is not None:
            return stored
        # One state of knowledge for every period: own revenue is the difference of cumulative figures
        # (derived on demand rather than stored for every obligation of a portfolio).
        cumulative = self.reported[obligation_id]
        return array("q", [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)])


@dataclass(slots=True)
class EngineRun:
    scenario: Scenario
    as_of: date
    periods: PeriodIndex
    as_of_index: int
    closed_on: list[date | None]
    contracts: list[ContractOutcome]


@dataclass(slots=True)
class _Frame:
    """What every contract of a run is computed against."""

    as_of: date
    periods: PeriodIndex
    knowledge: list[int]  # per period, the last day whose facts the period is reported with
    cuts: list[int]  # the distinct values of knowledge
    policy: ProgressRounding
    zeros: array[int]  # one zero per period, shared, never mutated


# Not facts of a contract's revenue history: closes apply to every contract, and contract costs change no
# revenue (result/contract_costs.py reads them from the scenario).
_NOT_CONTRACT_HISTORY = (PeriodClose, ContractCost, CostsToProvideEstimate)


def _horizon(scenario: Scenario, as_of: date) -> tuple[date, date]:
    first = min(c.effective_date for c in scenario.contracts)
    last = as_of
    for contract in scenario.contracts:
        for obligation in contract.obligations:
            pattern = obligation.pattern
            if isinstance(pattern, RatablePattern):
                first, last = min(first, pattern.start), max(last, pattern.end)
            elif isinstance(pattern, PointInTimePattern) and pattern.satisfied_on:
                last = max(last, pattern.satisfied_on)
            elif isinstance(pattern, MaterialRightPattern) and pattern.expires_on:
                last = max(last, pattern.expires_on)
        last = max(last, contract.effective_date)
    for event in scenario.events:
        last = max(last, event.on)
    return first, last


def default_as_of(scenario: Scenario) -> date:
    days = [c.known_from for c in scenario.contracts] + [e.known_from for e in scenario.events]
    return max(days)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a run builds its (acyclic) structures.

    A portfolio run allocates millions of small objects and none of them needs the cycle collector: it would
    rescan the growing heap again and again (measured at N = 10,000: about 40 % of the run). Reference
    counting still frees everything; the collector's previous state is restored on exit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(scenario: Scenario, as_of: date | None = None) -> EngineRun:
    with gc_paused():
        return _run(scenario, as_of)


def _run(scenario: Scenario, as_of: date | None) -> EngineRun:
    as_of = as_of or scenario.as_of or default_as_of(scenario)
    first, last = _horizon(scenario, as_of)
    periods = PeriodIndex(periods_covering(scenario.calendar, first, last))
    period_count = len(periods.periods)
    as_of_index = min(periods.index_of(as_of), period_count - 1)
    close_day = close_days(scenario.events, periods, as_of)
    knowledge = knowledge_cut_offs(close_day, as_of.toordinal())
    frame = _Frame(
        as_of,
        periods,
        knowledge,
        sorted(set(knowledge)),
        scenario.progress_rounding,
        array("q", [0] * period_count),
    )
    versions_by_contract, events_by_contract, billing_by_contract = _by_contract(scenario)
    positions = billing_positions(scenario)
    outcomes = []
    for contract_id in sorted(versions_by_contract):
        outcome = _contract_outcome(
            frame,
            versions_by_contract[contract_id],
            events_by_contract.get(contract_id, []),
            billing_by_contract.get(contract_id, []),
            positions,
        )
        if outcome is not None:  # None: the contract was not known yet at as_of
            outcomes.append(outcome)
    closed_on = [date.fromordinal(c) if c is not None else None for c in close_day]
    return EngineRun(scenario, as_of, periods, as_of_index, closed_on, outcomes)


def billing_positions(scenario: Scenario) -> dict[int, int]:
    """Where each billing naming an accounting contract is in the scenario's events, for an error's field."""
    return {
        id(event): index
        for index, event in enumerate(scenario.events)
        if isinstance(event, Invoice | Payment) and event.accounting_contract is not None
    }


def _by_contract(
    scenario: Scenario,
) -> tuple[
    dict[str, list[CompiledVersion]],
    dict[str, list[tuple[int, ContractEvent]]],
    dict[str, list[Invoice | Payment]],
]:
    """Compiled versions, (day known, event) pairs and billing events of each contract."""
    versions: dict[str, list[CompiledVersion]] = defaultdict(list)
    starts: dict[str, date] = {}
    for index, contract in enumerate(scenario.contracts):
        versions[contract.contract_id].append(compile_version(contract, index))
        first = starts.get(contract.contract_id, contract.effective_date)
        starts[contract.contract_id] = min(first, contract.effective_date)
    events: dict[str, list[tuple[int, ContractEvent]]] = defaultdict(list)
    billing: dict[str, list[Invoice | Payment]] = defaultdict(list)
    in_order = {cid: sorted(vs, key=lambda v: (v.effective, v.number)) for cid, vs in versions.items()}
    for index, event in enumerate(scenario.events):
        if isinstance(event, PeriodClose):
            continue
        _refuse_amount_below_minor_unit(event, index, in_order[event.contract_id][0].exponent)
        if isinstance(event, RoyaltyReported):
            try:
                royalty_targets(in_order[event.contract_id], event)
            except RevenueRuleError as error:
                raise RevenueRuleError(error.reason, f"events[{index}].{error.field}") from None
        if not isinstance(event, _NOT_CONTRACT_HISTORY):
            events[event.contract_id].append((event.known_from.toordinal(), event))
            if isinstance(event, Invoice | Payment):
                _refuse_billing_before_start(event, index, starts[event.contract_id])
                billing[event.contract_id].append(event)
    return versions, events, billing


def _refuse_amount_below_minor_unit(event: object, index: int, exponent: int) -> None:
    """An amount of money finer than the contract currency's minor unit is refused naming its field (an
    invoice of 1.001 USD is a typing error, not something to round on the user's behalf)."""
    if isinstance(event, Invoice | Payment | RoyaltyReported | ContractCost | CostsToProvideEstimate):
        try:
            to_minor_units(event.amount, exponent)
        except RevenueRuleError as error:
            raise RevenueRuleError(
                f"{event.type} {event.id}: {error.reason}", f"events[{index}].amount"
            ) from None


def _refuse_billing_before_start(billing: Invoice | Payment, index: int, start: date) -> None:
    """An invoice or payment dated before its contract starts is refused, never moved to the first period.

    Its date is a fact the user gave; booking it elsewhere would misstate that period's receivables and
    contract balances, and the engine cannot tell a mistyped date or contract from a deposit taken before
    the contract existed (a liability outside the contract, IFRS 15.15-16). docs/decisions.md, 2026-11-30."""
    if billing.on < start:
        kind = "invoice" if isinstance(billing, Invoice) else "payment"
        raise RevenueRuleError(
            f"{kind} {billing.id} is dated {billing.on}, before contract {billing.contract_id} starts on "
            f"{start}: correct its date or its contract, or record a deposit received before the contract "
            "outside the contract's balances",
            f"events[{index}].on",
        )


def _contract_outcome(
    frame: _Frame,
    versions: Sequence[CompiledVersion],
    events: Sequence[tuple[int, ContractEvent]],
    billings: Sequence[Invoice | Payment],
    positions: dict[int, int],
) -> ContractOutcome | None:
    per_period, final, final_tracks = states_of_knowledge(
        contract_history(versions, events),
        frame.knowledge,
        frame.cuts,
        frame.as_of.toordinal(),
        frame.periods,
        frame.policy,
    )
    if final is None:
        return None
    reported, own, adjustment = period_figures(final.obligation_order, per_period, final_tracks, frame.zeros)
    latest = max(final.versions, key=lambda v: (v.effective, v.number))
    billed, paid, causes = billing_buckets(
        billings, frame.as_of, frame.periods, frame.knowledge, latest.exponent, frame.zeros
    )
    owner, starts = _accounting_owners(
        latest.contract.contract_id, final.obligation_order, final.modifications
    )
    ids = list(starts)
    _refuse_misattributed_billings(billings, versions, starts, frame.as_of, positions)
    if len(ids) == 1:  # one accounting contract: the contract's own billing arrays
        accounting = [AccountingContract(ids[0], final.obligation_order, billed, paid, causes)]
    else:
        accounting = _accounting_contracts(
            frame, latest.exponent, final.obligation_order, owner, ids, billings
        )
    return ContractOutcome(
        contract_id=latest.contract.contract_id,
        legal_entity=latest.contract.legal_entity,
        currency=latest.contract.currency,
        exponent=latest.exponent,
        latest=latest,
        obligation_order=final.obligation_order,
        tracks=final_tracks,
        reported=reported,
        own=own,
        adjustment=adjustment,
        knowledge_tracks=per_period,
        modifications=final.modifications,
        billed=billed,
        paid=paid,
        billing_causes=causes,
        accounting=accounting,
    )


def _refuse_misattributed_billings(
    billings: Sequence[Invoice | Payment],
    versions: Sequence[CompiledVersion],
    starts: dict[str, date],
    as_of: date,
    positions: dict[int, int],
) -> None:
    """Refuse a bill whose accounting contract is wrong, never book it elsewhere (issue 11 item 9's rule):
    booking it on another accounting contract, or in a period before its own contract existed, would net it
    against balances it does not belong to (IFRS 15.105).

    - a name that no version of the contract could create (not the contract, not `<contract_id>/m<version>`
      of one of its versions) is refused whether or not the bill is known at as_of;
    - a name the contract does not have at as_of (the version is not a separate contract, or not known yet)
      is refused for a bill known at as_of;
    - a bill dated before the modification that created its separate contract is refused on its date, as a
      bill dated before its contract starts is (`_refuse_billing_before_start`).
    """
    contract_id = versions[0].contract.contract_id
    inception = min(versions, key=lambda v: (v.effective, v.number))
    possible = {contract_id} | {
        separate_contract_id(contract_id, v.number) for v in versions if v is not inception
    }
    for billing in billings:
        named = billing.accounting_contract
        if named is None or named == contract_id:
            continue
        kind = "invoice" if isinstance(billing, Invoice) else "payment"
        position = positions[id(billing)]
        known = billing.known_from <= as_of
        if named not in possible or (known and named not in starts):
            when = f" at {as_of}" if named in possible else ""
            raise RevenueRuleError(
                f"{kind} {billing.id} names accounting contract {named!r}, which contract "
                f"{billing.contract_id} does not have{when}: its accounting contracts are "
                f"{', '.join(starts)} (the contract, then one per modification accounted for as a separate "
                "contract, `<contract_id>/m<version>`)",
                f"events[{position}].accounting_contract",
            )
        if known and billing.on < starts[named]:
            raise RevenueRuleError(
                f"{kind} {billing.id} is dated {billing.on}, before accounting contract {named} starts on "
                f"{starts[named]} (the modification that created it as a separate contract): correct its "
                f"date, or name the contract it belongs to ({contract_id} for the original)",
                f"events[{position}].on",
            )


def _accounting_owners(
    contract_id: str, obligation_order: list[str], modifications: Sequence[ModificationRecord]
) -> tuple[dict[str, str], dict[str, date]]:
    """(accounting contract of each obligation, each accounting contract's start in order): the contract
    itself, then one per modification accounted for as a separate contract, which owns the obligations it
    added and starts on the modification's effective date."""
    owner = dict.fromkeys(obligation_order, contract_id)
    starts = {contract_id: date.min}  # the contract's own start is checked in _by_contract
    for record in modifications:
        # Only a separate contract with added goods creates one: a price change left to the existing contract
        # (everything transferred) is classified separate but adds nothing.
        if record.treatment is ModificationTreatment.SEPARATE_CONTRACT and record.added:
            account_id = separate_contract_id(contract_id, record.version)
            starts[account_id] = record.effective_date
            for oid in record.added:
                owner[oid] = account_id
        elif record.accounting_version is not None:  # a modification of that separate contract alone
            for oid in record.added:
                owner[oid] = separate_contract_id(contract_id, record.accounting_version)
    return owner, starts


def _accounting_contracts(
    frame: _Frame,
    exponent: int,
    obligation_order: list[str],
    owner: dict[str, str],
    ids: list[str],
    billings: Sequence[Invoice | Payment],
) -> list[AccountingContract]:
    """Each accounting contract with its obligations and its own billing (IFRS 15.105 nets within one)."""
    by_account: dict[str, list[Invoice | Payment]] = {i: [] for i in ids}
    for billing in billings:
        named = billing.accounting_contract or ids[0]
        if named in by_account:  # else not known yet at as_of (known ones were checked)
            by_account[named].append(billing)
    accounts = []
    for account_id in ids:
        billed, paid, causes = billing_buckets(
            by_account[account_id], frame.as_of, frame.periods, frame.knowledge, exponent, frame.zeros
        )
        obligations = [oid for oid in obligation_order if owner[oid] == account_id]
        accounts.append(AccountingContract(account_id, obligations, billed, paid, causes))
    return accounts
