"""Contracts, performance obligations and billing terms.

A contract is a sequence of immutable versions: an amendment never edits version N, it creates N+1.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pssync.model.parties import Customer, Identifier, LegalEntity
from pssync.model.project import ProjectPlan
from pssync.money import CurrencyCode, ExactDecimal, Money

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class RatableBasis(StrEnum):
    DAILY = "daily"
    CALENDAR_MONTH = "calendar_month"
    FOUR_FOUR_FIVE = "4-4-5"


class PointInTime(BaseModel):
    model_config = _FROZEN
    kind: Literal["point_in_time"] = "point_in_time"
    expected_on: date | None = Field(None, description="When control is expected to transfer")


class Ratable(BaseModel):
    """Straight-line over the service period: a stand-ready or series obligation."""

    model_config = _FROZEN
    kind: Literal["ratable"] = "ratable"
    start: date
    end: date
    basis: RatableBasis = RatableBasis.CALENDAR_MONTH

    @model_validator(mode="after")
    def _period_order(self) -> Ratable:
        if self.end < self.start:
            raise ValueError("ratable end must not precede start")
        return self


class InputHours(BaseModel):
    model_config = _FROZEN
    kind: Literal["input_hours"] = "input_hours"
    estimated_hours: ExactDecimal = Field(gt=0)


class InputCost(BaseModel):
    """Cost-to-cost against an estimate at completion (costs that do not depict progress excluded)."""

    model_config = _FROZEN
    kind: Literal["input_cost"] = "input_cost"
    estimated_cost: Money


class OutputMilestones(BaseModel):
    model_config = _FROZEN
    kind: Literal["output_milestones"] = "output_milestones"
    milestone_ids: list[Identifier] = Field(min_length=1)


class TimeAndMaterials(BaseModel):
    """Right-to-invoice practical expedient: revenue equals what may be invoiced for work done."""

    model_config = _FROZEN
    kind: Literal["time_and_materials"] = "time_and_materials"


RecognitionPattern = Annotated[
    PointInTime | Ratable | InputHours | InputCost | OutputMilestones | TimeAndMaterials,
    Field(discriminator="kind"),
]


class PerformanceObligation(BaseModel):
    model_config = _FROZEN

    obligation_id: Identifier = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=512)
    standalone_selling_price: Money
    ssp_range: tuple[Money, Money] | None = Field(
        None, description="Observed SSP range, when the SSP is highly variable (guards the residual approach)"
    )
    recognition: RecognitionPattern


# --- billing terms -------------------------------------------------------------------------------


class Instalment(BaseModel):
    model_config = _FROZEN
    due_on: date
    amount: Money
    obligation_id: Identifier | None = None


class FixedFee(BaseModel):
    model_config = _FROZEN
    kind: Literal["fixed_fee"] = "fixed_fee"
    instalments: list[Instalment] = Field(min_length=1)


class BillingMilestone(BaseModel):
    model_config = _FROZEN
    milestone_id: Identifier
    name: str
    amount: Money
    obligation_id: Identifier | None = None
    acceptance_days: int = Field(
        0, ge=0, description="Passive acceptance after N business days when the customer does not object"
    )


class MilestoneBilling(BaseModel):
    model_config = _FROZEN
    kind: Literal["milestones"] = "milestones"
    milestones: list[BillingMilestone] = Field(min_length=1)


class RateCardLine(BaseModel):
    model_config = _FROZEN
    role: str
    hourly_rate: Money


class TimeAndMaterialsBilling(BaseModel):
    model_config = _FROZEN
    kind: Literal["time_and_materials"] = "time_and_materials"
    rate_card: list[RateCardLine] = Field(min_length=1)
    not_to_exceed: Money | None = None
    obligation_id: Identifier | None = None


class ExpenseBilling(BaseModel):
    """The contract's expense policy: approved billable expenses are rebilled at cost plus a markup.

    Without this term no expense is rebillable: expenses are then costs only (cost-to-cost progress where an
    obligation measures it)."""

    model_config = _FROZEN
    kind: Literal["expenses"] = "expenses"
    markup_percent: ExactDecimal = Field(Decimal(0), ge=0, le=100)
    not_to_exceed: Money | None = Field(None, description="Cap on rebilled expenses, markup included")
    rebillable_categories: list[str] | None = Field(
        None, description="Only these expense categories are rebilled (case-insensitive); None: all"
    )
    obligation_id: Identifier | None = None


class RecurringFee(BaseModel):
    """A fixed fee per calendar month: retainers and managed services."""

    model_config = _FROZEN
    kind: Literal["retainer", "managed_service"]
    monthly_fee: Money
    start: date
    end: date
    obligation_id: Identifier | None = None


BillingTerm = Annotated[
    FixedFee | MilestoneBilling | TimeAndMaterialsBilling | RecurringFee | ExpenseBilling,
    Field(discriminator="kind"),
]


# --- the contract version ------------------------------------------------------------------------


class ContractTerms(BaseModel):
    """The commercial facts of one contract version, as the CRM (or an amendment) states them."""

    model_config = _FROZEN

    contract_id: Identifier = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=256)
    customer: Customer
    legal_entity: LegalEntity
    currency: CurrencyCode
    transaction_price: Money = Field(description="Fixed consideration of the whole contract")
    signed_on: date
    start_date: date
    end_date: date
    obligations: list[PerformanceObligation] = Field(min_length=1)
    billing: list[BillingTerm] = Field(min_length=1)
    project: ProjectPlan
    crm_opportunity_id: str | None = None
    msa_reference: str | None = None
    sow_reference: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ContractTerms:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not precede start_date")
        ids = [o.obligation_id for o in self.obligations]
        if len(set(ids)) != len(ids):
            raise ValueError("obligation ids must be unique")
        amounts = [self.transaction_price, *(o.standalone_selling_price for o in self.obligations)]
        if any(m.currency != self.currency for m in amounts):
            raise ValueError(f"all contract amounts must be in the contract currency {self.currency}")
        if self.transaction_price.amount < 0:
            raise ValueError("transaction_price must not be negative")
        return self

    def obligation_ids(self) -> set[str]:
        return {o.obligation_id for o in self.obligations}


class ContractVersion(BaseModel):
    """One immutable version of a contract, with the audit facts of what caused it."""

    model_config = _FROZEN

    version: int = Field(ge=1)
    terms: ContractTerms
    caused_by_event_id: str
    correlation_id: str
    recorded_at: str = Field(description="ISO 8601 instant the version was recorded")
    source_version: str | None = None

    @property
    def contract_id(self) -> str:
        return self.terms.contract_id


def scheduled_billing_total(terms: ContractTerms) -> Decimal | None:
    """Total of fixed billing (instalments, milestones, recurring fees); None when T&M makes it open."""
    total = Decimal(0)
    for term in terms.billing:
        match term:
            case FixedFee(instalments=instalments):
                total += sum((i.amount.amount for i in instalments), Decimal(0))
            case MilestoneBilling(milestones=milestones):
                total += sum((m.amount.amount for m in milestones), Decimal(0))
            case RecurringFee(monthly_fee=fee, start=start, end=end):
                months = (end.year - start.year) * 12 + end.month - start.month + 1
                total += fee.amount * months
            case TimeAndMaterialsBilling():
                return None
            case ExpenseBilling():
                pass  # rebilled expenses are pass-through amounts on top of the fixed billing
    return total
