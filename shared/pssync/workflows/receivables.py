"""Apply receivables: invoices and payments the ERP posted reach each contract's balances.

The steps, in order: match the document to its contract(s); record it in the contract's receivables ledger
(append-only: invoices, credit notes, payments); update the contract's balances with the revenue engine
(receivable, contract asset, contract liability, netted per contract as ASC 606-10-45-1..4 requires);
emit 'contract balances updated'; for an invoice, compare it with what pssync says is billable (the billing
schedule it published and the lines it released), after the balances, so finance sees both.

Rules this module decides (docs/decisions.md, 2026-11-30 "Receivables"):
- A document is identified by `<source>/<document id>` (the ERP's ids are unique in that ERP). The first
  event recording it freezes what it says (INVOICE / PAYMENT aggregates); the same document again with the
  same body is unchanged, with another body a typed exception (`invoice_changed`, `payment_changed`).
- Balances are stated in the contract's consideration, net of tax: an invoice bills its total minus its tax;
  a payment collects, per invoice, its applied amount net of that invoice's tax share (computed on the
  cumulative amount paid, so an invoice paid in full collects exactly what it billed).
- A payment is applied to the invoices it names pro rata to their open amounts (total minus what earlier
  payments applied), each share rounded with ALLOCATION_ROUNDING and the rounding residual given to the
  largest share; when nothing is open any more, pro rata to the invoices' totals. Credit notes take no
  cash: they already reduced the contract's billing. A payment over the open amounts is applied in full
  the same way, leaving the contract with a credit (a negative receivable).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.contract import ContractTerms
from pssync.model.events import (
    ContractBalancesData,
    ContractBalancesUpdated,
    EventEnvelope,
    InvoiceLine,
    InvoicePosted,
    InvoicePostedData,
    PaymentReceived,
    completion_envelope,
)
from pssync.money import Money, RoundingPolicy
from pssync.ports import StoredVersion, VersionConflict, VersionStore
from pssync.workflows.amendment import engine_versions
from pssync.workflows.billed_lines import ledger_entries
from pssync.workflows.billing import billing_schedule
from pssync.workflows.delivery_facts import delivery_events
from pssync.workflows.provision import CONTRACT, CUSTOMER, REVENUE_SCHEDULE
from pssync.workflows.revenue import EngineVersion, calendar_for, to_engine_contract
from pssync.workflows.time_approval import TIME_LEDGER

WORKFLOW_SOURCE = "apply-receivables"
RECEIVABLES_LEDGER = "receivables_ledger"  # per contract: every invoice, credit note and payment part
INVOICE = "invoice"  # <source>/<invoice id> -> the contract it bills and what it said (the invoice index)
PAYMENT = "payment"  # <source>/<payment id> -> what it said and how it was applied over invoices
CONTRACT_BALANCES = "contract_balances"  # per contract: the balances after each document
ALLOCATION_ROUNDING = RoundingPolicy.HALF_EVEN  # unbiased over many partial payments
TAX_SHARE_ROUNDING = RoundingPolicy.HALF_EVEN

Receivable = InvoicePosted | PaymentReceived
DocumentKind = Literal["invoice", "credit_note", "payment"]


# --- values the steps pass on ----------------------------------------------------------------------------


class ReceivableMatch(BaseModel):
    """The contracts a document concerns: one for an invoice, those of its invoices for a payment."""

    model_config = ConfigDict(frozen=True)

    document: Literal["invoice", "payment"]
    document_key: str  # <source>/<document id>
    contract_ids: list[str]
    invoice_keys: list[str] = []  # a payment's invoices, as the invoice index knows them
    reason: str


class AppliedPayment(BaseModel):
    """The part of a payment applied to one invoice: as paid (gross) and as the contract collects it."""

    model_config = ConfigDict(frozen=True)

    invoice_key: str
    invoice_id: str
    contract_id: str
    gross: Money
    net: Money


class ContractPart(BaseModel):
    """What one contract's ledger recorded for the document (net of tax: what the engine sees)."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    ledger_version: int
    amount: Money


class RecordedReceivable(BaseModel):
    model_config = ConfigDict(frozen=True)

    document: Literal["invoice", "payment"]
    document_key: str
    document_id: str
    kind: DocumentKind
    document_date: date
    outcome: Literal["recorded", "unchanged"]
    reason: str
    newly_recorded: bool
    parts: list[ContractPart] = []
    applied: list[AppliedPayment] = []


