"""Apply-receivables rules and steps with in-memory ports: matching, allocation, netting, the schedule check,
credit notes and the ledgers' idempotency."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation
from pssync.model import examples
from pssync.model.contract import ContractTerms
from pssync.model.events import (
    ContractBooked,
    InvoiceLine,
    InvoicePosted,
    PaymentReceived,
    SourceSystem,
    canonical_event_id,
)
from pssync.money import Money
from pssync.workflows import provision, receivables
from pssync.workflows.amendment import engine_versions
from pssync.workflows.delivery_facts import delivery_events
from pssync.workflows.receivables import (
    CONTRACT_BALANCES,
    INVOICE,
    PAYMENT,
    RECEIVABLES_LEDGER,
    ExpectedLine,
    OpenInvoice,
)
from pssync.workflows.revenue import to_engine_contract
from tests.fakes import FixedClock, InMemoryVersionStore

NOW = FixedClock().now()
CONTOSO = "C-2026-0412"  # milestones (IMPL), training on 2027-03-15 (TRAIN), managed service 2027 (MANAGED)
SECOND = "C-2027-0555"  # a second Contoso contract: the delivery programme's build and T&M hypercare


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def _book(store: InMemoryVersionStore, terms: ContractTerms) -> None:
    booked = examples.contract_booked()
    event = booked.model_copy(
        update={
            "event_id": canonical_event_id("crm", f"book-{terms.contract_id}"),
            "data": booked.data.model_copy(update={"contract": terms}),
        }
    )
    assert isinstance(event, ContractBooked)
    contract = provision.record_contract_version(event, store, NOW)
    provision.build_revenue_schedule(event, contract, store, NOW)
    provision.link_project(store, event, terms, NOW)


def _second_contoso_contract() -> ContractTerms:
    terms = examples.delivery_programme()
    contoso = examples.transformation_programme().customer
    project = terms.project.model_copy(update={"project_id": "P-CONTOSO-0555"})
    return terms.model_copy(update={"contract_id": SECOND, "customer": contoso, "project": project})


@pytest.fixture
def store() -> InMemoryVersionStore:
    store = InMemoryVersionStore()
    _book(store, examples.transformation_programme())
    _book(store, _second_contoso_contract())
    return store


def invoice(
    invoice_id: str,
    lines: list[tuple[str | None, str]],
    *,
    contract_id: str | None = CONTOSO,
    on: date = date(2027, 2, 1),
    tax: str | None = None,
    customer_id: str = "CUST-0042",
    delivery: str | None = None,
    currency: str = "EUR",
) -> InvoicePosted:
    delivery_id = delivery or f"msg_{invoice_id}"
    event_id = canonical_event_id("erp", delivery_id)
    amounts = [Money.of(amount, currency) for _, amount in lines]
    net = sum(amounts[1:], amounts[0])
    total = net + Money.of(tax, currency) if tax else net
    at = datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
    return InvoicePosted.model_validate(
        {
            "event_id": event_id,
            "source": "erp",
            "source_system": SourceSystem.NETSUITE,
            "source_event_id": delivery_id,
            "correlation_id": event_id,
            "occurred_at": at,
            "received_at": at,
            "data": {
                "invoice_id": invoice_id,
                "contract_id": contract_id,
                "customer_id": customer_id,
                "invoice_date": on,
                "lines": [
                    {"description": f"line {line_id}", "amount": money, "billing_line_id": line_id}
                    for (line_id, _), money in zip(lines, amounts, strict=True)
                ],
                "tax": Money.of(tax, currency) if tax else None,
                "total": total,
            },
        }
    )


def payment(
    payment_id: str, amount: str, invoice_ids: list[str], *, on: date = date(2027, 2, 20)
) -> PaymentReceived:
    delivery_id = f"msg_{payment_id}"
    event_id = canonical_event_id("erp", delivery_id)
    at = datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
    return PaymentReceived.model_validate(
        {
            "event_id": event_id,
            "source": "erp",
            "source_system": SourceSystem.NETSUITE,
            "source_event_id": delivery_id,
            "correlation_id": event_id,
            "occurred_at": at,
            "received_at": at,
            "data": {
                "payment_id": payment_id,
                "customer_id": "CUST-0042",
                "received_on": on,
                "amount": eur(amount),
                "invoice_ids": invoice_ids,
            },
        }
    )


def run(event: InvoicePosted | PaymentReceived, store: InMemoryVersionStore) -> dict[str, Any]:
    """The workflow's steps in the state machine's order (the check last, for invoices)."""
    match = receivables.match_receivable(event, store)
    recorded = receivables.record_receivable(event, match, store, NOW)
    state: dict[str, Any] = {"match": match, "recorded": recorded}
    if recorded.outcome == "unchanged":
        return state
    state["balances"] = receivables.update_contract_balances(event, recorded, store, NOW)
    state["emitted"] = receivables.contract_balances_updated(event, recorded, state["balances"], NOW)
    if isinstance(event, InvoicePosted):
        state["check"] = receivables.check_invoice_against_schedule(event, recorded, store)
    return state


def balances_of(state: dict[str, Any], contract_id: str) -> receivables.ContractBalances:
    [stored] = [c for c in state["balances"].contracts if c.balances.contract_id == contract_id]
    return stored.balances  # type: ignore[no-any-return]


# --- the schedule check (pure) ---------------------------------------------------------------------------


EXPECTED = {
    "B2-I1": ExpectedLine(line_id="B2-I1", amount=eur("12000.00"), origin="billing_schedule"),
    "psa/TE-1@1": ExpectedLine(line_id="psa/TE-1@1", amount=eur("1680.00"), origin="time"),
}


def _lines(*lines: tuple[str | None, Money]) -> list[InvoiceLine]:
    return [InvoiceLine(description="x", amount=amount, billing_line_id=line_id) for line_id, amount in lines]


def test_an_invoice_of_exactly_what_is_billable_has_no_difference() -> None:
    lines = _lines(("B2-I1", eur("12000.00")), ("psa/TE-1@1", eur("1000.00")), ("psa/TE-1@1", eur("680.00")))
    tax = eur("2599.20")
    total = eur("16279.20")
    assert receivables.compare_invoice(lines, tax, total, EXPECTED, {}) == []


def test_every_difference_is_stated_per_line() -> None:
    lines = _lines(
        ("B2-I1", eur("12500.00")),  # 500 more than scheduled
        ("B7-X", eur("50.00")),  # no such line
        (None, eur("10.00")),  # names no line
        ("psa/TE-1@1", Money.of("1680.00", "USD")),  # another currency
    )
    differences = receivables.compare_invoice(lines, None, eur("99999.00"), EXPECTED, {})
    by_kind = {d.kind: d for d in differences}
    assert set(by_kind) == {"amount", "unknown_line", "no_line_reference", "currency"}
    amount = by_kind["amount"]
    assert (amount.billing_line_id, amount.invoiced, amount.billable, amount.difference) == (
        "B2-I1",
        eur("12500.00"),
        eur("12000.00"),
        eur("500.00"),
    )
    assert by_kind["unknown_line"].billing_line_id == "B7-X" and by_kind["unknown_line"].billable is None
    assert by_kind["currency"].difference is None  # not comparable across currencies
    assert "B2-I1: invoiced 12500.00 EUR, billable 12000.00 EUR, difference 500.00 EUR" in amount.describe()


def test_a_line_invoiced_before_is_billable_only_for_what_remains() -> None:
    again = receivables.compare_invoice(
        _lines(("B2-I1", eur("12000.00"))), None, eur("12000.00"), EXPECTED, {"B2-I1": eur("12000.00")}
    )
    [twice] = again
    assert (twice.kind, twice.billable, twice.difference) == (
        "already_invoiced",
        eur("0.00"),
        eur("12000.00"),
    )
    rest = receivables.compare_invoice(
        _lines(("B2-I1", eur("4000.00"))), None, eur("4000.00"), EXPECTED, {"B2-I1": eur("8000.00")}
    )
    assert rest == []  # the second part of a line billed in two


def test_a_credit_note_may_credit_what_was_invoiced_on_its_line_and_no_more() -> None:
    fine = receivables.compare_invoice(
        _lines(("B2-I1", eur("-2000.00"))), None, eur("-2000.00"), EXPECTED, {"B2-I1": eur("12000.00")}
    )
    assert fine == []
    [over] = receivables.compare_invoice(
        _lines(("B2-I1", eur("-2000.00"))), None, eur("-2000.00"), EXPECTED, {}
    )
    assert (over.kind, over.invoiced, over.billable) == ("over_credited", eur("-2000.00"), eur("0"))


def test_a_total_that_is_not_the_lines_plus_tax_is_a_difference() -> None:
    [total] = receivables.compare_invoice(
        _lines(("B2-I1", eur("12000.00"))), eur("2280.00"), eur("14000.00"), EXPECTED, {}
    )
    assert (total.kind, total.invoiced, total.billable, total.difference) == (
        "total",
        eur("14000.00"),
        eur("14280.00"),
        eur("-280.00"),
    )


# --- allocation of a payment (pure) ----------------------------------------------------------------------


def _open(key: str, contract: str, gross: str, paid: str = "0", net: str | None = None) -> OpenInvoice:
    return OpenInvoice(
        invoice_key=key,
        invoice_id=key.split("/")[1],
        contract_id=contract,
        gross=eur(gross),
        net=eur(net or gross),
        paid=eur(paid),
    )


def test_a_payment_over_several_invoices_is_split_by_their_open_amounts() -> None:
    invoices = [_open("erp/A", "C1", "14280.00", net="12000.00"), _open("erp/B", "C2", "30000.00", "5000.00")]
    applied = receivables.allocate_payment(eur("19640.00"), invoices)  # half of 14,280 + 25,000 open
    assert [(a.invoice_id, a.contract_id, a.gross, a.net) for a in applied] == [
        ("A", "C1", eur("7140.00"), eur("6000.00")),  # net of the invoice's tax share
        ("B", "C2", eur("12500.00"), eur("12500.00")),
    ]


def test_the_rounding_residual_goes_to_the_largest_share_and_the_parts_add_up() -> None:
    invoices = [
        _open("erp/A", "C1", "100.00"),
        _open("erp/B", "C1", "100.00"),
        _open("erp/C", "C1", "100.00"),
    ]
    applied = receivables.allocate_payment(eur("100.00"), invoices)
    assert [a.gross for a in applied] == [eur("33.34"), eur("33.33"), eur("33.33")]  # first on a tie
    assert sum((a.gross.amount for a in applied), Decimal(0)) == Decimal("100.00")


def test_credit_notes_take_no_cash_and_paid_invoices_are_paid_again_pro_rata_to_their_totals() -> None:
    with_credit = [_open("erp/A", "C1", "1000.00"), _open("erp/CN", "C1", "-200.00")]
    [only] = receivables.allocate_payment(eur("800.00"), with_credit)
    assert (only.invoice_id, only.gross) == ("A", eur("800.00"))
    settled = [_open("erp/A", "C1", "300.00", "300.00"), _open("erp/B", "C1", "100.00", "100.00")]
    assert [a.gross for a in receivables.allocate_payment(eur("40.00"), settled)] == [
        eur("30.00"),
        eur("10.00"),
    ]
    with pytest.raises(BusinessRuleViolation) as nothing:
        receivables.allocate_payment(eur("10.00"), [_open("erp/CN", "C1", "-200.00")])
    assert nothing.value.code == "unapplied_payment"
    with pytest.raises(BusinessRuleViolation) as refund:
        receivables.allocate_payment(eur("-10.00"), with_credit)
    assert refund.value.code == "invalid_payment"


def test_an_invoice_paid_in_instalments_collects_exactly_its_net_amount() -> None:
    gross, net = eur("119.00"), eur("100.00")
    first = receivables.net_collected(gross, net, eur("0"), eur("33.33"))
    second = receivables.net_collected(gross, net, eur("33.33"), eur("33.33"))
    third = receivables.net_collected(gross, net, eur("66.66"), eur("52.34"))
    assert first + second + third == net


# --- matching ----------------------------------------------------------------------------------------------


def test_an_invoice_matches_the_contract_it_names_or_its_customers_contract_with_its_lines(
    store: InMemoryVersionStore,
) -> None:
    named = receivables.match_receivable(invoice("INV-1", [("B2-I1", "12000.00")]), store)
    assert named.contract_ids == [CONTOSO] and named.reason == "named by the invoice"
    by_lines = receivables.match_receivable(
        invoice("INV-2", [("B1-I1", "30000.00")], contract_id=None), store
    )
    assert by_lines.contract_ids == [SECOND]  # only the second contract has an instalment B1-I1
    by_netsuite_id = receivables.match_receivable(
        invoice("INV-3", [("B3-2027-01", "9000.00")], contract_id=None, customer_id="4711"), store
    )
    assert by_netsuite_id.contract_ids == [CONTOSO]  # the ERP's own customer id, indexed as netsuite:4711


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (invoice("X", [(None, "10.00")], contract_id=None), "ambiguous_invoice"),  # two Contoso contracts
        (invoice("X", [("B9-NOPE", "10.00")], contract_id=None), "unmatched_invoice"),
        (invoice("X", [("B2-I1", "10.00")], contract_id="C-UNKNOWN"), "unknown_contract"),
        (invoice("X", [("B2-I1", "10.00")], customer_id="CUST-0077"), "customer_mismatch"),
        (invoice("X", [("B2-I1", "10.00")], currency="USD"), "currency_mismatch"),
        (payment("P-X", "10.00", ["INV-NEVER"]), "unknown_invoice"),
        (payment("P-X", "10.00", []), "unapplied_payment"),
    ],
)
def test_a_document_that_matches_no_single_contract_is_a_typed_exception(
    store: InMemoryVersionStore, event: InvoicePosted | PaymentReceived, code: str
) -> None:
    with pytest.raises(BusinessRuleViolation) as error:
        receivables.match_receivable(event, store)
    assert error.value.code == code


def test_an_invoice_dated_before_its_contract_starts_is_refused_before_anything_is_recorded(
    store: InMemoryVersionStore,
) -> None:
    """The engine refuses a document dated before the contract (it would otherwise land in the first
    period, a moved fact); the workflow refuses it at the match, so the ledger never holds it."""
    before = invoice("INV-EARLY", [("B1-M1-DISCOVERY", "92000.00")], on=date(2026, 12, 1))
    with pytest.raises(BusinessRuleViolation) as error:
        receivables.match_receivable(before, store)
    assert error.value.code == "receivable_before_contract"
    assert store.history(receivables.RECEIVABLES_LEDGER, CONTOSO) == []


# --- the steps -------------------------------------------------------------------------------------------


def test_an_invoice_is_recorded_once_and_its_balances_net_to_one_position_per_contract(
    store: InMemoryVersionStore,
) -> None:
    # Training billed before it is delivered (billing ahead of revenue on TRAIN) while the managed service
    # is recognised unbilled (revenue ahead of billing on MANAGED): one net position for the contract.
    training = invoice("INV-TRAIN", [("B2-I1", "12000.00")], on=date(2027, 2, 10))
    state = run(training, store)
    assert state["check"].matched
    balances = balances_of(state, CONTOSO)
    versions = engine_versions(store, CONTOSO, 1)
    events = delivery_events(store, CONTOSO, versions[-1], also=(receivables.receivable_facts,))
    result = engine.schedule_for(to_engine_contract(versions[-1]), events=events, as_of=date(2027, 2, 10))
    assert result.recognised_to_date(CONTOSO, "TRAIN") == 0  # billed 12,000, nothing earned: a liability
    managed = result.recognised_to_date(CONTOSO, "MANAGED")
    assert managed > 0  # earned, nothing billed: an asset
    assert balances.recognised_to_date == eur(str(managed))
    assert balances.billed_to_date == eur("12000.00") and balances.collected_to_date == eur("0.00")
    assert balances.receivable == eur("12000.00")
    assert balances.contract_asset == eur(str(managed - Decimal("12000.00")))  # netted: asset minus liability
    assert balances.contract_liability == eur("0.00")
    [emitted] = state["emitted"]
    assert emitted.data.contract_asset == balances.contract_asset and emitted.data.document == "invoice"

    # The same event again (a retry or a replay): nothing new anywhere.
    before = {key: list(history) for key, history in store.versions.items()}
    again = run(training, store)
    assert again["recorded"].newly_recorded is False
    assert [c.newly_recorded for c in again["balances"].contracts] == [False]
    assert [e.event_id for e in again["emitted"]] == [emitted.event_id]
    assert store.versions == before

    # The same invoice in another delivery with the same content: unchanged; with other content: refused.
    resent = invoice("INV-TRAIN", [("B2-I1", "12000.00")], on=date(2027, 2, 10), delivery="msg_resent")
    assert run(resent, store)["recorded"].outcome == "unchanged"
    changed = invoice("INV-TRAIN", [("B2-I1", "11000.00")], on=date(2027, 2, 10), delivery="msg_changed")
    with pytest.raises(BusinessRuleViolation) as error:
        run(changed, store)
    assert error.value.code == "invoice_changed"
    assert store.versions == before


def test_a_payment_spanning_two_contracts_is_allocated_by_open_amounts_and_updates_both(
    store: InMemoryVersionStore,
) -> None:
    run(invoice("INV-1", [("B2-I1", "12000.00")], tax="2280.00"), store)
    run(invoice("INV-2", [("B1-I1", "30000.00")], contract_id=SECOND), store)
    run(payment("PAY-0", "5000.00", ["INV-2"], on=date(2027, 2, 5)), store)
    state = run(payment("PAY-1", "19640.00", ["INV-1", "INV-2"]), store)
    assert [(a.invoice_id, a.contract_id, a.gross, a.net) for a in state["recorded"].applied] == [
        ("INV-1", CONTOSO, eur("7140.00"), eur("6000.00")),
        ("INV-2", SECOND, eur("12500.00"), eur("12500.00")),
    ]
    assert [p.contract_id for p in state["recorded"].parts] == [CONTOSO, SECOND]
    contoso, second = balances_of(state, CONTOSO), balances_of(state, SECOND)
    assert (contoso.billed_to_date, contoso.collected_to_date, contoso.receivable) == (
        eur("12000.00"),  # net of tax: the contract's consideration
        eur("6000.00"),
        eur("6000.00"),
    )
    assert (second.billed_to_date, second.collected_to_date, second.receivable) == (
        eur("30000.00"),
        eur("17500.00"),
        eur("12500.00"),
    )
    assert {e.data.contract_id for e in state["emitted"]} == {CONTOSO, SECOND}
    assert len({e.event_id for e in state["emitted"]}) == 2
    assert [v.body["kind"] for v in store.history(RECEIVABLES_LEDGER, SECOND)] == [
        "invoice",
        "payment",
        "payment",
    ]

    # A replay applies the frozen allocation, even though the open amounts have moved since.
    frozen = store.head(PAYMENT, "erp/PAY-1")
    assert frozen is not None and frozen.version == 1
    again = run(payment("PAY-1", "19640.00", ["INV-1", "INV-2"]), store)
    assert again["recorded"].applied == state["recorded"].applied and not again["recorded"].newly_recorded
    assert len(store.history(CONTRACT_BALANCES, SECOND)) == 3


def test_a_mismatching_invoice_is_recorded_with_its_balances_and_then_refused_with_the_difference(
    store: InMemoryVersionStore,
) -> None:
    wrong = invoice("INV-W", [("B2-I1", "12500.00"), ("B9-EXTRA", "300.00")])
    match = receivables.match_receivable(wrong, store)
    recorded = receivables.record_receivable(wrong, match, store, NOW)
    receipt = receivables.update_contract_balances(wrong, recorded, store, NOW)
    assert receipt.contracts[0].balances.billed_to_date == eur("12800.00")  # finance sees it billed
    with pytest.raises(BusinessRuleViolation) as error:
        receivables.check_invoice_against_schedule(wrong, recorded, store)
    assert error.value.code == "invoice_mismatch"
    message = str(error.value)
    assert "B2-I1: invoiced 12500.00 EUR, billable 12000.00 EUR, difference 500.00 EUR" in message
    assert "B9-EXTRA: invoiced 300.00 EUR, not a billable line" in message
    assert '"difference":{"amount":"500.00","currency":"EUR"}' in message  # the data, machine-readable
    assert store.head(INVOICE, "erp/INV-W") is not None


def test_a_credit_note_reduces_billing_and_is_checked_against_what_was_invoiced(
    store: InMemoryVersionStore,
) -> None:
    run(invoice("INV-1", [("B2-I1", "12000.00")]), store)
    credit = invoice("CN-1", [("B2-I1", "-2000.00")], on=date(2027, 2, 15))
    state = run(credit, store)
    assert state["recorded"].kind == "credit_note" and state["check"].matched
    assert balances_of(state, CONTOSO).billed_to_date == eur("10000.00")
    assert balances_of(state, CONTOSO).receivable == eur("10000.00")
    too_much = invoice("CN-2", [("B2-I1", "-10500.00")], on=date(2027, 2, 16))
    with pytest.raises(BusinessRuleViolation) as error:
        run(too_much, store)
    assert error.value.code == "invoice_mismatch" and "credited -10500.00 EUR" in str(error.value)


def test_the_ledger_is_a_delivery_fact_collector_of_engine_invoices_and_payments(
    store: InMemoryVersionStore,
) -> None:
    run(invoice("INV-1", [("B2-I1", "12000.00")], tax="2280.00"), store)
    run(payment("PAY-1", "14280.00", ["INV-1"]), store)
    latest = engine_versions(store, CONTOSO, 1)[-1]
    facts = receivables.receivable_facts(store, CONTOSO, latest)
    assert facts == [
        engine.Invoice(
            id="invoice:erp/INV-1", on=date(2027, 2, 1), contract_id=CONTOSO, amount=Decimal("12000.00")
        ),
        engine.Payment(
            id="payment:erp/PAY-1", on=date(2027, 2, 20), contract_id=CONTOSO, amount=Decimal("12000.00")
        ),
    ]
