"""Finance report bench: time and peak memory to build `pssync report` for a generated portfolio.

    python -m bench.report --engagements 1000 [--out build/bench/report.html]

The portfolio is written by the real workflow steps into the in-memory VersionStore (tests/fakes.py): the
demo's two SOWs (EUR and USD) copied per engagement with their own contract, project and customer ids,
each with approved T&M time and its first milestone invoiced; for half of them the milestone accepted and
the invoice paid; a quarter of the EUR ones amended by the demo's change order. What is timed is what
`pssync report` does after it has the contract ids: measure every contract with the engine as of the
cut-off, add up, render the HTML.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pssync.local import demo_scenario as demo
from pssync.model import examples
from pssync.model.contract import ContractTerms
from pssync.model.events import (
    ContractAmended,
    ContractBooked,
    InvoicePosted,
    MilestoneCompleted,
    PaymentReceived,
    SourceSystem,
    TimeApproved,
    canonical_event_id,
)
from pssync.model.parties import Customer
from pssync.money import Money
from pssync.ops.contract_view import Cutoff
from pssync.ops.finance_report.gather import build_report
from pssync.ops.finance_report.model import FinanceReport
from pssync.ops.finance_report.render import render
from pssync.ports import VersionStore
from pssync.workflows import amendment, milestones, provision, receivables, time_approval

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/fakes.py: the in-memory ports the unit tests use

from tests.fakes import FixedClock, InMemoryVersionStore  # noqa: E402

BOOKED_AT = datetime(2026, 7, 27, 9, 0, tzinfo=UTC)
AS_OF = "2026-10-31"


def _envelope(source: str, delivery_id: str, at: datetime, system: SourceSystem) -> dict[str, Any]:
    event_id = canonical_event_id(source, delivery_id)
    return {
        "event_id": event_id,
        "source": source,
        "source_system": system,
        "source_event_id": delivery_id,
        "correlation_id": event_id,
        "occurred_at": at,
        "received_at": at,
    }


def engagement_terms(n: int, customer_name: str | None = None) -> ContractTerms:
    """Engagement n: the EU SOW for two in three, else the US SOW, with its own ids."""
    base = demo.us_terms() if n % 3 == 2 else demo.eu_terms()
    return _renamed(base, n, customer_name)


def _renamed(base: ContractTerms, n: int, customer_name: str | None = None) -> ContractTerms:
    customer = Customer(
        customer_id=f"CUST-{n:05d}",
        name=customer_name or f"Customer {n:05d} {base.customer.country}",
        country=base.customer.country,
    )
    project = base.project.model_copy(update={"project_id": f"P-GEN-{n:05d}"})
    return base.model_copy(update={"contract_id": f"C-GEN-{n:05d}", "customer": customer, "project": project})


def book(store: VersionStore, terms: ContractTerms, at: datetime) -> None:
    booked = examples.contract_booked()
    event = booked.model_copy(
        update={
            "event_id": canonical_event_id("crm", f"book-{terms.contract_id}"),
            "data": booked.data.model_copy(update={"contract": terms, "closed_won_at": at}),
        }
    )
    assert isinstance(event, ContractBooked)
    contract = provision.record_contract_version(event, store, at)
    provision.build_revenue_schedule(event, contract, store, at)


def amend(store: VersionStore, terms: ContractTerms, on: date, at: datetime) -> None:
    template = examples.contract_amended()
    event = template.model_copy(
        update={
            "event_id": canonical_event_id("crm", f"amend-{terms.contract_id}"),
            "data": template.data.model_copy(update={"contract": terms, "effective_date": on}),
        }
    )
    assert isinstance(event, ContractAmended)
    recorded = amendment.record_amended_version(event, store, at)
    amendment.remeasure_revenue(event, recorded, store, at)


def approve_time(
    store: VersionStore, terms: ContractTerms, entry: str, day: date, hours: str, role: str, wbs: str
) -> None:
    at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    event = TimeApproved.model_validate(
        {
            **_envelope("psa", f"time-{terms.contract_id}-{entry}", at, SourceSystem.CERTINIA),
            "source_version": at.isoformat(),
            "data": {
                "time_entry_id": f"{terms.contract_id}-{entry}",
                "project_id": terms.project.project_id,
                "person_id": "EMP-17",
                "work_date": day,
                "hours": Decimal(hours),
                "billable": True,
                "wbs_code": wbs,
                "role": role,
            },
        }
    )
    match = time_approval.match_time_entry(event, store)
    recorded = time_approval.record_time(event, match, store, at)
    time_approval.send_billable_time(event, recorded, store, lambda c: _receipt(c), FixedClock(at))
    time_approval.remeasure_revenue(event, recorded, store, at)


def _receipt(command: Any) -> provision.CommandReceipt:
    return provision.CommandReceipt(
        command_id=command.command_id, external_id=command.external_id, newly_recorded=True
    )


def accept_milestone(
    store: VersionStore, terms: ContractTerms, milestone_id: str, completed_on: date
) -> None:
    """Completed in the PSA, accepted passively once its acceptance days ran out, invoice released."""
    at = datetime.combine(completed_on, datetime.min.time(), UTC) + timedelta(hours=17)
    event = MilestoneCompleted.model_validate(
        {
            **_envelope("psa", f"milestone-{terms.contract_id}-{milestone_id}", at, SourceSystem.CERTINIA),
            "data": {
                "milestone_id": milestone_id,
                "project_id": terms.project.project_id,
                "completed_on": completed_on,
            },
        }
    )
    woken = at + timedelta(days=21)  # past any acceptance period of the demo's terms
    state = milestones.record_milestone(event, milestones.match_milestone(event, store), store, at)
    state = milestones.decide_acceptance(event, state, store, woken)
    milestones.release_milestone_invoice(event, state, store, _receipt, FixedClock(woken))
    milestones.recognise_milestone_revenue(event, state, store, woken)


def _receivable(store: VersionStore, event: InvoicePosted | PaymentReceived, at: datetime) -> None:
    match = receivables.match_receivable(event, store)
    recorded = receivables.record_receivable(event, match, store, at)
    receivables.update_contract_balances(event, recorded, store, at)


def invoice(
    store: VersionStore, terms: ContractTerms, invoice_id: str, on: date, line_id: str, amount: Money
) -> None:
    at = datetime.combine(on, datetime.min.time(), UTC) + timedelta(hours=12)
    event = InvoicePosted.model_validate(
        {
            **_envelope("erp", f"invoice-{invoice_id}", at, SourceSystem.NETSUITE),
            "data": {
                "invoice_id": invoice_id,
                "contract_id": terms.contract_id,
                "customer_id": terms.customer.customer_id,
                "invoice_date": on,
                "lines": [{"description": line_id, "amount": amount, "billing_line_id": line_id}],
                "total": amount,
            },
        }
    )
    _receivable(store, event, at)


def pay(
    store: VersionStore,
    terms: ContractTerms,
    payment_id: str,
    on: date,
    amount: Money,
    invoice_id: str,
) -> None:
    at = datetime.combine(on, datetime.min.time(), UTC) + timedelta(hours=12)
    event = PaymentReceived.model_validate(
        {
            **_envelope("erp", f"payment-{payment_id}", at, SourceSystem.NETSUITE),
            "data": {
                "payment_id": payment_id,
                "customer_id": terms.customer.customer_id,
                "received_on": on,
                "amount": amount,
                "invoice_ids": [invoice_id],
            },
        }
    )
    _receivable(store, event, at)


def add_engagement(store: VersionStore, n: int, customer_name: str | None = None) -> str:
    terms = engagement_terms(n, customer_name)
    book(store, terms, BOOKED_AT)
    us = terms.currency == "USD"
    approve_time(
        store, terms, "T1", date(2026, 8, 12), "8", "engineer" if us else "architect", "2" if us else "3"
    )
    line, price = (
        ("B1-U1-PILOT", Money.of("45000.00", "USD")) if us else ("B1-M1-DISCOVERY", demo.eur("80000.00"))
    )
    invoice(store, terms, f"INV-{terms.contract_id}-1", date(2026, 8, 27), line, price)
    if n % 2 == 0:  # the first milestone accepted, and its invoice paid
        accept_milestone(store, terms, "U1-PILOT" if us else "M1-DISCOVERY", date(2026, 8, 21))
        pay(
            store, terms, f"PAY-{terms.contract_id}-1", date(2026, 9, 25), price, f"INV-{terms.contract_id}-1"
        )
    if not us and n % 4 == 1:
        amended = _renamed(demo.eu_terms(amended=True), n, customer_name)
        amend(store, amended, date(2026, 9, 14), datetime(2026, 9, 14, 10, 0, tzinfo=UTC))
    return terms.contract_id


def portfolio(engagements: int) -> tuple[InMemoryVersionStore, list[str]]:
    store = InMemoryVersionStore()
    return store, [add_engagement(store, n) for n in range(engagements)]


def _build(store: InMemoryVersionStore, ids: list[str]) -> tuple[FinanceReport, str, float]:
    started = time.perf_counter()
    report = build_report(store, ids, Cutoff.parse(AS_OF, datetime.now(UTC)), generated_at=datetime.now(UTC))
    gathered = time.perf_counter() - started
    return report, render(report), gathered


def measure(engagements: int, out: Path | None) -> dict[str, Any]:
    """Wall time without tracing first, then the peak of Python allocations in a second, traced build
    (tracemalloc slows allocation-heavy code, so the two are not taken from one run)."""
    started = time.perf_counter()
    store, ids = portfolio(engagements)
    generated = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    report, page, gathered = _build(store, ids)
    total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
    tracemalloc.start()
    _build(store, ids)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    return {
        "engagements": engagements,
        "portfolio_generation_s": round(generated, 2),
        "gather_s": round(gathered, 2),
        "render_s": round(total - gathered, 2),
        "total_s": round(total, 2),
        "total_cpu_s": round(total_cpu, 2),  # the machine is shared: CPU time says what the build costs
        "peak_traced_mib_build_and_render": round(peak / 2**20, 1),
        "process_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "html_kib": round(len(page.encode()) / 1024, 1),
        "currencies": [s.currency for s in report.sections],
        "contracts_measured": sum(s.contracts for s in report.sections),
        "waterfall_lines": sum(len(s.waterfall_lines) for s in report.sections),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engagements", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "report.html")
    args = parser.parse_args()
    print(json.dumps(measure(args.engagements, args.out), indent=2))


if __name__ == "__main__":
    main()