class ContractBalances(BaseModel):
    """A contract's position as the revenue engine reports it for the period holding `as_of`."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    as_of: date
    billed_to_date: Money
    collected_to_date: Money
    recognised_to_date: Money
    receivable: Money
    contract_asset: Money
    contract_liability: Money


class StoredBalances(BaseModel):
    model_config = ConfigDict(frozen=True)

    balances: ContractBalances
    balances_version: int
    contract_version: int
    newly_recorded: bool


class BalancesReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    contracts: list[StoredBalances]


class ExpectedLine(BaseModel):
    """A line pssync says may be invoiced: a scheduled line, or one it released (time, milestone, expense)."""

    model_config = ConfigDict(frozen=True)

    line_id: str
    amount: Money
    origin: str  # billing_schedule, time, milestone, expense
    obligation_id: str | None = None


DifferenceKind = Literal[
    "amount", "currency", "unknown_line", "no_line_reference", "already_invoiced", "over_credited", "total"
]


class LineDifference(BaseModel):
    model_config = ConfigDict(frozen=True)

    billing_line_id: str | None
    kind: DifferenceKind
    invoiced: Money | None
    billable: Money | None  # what remained billable on the line before this invoice
    difference: Money | None  # invoiced - billable, when both are in one currency

    def describe(self) -> str:
        line = self.billing_line_id or "(no billing line)"
        match self.kind:
            case "amount" | "already_invoiced":
                return (
                    f"{line}: invoiced {self.invoiced}, billable {self.billable}, "
                    f"difference {self.difference}"
                )
            case "over_credited":
                return f"{line}: credited {self.invoiced}, more than the {self.billable} invoiced on it"
            case "currency":
                return f"{line}: invoiced {self.invoiced}, billable {self.billable} (another currency)"
            case "unknown_line":
                return f"{line}: invoiced {self.invoiced}, not a billable line of the contract"
            case "no_line_reference":
                return f"{line}: invoiced {self.invoiced} on a line naming no billing line"
            case "total":
                return f"total {self.invoiced} is not the lines plus tax ({self.billable})"
        return f"{line}: {self.kind}"  # pragma: no cover - every kind is described above


class ScheduleCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    lines_checked: int
    matched: bool


# --- pure rules ---------------------------------------------------------------------------------------


def document_key(event: Receivable) -> str:
    document_id = event.data.invoice_id if isinstance(event, InvoicePosted) else event.data.payment_id
    return f"{event.source}/{document_id}"


def invoice_kind(data: InvoicePostedData) -> Literal["invoice", "credit_note"]:
    return "credit_note" if data.total.amount < 0 else "invoice"


def invoice_net(data: InvoicePostedData) -> Money:
    """What the invoice bills of the contract's consideration: its total without the tax it collects."""
    if data.tax is None:
        return data.total
    if data.tax.currency != data.total.currency:
        raise BusinessRuleViolation(
            f"invoice {data.invoice_id}: tax in {data.tax.currency}, total in {data.total.currency}",
            code="currency_mismatch",
        )
    return data.total - data.tax


def customer_keys(customer_id: str, system: str) -> list[str]:
    """Index keys a document's customer id may be found under: the ERP's own id first, then ours."""
    return [f"{system}:{customer_id}", customer_id]


def bills_customer(terms: ContractTerms, customer_id: str) -> bool:
    return customer_id == terms.customer.customer_id or customer_id in terms.customer.external_ids.values()


def net_collected(gross_total: Money, net_total: Money, paid_before: Money, applied: Money) -> Money:
    """The net part of a payment applied to one invoice: the tax share of the cumulative amount paid, less
    that of the amount paid before, so an invoice paid in full collects exactly its net amount."""
    if gross_total.amount == 0:
        return applied

    def net_of(paid: Money) -> Money:
        share = Money(amount=paid.amount * net_total.amount / gross_total.amount, currency=paid.currency)
        return share.rounded(TAX_SHARE_ROUNDING)

    return net_of(paid_before + applied) - net_of(paid_before)


class OpenInvoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice_key: str
    invoice_id: str
    contract_id: str
    gross: Money  # the invoice total
    net: Money
    paid: Money  # applied by earlier payments (gross)

    @property
    def open(self) -> Money:
        return self.gross - self.paid


