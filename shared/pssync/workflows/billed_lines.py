"""The ledgers of lines pssync bills (approved time, rebillable expenses): each entry's latest version, and
whether that version's line was sent to the ERP (from then on it counts as invoiced).

A ledger holds, per contract, a version of kind `line_kind` for every approval, change or withdrawal of an
entry, and a `sent` version naming the line version it sent and the ERP command.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pssync.errors import BusinessRuleViolation
from pssync.money import Money
from pssync.ports import StoredVersion


@dataclass(frozen=True)
class EntryState:
    """One entry as its ledger knows it: its latest recorded version and whether that version was sent."""

    entry: str
    ledger_version: int
    entry_version: str | None
    facts: dict[str, Any]
    body: dict[str, Any]
    sent_command_id: str | None


def ledger_entries(history: list[StoredVersion], line_kind: str = "line") -> dict[str, EntryState]:
    states: dict[str, EntryState] = {}
    for stored in history:
        body = stored.body
        key = body["entry"]
        if body["kind"] == line_kind:
            states[key] = EntryState(
                entry=key,
                ledger_version=stored.version,
                entry_version=body.get("entry_version"),
                facts=body["facts"],
                body=body,
                sent_command_id=None,
            )
        elif body["kind"] == "sent" and key in states and states[key].ledger_version == body["line_version"]:
            states[key] = replace(states[key], sent_command_id=body["command_id"])
    return states


def billed_under_term(
    states: dict[str, EntryState], term_field: str, term: int, currency: str, excluding: str
) -> Money:
    """What the term's other entries bill now (sent or about to be): a not-to-exceed counts all of them."""
    total = Money.zero(currency)
    for state in states.values():
        line = state.body.get("line")
        if state.entry != excluding and line is not None and state.body.get(term_field) == term:
            total = total + Money.model_validate(line["amount"])
    return total


def refuse_rewrite_of_invoiced(
    described: str, previous: EntryState | None, facts: dict[str, Any], *, code: str
) -> None:
    """An entry whose line was invoiced (sent to the ERP) is never rewritten: its change is for review.

    `described` names the entry and how it was billed, e.g. "time entry psa/TE-1 ... invoiced".
    """
    if previous is None or previous.sent_command_id is None or previous.facts == facts:
        return
    what = "withdrawn" if not facts["approved"] else "changed"
    raise BusinessRuleViolation(
        f"{described.format(what=what)} ({previous.sent_command_id}): review it and correct it in billing "
        "with a credit or an adjustment; the invoiced line stands",
        code=code,
    )
