"""The seed's engagement as signed webhooks: a multi-country transformation programme over three months.

A consulting firm (two legal entities: Northwind Consulting B.V., NL01, EUR; Northwind Consulting Inc.,
US01, USD) sells Contoso a phased SOW under one MSA: milestone-billed implementation, a time-and-materials
advisory phase with a rate card and a not-to-exceed, rebillable travel at a markup, and a managed-services
tail. The US entity delivers the North American rollout in USD. August to October 2026:
- both contracts close won in the CRM and are booked (a retry of the same delivery changes nothing);
- the PSA approves time and expenses every month; milestones complete, one accepted explicitly by the
  customer, one passively (no objection within the contract's acceptance days);
- in September a change order adds a data-migration milestone and raises the price; a stale copy of the
  original terms arrives afterwards, out of order, and must change nothing;
- the ERP posts invoices and records payments;
- finance closes August, September and October for both legal entities.

Business dates are in the past (the demo replays a quarter); webhook timestamps, the closed-won instants
and the change order's signature are the time of sending, so activation time, propagation lag and sync lags
measure pssync. Milestone-to-invoice cycle times start at the (replayed) completion date, so they measure
the calendar: months here, by design of the replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from pssync.model.contract import (
    BillingMilestone,
    ContractTerms,
    ExpenseBilling,
    MilestoneBilling,
    OutputMilestones,
    PerformanceObligation,
    Ratable,
    RateCardLine,
    RecurringFee,
    TimeAndMaterials,
    TimeAndMaterialsBilling,
)
from pssync.model.parties import Customer, LegalEntity
from pssync.model.project import ProjectPlan, WbsElement
from pssync.money import Money

CRM, PSA, ERP = "crm", "psa", "erp"
# The sources the demo's runtime serves (cdk.json context shape): data ownership refuses time from a CRM
# and invoices from a PSA, so each system sends from its own source.
DEMO_SOURCES: list[dict[str, str]] = [
    {"name": CRM, "scheme": "standard-webhooks", "system": "salesforce"},
    {"name": PSA, "scheme": "standard-webhooks", "system": "certinia"},
    {"name": ERP, "scheme": "standard-webhooks", "system": "netsuite"},
]
EU_CONTRACT = "C-DEMO-EU-0412"
US_CONTRACT = "C-DEMO-US-0413"
EU_PROJECT = "P-DEMO-EU-0412"
US_PROJECT = "P-DEMO-US-0413"
ENTITIES = ("NL01", "US01")
CLOSE_PERIODS = ("2026-08", "2026-09", "2026-10")


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


CUSTOMER = Customer(customer_id="CUST-CONTOSO", name="Contoso Group", country="NL")


def eu_terms(*, amended: bool = False) -> ContractTerms:
    """The EU SOW; `amended`: change order 1 adds the data-migration milestone (30,000 EUR) to the price."""
    milestones = [
        ("M1-DISCOVERY", "Discovery signed off", "80000.00"),
        ("M2-DESIGN", "Design accepted", "80000.00"),
        ("M3-GOLIVE", "Go-live accepted", "80000.00"),
    ]
    if amended:
        milestones.append(("M4-MIGRATION", "Data migration accepted", "30000.00"))
    impl_ssp = "270000.00" if amended else "240000.00"
    return ContractTerms(
        contract_id=EU_CONTRACT,
        title="Contoso transformation programme (SOW 1, EU): implementation, advisory, managed service",
        customer=CUSTOMER,
        legal_entity=LegalEntity(
            code="NL01", name="Northwind Consulting B.V.", country="NL", functional_currency="EUR"
        ),
        currency="EUR",
        transaction_price=eur("378000.00" if amended else "348000.00"),
        signed_on=date(2026, 7, 24),
        start_date=date(2026, 8, 3),
        end_date=date(2027, 9, 30),
        obligations=[
            PerformanceObligation(
                obligation_id="IMPL",
                description="Platform implementation: discovery, design, go-live"
                + (", data migration" if amended else ""),
                standalone_selling_price=eur(impl_ssp),
                recognition=OutputMilestones(milestone_ids=[m for m, _, _ in milestones]),
            ),
            PerformanceObligation(
                obligation_id="MANAGED",
                description="Managed service: platform operations, monthly",
                standalone_selling_price=eur("108000.00"),
                recognition=Ratable(start=date(2026, 10, 1), end=date(2027, 9, 30)),
            ),
            PerformanceObligation(
                obligation_id="ADVISORY",
                description="Architecture advisory, time and materials at the rate card",
                standalone_selling_price=eur("40000.00"),
                recognition=TimeAndMaterials(),
            ),
        ],
        billing=[
            MilestoneBilling(
                milestones=[
                    BillingMilestone(
                        milestone_id=m, name=n, amount=eur(a), obligation_id="IMPL", acceptance_days=10
                    )
                    for m, n, a in milestones
                ]
            ),
            RecurringFee(
                kind="managed_service",
                monthly_fee=eur("9000.00"),
                start=date(2026, 10, 1),
                end=date(2027, 9, 30),
                obligation_id="MANAGED",
            ),
            TimeAndMaterialsBilling(
                rate_card=[
                    RateCardLine(role="consultant", hourly_rate=eur("150.00")),
                    RateCardLine(role="architect", hourly_rate=eur("210.00")),
                ],
                not_to_exceed=eur("40000.00"),
                obligation_id="ADVISORY",
            ),
            ExpenseBilling(
                markup_percent=Decimal("10"),
                rebillable_categories=["travel", "lodging"],
                obligation_id="ADVISORY",
            ),
        ],
        project=ProjectPlan(
            project_id=EU_PROJECT,
            name="Contoso transformation (EU)",
            template="fixed-fee-milestones",
            wbs=[
                WbsElement(code="1", name="Implementation", obligation_id="IMPL", budget_hours=1800),
                WbsElement(code="2", name="Managed service", obligation_id="MANAGED"),
                WbsElement(code="3", name="Advisory", obligation_id="ADVISORY", budget_hours=200),
                WbsElement(code="9", name="Internal", billable=False),
            ],
        ),
        crm_opportunity_id="0061Q00000DemoEU",
        msa_reference="MSA-CONTOSO-2026",
        sow_reference="SOW-1-EU" + (" CO-1" if amended else ""),
    )


def us_terms() -> ContractTerms:
    return ContractTerms(
        contract_id=US_CONTRACT,
        title="Contoso transformation programme (SOW 2, US): North American rollout",
        customer=CUSTOMER.model_copy(update={"country": "US"}),
        legal_entity=LegalEntity(
            code="US01", name="Northwind Consulting Inc.", country="US", functional_currency="USD"
        ),
        currency="USD",
        transaction_price=usd("90000.00"),
        signed_on=date(2026, 7, 24),
        start_date=date(2026, 8, 3),
        end_date=date(2026, 12, 18),
        obligations=[
            PerformanceObligation(
                obligation_id="ROLLOUT",
                description="North American rollout: pilot site, then every site",
                standalone_selling_price=usd("90000.00"),
                recognition=OutputMilestones(milestone_ids=["U1-PILOT", "U2-ROLLOUT"]),
            ),
            PerformanceObligation(
                obligation_id="SUPPORT",
                description="Site support, time and materials",
                standalone_selling_price=usd("15000.00"),
                recognition=TimeAndMaterials(),
            ),
        ],
        billing=[
            MilestoneBilling(
                milestones=[
                    BillingMilestone(
                        milestone_id="U1-PILOT",
                        name="Pilot site live",
                        amount=usd("45000.00"),
                        obligation_id="ROLLOUT",
                        acceptance_days=5,
                    ),
                    BillingMilestone(
                        milestone_id="U2-ROLLOUT",
                        name="All sites live",
                        amount=usd("45000.00"),
                        obligation_id="ROLLOUT",
                        acceptance_days=5,
                    ),
                ]
            ),
            TimeAndMaterialsBilling(
                rate_card=[RateCardLine(role="engineer", hourly_rate=usd("160.00"))],
                obligation_id="SUPPORT",
            ),
        ],
        project=ProjectPlan(
            project_id=US_PROJECT,
            name="Contoso rollout (US)",
            wbs=[
                WbsElement(code="1", name="Rollout", obligation_id="ROLLOUT", budget_hours=600),
                WbsElement(code="2", name="Site support", obligation_id="SUPPORT"),
            ],
        ),
        crm_opportunity_id="0061Q00000DemoUS",
        msa_reference="MSA-CONTOSO-2026",
        sow_reference="SOW-2-US",
    )


@dataclass(frozen=True)
class Delivery:
    """One signed webhook: who sends it, its Standard Webhooks type and data, and its delivery id."""

    source: str
    type: str
    data: dict[str, Any]
    delivery_id: str
    label: str
    # Data fields the sender sets to the sending time: the deal closes and the change order is signed as
    # the demo plays, so activation time and propagation lag measure pssync, not the replayed calendar.
    stamped_now: tuple[str, ...] = ()


@dataclass
class Month:
    """What happens in one month, in order, before that month is closed."""

    period: str
    deliveries: list[Delivery] = field(default_factory=list)

    def add(self, source: str, kind: str, delivery_id: str, label: str, **data: Any) -> None:
        self.deliveries.append(Delivery(source, kind, _jsonable(data), delivery_id, label))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Money):
        return value.model_dump(mode="json")
    if isinstance(value, date | Decimal):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


def _booking(terms: ContractTerms, closed_won_at: str, version: str) -> dict[str, Any]:
    return {
        "closed_won_at": closed_won_at,
        "source_version": version,
        "contract": terms.model_dump(mode="json"),
    }


def _time(month: Month, n: int, project: str, day: date, hours: str, role: str, wbs: str) -> None:
    entry = f"TE-{project[-4:]}-{n:03d}"
    month.add(
        PSA,
        "time.approved",
        f"demo_time_{entry}_v1",
        f"time {entry}: {hours} h {role} on {day}",
        time_entry_id=entry,
        project_id=project,
        person_id=f"EMP-{role.upper()[:4]}",
        work_date=day,
        hours=hours,
        billable=True,
        wbs_code=wbs,
        role=role,
        source_version=f"{day.isoformat()}T18:00:00.000Z",
    )


def _expense(month: Month, n: int, day: date, amount: str, category: str) -> None:
    expense = f"EX-0412-{n:03d}"
    month.add(
        PSA,
        "expense.approved",
        f"demo_expense_{expense}_v1",
        f"expense {expense}: {amount} EUR {category}",
        expense_id=expense,
        project_id=EU_PROJECT,
        person_id="EMP-ARCH",
        incurred_on=day,
        amount=eur(amount),
        billable=True,
        category=category,
        wbs_code="3",
        source_version=f"{day.isoformat()}T19:00:00.000Z",
    )


def _milestone(
    month: Month,
    contract: str,
    project: str,
    milestone: str,
    completed: date,
    *,
    acceptance: str,
    accepted: date | None = None,
) -> None:
    month.add(
        PSA,
        "milestone.completed",
        f"demo_milestone_{milestone}_{acceptance}",
        f"milestone {milestone} {acceptance}",
        milestone_id=milestone,
        project_id=project,
        contract_id=contract,
        completed_on=completed,
        accepted_on=accepted,
        acceptance=acceptance,
    )


def _invoice(
    month: Month, invoice: str, contract: str, on: date, lines: list[tuple[str, Money, str, str]]
) -> None:
    """`lines`: (description, amount, obligation, the billing schedule's line id it bills)."""
    total = lines[0][1]
    for _, amount, _, _ in lines[1:]:
        total = total + amount
    month.add(
        ERP,
        "invoice.posted",
        f"demo_invoice_{invoice}",
        f"invoice {invoice}: {total}",
        invoice_id=invoice,
        invoice_number=invoice,
        contract_id=contract,
        customer_id=CUSTOMER.customer_id,
        invoice_date=on,
        due_date=date.fromordinal(on.toordinal() + 30),
        lines=[
            {"description": d, "amount": a.model_dump(mode="json"), "obligation_id": o, "billing_line_id": b}
            for d, a, o, b in lines
        ],
        total=total,
    )


def _payment(month: Month, payment: str, on: date, amount: Money, invoices: list[str]) -> None:
    month.add(
        ERP,
        "payment.received",
        f"demo_payment_{payment}",
        f"payment {payment}: {amount}",
        payment_id=payment,
        customer_id=CUSTOMER.customer_id,
        received_on=on,
        amount=amount,
        invoice_ids=invoices,
    )


def bookings() -> list[Delivery]:
    return [
        Delivery(
            CRM,
            "contract.booked",
            _booking(eu_terms(), "2026-07-24T15:02:00+00:00", "2026-07-24T15:01:44.000Z"),
            "demo_booking_0061Q00000DemoEU",
            f"closed won: {EU_CONTRACT} (EUR, NL01)",
            stamped_now=("closed_won_at",),
        ),
        Delivery(
            CRM,
            "contract.booked",
            _booking(us_terms(), "2026-07-24T15:05:00+00:00", "2026-07-24T15:04:51.000Z"),
            "demo_booking_0061Q00000DemoUS",
            f"closed won: {US_CONTRACT} (USD, US01)",
            stamped_now=("closed_won_at",),
        ),
    ]


def change_order() -> Delivery:
    return Delivery(
        CRM,
        "contract.amended",
        {
            "amended_at": "2026-09-14T09:30:00+00:00",
            "effective_date": "2026-09-15",
            "reason": "Change order 1: data migration milestone",
            "source_version": "2026-09-14T09:29:12.000Z",
            "contract": eu_terms(amended=True).model_dump(mode="json"),
        },
        "demo_amendment_CO-1",
        "change order 1: + M4 data migration, price 348,000 -> 378,000 EUR",
        stamped_now=("amended_at",),
    )


def stale_copy() -> Delivery:
    """The original terms again, stamped before the change order: an out-of-order older version."""
    return Delivery(
        CRM,
        "contract.amended",
        {
            "amended_at": "2026-09-01T08:00:00+00:00",
            "effective_date": "2026-09-01",
            "reason": "Late copy of the SOW from a sync retry",
            "source_version": "2026-09-01T07:59:00.000Z",
            "contract": eu_terms().model_dump(mode="json"),
        },
        "demo_amendment_stale_copy",
        "stale copy of the original terms (older source version), delivered after the change order",
    )


def months() -> list[Month]:
    august, september, october = Month("2026-08"), Month("2026-09"), Month("2026-10")
    # August: discovery, advisory time and travel, the EU discovery milestone accepted by the customer, the
    # US pilot completed (passively accepted after 5 business days), invoices.
    for n, (day, hours, role) in enumerate(
        [(date(2026, 8, 5), "8", "architect"), (date(2026, 8, 12), "6", "consultant")], start=1
    ):
        _time(august, n, EU_PROJECT, day, hours, role, "3")
    _time(august, 1, US_PROJECT, date(2026, 8, 19), "7.5", "engineer", "2")
    _expense(august, 1, date(2026, 8, 6), "412.50", "travel")
    _expense(august, 2, date(2026, 8, 6), "189.00", "meals")  # not rebillable: a cost only
    _milestone(
        august,
        EU_CONTRACT,
        EU_PROJECT,
        "M1-DISCOVERY",
        date(2026, 8, 21),
        acceptance="explicit",
        accepted=date(2026, 8, 26),
    )
    _milestone(august, US_CONTRACT, US_PROJECT, "U1-PILOT", date(2026, 8, 28), acceptance="pending")
    _invoice(
        august,
        "INV-NL-2026-0811",
        EU_CONTRACT,
        date(2026, 8, 27),
        [("Milestone M1-DISCOVERY: Discovery signed off", eur("80000.00"), "IMPL", "B1-M1-DISCOVERY")],
    )
    # September: the change order, then its stale copy; design completed and passively accepted; payment.
    _time(september, 3, EU_PROJECT, date(2026, 9, 9), "8", "architect", "3")
    _time(september, 2, US_PROJECT, date(2026, 9, 10), "6", "engineer", "2")
    _expense(september, 3, date(2026, 9, 9), "655.00", "lodging")
    _milestone(september, EU_CONTRACT, EU_PROJECT, "M2-DESIGN", date(2026, 9, 18), acceptance="pending")
    _payment(september, "PAY-NL-2026-0907", date(2026, 9, 10), eur("80000.00"), ["INV-NL-2026-0811"])
    _invoice(
        september,
        "INV-US-2026-0902",
        US_CONTRACT,
        date(2026, 9, 7),
        [("Milestone U1-PILOT: Pilot site live", usd("45000.00"), "ROLLOUT", "B1-U1-PILOT")],
    )
    # October: go-live and migration accepted, the US rollout accepted, the first managed-service month.
    _time(october, 4, EU_PROJECT, date(2026, 10, 7), "4", "architect", "3")
    _milestone(
        october,
        EU_CONTRACT,
        EU_PROJECT,
        "M3-GOLIVE",
        date(2026, 10, 9),
        acceptance="explicit",
        accepted=date(2026, 10, 14),
    )
    _milestone(
        october,
        EU_CONTRACT,
        EU_PROJECT,
        "M4-MIGRATION",
        date(2026, 10, 16),
        acceptance="explicit",
        accepted=date(2026, 10, 21),
    )
    _milestone(
        october,
        US_CONTRACT,
        US_PROJECT,
        "U2-ROLLOUT",
        date(2026, 10, 23),
        acceptance="explicit",
        accepted=date(2026, 10, 27),
    )
    _invoice(
        october,
        "INV-NL-2026-1003",
        EU_CONTRACT,
        date(2026, 10, 2),
        [("Milestone M2-DESIGN: Design accepted", eur("80000.00"), "IMPL", "B1-M2-DESIGN")],
    )
    _payment(october, "PAY-US-2026-1005", date(2026, 10, 5), usd("45000.00"), ["INV-US-2026-0902"])
    return [august, september, october]