def allocate_payment(amount: Money, invoices: Sequence[OpenInvoice]) -> list[AppliedPayment]:
    """Pro rata to the open amounts of the named invoices (their totals when none is open); the rounding
    residual goes to the largest share, the first named on a tie; credit notes take no cash."""
    if amount.amount <= 0:
        raise BusinessRuleViolation(
            f"a payment of {amount} cannot be applied: refunds are not received payments",
            code="invalid_payment",
        )
    weights = [max(i.open.amount, Decimal(0)) for i in invoices]
    if sum(weights) == 0:
        weights = [max(i.gross.amount, Decimal(0)) for i in invoices]
    total_weight = sum(weights, Decimal(0))
    if total_weight == 0:
        names = ", ".join(i.invoice_id for i in invoices)
        raise BusinessRuleViolation(
            f"payment of {amount} names only credit notes ({names}): nothing to apply it to",
            code="unapplied_payment",
        )
    shares = [
        Money(amount=amount.amount * w / total_weight, currency=amount.currency).rounded(ALLOCATION_ROUNDING)
        for w in weights
    ]
    residual = amount - sum(shares[1:], shares[0])
    largest = max(range(len(weights)), key=lambda k: (weights[k], -k))
    shares[largest] = shares[largest] + residual
    return [
        AppliedPayment(
            invoice_key=invoice.invoice_key,
            invoice_id=invoice.invoice_id,
            contract_id=invoice.contract_id,
            gross=share,
            net=net_collected(invoice.gross, invoice.net, invoice.paid, share),
        )
        for invoice, share, weight in zip(invoices, shares, weights, strict=True)
        if weight > 0
    ]


def compare_invoice(
    lines: Sequence[InvoiceLine],
    tax: Money | None,
    total: Money,
    expected: Mapping[str, ExpectedLine],
    invoiced_before: Mapping[str, Money],
) -> list[LineDifference]:
    """Each invoice line (summed per billing line id) against what remained billable on that line; a credit
    line (negative) may credit at most what was invoiced on its line. Plain values in, differences out."""
    differences: list[LineDifference] = []
    by_line: dict[str, Money] = {}
    for line in lines:
        if line.billing_line_id is None:
            differences.append(_diff(None, "no_line_reference", line.amount, None))
            continue
        before = by_line.get(line.billing_line_id)
        if before is not None and before.currency != line.amount.currency:
            differences.append(_diff(line.billing_line_id, "currency", line.amount, before))
            continue
        by_line[line.billing_line_id] = line.amount if before is None else before + line.amount
    for line_id, invoiced in by_line.items():
        scheduled = expected.get(line_id)
        if scheduled is None:
            differences.append(_diff(line_id, "unknown_line", invoiced, None))
            continue
        if invoiced.currency != scheduled.amount.currency:
            differences.append(_diff(line_id, "currency", invoiced, scheduled.amount))
            continue
        already = invoiced_before.get(line_id, Money.zero(invoiced.currency))
        if invoiced.amount < 0:
            if -invoiced.amount > already.amount:
                differences.append(_diff(line_id, "over_credited", invoiced, already))
            continue
        remaining = scheduled.amount - already
        if invoiced != remaining:
            kind: DifferenceKind = "already_invoiced" if remaining.amount <= 0 else "amount"
            differences.append(_diff(line_id, kind, invoiced, remaining))
    currencies = {line.amount.currency for line in lines} | ({tax.currency} if tax else set())
    if currencies == {total.currency}:
        stated = sum((line.amount for line in lines), tax or Money.zero(total.currency))
        if stated != total:
            differences.append(_diff(None, "total", total, stated))
    return differences


def _diff(
    line_id: str | None, kind: DifferenceKind, invoiced: Money | None, billable: Money | None
) -> LineDifference:
    difference = None
    if invoiced is not None and billable is not None and invoiced.currency == billable.currency:
        difference = invoiced - billable
    return LineDifference(
        billing_line_id=line_id, kind=kind, invoiced=invoiced, billable=billable, difference=difference
    )


def mismatch(
    invoice_id: str, contract_id: str, differences: Sequence[LineDifference]
) -> BusinessRuleViolation:
    """The typed exception: each difference in words, then all of them as JSON for whoever reads the
    exception record (its message is what reaches the exceptions queue)."""
    described = "; ".join(d.describe() for d in differences)
    data = json.dumps([d.model_dump(mode="json") for d in differences], separators=(",", ":"))
    return BusinessRuleViolation(
        f"invoice {invoice_id} does not match what is billable on contract {contract_id}: {described}. "
        f"It is recorded and in the balances. Differences: {data}",
        code="invoice_mismatch",
    )


