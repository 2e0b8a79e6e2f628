"""Onboarding contracts already in flight: `pssync import contracts FILE [--apply]`.

A row is a contract in the canonical shape (`ContractTerms`, as a ContractBooked event carries it) plus its
history so far as the systems of record hold it: billed, recognised and collected to date on an `as_of`
date. Each row is validated on its own; every rejected row is reported with the field at fault, and the
others still import (a bad row never blocks a good one). Nothing is written unless `apply` is set.

Applying a row records what provisioning would have recorded, WITHOUT provisioning: contract version 1,
its project and customer indexes, its revenue schedule version 1, the opening position (OPENING_BALANCE
version 1: the history, and the receivable, contract asset or contract liability it implies), and in the
delivery log the PSA project and ERP billing schedule commands of version 1, as already held. No command
goes through a connector: the PSA and the ERP are not called. Because the delivery log then holds version
1 for both records, the never-regress guard refuses anything older and reconciliation sees them delivered.

Idempotent on the row's content: its event id is derived from the contract id and a digest of the row, so
importing the same file twice changes nothing (and completes a row an interrupted import left half
written). A contract already recorded by anything else (a booking, or another version of the row) is
refused, never overwritten: a change to a live contract is an amendment.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from pssync.errors import BusinessRuleViolation
from pssync.model.contract import (
    ContractTerms,
    ExpenseBilling,
    TimeAndMaterialsBilling,
)
from pssync.model.events import ContractBooked, ContractBookedData, SourceSystem, canonical_event_id
from pssync.money import Money, quantum, to_minor
from pssync.ports import DeliveryLogPort, VersionConflict, VersionStore
from pssync.revenue import RevenueRuleError
from pssync.workflows.provision import (
    CONTRACT,
    REVENUE_SCHEDULE,
    billing_schedule_command,
    link_project,
    provision_project_command,
    store_revenue_schedule,
    validate_master_data,
)
from pssync.workflows.receivables import OPENING_BALANCE, ContractBalances, balances_as_of
from pssync.workflows.revenue import EngineVersion, revenue_schedule_for

IMPORT_SOURCE = "onboarding"  # the event source of every imported contract's version 1
CSV_CONTRACT_COLUMN = "contract"  # the canonical ContractTerms as JSON text
CSV_HISTORY_COLUMNS = ("as_of", "billed_to_date", "recognised_to_date", "collected_to_date")


class OpeningPosition(BaseModel):
    """What the PSA and the ERP already hold for the contract on `as_of`, in the contract's currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: date
    billed_to_date: Money
    recognised_to_date: Money
    collected_to_date: Money | None = None  # none collected when omitted


class ImportRow(BaseModel):
    """One contract to onboard: the canonical terms and the history so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contract: ContractTerms
    history: OpeningPosition
    closed_won_at: AwareDatetime | None = None  # default: the start of the signing day, UTC

    def digest(self) -> str:
        """Of the row's meaning, not its text: the same contract written another way is the same row."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class RowProblem:
    field: str  # dotted path inside the row: `contract.obligations.0.standalone_selling_price.currency`
    message: str


class RowOutcome(StrEnum):
    REJECTED = "rejected"  # invalid: the problems say which field and why
    WOULD_IMPORT = "would-import"  # dry run: valid and not recorded yet
    IMPORTED = "imported"
    UNCHANGED = "unchanged"  # this very row was imported before (a rerun completes anything left)
    REFUSED = "refused"  # the contract is already recorded with other content: never overwritten


@dataclass
class RowReport:
    row: int  # 1-based: the data row in a CSV (after the header), the element in a JSON list
    contract_id: str | None
    outcome: RowOutcome
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    balances: ContractBalances | None = None
    written: list[str] = field(default_factory=list)  # what this run wrote for the row

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "contract_id": self.contract_id,
            "outcome": self.outcome.value,
            "problems": [{"field": p.field, "message": p.message} for p in self.problems],
            "warnings": self.warnings,
            "opening_balance": None if self.balances is None else self.balances.model_dump(mode="json"),
            "written": self.written,
        }


