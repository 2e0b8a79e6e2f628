"""The report line models of a run (pydantic, frozen), built on demand from the engine's integer arrays."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from pssync.money import ExactDecimal

PeriodStatus = Literal["closed", "open", "forecast"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodInfo(_Out):
    key: str
    start: date
    end: date
    status: PeriodStatus
    closed_on: date | None = None


class ScheduleLine(_Out):
    contract_id: str
    legal_entity: str
    obligation_id: str
    period: str
    status: PeriodStatus
    currency: str
    amount: ExactDecimal  # revenue booked in the period: own + adjustment
    own_amount: ExactDecimal  # revenue earned in the period with the knowledge the period was reported with
    adjustment: ExactDecimal  # correction of earlier (closed) periods booked here
    cumulative: ExactDecimal
    functional_currency: str
    functional_amount: ExactDecimal
    method: str
    treatment: str
    inputs: str
    allocated: ExactDecimal
    contract_version: int
    causing_event_id: str


class JournalLine(_Out):
    account: Literal["revenue", "receivable", "contract_asset", "contract_liability", "cash", "fx_rounding"]
    debit: ExactDecimal
    credit: ExactDecimal


class JournalEntry(_Out):
    contract_id: str
    accounting_contract: AccountingContractName = None
    legal_entity: str
    period: str
    currency: str
    lines: list[JournalLine]
    functional_currency: str
    functional_lines: list[JournalLine] | None  # None when the functional currency is the transaction one
    explanation: str
    causing_event_ids: list[str]


class WaterfallRow(_Out):
    contract_id: str
    obligation_id: str
    currency: str
    amounts: dict[str, ExactDecimal]
    total: ExactDecimal


class RpoLine(_Out):
    contract_id: str
    obligation_id: str
    currency: str
    remaining: ExactDecimal
    within_12_months: ExactDecimal
    months_13_to_24: ExactDecimal
    after_24_months: ExactDecimal
    timing_not_scheduled: ExactDecimal
    exempt_right_to_invoice: bool


# The accounting contract of a balance or journal (the contract itself or a separate contract created by a
# modification, `<contract_id>/m<version>`); None, and left out of the output, when the contract is one.
AccountingContractName = Annotated[str | None, Field(exclude_if=lambda name: name is None)]


class RollforwardLine(_Out):
    contract_id: str
    accounting_contract: AccountingContractName = None
    period: str
    currency: str
    revenue: ExactDecimal
    billed: ExactDecimal
    paid: ExactDecimal
    opening_receivable: ExactDecimal
    closing_receivable: ExactDecimal
    opening_contract_asset: ExactDecimal
    closing_contract_asset: ExactDecimal
    opening_contract_liability: ExactDecimal
    closing_contract_liability: ExactDecimal


class AllocationLine(_Out):
    contract_id: str
    contract_version: int
    obligation_id: str
    currency: str
    ssp: ExactDecimal | None
    allocated: ExactDecimal
    method: str
    reason: str


class ModificationLine(_Out):
    contract_id: str
    contract_version: int
    effective_date: date
    treatment: str
    overridden: bool
    rationale: str
    prospective_obligations: list[str]
    catch_up_obligations: list[str]
    added_obligations: list[str]
    catch_up_amounts: dict[str, ExactDecimal]
    causing_event_id: str
    # credit for goods or services already transferred, taken from each obligation's revenue on the date
    concession_amounts: dict[str, ExactDecimal] = {}


class EntityPeriodTotal(_Out):
    legal_entity: str
    period: str
    functional_currency: str
    revenue: ExactDecimal


class RevenueReport(_Out):
    as_of: date
    periods: list[PeriodInfo]
    allocations: list[AllocationLine]
    modifications: list[ModificationLine]
    schedule: list[ScheduleLine]
    journals: list[JournalEntry]
    waterfall: list[WaterfallRow]
    rpo: list[RpoLine]
    rollforward: list[RollforwardLine]
    entity_totals: list[EntityPeriodTotal]