def balances_from(result: engine.RevenueResult, contract_id: str, currency: str) -> ContractBalances:
    """The engine's contract balances for the period holding as_of (receivable = billed - collected;
    revenue ahead of billing a contract asset, billing ahead of revenue a contract liability, netted per
    contract: never both)."""
    zero = Money.zero(currency)
    if contract_id not in result.contract_ids:  # the contract was not known yet at as_of
        return ContractBalances(
            contract_id=contract_id,
            as_of=result.as_of,
            billed_to_date=zero,
            collected_to_date=zero,
            recognised_to_date=zero,
            receivable=zero,
            contract_asset=zero,
            contract_liability=zero,
        )
    lines = [line for line in result.rollforward_totals() if line.contract_id == contract_id]

    def money(amount: Decimal) -> Money:
        return Money(amount=amount, currency=currency)

    last = lines[-1] if lines else None
    return ContractBalances(
        contract_id=contract_id,
        as_of=result.as_of,
        billed_to_date=money(sum((line.billed for line in lines), Decimal(0))),
        collected_to_date=money(sum((line.paid for line in lines), Decimal(0))),
        recognised_to_date=money(result.recognised_to_date(contract_id)),
        receivable=money(last.closing_receivable) if last else zero,
        contract_asset=money(last.closing_contract_asset) if last else zero,
        contract_liability=money(last.closing_contract_liability) if last else zero,
    )


def balances_as_of(
    versions: Sequence[EngineVersion], events: Iterable[engine.Event], as_of: date
) -> ContractBalances:
    """Run the engine over the contract's versions and delivery facts (invoices and payments among them)."""
    latest = versions[-1]
    contracts = [to_engine_contract(v) for v in versions]
    try:
        result = engine.schedule_for(
            contracts[-1],
            previous_versions=contracts[:-1],
            events=events,
            calendar=calendar_for(latest.terms),
            as_of=as_of,
        )
    except engine.RevenueRuleError as error:
        raise BusinessRuleViolation(
            f"revenue engine refused the contract: {error}", code="revenue_rule"
        ) from None
    return balances_from(result, latest.terms.contract_id, latest.terms.currency)


# --- what pssync says is billable -------------------------------------------------------------------------

BillableLines = Callable[[VersionStore, str, ContractTerms], list[ExpectedLine]]
"""(store, contract id, the contract's current terms) -> lines pssync says may be invoiced."""


def scheduled_lines(store: VersionStore, contract_id: str, terms: ContractTerms) -> list[ExpectedLine]:
    """The ERP billing schedule pssync published: lines with an amount (T&M and expense placeholders are
    billed through the lines released for them)."""
    return [
        ExpectedLine(
            line_id=line.line_id,
            amount=line.amount,
            origin="billing_schedule",
            obligation_id=line.obligation_id,
        )
        for line in billing_schedule(terms)
        if line.amount is not None
    ]


def released_time_lines(store: VersionStore, contract_id: str, terms: ContractTerms) -> list[ExpectedLine]:
    """T&M lines sent to the ERP (the time ledger's `sent` records)."""
    lines = []
    for state in ledger_entries(store.history(TIME_LEDGER, contract_id)).values():
        line = state.body.get("line")
        if state.sent_command_id is not None and line is not None:
            lines.append(
                ExpectedLine(
                    line_id=line["line_id"],
                    amount=Money.model_validate(line["amount"]),
                    origin="time",
                    obligation_id=state.body.get("obligation_id"),
                )
            )
    return lines


def billable_line_sources() -> tuple[BillableLines, ...]:
    """One per ledger that releases lines to the ERP; milestone releases and expense rebills join here."""
    return (scheduled_lines, released_time_lines)


def expected_lines(
    store: VersionStore, contract_id: str, terms: ContractTerms, also: Sequence[BillableLines] = ()
) -> dict[str, ExpectedLine]:
    unique = dict.fromkeys((*billable_line_sources(), *also))
    return {line.line_id: line for source in unique for line in source(store, contract_id, terms)}


# --- the ledgers -----------------------------------------------------------------------------------------