@dataclass
class ImportReport:
    file: str
    digest: str
    applied: bool
    rows: list[RowReport] = field(default_factory=list)

    def count(self, outcome: RowOutcome) -> int:
        return sum(1 for r in self.rows if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (RowOutcome.REJECTED, RowOutcome.REFUSED) for r in self.rows)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "digest": self.digest,
            "applied": self.applied,
            "counts": {o.value: self.count(o) for o in RowOutcome},
            "rows": [r.as_json() for r in self.rows],
        }


# --- reading a file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    row: int
    document: Any  # what the file says, before validation
    problems: tuple[RowProblem, ...] = ()  # found while reading (a CSV cell that is not JSON)


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (not CSV or JSON, no rows): nothing is validated."""


def read_rows(name: str, text: str) -> list[RawRow]:
    """JSON (a list of rows, or {"contracts": [...]}) or CSV (by the file name's suffix)."""
    if name.lower().endswith(".json"):
        return _json_rows(text)
    if name.lower().endswith(".csv"):
        return _csv_rows(text)
    raise UnreadableFile(f"{name}: give a .json or a .csv file")


def _json_rows(text: str) -> list[RawRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableFile(f"not JSON: {error}") from None
    if isinstance(document, dict) and isinstance(document.get("contracts"), list):
        document = document["contracts"]
    if not isinstance(document, list) or not document:
        raise UnreadableFile('a JSON import is a non-empty list of rows, or {"contracts": [rows]}')
    return [RawRow(n, element) for n, element in enumerate(document, start=1)]


def _csv_rows(text: str) -> list[RawRow]:
    reader = csv.DictReader(io.StringIO(text))
    required = {CSV_CONTRACT_COLUMN, "as_of", "billed_to_date", "recognised_to_date"}
    missing = required - set(reader.fieldnames or ())
    if missing:
        raise UnreadableFile(f"the CSV header lacks {', '.join(sorted(missing))}")
    rows = []
    for n, cells in enumerate(reader, start=1):
        rows.append(_csv_row(n, cells))
    if not rows:
        raise UnreadableFile("the CSV has a header but no rows")
    return rows


def _csv_row(n: int, cells: dict[str, str | None]) -> RawRow:
    """Amounts in a CSV are plain decimals in the contract's currency; the contract cell is JSON."""
    problems = []
    extra = sorted(
        k
        for k in cells
        if k is not None and k not in (CSV_CONTRACT_COLUMN, "closed_won_at", *CSV_HISTORY_COLUMNS)
    )
    problems += [RowProblem(column, "unknown column") for column in extra]
    try:
        contract = json.loads(cells.get(CSV_CONTRACT_COLUMN) or "")
    except json.JSONDecodeError as error:
        problems.append(RowProblem("contract", f"not JSON: {error}"))
        contract = None
    currency = contract.get("currency") if isinstance(contract, dict) else None
    history: dict[str, Any] = {"as_of": cells.get("as_of") or None}
    for column in ("billed_to_date", "recognised_to_date", "collected_to_date"):
        raw = (cells.get(column) or "").strip()
        if raw:
            history[column] = {"amount": raw, "currency": currency}
    document: dict[str, Any] = {"contract": contract, "history": history}
    if cells.get("closed_won_at"):
        document["closed_won_at"] = cells["closed_won_at"]
    return RawRow(n, document, tuple(problems))


# --- validating a row ------------------------------------------------------------------------------------


def _field(location: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in location) or "(row)"


def parse_row(raw: RawRow) -> tuple[ImportRow | None, list[RowProblem]]:
    """The row as the model reads it, or every problem pydantic finds, each with its field."""
    problems = list(raw.problems)
    try:
        row = ImportRow.model_validate(raw.document)
    except ValidationError as error:
        # A discriminated union names the chosen member in the path (`billing.0.fixed_fee.instalments`).
        named = {p.field for p in problems}  # a cell that could not be read is not reported twice
        problems += [
            RowProblem(_field(e["loc"]), e["msg"]) for e in error.errors() if _field(e["loc"]) not in named
        ]
        return None, problems
    return (row if not problems else None), problems


def business_problems(row: ImportRow) -> list[RowProblem]:
    """What the model alone cannot say: the history's currency and consistency, and the master-data rules
    provisioning applies to a booking (the same rules, so an import is refused what a booking would be)."""
    terms, history = row.contract, row.history
    problems: list[RowProblem] = []
    amounts = {
        "history.billed_to_date": history.billed_to_date,
        "history.recognised_to_date": history.recognised_to_date,
        "history.collected_to_date": history.collected_to_date,
    }
    for name, money in amounts.items():
        if money is None:
            continue
        if money.currency != terms.currency:
            problems.append(
                RowProblem(f"{name}.currency", f"is {money.currency}, the contract is in {terms.currency}")
            )
            continue
        if money.amount < 0:
            problems.append(RowProblem(f"{name}.amount", "must not be negative"))
        try:
            to_minor(money.amount, money.currency)
        except ValueError as error:
            problems.append(RowProblem(f"{name}.amount", str(error)))
    if problems:
        return problems
    collected = history.collected_to_date.amount if history.collected_to_date else Decimal(0)
    if collected > history.billed_to_date.amount:
        problems.append(
            RowProblem(
                "history.collected_to_date",
                f"{collected} collected exceeds {history.billed_to_date.amount} billed",
            )
        )
    if history.as_of < terms.signed_on:
        problems.append(
            RowProblem(
                "history.as_of", f"{history.as_of} is before the contract was signed ({terms.signed_on})"
            )
        )
    elif history.billed_to_date.amount and history.as_of < terms.start_date:
        # The billed amount enters pssync's balances as an invoice on as_of; the engine refuses a bill dated
        # before the contract starts (a fact is never moved), so the import does too.
        problems.append(
            RowProblem(
                "history.as_of",
                f"{history.as_of} is before the contract starts ({terms.start_date}) with "
                f"{history.billed_to_date} billed",
            )
        )
    open_ended = any(isinstance(b, TimeAndMaterialsBilling | ExpenseBilling) for b in terms.billing)
    if not open_ended and history.recognised_to_date.amount > terms.transaction_price.amount:
        problems.append(
            RowProblem(
                "history.recognised_to_date",
                f"{history.recognised_to_date} exceeds the fixed transaction price {terms.transaction_price}",
            )
        )
    if not open_ended and history.billed_to_date.amount > terms.transaction_price.amount:
        problems.append(
            RowProblem(
                "history.billed_to_date",
                f"{history.billed_to_date} exceeds the fixed transaction price {terms.transaction_price}",
            )
        )
    try:
        validate_master_data(booking_event(row))
    except BusinessRuleViolation as error:
        problems.append(RowProblem("contract", str(error)))
    return problems


def opening_balances(row: ImportRow) -> ContractBalances:
    """The balances the history implies (ASC 606-10-45-1..4, netted per contract): the receivable is what
    was billed and not collected; revenue ahead of billing is a contract asset, billing ahead of revenue a
    contract liability, never both."""
    history, currency = row.history, row.contract.currency
    zero = Money(amount=Decimal(0).quantize(quantum(currency)), currency=currency)  # 0.00, as amounts read
    collected = history.collected_to_date or zero
    net = history.recognised_to_date - history.billed_to_date
    return ContractBalances(
        contract_id=row.contract.contract_id,
        as_of=history.as_of,
        billed_to_date=history.billed_to_date,
        collected_to_date=collected,
        recognised_to_date=history.recognised_to_date,
        receivable=history.billed_to_date - collected,
        contract_asset=net if net.amount > 0 else zero,
        contract_liability=-net if net.amount < 0 else zero,
    )


def schedule_warnings(row: ImportRow, event_id: str) -> list[str]:
    """Where pssync's own schedule, run on the terms alone, disagrees with the revenue the prior system
    recognised by as_of: a warning for finance to look at, not a rejection (patterns that need delivery
    facts, hours, costs or milestones, show nothing yet because the history brings none)."""
    try:
        balances = balances_as_of([EngineVersion(1, row.contract, event_id)], [], row.history.as_of)
    except (BusinessRuleViolation, RevenueRuleError) as error:
        return [f"pssync's revenue engine refused the terms: {error}"]
    ours, theirs = balances.recognised_to_date, row.history.recognised_to_date
    if ours.amount == theirs.amount:
        return []
    return [
        f"pssync's schedule recognises {ours} by {row.history.as_of} on the terms alone; the prior system "
        f"recognised {theirs} (difference {theirs - ours})"
    ]


# --- applying a row ------------------------------------------------------------------------------------


def booking_event(row: ImportRow) -> ContractBooked:
    """The row as the ContractBooked it stands in for: the version's cause, the commands' cause. Its id is
    derived from the contract id and the row's digest, so only the same row finds it again."""
    terms = row.contract
    digest = row.digest()
    event_id = canonical_event_id(IMPORT_SOURCE, f"{terms.contract_id}:{digest}")
    closed_won_at = row.closed_won_at or datetime.combine(terms.signed_on, time(0), tzinfo=UTC)
    return ContractBooked(
        event_id=event_id,
        source=IMPORT_SOURCE,
        source_system=SourceSystem.PSSYNC,
        source_event_id=f"{terms.contract_id}:{digest}",
        source_version=None,
        correlation_id=event_id,
        occurred_at=closed_won_at,
        received_at=closed_won_at,
        data=ContractBookedData(closed_won_at=closed_won_at, contract=terms),
    )


def _append_once(
    store: VersionStore,
    aggregate: str,
    aggregate_id: str,
    body: dict[str, Any],
    event: ContractBooked,
    now: datetime,
) -> bool:
    """Version 1 of an aggregate caused by this event; False when it is there already."""
    first = store.get(aggregate, aggregate_id, 1)
    if first is not None:
        if first.caused_by_event_id != event.event_id:
            raise ContractTaken(aggregate, aggregate_id, first.caused_by_event_id)
        return False
    try:
        store.append(
            aggregate,
            aggregate_id,
            expected_version=0,
            body=body,
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        return _append_once(store, aggregate, aggregate_id, body, event, now)  # a racing import: re-read
    return True


class ContractTaken(Exception):
    def __init__(self, aggregate: str, aggregate_id: str, by_event: str) -> None:
        super().__init__(f"{aggregate} {aggregate_id} is already recorded (version 1 by event {by_event})")
        self.by_event = by_event


def record_onboarded(
    row: ImportRow,
    store: VersionStore,
    delivery_log: DeliveryLogPort,
    now: datetime,
    *,
    file_digest: str,
    row_number: int,
) -> list[str]:
    """Every write of an onboarded contract, each idempotent; returns what this call wrote. The contract
    version goes first: it claims the contract id, so a refused row writes nothing at all."""
    terms = row.contract
    event = booking_event(row)
    onboarding = {"file_digest": file_digest, "row": row_number, "row_digest": row.digest()}
    written = []
    contract_body = {
        "terms": terms.model_dump(mode="json"),
        "source_version": None,
        "lineage": None,
        "onboarding": onboarding,
    }
    if _append_once(store, CONTRACT, terms.contract_id, contract_body, event, now):
        written.append(f"{CONTRACT} v1")
    link_project(store, event, terms, now)  # no-ops when linked
    if store.get(REVENUE_SCHEDULE, terms.contract_id, 1) is None:
        schedule = revenue_schedule_for(terms, contract_version=1, caused_by_event_id=event.event_id)
        store_revenue_schedule(store, event, 1, schedule, now)  # idempotent on the contract version
        written.append(f"{REVENUE_SCHEDULE} v1")
    balances = opening_balances(row)
    opening_body = {
        "contract_version": 1,
        "history": row.history.model_dump(mode="json"),
        "balances": balances.model_dump(mode="json"),
        "onboarding": onboarding,
    }
    if _append_once(store, OPENING_BALANCE, terms.contract_id, opening_body, event, now):
        written.append(f"{OPENING_BALANCE} v1")
    # What the PSA and the ERP hold already, recorded as delivered at version 1: never sent anywhere.
    for command in (provision_project_command(event, terms, 1), billing_schedule_command(event, terms, 1)):
        if delivery_log.record(command, now.isoformat()).first_time:
            written.append(f"held {command.command_id}")
    return written


def import_contracts(
    name: str,
    text: str,
    store: VersionStore,
    delivery_log: DeliveryLogPort,
    now: datetime,
    *,
    apply: bool = False,
) -> ImportReport:
    """Validate every row; with `apply`, record the valid ones. Raises UnreadableFile for a file that is
    not an import at all."""
    raws = read_rows(name, text)
    report = ImportReport(file=name, digest=hashlib.sha256(text.encode()).hexdigest(), applied=apply)
    parsed: list[tuple[RawRow, ImportRow | None, list[RowProblem]]] = []
    for raw in raws:
        row, problems = parse_row(raw)
        if row is not None:
            problems += business_problems(row)
        parsed.append((raw, row, problems))
    first_row_of: dict[str, int] = {}
    for raw, row, problems in parsed:
        contract_id = row.contract.contract_id if row else _contract_id_of(raw.document)
        if contract_id is not None and contract_id in first_row_of:
            problems.append(
                RowProblem(
                    "contract.contract_id", f"{contract_id} is also in row {first_row_of[contract_id]}"
                )
            )
        elif contract_id is not None:
            first_row_of[contract_id] = raw.row
        if row is None or problems:
            report.rows.append(RowReport(raw.row, contract_id, RowOutcome.REJECTED, problems))
            continue
        report.rows.append(_apply_row(raw.row, row, store, delivery_log, now, apply, report.digest))
    return report


def _contract_id_of(document: Any) -> str | None:
    contract = document.get("contract") if isinstance(document, dict) else None
    value = contract.get("contract_id") if isinstance(contract, dict) else None
    return value if isinstance(value, str) and value else None


def _apply_row(
    number: int,
    row: ImportRow,
    store: VersionStore,
    delivery_log: DeliveryLogPort,
    now: datetime,
    apply: bool,
    file_digest: str,
) -> RowReport:
    event = booking_event(row)
    contract_id = row.contract.contract_id
    report = RowReport(
        number,
        contract_id,
        RowOutcome.WOULD_IMPORT,
        balances=opening_balances(row),
        warnings=schedule_warnings(row, event.event_id),
    )
    first = store.get(CONTRACT, contract_id, 1)
    if first is not None and first.caused_by_event_id != event.event_id:
        report.outcome = RowOutcome.REFUSED
        how = "by this import with other content" if first.body.get("onboarding") else "by a booking"
        report.problems.append(
            RowProblem(
                "contract.contract_id",
                f"{contract_id} is already recorded ({how}, event {first.caused_by_event_id}); a changed "
                "row is refused, never overwritten: send the change as an amendment",
            )
        )
        return report
    if not apply:
        report.outcome = RowOutcome.UNCHANGED if first is not None else RowOutcome.WOULD_IMPORT
        return report
    try:
        report.written = record_onboarded(
            row, store, delivery_log, now, file_digest=file_digest, row_number=number
        )
    except ContractTaken as error:  # another writer took the id between the check and the write
        report.outcome = RowOutcome.REFUSED
        report.problems.append(RowProblem("contract.contract_id", str(error)))
        return report
    report.outcome = RowOutcome.IMPORTED if first is None else RowOutcome.UNCHANGED
    return report


def reports_text(report: ImportReport) -> Iterable[str]:
    """One line per rejected or refused row and problem: what an operator fixes in the file."""
    for row in report.rows:
        for problem in row.problems:
            who = f"row {row.row} ({row.contract_id or '?'})"
            yield f"{who}: {row.outcome.value}: {problem.field}: {problem.message}"
