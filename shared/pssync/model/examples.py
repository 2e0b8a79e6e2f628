"""Example business facts, built from the models: the source of every sample payload in events/."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from pssync.model.contract import (
    BillingMilestone,
    ContractTerms,
    FixedFee,
    InputHours,
    Instalment,
    MilestoneBilling,
    OutputMilestones,
    PerformanceObligation,
    PointInTime,
    Ratable,
    RateCardLine,
    RecurringFee,
    TimeAndMaterials,
    TimeAndMaterialsBilling,
)
from pssync.model.events import (
    ClosedWonSignalled,
    ContractAmended,
    ContractAmendedData,
    ContractBooked,
    ContractBookedData,
    EngagementActivated,
    EngagementActivatedData,
    SourceSystem,
    TimeApproved,
    TimeApprovedData,
    canonical_event_id,
)
from pssync.model.parties import Customer, LegalEntity
from pssync.model.project import ProjectPlan, WbsElement
from pssync.money import Money

EXAMPLE_SOURCE = "crm"
EXAMPLE_DELIVERY_ID = "msg_2Qx7opp0061Q00000AbCdEF_20261120T101500Z"


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def transformation_programme() -> ContractTerms:
    """A consulting engagement: milestone-billed implementation, training, a managed-service tail."""
    return ContractTerms(
        contract_id="C-2026-0412",
        title="Contoso retail platform transformation (SOW 3)",
        customer=Customer(
            customer_id="CUST-0042",
            name="Contoso Retail GmbH",
            country="DE",
            external_ids={"salesforce": "0015g00000XyZ12AAB", "netsuite": "4711"},
        ),
        legal_entity=LegalEntity(
            code="NL01",
            name="Northwind Consulting B.V.",
            country="NL",
            functional_currency="EUR",
            tax_registration="NL123456789B01",
        ),
        currency="EUR",
        transaction_price=eur("396000.00"),
        signed_on=date(2026, 11, 20),
        start_date=date(2027, 1, 4),
        end_date=date(2027, 12, 31),
        obligations=[
            PerformanceObligation(
                obligation_id="IMPL",
                description="Platform implementation: discovery, design, go-live",
                standalone_selling_price=eur("300000.00"),
                recognition=OutputMilestones(milestone_ids=["M1-DISCOVERY", "M2-DESIGN", "M3-GOLIVE"]),
            ),
            PerformanceObligation(
                obligation_id="TRAIN",
                description="Key-user training, delivered on site",
                standalone_selling_price=eur("15000.00"),
                recognition=PointInTime(expected_on=date(2027, 3, 15)),
            ),
            PerformanceObligation(
                obligation_id="MANAGED",
                description="Managed service: platform operations, monthly",
                standalone_selling_price=eur("120000.00"),
                recognition=Ratable(start=date(2027, 1, 1), end=date(2027, 12, 31)),
            ),
        ],
        billing=[
            MilestoneBilling(
                milestones=[
                    BillingMilestone(
                        milestone_id=m,
                        name=n,
                        amount=eur("92000.00"),
                        obligation_id="IMPL",
                        acceptance_days=10,
                    )
                    for m, n in (
                        ("M1-DISCOVERY", "Discovery signed off"),
                        ("M2-DESIGN", "Design accepted"),
                        ("M3-GOLIVE", "Go-live accepted"),
                    )
                ]
            ),
            FixedFee(
                instalments=[
                    Instalment(due_on=date(2027, 3, 31), amount=eur("12000.00"), obligation_id="TRAIN")
                ]
            ),
            RecurringFee(
                kind="managed_service",
                monthly_fee=eur("9000.00"),
                start=date(2027, 1, 1),
                end=date(2027, 12, 31),
                obligation_id="MANAGED",
            ),
        ],
        project=ProjectPlan(
            project_id="P-CONTOSO-0412",
            name="Contoso platform transformation",
            template="fixed-fee-milestones",
            wbs=[
                WbsElement(code="1", name="Implementation", obligation_id="IMPL", budget_hours=1800),
                WbsElement(
                    code="1.1", name="Discovery", parent_code="1", obligation_id="IMPL", budget_hours=300
                ),
                WbsElement(
                    code="1.2", name="Design", parent_code="1", obligation_id="IMPL", budget_hours=600
                ),
                WbsElement(
                    code="1.3",
                    name="Build and go-live",
                    parent_code="1",
                    obligation_id="IMPL",
                    budget_hours=900,
                ),
                WbsElement(code="2", name="Training", obligation_id="TRAIN", budget_hours=80),
                WbsElement(code="3", name="Managed service", obligation_id="MANAGED", budget_hours=960),
            ],
        ),
        crm_opportunity_id="0065g00000AbCdEF",
        msa_reference="MSA-2024-017",
        sow_reference="SOW-3",
    )


CLOSED_WON_AT = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)


def contract_booked_webhook() -> dict[str, object]:
    """The Standard Webhooks body a Salesforce Apex trigger sends when the opportunity closes won."""
    return {
        "type": "contract.booked",
        "timestamp": CLOSED_WON_AT.isoformat(),
        "data": {
            "closed_won_at": CLOSED_WON_AT.isoformat(),
            "source_version": "2026-11-20T10:14:58.000Z",
            "contract": transformation_programme().model_dump(mode="json"),
        },
    }


def contract_booked() -> ContractBooked:
    event_id = canonical_event_id(EXAMPLE_SOURCE, EXAMPLE_DELIVERY_ID)
    return ContractBooked(
        event_id=event_id,
        source=EXAMPLE_SOURCE,
        source_system=SourceSystem.SALESFORCE,
        source_event_id=EXAMPLE_DELIVERY_ID,
        source_version="2026-11-20T10:14:58.000Z",
        correlation_id=event_id,
        occurred_at=CLOSED_WON_AT,
        received_at=datetime(2026, 11, 20, 10, 15, 1, tzinfo=UTC),
        data=ContractBookedData(closed_won_at=CLOSED_WON_AT, contract=transformation_programme()),
    )


def closed_won_signalled() -> ClosedWonSignalled:
    """What a HubSpot closed-won deal event becomes at the webhook, before the deal is read."""
    source_event_id = "62515-2870341-1480912001-1795169695800"
    occurred_at = datetime(2026, 11, 20, 10, 14, 55, 800000, tzinfo=UTC)
    return ClosedWonSignalled.of(
        source="hubspot",
        source_system=SourceSystem.HUBSPOT,
        source_event_id=source_event_id,
        source_version="1795169695800",
        closed_won_at=occurred_at,
        received_at=datetime(2026, 11, 20, 10, 14, 56, tzinfo=UTC),
        record_type="hubspot-deal",
        record_id="18472934001",
    )


def engagement_activated() -> EngagementActivated:
    booked = contract_booked()
    source_event_id = f"{booked.event_id}:activated"
    return EngagementActivated(
        event_id=canonical_event_id("provision-engagement", source_event_id),
        source="provision-engagement",
        source_system=SourceSystem.PSSYNC,
        source_event_id=source_event_id,
        source_version="1",
        correlation_id=booked.correlation_id,
        causation_id=booked.event_id,
        occurred_at=datetime(2026, 11, 20, 10, 15, 4, tzinfo=UTC),
        received_at=datetime(2026, 11, 20, 10, 15, 4, tzinfo=UTC),
        data=EngagementActivatedData(
            contract_id="C-2026-0412",
            contract_version=1,
            project_id="P-CONTOSO-0412",
            psa_command_id="psa:project:P-CONTOSO-0412:contract-v1",
            erp_command_id="erp:billing-schedule:C-2026-0412:v1",
            revenue_schedule_version=1,
            transaction_price=eur("396000.00"),
            activation_seconds=4.0,
        ),
    )


AMENDED_AT = datetime(2027, 6, 10, 14, 30, tzinfo=UTC)
EXAMPLE_AMENDMENT_DELIVERY_ID = "msg_2Qx7opp0061Q00000AbCdEF_20270610T143000Z"


def change_order_terms() -> ContractTerms:
    """Change order 1: advisory retainer for the second half of 2027, priced at its standalone price."""
    terms = transformation_programme()
    advisory = PerformanceObligation(
        obligation_id="ADVISORY",
        description="Architecture advisory retainer, July-December 2027",
        standalone_selling_price=eur("30000.00"),
        recognition=Ratable(start=date(2027, 7, 1), end=date(2027, 12, 31)),
    )
    retainer = RecurringFee(
        kind="retainer",
        monthly_fee=eur("5000.00"),
        start=date(2027, 7, 1),
        end=date(2027, 12, 31),
        obligation_id="ADVISORY",
    )
    project = terms.project.model_copy(
        update={
            "wbs": [
                *terms.project.wbs,
                WbsElement(code="4", name="Advisory", obligation_id="ADVISORY", budget_hours=240),
            ]
        }
    )
    return terms.model_copy(
        update={
            "transaction_price": eur("426000.00"),
            "obligations": [*terms.obligations, advisory],
            "billing": [*terms.billing, retainer],
            "project": project,
            "sow_reference": "SOW-3 CO-1",
        }
    )


def contract_amended_webhook() -> dict[str, object]:
    return {
        "type": "contract.amended",
        "timestamp": AMENDED_AT.isoformat(),
        "data": {
            "amended_at": AMENDED_AT.isoformat(),
            "effective_date": "2027-07-01",
            "reason": "Change order 1: advisory retainer",
            "source_version": "2027-06-10T14:29:41.000Z",
            "contract": change_order_terms().model_dump(mode="json"),
        },
    }


def contract_amended() -> ContractAmended:
    event_id = canonical_event_id(EXAMPLE_SOURCE, EXAMPLE_AMENDMENT_DELIVERY_ID)
    return ContractAmended(
        event_id=event_id,
        source=EXAMPLE_SOURCE,
        source_system=SourceSystem.SALESFORCE,
        source_event_id=EXAMPLE_AMENDMENT_DELIVERY_ID,
        source_version="2027-06-10T14:29:41.000Z",
        correlation_id=event_id,
        occurred_at=AMENDED_AT,
        received_at=datetime(2027, 6, 10, 14, 30, 2, tzinfo=UTC),
        data=ContractAmendedData(
            amended_at=AMENDED_AT,
            effective_date=date(2027, 7, 1),
            reason="Change order 1: advisory retainer",
            contract=change_order_terms(),
        ),
    )


def delivery_programme() -> ContractTerms:
    """A two-phase SOW: a fixed-fee build measured by hours (input method) and a time-and-materials phase
    billed from approved time at the rate card, capped by a not-to-exceed."""
    return ContractTerms(
        contract_id="C-2027-0101",
        title="Fabrikam data platform (SOW 1): build, then T&M hypercare",
        customer=Customer(customer_id="CUST-0077", name="Fabrikam Logistics AG", country="CH"),
        legal_entity=LegalEntity(
            code="NL01", name="Northwind Consulting B.V.", country="NL", functional_currency="EUR"
        ),
        currency="EUR",
        transaction_price=eur("60000.00"),
        signed_on=date(2026, 12, 15),
        start_date=date(2027, 1, 4),
        end_date=date(2027, 6, 30),
        obligations=[
            PerformanceObligation(
                obligation_id="BUILD",
                description="Data platform build, measured by hours against the estimate",
                standalone_selling_price=eur("60000.00"),
                recognition=InputHours(estimated_hours=Decimal("400")),
            ),
            PerformanceObligation(
                obligation_id="HYPERCARE",
                description="Hypercare after go-live, time and materials",
                standalone_selling_price=eur("10000.00"),
                recognition=TimeAndMaterials(),
            ),
        ],
        billing=[
            FixedFee(
                instalments=[
                    Instalment(due_on=date(2027, 2, 28), amount=eur("30000.00"), obligation_id="BUILD"),
                    Instalment(due_on=date(2027, 4, 30), amount=eur("30000.00"), obligation_id="BUILD"),
                ]
            ),
            TimeAndMaterialsBilling(
                rate_card=[
                    RateCardLine(role="consultant", hourly_rate=eur("150.00")),
                    RateCardLine(role="architect", hourly_rate=eur("210.00")),
                ],
                not_to_exceed=eur("10000.00"),
                obligation_id="HYPERCARE",
            ),
        ],
        project=ProjectPlan(
            project_id="P-FABRIKAM-0101",
            name="Fabrikam data platform",
            wbs=[
                WbsElement(code="1", name="Build", obligation_id="BUILD", budget_hours=400),
                WbsElement(code="2", name="Hypercare", obligation_id="HYPERCARE"),
                WbsElement(code="2.1", name="Hypercare: incidents", parent_code="2"),
                WbsElement(code="9", name="Internal", billable=False),
            ],
        ),
        sow_reference="SOW-1",
    )


def time_approved(
    delivery_id: str = "msg_time_TE-1001_v1",
    *,
    source: str = "psa",
    **changes: object,
) -> TimeApproved:
    """A PSA approval of 8 hours of an architect's hypercare time on the delivery programme."""
    fields: dict[str, object] = {
        "time_entry_id": "TE-1001",
        "project_id": "P-FABRIKAM-0101",
        "person_id": "EMP-17",
        "work_date": date(2027, 5, 3),
        "hours": Decimal("8"),
        "billable": True,
        "wbs_code": "2.1",
        "role": "architect",
        **{k: v for k, v in changes.items() if k != "source_version"},
    }
    version = changes.get("source_version", "2027-05-04T09:00:00.000Z")
    event_id = canonical_event_id(source, delivery_id)
    approved_at = datetime(2027, 5, 4, 9, 0, tzinfo=UTC)
    return TimeApproved(
        event_id=event_id,
        source=source,
        source_system=SourceSystem.CERTINIA,
        source_event_id=delivery_id,
        source_version=None if version is None else str(version),
        correlation_id=event_id,
        occurred_at=approved_at,
        received_at=approved_at,
        data=TimeApprovedData.model_validate(fields),
    )