def _append(
    store: VersionStore,
    aggregate: str,
    aggregate_id: str,
    expected_version: int,
    body: dict[str, Any],
    event: EventEnvelope,
    now: datetime,
) -> StoredVersion:
    try:
        return store.append(
            aggregate,
            aggregate_id,
            expected_version=expected_version,
            body=body,
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        # Another document moved the head meanwhile: the retried step re-reads it (and re-decides).
        raise TransientDownstreamError(f"{aggregate} {aggregate_id} changed concurrently") from None


def _caused_by(history: Sequence[StoredVersion], event_id: str) -> StoredVersion | None:
    return next((v for v in history if v.caused_by_event_id == event_id), None)


def _invoice_records(history: Sequence[StoredVersion]) -> list[StoredVersion]:
    return [v for v in history if v.body["kind"] in ("invoice", "credit_note")]


def paid_on_invoice(history: Sequence[StoredVersion], invoice_key: str, excluding_event: str) -> Money | None:
    """Gross amount earlier payments applied to one invoice (None: the ledger applied nothing to it)."""
    paid: Money | None = None
    for stored in history:
        if stored.body["kind"] != "payment" or stored.caused_by_event_id == excluding_event:
            continue
        for applied in stored.body["applied"]:
            if applied["invoice_key"] == invoice_key:
                gross = Money.model_validate(applied["gross"])
                paid = gross if paid is None else paid + gross
    return paid


def receivable_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """The receivables ledger's collector (workflows.delivery_facts): invoices and credit notes bill their
    net amount, payments collect their net part, each on its document date."""
    events: list[engine.Event] = []
    for stored in store.history(RECEIVABLES_LEDGER, contract_id):
        body = stored.body
        amount = Money.model_validate(body["net"]).amount
        if body["kind"] == "payment":
            events.append(
                engine.Payment(
                    id=f"payment:{body['document_key']}",
                    on=date.fromisoformat(body["document_date"]),
                    contract_id=contract_id,
                    amount=amount,
                )
            )
        else:
            events.append(
                engine.Invoice(
                    id=f"invoice:{body['document_key']}",
                    on=date.fromisoformat(body["document_date"]),
                    contract_id=contract_id,
                    amount=amount,
                )
            )
    return events


OPENING_BALANCE = "opening_balance"
"""Per onboarded contract (`pssync import contracts`): what the prior system had billed, recognised and
collected on the cut-over date (`history`), version 1 only."""


def opening_balance_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """The opening position's collector: billed and collected to date before pssync, as one invoice and one
    payment on the cut-over date, so receivable, contract asset and liability start where the prior system
    left them (revenue itself is the engine's from the terms; a difference was warned at import)."""
    head = store.head(OPENING_BALANCE, contract_id)
    if head is None:
        return []
    history = head.body["history"]
    on = date.fromisoformat(history["as_of"])
    events: list[engine.Event] = []
    billed = Money.model_validate(history["billed_to_date"]).amount
    if billed:
        events.append(
            engine.Invoice(id=f"opening:billed:{contract_id}", on=on, contract_id=contract_id, amount=billed)
        )
    collected = history.get("collected_to_date")
    if collected is not None and Money.model_validate(collected).amount:
        events.append(
            engine.Payment(
                id=f"opening:collected:{contract_id}",
                on=on,
                contract_id=contract_id,
                amount=Money.model_validate(collected).amount,
            )
        )
    return events


# --- steps ------------------------------------------------------------------------------------------------


def _terms(stored: StoredVersion) -> ContractTerms:
    return ContractTerms.model_validate(stored.body["terms"])


def check_not_before_contract(store: VersionStore, contract_id: str, on: date, what: str) -> None:
    """A document dated before its contract starts is refused before anything is recorded: the engine
    refuses it too, and a mistyped date must not be moved into the first period (never change a fact)."""
    first = store.get(CONTRACT, contract_id, 1)
    starts = _terms(first).start_date if first is not None else None
    if starts is not None and on < starts:
        raise BusinessRuleViolation(
            f"{what} is dated {on}, before contract {contract_id} starts on {starts}: correct the date or "
            "the contract in the ERP, then replay it",
            code="receivable_before_contract",
        )


def match_receivable(event: Receivable, store: VersionStore) -> ReceivableMatch:
    if isinstance(event, InvoicePosted):
        return _match_invoice(event, store)
    return _match_payment(event, store)


def _match_invoice(event: InvoicePosted, store: VersionStore) -> ReceivableMatch:
    """By the contract the invoice names; else the one contract of its customer that has every billing
    line the invoice names (or the customer's only contract, when it names none)."""
    data = event.data
    key = document_key(event)
    indexed = store.head(INVOICE, key)
    if indexed is not None:  # recorded before: the index is the answer (a replay never re-decides)
        return ReceivableMatch(
            document="invoice", document_key=key, contract_ids=[indexed.body["contract_id"]], reason="indexed"
        )
    if data.contract_id is not None:
        head = store.head(CONTRACT, data.contract_id)
        if head is None:
            raise BusinessRuleViolation(
                f"invoice {data.invoice_id} names contract {data.contract_id}, which is not recorded",
                code="unknown_contract",
            )
        terms, reason = _terms(head), "named by the invoice"
        if not bills_customer(terms, data.customer_id):
            raise BusinessRuleViolation(
                f"invoice {data.invoice_id} bills customer {data.customer_id}, but contract "
                f"{terms.contract_id} is with {terms.customer.customer_id}",
                code="customer_mismatch",
            )
    else:
        terms, reason = _contract_by_lines(event, store), "by its customer and billing lines"
    if data.total.currency != terms.currency:
        raise BusinessRuleViolation(
            f"invoice {data.invoice_id} is in {data.total.currency}, contract {terms.contract_id} in "
            f"{terms.currency}: pssync states balances in the contract currency and converts no document",
            code="currency_mismatch",
        )
    check_not_before_contract(store, terms.contract_id, data.invoice_date, f"invoice {data.invoice_id}")
    return ReceivableMatch(
        document="invoice", document_key=key, contract_ids=[terms.contract_id], reason=reason
    )


def _contract_by_lines(event: InvoicePosted, store: VersionStore) -> ContractTerms:
    data = event.data
    contract_ids: list[str] = []
    for key in customer_keys(data.customer_id, event.source_system.value):
        head = store.head(CUSTOMER, key)
        contract_ids += [c for c in (head.body["contract_ids"] if head else []) if c not in contract_ids]
    named = {line.billing_line_id for line in data.lines if line.billing_line_id is not None}
    candidates = []
    for contract_id in contract_ids:
        head = store.head(CONTRACT, contract_id)
        if head is None:
            continue
        terms = _terms(head)
        if named <= set(expected_lines(store, contract_id, terms)):
            candidates.append(terms)
    if len(candidates) == 1:
        return candidates[0]
    ids = ", ".join(sorted(t.contract_id for t in candidates))
    raise BusinessRuleViolation(
        f"invoice {data.invoice_id} names no contract, and customer {data.customer_id} has "
        + (
            f"several contracts with its billing lines ({ids})"
            if candidates
            else "no contract with its billing lines"
        ),
        code="ambiguous_invoice" if candidates else "unmatched_invoice",
    )


def _match_payment(event: PaymentReceived, store: VersionStore) -> ReceivableMatch:
    """Through the invoice index: every invoice the payment names must have been recorded."""
    data = event.data
    if not data.invoice_ids:
        raise BusinessRuleViolation(
            f"payment {data.payment_id} names no invoice: unapplied cash is applied in the ERP first",
            code="unapplied_payment",
        )
    invoice_keys = list(dict.fromkeys(f"{event.source}/{i}" for i in data.invoice_ids))
    contract_ids: list[str] = []
    unknown = []
    for key in invoice_keys:
        indexed = store.head(INVOICE, key)
        if indexed is None:
            unknown.append(key.split("/", 1)[1])
            continue
        total = Money.model_validate(indexed.body["invoice"]["total"])
        if total.currency != data.amount.currency:
            raise BusinessRuleViolation(
                f"payment {data.payment_id} in {data.amount.currency} names invoice {key} "
                f"in {total.currency}",
                code="currency_mismatch",
            )
        if indexed.body["contract_id"] not in contract_ids:
            contract_ids.append(indexed.body["contract_id"])
    if unknown:
        raise BusinessRuleViolation(
            f"payment {data.payment_id} names invoices pssync has not recorded: {', '.join(unknown)} "
            "(replay it once they are posted)",
            code="unknown_invoice",
        )
    for contract_id in contract_ids:
        check_not_before_contract(store, contract_id, data.received_on, f"payment {data.payment_id}")
    return ReceivableMatch(
        document="payment",
        document_key=document_key(event),
        contract_ids=contract_ids,
        invoice_keys=invoice_keys,
        reason=f"through {len(invoice_keys)} invoice(s)",
    )


def record_receivable(
    event: Receivable, match: ReceivableMatch, store: VersionStore, now: datetime
) -> RecordedReceivable:
    if isinstance(event, InvoicePosted):
        return _record_invoice(event, match, store, now)
    return _record_payment(event, match, store, now)


def _unchanged(event: Receivable, kind: DocumentKind, reason: str) -> RecordedReceivable:
    document: Literal["invoice", "payment"] = "invoice" if isinstance(event, InvoicePosted) else "payment"
    return RecordedReceivable(
        document=document,
        document_key=document_key(event),
        document_id=event.data.invoice_id if isinstance(event, InvoicePosted) else event.data.payment_id,
        kind=kind,
        document_date=event.data.invoice_date if isinstance(event, InvoicePosted) else event.data.received_on,
        outcome="unchanged",
        reason=reason,
        newly_recorded=False,
    )


def _record_invoice(
    event: InvoicePosted, match: ReceivableMatch, store: VersionStore, now: datetime
) -> RecordedReceivable:
    """The invoice index first (it freezes the invoice and its contract), then the contract's ledger."""
    data = event.data
    key = document_key(event)
    said = data.model_dump(mode="json")
    kind = invoice_kind(data)
    indexed = store.head(INVOICE, key)
    if indexed is None:
        [contract_id] = match.contract_ids
        indexed = _append(store, INVOICE, key, 0, {"contract_id": contract_id, "invoice": said}, event, now)
    elif indexed.caused_by_event_id != event.event_id:
        if indexed.body["invoice"] == said:
            return _unchanged(event, kind, f"invoice {key} was recorded before with the same content")
        raise BusinessRuleViolation(
            f"invoice {key} was posted before with other content: a posted invoice is corrected by a credit "
            "note and a new invoice, never rewritten",
            code="invoice_changed",
        )
    contract_id = indexed.body["contract_id"]
    history = store.history(RECEIVABLES_LEDGER, contract_id)
    mine = _caused_by(history, event.event_id)
    newly = mine is None
    if mine is None:
        net = invoice_net(data)
        body = {
            "kind": kind,
            "document_key": key,
            "document_id": data.invoice_id,
            "invoice_number": data.invoice_number,
            "document_date": data.invoice_date.isoformat(),
            "due_date": data.due_date.isoformat() if data.due_date else None,
            "lines": [line.model_dump(mode="json") for line in data.lines],
            "tax": data.tax.model_dump(mode="json") if data.tax else None,
            "total": data.total.model_dump(mode="json"),
            "net": net.model_dump(mode="json"),
        }
        mine = _append(
            store, RECEIVABLES_LEDGER, contract_id, history[-1].version if history else 0, body, event, now
        )
    return RecordedReceivable(
        document="invoice",
        document_key=key,
        document_id=data.invoice_id,
        kind=kind,
        document_date=data.invoice_date,
        outcome="recorded",
        reason="recorded" if newly else "recorded before: continuing a replay",
        newly_recorded=newly,
        parts=[
            ContractPart(
                contract_id=contract_id,
                ledger_version=mine.version,
                amount=Money.model_validate(mine.body["net"]),
            )
        ],
    )


def _open_invoices(event: PaymentReceived, match: ReceivableMatch, store: VersionStore) -> list[OpenInvoice]:
    ledgers: dict[str, list[StoredVersion]] = {}
    invoices = []
    for key in match.invoice_keys:
        indexed = store.head(INVOICE, key)
        assert indexed is not None, f"matched invoice {key} is indexed"
        said = InvoicePostedData.model_validate(indexed.body["invoice"])
        contract_id = indexed.body["contract_id"]
        if contract_id not in ledgers:
            ledgers[contract_id] = store.history(RECEIVABLES_LEDGER, contract_id)
        paid = paid_on_invoice(ledgers[contract_id], key, excluding_event=event.event_id)
        invoices.append(
            OpenInvoice(
                invoice_key=key,
                invoice_id=said.invoice_id,
                contract_id=contract_id,
                gross=said.total,
                net=invoice_net(said),
                paid=paid or Money.zero(said.total.currency),
            )
        )
    return invoices


def _record_payment(
    event: PaymentReceived, match: ReceivableMatch, store: VersionStore, now: datetime
) -> RecordedReceivable:
    """The allocation is decided once and frozen in the payment's own aggregate; each contract's ledger
    then records its part (a replay applies the frozen allocation, never a recomputed one)."""
    data = event.data
    key = document_key(event)
    said = data.model_dump(mode="json")
    frozen = store.head(PAYMENT, key)
    if frozen is None:
        applied = allocate_payment(data.amount, _open_invoices(event, match, store))
        body = {"payment": said, "applied": [a.model_dump(mode="json") for a in applied]}
        frozen = _append(store, PAYMENT, key, 0, body, event, now)
    elif frozen.caused_by_event_id != event.event_id:
        if frozen.body["payment"] == said:
            return _unchanged(event, "payment", f"payment {key} was recorded before with the same content")
        raise BusinessRuleViolation(
            f"payment {key} was received before with other content: reverse it in the ERP instead",
            code="payment_changed",
        )
    applied = [AppliedPayment.model_validate(a) for a in frozen.body["applied"]]
    by_contract: dict[str, list[AppliedPayment]] = defaultdict(list)
    for part in applied:
        by_contract[part.contract_id].append(part)
    parts, newly = [], False
    for contract_id, mine_applied in by_contract.items():
        history = store.history(RECEIVABLES_LEDGER, contract_id)
        mine = _caused_by(history, event.event_id)
        if mine is None:
            newly = True
            gross = sum((a.gross for a in mine_applied[1:]), mine_applied[0].gross)
            net = sum((a.net for a in mine_applied[1:]), mine_applied[0].net)
            body = {
                "kind": "payment",
                "document_key": key,
                "document_id": data.payment_id,
                "document_date": data.received_on.isoformat(),
                "applied": [a.model_dump(mode="json") for a in mine_applied],
                "gross": gross.model_dump(mode="json"),
                "net": net.model_dump(mode="json"),
            }
            mine = _append(
                store,
                RECEIVABLES_LEDGER,
                contract_id,
                history[-1].version if history else 0,
                body,
                event,
                now,
            )
        parts.append(
            ContractPart(
                contract_id=contract_id,
                ledger_version=mine.version,
                amount=Money.model_validate(mine.body["net"]),
            )
        )
    return RecordedReceivable(
        document="payment",
        document_key=key,
        document_id=data.payment_id,
        kind="payment",
        document_date=data.received_on,
        outcome="recorded",
        reason="recorded" if newly else "recorded before: continuing a replay",
        newly_recorded=newly,
        parts=parts,
        applied=applied,
    )


def update_contract_balances(
    event: Receivable, recorded: RecordedReceivable, store: VersionStore, now: datetime
) -> BalancesReceipt:
    """One balances version per contract and causing event, as of the document's date (the contract's start
    when the document is dated before it: the engine knows no contract before then)."""
    stored = []
    for part in recorded.parts:
        contract_id = part.contract_id
        history = store.history(CONTRACT_BALANCES, contract_id)
        mine = _caused_by(history, event.event_id)
        if mine is None:
            schedule = store.head(REVENUE_SCHEDULE, contract_id)
            contract = store.head(CONTRACT, contract_id)
            assert contract is not None, f"contract {contract_id} is recorded"
            # The contract versions the current revenue schedule was built from.
            up_to = int(schedule.body["contract_version"]) if schedule else contract.version
            versions = engine_versions(store, contract_id, up_to)
            events = delivery_events(store, contract_id, versions[-1], also=(receivable_facts,))
            as_of = max(recorded.document_date, to_engine_contract(versions[0]).known_from)
            balances = balances_as_of(versions, events, as_of)
            body = {
                "contract_version": up_to,
                "document_key": recorded.document_key,
                **balances.model_dump(mode="json"),
            }
            mine = _append(
                store, CONTRACT_BALANCES, contract_id, history[-1].version if history else 0, body, event, now
            )
            newly = True
        else:
            newly = False
        stored.append(_stored_balances(mine, newly))
    return BalancesReceipt(contracts=stored)


def _stored_balances(stored: StoredVersion, newly: bool) -> StoredBalances:
    body = {k: v for k, v in stored.body.items() if k not in ("contract_version", "document_key")}
    return StoredBalances(
        balances=ContractBalances.model_validate(body),
        balances_version=stored.version,
        contract_version=int(stored.body["contract_version"]),
        newly_recorded=newly,
    )


def contract_balances_updated(
    event: Receivable, recorded: RecordedReceivable, receipt: BalancesReceipt, now: datetime
) -> list[ContractBalancesUpdated]:
    """One event per contract the document touched; ids derived from the cause and the contract."""
    events = []
    for item in receipt.contracts:
        b = item.balances
        events.append(
            ContractBalancesUpdated(
                **completion_envelope(
                    WORKFLOW_SOURCE, event, f"balances:{b.contract_id}", str(item.balances_version), now
                ),
                data=ContractBalancesData(
                    contract_id=b.contract_id,
                    document=recorded.document,
                    document_id=recorded.document_id,
                    as_of=b.as_of,
                    billed_to_date=b.billed_to_date,
                    collected_to_date=b.collected_to_date,
                    recognised_to_date=b.recognised_to_date,
                    receivable=b.receivable,
                    contract_asset=b.contract_asset,
                    contract_liability=b.contract_liability,
                ),
            )
        )
    return events


def invoiced_before(history: Sequence[StoredVersion], before_version: int) -> dict[str, Money]:
    """Per billing line, what earlier invoices and credit notes of the contract invoiced on it."""
    totals: dict[str, Money] = {}
    for stored in _invoice_records(history):
        if stored.version >= before_version:
            continue
        for line in stored.body["lines"]:
            line_id = line.get("billing_line_id")
            if line_id is None:
                continue
            amount = Money.model_validate(line["amount"])
            before = totals.get(line_id)
            if before is None:
                totals[line_id] = amount
            elif before.currency == amount.currency:
                totals[line_id] = before + amount
    return totals


def check_invoice_against_schedule(
    event: InvoicePosted, recorded: RecordedReceivable, store: VersionStore
) -> ScheduleCheck:
    """The recorded invoice against what remained billable before it; a difference is `invoice_mismatch`."""
    [part] = recorded.parts
    contract = store.head(CONTRACT, part.contract_id)
    assert contract is not None, f"contract {part.contract_id} is recorded"
    expected = expected_lines(store, part.contract_id, _terms(contract))
    before = invoiced_before(store.history(RECEIVABLES_LEDGER, part.contract_id), part.ledger_version)
    data = event.data
    differences = compare_invoice(data.lines, data.tax, data.total, expected, before)
    if differences:
        raise mismatch(data.invoice_id, part.contract_id, differences)
    return ScheduleCheck(contract_id=part.contract_id, lines_checked=len(data.lines), matched=True)
