"""Amendments from the CRMs themselves: a won deal as the CRM holds it now, against the contract's head.

Pure rules, no I/O. The resolver (pssync.ingest.closed_won) reads the deal and the contract's head
version and asks these functions whether, and how, the deal amends the contract:

- **What is contractual.** The terms are mapped from the deal exactly as a booking maps them, then
  compared aspect by aspect: price (and currency), dates (signed, start, end), obligations (by id, order
  ignored), billing terms (order ignored), the project plan, the legal entity and the customer. Not
  contractual: the title, the CRM record id, the MSA/SOW document references and the customer's
  record ids in other systems. CRM fields outside the terms (owner, probability, description, close
  date, stage within won) are never mapped, so they cannot amend anything.
- **Ordering.** `source_version` is the record's own last-modified stamp (HubSpot
  `hs_lastmodifieddate`, Salesforce `LastModifiedDate`, Dataverse `modifiedon`), the notification's
  when the record has none; the propagate-amendment workflow's version guard orders by it.
- **Effective date.** ASC 606-10-25-10: a modification is accounted for when it is approved, and the
  CRM change is the approval we see: the UTC date of the change, never before the date the version it
  amends took effect (the engine orders versions by effective date).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from pssync.model.contract import ContractTerms
from pssync.model.events import ClosedWonSignalled, ContractAmended, ContractAmendedData
from pssync.sources.crm_terms import WonRecord

# pssync.workflows.provision.CONTRACT: the workflows are a sibling layer this module may not import, so
# the aggregate's name is stated again here (tests/unit/ingest/test_crm_amendments.py pins them equal).
CONTRACT_AGGREGATE = "contract"


def _customer(terms: ContractTerms) -> Any:
    return terms.customer.model_copy(update={"external_ids": {}})


def _unordered(items: list[Any]) -> list[str]:
    return sorted(item.model_dump_json() for item in items)


CONTRACTUAL_ASPECTS: dict[str, Callable[[ContractTerms], Any]] = {
    "price": lambda t: (t.transaction_price, t.currency),
    "dates": lambda t: (t.signed_on, t.start_date, t.end_date),
    "obligations": lambda t: {o.obligation_id: o for o in t.obligations},
    "billing": lambda t: _unordered(t.billing),
    "project": lambda t: t.project,
    "legal_entity": lambda t: t.legal_entity,
    "customer": _customer,
}


def contractual_changes(before: ContractTerms, after: ContractTerms) -> list[str]:
    """The contractual aspects that differ, in a fixed order; empty when nothing contractual changed."""
    return [name for name, aspect in CONTRACTUAL_ASPECTS.items() if aspect(before) != aspect(after)]


def effective_date_of(amended_at: datetime, amends_effective: date) -> date:
    """The change's UTC date, never before the version it amends took effect."""
    return max(amended_at.astimezone(UTC).date(), amends_effective)


def version_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def head_effective_date(head_body: dict[str, Any], head_terms: ContractTerms) -> date:
    """When the head version took effect: an amendment's recorded date, version 1's contract start."""
    recorded = head_body.get("effective_date")
    return date.fromisoformat(recorded) if isinstance(recorded, str) else head_terms.start_date


def crm_amendment(
    signal: ClosedWonSignalled,
    record: WonRecord,
    *,
    head_effective: date,
    changes: list[str],
) -> ContractAmended:
    """The ContractAmended a changed won deal states; only called with at least one contractual change."""
    if not changes:
        raise ValueError("an amendment needs a contractual change")
    amended_at = record.modified_at or signal.occurred_at
    source_version = version_stamp(record.modified_at) if record.modified_at else signal.source_version
    data = ContractAmendedData(
        amended_at=amended_at,
        effective_date=effective_date_of(amended_at, head_effective),
        reason=f"{signal.source_system} {signal.data.record_type} {signal.data.record_id} changed: "
        f"{', '.join(changes)}",
        contract=record.terms,
    )
    return signal.amendment(data, source_version)
