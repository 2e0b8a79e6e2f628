"""Engine input: contract versions, delivery events and the policies a scenario runs under.

Everything here is explicit on purpose: the lead maps the canonical contract model onto these types, and an
accountant must be able to read a scenario file and know which fact produced which number.

Conventions
- Amounts are exact decimals in the contract's transaction currency (strings in JSON, never floats).
- Dates are calendar dates; an event dated D counts in every period ending on or after D.
- `recorded_on` is when pssync learned a fact (defaults to its own date). It decides what a period saw when
  it was closed: a fact recorded after a close lands in the first open period as an adjustment.
- A contract's version N carries the whole contract as it stands after amendment N (lifetime price and all
  obligations), not a delta; the engine derives the modification from the difference and the stated facts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from pssync.money import CurrencyCode, ExactDecimal, RoundingPolicy

NonNegativeDecimal = Annotated[ExactDecimal, Field(ge=0)]
Probability = Annotated[ExactDecimal, Field(ge=0, le=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Leaf records (patterns, obligations, events) are validated, frozen pydantic dataclasses with __slots__: a
# portfolio holds tens of thousands of them and a slotted record is about a sixth of a BaseModel's memory
# (no per-instance __dict__ or fields-set). Containers (contract versions, scenario) stay BaseModels. The
# decorator is spelled out at each class (not aliased) so type checkers see the generated __init__.


# --------------------------------------------------------------------------------------------- patterns


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class RatablePattern:
    """Straight-line over a service period (a stand-ready service or a series such as a managed service).

    basis `daily`: each day earns the same; `period`: each fiscal period earns the same, partial first and
    last periods in proportion to the days covered.
    """

    kind: Literal["ratable"] = "ratable"
    start: date
    end: date  # inclusive
    basis: Literal["daily", "period"] = "daily"

    @model_validator(mode="after")
    def _ordered(self) -> RatablePattern:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class PointInTimePattern:
    """Recognised in full when control transfers: a `satisfied` event, or `satisfied_on` if known upfront."""

    kind: Literal["point_in_time"] = "point_in_time"
    satisfied_on: date | None = None


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class InputHoursPattern:
    """Over time, progress = hours worked / estimated total hours (re-estimated by `estimate` events)."""

    kind: Literal["input_hours"] = "input_hours"
    estimated_total_hours: Annotated[ExactDecimal, Field(gt=0)]


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class InputCostPattern:
    """Cost-to-cost: progress = costs that depict progress / (estimate at completion - uninstalled materials).

    Costs that do not depict progress are excluded from the measure: waste is excluded outright; uninstalled
    materials (goods the customer controls before they are installed) earn revenue equal to their cost when
    transferred, and the remaining price is recognised by progress on the other costs (IFRS 15 B19,
    Example 19).
    """

    kind: Literal["input_cost"] = "input_cost"
    estimate_at_completion: Annotated[ExactDecimal, Field(gt=0)]
    uninstalled_materials_cost: NonNegativeDecimal = Decimal(0)

    @model_validator(mode="after")
    def _materials_inside_estimate(self) -> InputCostPattern:
        if self.uninstalled_materials_cost >= self.estimate_at_completion:
            raise ValueError("uninstalled_materials_cost must be below estimate_at_completion")
        return self


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Milestone:
    id: str
    weight: Annotated[ExactDecimal, Field(gt=0)]
    description: str = ""


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class MilestonePattern:
    """Output method: progress = weight of milestones reached / total weight."""

    kind: Literal["output_milestones"] = "output_milestones"
    milestones: Annotated[list[Milestone], Field(min_length=1)]

    @field_validator("milestones")
    @classmethod
    def _unique(cls, value: list[Milestone]) -> list[Milestone]:
        ids = [m.id for m in value]
        if len(set(ids)) != len(ids):
            raise ValueError("milestone ids must be unique")
        return value


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class SurveyedProgressPattern:
    """Output method from surveys of performance completed: `progress` events state cumulative percent."""

    kind: Literal["output_progress"] = "output_progress"


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class UnitsPattern:
    """Output method: progress = units delivered / total units (e.g. a batch of distinct products)."""

    kind: Literal["output_units"] = "output_units"
    total_units: Annotated[ExactDecimal, Field(gt=0)]


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class RightToInvoicePattern:
    """Time and materials under the right-to-invoice expedient (B16): revenue = hours x rate as worked.

    Its consideration is variable and belongs entirely to this obligation, so it takes no part in the
    relative-SSP allocation and its remaining obligation may use the RPO disclosure exemption.
    """

    kind: Literal["right_to_invoice"] = "right_to_invoice"
    rate_per_hour: NonNegativeDecimal


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class MaterialRightPattern:
    """An option for additional goods or services at a discount the customer would not get without this
    contract: a material right, an obligation of its own (IFRS 15.B39-B43, ASC 606-10-55-41..45).

    Its `ssp` is the discount the customer would obtain adjusted for the likelihood of exercise (IFRS 15
    IE Example 49: 50 expected purchase x 30 % incremental discount x 80 % likely = 12). Unexercised, its
    price is recognised when the option lapses on `expires_on` (None: it does not lapse, so nothing is
    recognised until it is exercised). Exercised, a version that removes the right and adds the goods
    bought with it states `ModificationFacts.exercised_option`: the price allocated to the right joins the
    price paid for those goods and is recognised as they are transferred, on their own pattern (B40).
    """

    kind: Literal["material_right"] = "material_right"
    expires_on: date | None = None


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class RebillablePattern:
    """Expenses and subcontracted work rebilled to the customer (`rebill` events), gross or net.

    `role` is the principal-versus-agent judgement (IFRS 15.B34-B38, ASC 606-10-55-36..40): `principal`
    when the firm controls the good or service before it is transferred (primarily responsible for it,
    inventory risk, discretion over the price), so revenue is the amount billed (gross) and the supplier's
    cost is a cost of sales; `agent` when it only arranges for another party to provide it, so revenue is
    the amount billed less the supplier's cost (net: the fee or margin). `rationale` records the judgement.
    Like right-to-invoice, the consideration is this obligation's own and takes no part in the allocation.
    """

    kind: Literal["rebillable"] = "rebillable"
    role: Literal["principal", "agent"]
    rationale: Annotated[str, Field(min_length=1)]


RecognitionPattern = Annotated[
    RatablePattern
    | PointInTimePattern
    | InputHoursPattern
    | InputCostPattern
    | MilestonePattern
    | SurveyedProgressPattern
    | UnitsPattern
    | RightToInvoicePattern
    | RebillablePattern
    | MaterialRightPattern,
    Field(discriminator="kind"),
]

# Patterns whose revenue is what the work or the rebilled items earn, outside the relative-SSP allocation.
EARNED_AS_BILLED = (RightToInvoicePattern, RebillablePattern)

# Patterns whose remaining goods/services are, by default, distinct from those already transferred (a series
# of distinct periods or units); the others are one partially satisfied obligation (cumulative catch-up).
DISTINCT_REMAINDER_BY_DEFAULT = frozenset(
    {"ratable", "point_in_time", "output_units", "right_to_invoice", "rebillable", "material_right"}
)


# ---------------------------------------------------------------------------------------- contract version


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class SspRange:
    low: NonNegativeDecimal
    high: NonNegativeDecimal

    @model_validator(mode="after")
    def _ordered(self) -> SspRange:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        return self


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class PerformanceObligation:
    """One distinct promise. `ssp` is its standalone selling price at the version's effective date.

    In a modified version (N > 1) give, for an obligation accounted for prospectively, the SSP of what
    remains to be transferred; for one accounted for by cumulative catch-up, the SSP of the whole obligation.
    A restated SSP of an existing obligation never decides the classification: distinct goods added at their
    SSP are a separate contract whatever the existing obligations' SSPs say (IFRS 15.20 looks only at the
    added goods and their price), and the existing obligations then keep their allocation, so the restated
    SSP is used only when the modification is prospective or a cumulative catch-up.
    `ssp` may be omitted only for the residual obligation, which then needs `ssp_range` (the observed range).
    """

    id: str
    description: str = ""
    ssp: NonNegativeDecimal | None = None
    ssp_range: SspRange | None = None
    pattern: RecognitionPattern


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Outcome:
    amount: ExactDecimal
    probability: Probability


class VariableConsideration(_Frozen):
    """A variable amount (bonus, penalty, usage fee) with its estimation method and constraint.

    `constraint_min_probability`: include only the amount that is reached with at least this probability
    (so that a significant reversal is highly probable not to occur); `constraint_cap` caps the estimate at
    an amount the accountant judged safe. `allocate_to` limits the amount to some obligations when it
    relates specifically to them (IFRS 15.85); otherwise it follows the contract's allocation. With
    `sole_consideration_of_targets` the variable amount is the whole consideration for those obligations and
    the rest of the price goes to the others (IFRS 15.86, Example 35 case A).
    """

    id: str
    method: Literal["expected_value", "most_likely_amount"]
    outcomes: Annotated[list[Outcome], Field(min_length=1)]
    constraint_min_probability: Probability | None = None
    constraint_cap: ExactDecimal | None = None
    allocate_to: list[str] | None = None
    sole_consideration_of_targets: bool = False

    @model_validator(mode="after")
    def _sole_needs_targets(self) -> VariableConsideration:
        if self.sole_consideration_of_targets and not self.allocate_to:
            raise ValueError("sole_consideration_of_targets needs allocate_to")
        return self


class DiscountEvidence(_Frozen):
    """Observable evidence that the whole discount belongs to a subset (IFRS 15.82): the subset is regularly
    sold together for `bundle_price`."""

    obligation_ids: Annotated[list[str], Field(min_length=1)]
    bundle_price: NonNegativeDecimal
    evidence: Annotated[str, Field(min_length=1)]


class AllocationOverride(_Frozen):
    amounts: dict[str, ExactDecimal]
    reason: Annotated[str, Field(min_length=1)]


class ModificationTreatment(StrEnum):
    SEPARATE_CONTRACT = "separate_contract"
    PROSPECTIVE = "prospective"  # termination of the old contract and creation of a new one
    CUMULATIVE_CATCH_UP = "cumulative_catch_up"
    MIXED = "mixed"  # prospective for some obligations, catch-up for others
    OPTION_EXERCISED = "option_exercised"  # stated with ModificationFacts.exercised_option
    TERMINATION = "termination"  # stated with RevenueContract.termination, never as an override


class Concession(_Frozen):
    """A price reduction granted at a modification for goods or services already transferred (a credit for
    defects in delivered units, IFRS 15 IE Example 5 case B): it reduces revenue on the modification date
    and is not part of the price of what remains.

    The version's `fixed_price` is the price after the credit; `amount` is the credit (positive). It is
    taken from the revenue recognised on `obligation_ids` (default: every existing obligation that has
    recognised revenue) in proportion to that revenue, and may not exceed it.
    """

    amount: Annotated[ExactDecimal, Field(gt=0)]
    obligation_ids: list[str] | None = None
    reason: Annotated[str, Field(min_length=1)]


class ExercisedOption(_Frozen):
    """A material right exercised: `right_id` (an obligation with a MaterialRightPattern, removed in this
    version) bought the added obligations `obligation_ids`."""

    right_id: Annotated[str, Field(min_length=1)]
    obligation_ids: Annotated[list[str], Field(min_length=1)]


class ModificationFacts(_Frozen):
    """Facts of an amendment from which the treatment is classified (IFRS 15.20-21, ASC 606-10-25-12/13).

    `added_goods_distinct`: the added goods/services are distinct. `priced_at_ssp`: the price increase
    reflects their SSP (derived when omitted: the increase equals the sum of the added obligations' SSPs,
    whatever SSPs the existing obligations restate; a concession counts as part of the increase, so the
    added goods are judged at the price before the credit). A separate contract is an accounting contract of
    its own, `<contract_id>/m<version>`; a later version that keeps its obligations (same patterns) and its
    variable amounts modifies the other obligations only, and the separate contract keeps its price.
    `remaining_distinct`: per existing obligation, whether what remains is distinct from what was
    transferred (defaults by pattern: series and units yes, a single progress-measured obligation no).
    `override` with `rationale` replaces the classification. `concession`: a credit for goods or services
    already transferred (see Concession).
    """

    added_goods_distinct: bool = True
    priced_at_ssp: bool | None = None
    remaining_distinct: dict[str, bool] = Field(default_factory=dict)
    override: ModificationTreatment | None = None
    rationale: str | None = None
    concession: Concession | None = None
    exercised_option: ExercisedOption | None = None

    @model_validator(mode="after")
    def _override_needs_rationale(self) -> ModificationFacts:
        if self.override is not None and not (self.rationale and self.rationale.strip()):
            raise ValueError("an override of the modification treatment needs a rationale")
        if self.override is ModificationTreatment.TERMINATION:
            raise ValueError("a termination is stated with the version's `termination`, not as an override")
        if self.override is ModificationTreatment.OPTION_EXERCISED:
            raise ValueError("an exercised option is stated with `exercised_option`, not as an override")
        if self.exercised_option is not None and self.override is not None:
            raise ValueError("an exercised option is not classified: state no override with it")
        return self


class NetSettlement(_Frozen):
    """The parties settle a terminated contract's accounting contracts net, as one amount: `basis` states the
    legally enforceable right of set-off and the intent to use it (the termination agreement, say), without
    which a refund owed under one contract is not offset against what the customer owes under another (IAS
    32.42, ASC 210-20-45-1; IFRS 15.105 nets contract balances within one contract only)."""

    basis: Annotated[str, Field(min_length=1)]


class Termination(_Frozen):
    """The contract ends on the version's effective date (a cancellation, or a termination for cause).

    Revenue recognised for what was transferred the day before stays; nothing that remained is recognised;
    a `concession` in the version's modification facts (a credit given on termination) is taken from the
    revenue recognised. The version lists no obligations and no variable consideration, and its
    `fixed_price` states the consideration the parties settled on; no later version may follow. The
    settlement of the balances is reported by RevenueResult.terminations(): every accounting contract (the
    contract and each separate contract a modification created, which all end with it) settles on its own
    revenue, bills and payments (IFRS 15.105), unless `net_settlement` states that they settle as one.
    """

    reason: Annotated[str, Field(min_length=1)]
    net_settlement: NetSettlement | None = None


class RevenueContract(_Frozen):
    """One version of a contract, as the revenue engine needs it."""

    contract_id: str
    version: Annotated[int, Field(ge=1)]
    legal_entity: str
    currency: CurrencyCode
    effective_date: date
    recorded_on: date | None = None
    causing_event_id: str
    fixed_price: ExactDecimal
    variable_consideration: list[VariableConsideration] = Field(default_factory=list)
    obligations: list[PerformanceObligation]  # at least one, unless the version is a termination
    discount_evidence: DiscountEvidence | None = None
    allocation_override: AllocationOverride | None = None
    modification: ModificationFacts | None = None
    termination: Termination | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RevenueContract:
        if self.termination is None and not self.obligations:
            raise ValueError("a contract version needs at least one obligation, unless it is a termination")
        if self.termination is not None and (self.obligations or self.variable_consideration):
            raise ValueError(
                "a termination lists no obligations and no variable consideration: nothing remains to "
                "transfer or to estimate (remove some obligations in an ordinary version instead)"
            )
        ids = [o.id for o in self.obligations]
        if len(set(ids)) != len(ids):
            raise ValueError("obligation ids must be unique within a contract version")
        known = set(ids)
        for vc in self.variable_consideration:
            for target in vc.allocate_to or []:
                if target not in known:
                    raise ValueError(
                        f"variable consideration {vc.id} allocated to unknown obligation {target}"
                    )
        if self.discount_evidence:
            for target in self.discount_evidence.obligation_ids:
                if target not in known:
                    raise ValueError(f"discount evidence names unknown obligation {target}")
        if self.allocation_override:
            for target in self.allocation_override.amounts:
                if target not in known:
                    raise ValueError(f"allocation override names unknown obligation {target}")
        return self

    @property
    def known_from(self) -> date:
        return self.recorded_on or self.effective_date


# ------------------------------------------------------------------------------------------------- events


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class _Event:
    id: str
    on: date
    recorded_on: date | None = None

    @property
    def known_from(self) -> date:
        return self.recorded_on or self.on


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class _ObligationEvent(_Event):
    contract_id: str
    obligation_id: str


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class TimeEntry(_ObligationEvent):
    type: Literal["time"] = "time"
    hours: Annotated[ExactDecimal, Field(ge=0)]


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class CostEntry(_ObligationEvent):
    """A cost incurred. `category` says whether it depicts progress (see InputCostPattern)."""

    type: Literal["cost"] = "cost"
    amount: ExactDecimal
    category: Literal["progress", "excluded", "uninstalled_materials"] = "progress"


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class EstimateRevision(_ObligationEvent):
    """A revised estimate for an input-method obligation, effective from `on`."""

    type: Literal["estimate"] = "estimate"
    estimated_total_hours: Annotated[ExactDecimal, Field(gt=0)] | None = None
    estimate_at_completion: Annotated[ExactDecimal, Field(gt=0)] | None = None
    uninstalled_materials_cost: NonNegativeDecimal | None = None


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class MilestoneReached(_ObligationEvent):
    type: Literal["milestone"] = "milestone"
    milestone_id: str


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class ProgressReport(_ObligationEvent):
    type: Literal["progress"] = "progress"
    percent_complete: Annotated[ExactDecimal, Field(ge=0, le=100)]


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class UnitsDelivered(_ObligationEvent):
    type: Literal["delivery"] = "delivery"
    units: Annotated[ExactDecimal, Field(gt=0)]


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class ObligationSatisfied(_ObligationEvent):
    """Control of a point-in-time obligation transferred to the customer."""

    type: Literal["satisfied"] = "satisfied"


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Rebill(_ObligationEvent):
    """An expense or subcontracted service rebilled to the customer under a rebillable obligation: `billed`
    is what the customer is charged, `cost` what the supplier charged the firm."""

    type: Literal["rebill"] = "rebill"
    billed: NonNegativeDecimal
    cost: NonNegativeDecimal
    description: str = ""


ACCOUNTING_CONTRACT = (
    "The accounting contract the bill belongs to: the contract itself (the default, or its contract_id), or "
    "a separate contract created by a modification accounted for as one (distinct goods or services added "
    "at their standalone selling price, IFRS 15.20), named `<contract_id>/m<version>` after the version "
    "that made it, for a bill dated on or after that version's effective date. Balances (receivable, "
    "contract asset, contract liability) are netted per accounting contract. A name the contract does not "
    "have at as_of, a name no version could create, or a bill dated before its accounting contract starts "
    "is refused."
)


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Invoice(_Event):
    """A bill giving an unconditional right to consideration (a receivable)."""

    type: Literal["invoice"] = "invoice"
    contract_id: str
    amount: ExactDecimal
    # IFRS 15.20, 15.105: balances are netted within one contract, so a bill says which one it is for.
    accounting_contract: str | None = Field(default=None, description=ACCOUNTING_CONTRACT)


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Payment(_Event):
    type: Literal["payment"] = "payment"
    contract_id: str
    amount: ExactDecimal
    accounting_contract: str | None = Field(default=None, description=ACCOUNTING_CONTRACT)


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class VariableConsiderationEstimate(_Event):
    """A re-estimate of a variable amount; a single outcome of probability 1 records its resolution."""

    type: Literal["vc_estimate"] = "vc_estimate"
    contract_id: str
    vc_id: str
    outcomes: Annotated[list[Outcome], Field(min_length=1)]


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class RoyaltyReported(_Event):
    """A sales- or usage-based royalty for a licence of intellectual property (IFRS 15.B63, ASC
    606-10-55-65): `amount` is due for the customer's sales or usage dated `on`.

    It is never estimated nor constrained, and takes no part in the transaction price: it is recognised when
    the later of the sale (or usage) and the satisfaction (or partial satisfaction) of the obligation it is
    allocated to occurs. `obligation_ids` names the obligations it relates to (default: every obligation
    with an allocated price in the version in force on `on`, which must have the obligations named); when
    several, it is split by their SSPs in that version, on the running total of the reports split the same
    way (rounded once, so the split does not depend on how sales were reported). A negative amount corrects
    an earlier report. Amounts are in the contract currency's minor unit, as for invoices and payments."""

    type: Literal["royalty"] = "royalty"
    contract_id: str
    amount: ExactDecimal
    obligation_ids: list[str] | None = None
    description: str = ""


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class ContractCost(_Event):
    """A cost of obtaining or of fulfilling a contract (IFRS 15.91-98, ASC 340-40), incurred on `on`.

    `kind` obtain: capitalised when `incremental` (incurred only because the contract was obtained, such as a
    sales commission, 15.92; not a discretionary bonus or due-diligence fees, 15.93) and `recoverable`,
    unless the one-year practical expedient applies (15.94). `kind` fulfil: capitalised only when it
    generates or enhances resources used to satisfy obligations in the future (`enhances_resources`,
    15.95(b)) and is `recoverable`; costs within another standard (equipment, software) do not belong here.
    An asset is amortised on the pattern of the revenue of `obligation_ids` (default: every obligation of
    the contract), 15.99. `benefit_ends_on` states the end of the period of benefit when it reaches past the
    contract (anticipated renewals): the asset is then amortised straight-line to that date, and the
    one-year expedient judged on it; otherwise the period ends when the related revenue is fully scheduled.
    """

    type: Literal["contract_cost"] = "contract_cost"
    contract_id: str
    amount: Annotated[ExactDecimal, Field(gt=0)]
    kind: Literal["obtain", "fulfil"]
    description: str = ""
    obligation_ids: list[str] | None = None
    incremental: bool = True
    enhances_resources: bool = False
    recoverable: bool = True
    benefit_ends_on: date | None = None


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class CostsToProvideEstimate(_Event):
    """The costs still to incur that relate directly to providing a contract's remaining goods or services
    and are not yet expensed (IFRS 15.101(b), ASC 340-40-35-3(b)), after the end of the period containing
    `on`: the impairment test of its contract cost assets compares their carrying amount with the remaining
    consideration less this amount (run down with the related revenue until the next estimate)."""

    type: Literal["costs_to_provide"] = "costs_to_provide"
    contract_id: str
    amount: NonNegativeDecimal


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class PeriodClose(_Event):
    """The books of `period` were closed on `on`: that period is never rewritten afterwards."""

    type: Literal["period_close"] = "period_close"
    period: str


ContractEvent = (
    TimeEntry
    | CostEntry
    | EstimateRevision
    | MilestoneReached
    | ProgressReport
    | UnitsDelivered
    | ObligationSatisfied
    | Rebill
    | Invoice
    | Payment
    | VariableConsiderationEstimate
    | RoyaltyReported
    | ContractCost
    | CostsToProvideEstimate
)

Event = Annotated[
    TimeEntry
    | CostEntry
    | EstimateRevision
    | MilestoneReached
    | ProgressReport
    | UnitsDelivered
    | ObligationSatisfied
    | Rebill
    | Invoice
    | Payment
    | VariableConsiderationEstimate
    | RoyaltyReported
    | ContractCost
    | CostsToProvideEstimate
    | PeriodClose,
    Field(discriminator="type"),
]


# ------------------------------------------------------------------------------------------------ scenario


class CalendarSpec(_Frozen):
    """Reporting periods: calendar months, or 4-4-5 fiscal periods (13-week quarters of 4, 4 and 5 weeks)
    counted from `fiscal_year_start`, 52-week years except those listed in `week_53_years` (by the fiscal
    year's label, FY<year>, the calendar year of its last day), whose 53rd week is added to the last period
    (P12 has 6 weeks). Which years have 53 weeks follows the company's year-end rule (e.g. the Saturday
    nearest 31 December), so it is stated rather than derived."""

    kind: Literal["calendar_month", "4-4-5"] = "calendar_month"
    fiscal_year_start: date | None = None
    week_53_years: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _anchor(self) -> CalendarSpec:
        if self.kind == "4-4-5" and self.fiscal_year_start is None:
            raise ValueError("a 4-4-5 calendar needs fiscal_year_start")
        if self.week_53_years and self.kind != "4-4-5":
            raise ValueError("week_53_years applies to a 4-4-5 calendar only")
        return self


class ProgressRounding(_Frozen):
    """Named policy for measured progress (input and output methods).

    `round_to_percent_decimals`: progress is rounded to this many decimals of a percent (1 -> 0.1 %, as in the
    standard's examples); None keeps the exact ratio. Time-elapsed progress (ratable) is always exact.
    """

    round_to_percent_decimals: Annotated[int, Field(ge=0, le=6)] | None = 1
    mode: RoundingPolicy = RoundingPolicy.HALF_UP


class FxRate(_Frozen):
    """1 unit of `base` = `rate` units of `quote`, from `on`."""

    base: CurrencyCode
    quote: CurrencyCode
    on: date
    rate: Annotated[ExactDecimal, Field(gt=0)]


class FxPolicy(StrEnum):
    PERIOD_END = "period_end"  # rate in force at the period's last day
    PERIOD_AVERAGE = "period_average"  # mean of the rates dated inside the period (IAS 21.22 approximation)


class ContractCostPolicy(_Frozen):
    """How contract costs are accounted for. `one_year_expedient`: expense the incremental costs of obtaining
    a contract when the asset's amortisation period would be one year or less (IFRS 15.94, ASC
    340-40-25-4). An impairment is never reversed (ASC 340-40-35-6; the reversal IFRS 15.104 requires is
    not modelled)."""

    one_year_expedient: bool = True


class Scenario(_Frozen):
    """What the engine computes from: contract versions, delivery events, calendar and policies."""

    schema_version: Literal["1"] = "1"
    as_of: date | None = None
    calendar: CalendarSpec = CalendarSpec()
    progress_rounding: ProgressRounding = ProgressRounding()
    functional_currency: dict[str, CurrencyCode] = Field(default_factory=dict)
    fx_rates: list[FxRate] = Field(default_factory=list)
    fx_policy: FxPolicy = FxPolicy.PERIOD_END
    contract_costs: ContractCostPolicy = ContractCostPolicy()
    contracts: Annotated[list[RevenueContract], Field(min_length=1)]
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        check_references(self.contracts, self.events)
        return self


class ContractDocument(_Frozen):
    """One contract's versions and events, as the streamed run validates them (scenario_stream.py): the
    fields and the reference check of a Scenario without its header, whose defaults a Scenario would build
    (and deep-copy: CalendarSpec holds a list) for every contract. Same rules, same messages, same paths."""

    contracts: Annotated[list[RevenueContract], Field(min_length=1)]
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> ContractDocument:
        check_references(self.contracts, self.events)
        return self


def check_references(contracts: list[RevenueContract], events: list[Event]) -> None:
    """Versions, currencies and what events name, across a scenario's contracts and events."""
    seen: set[tuple[str, int]] = set()
    obligations: dict[str, set[str]] = {}
    rebillable: set[tuple[str, str]] = set()
    vcs: dict[str, set[str]] = {}
    currency: dict[str, str] = {}
    for index, contract in enumerate(contracts):
        key = (contract.contract_id, contract.version)
        if key in seen:
            raise ValueError(
                f"contracts[{index}]: duplicate version {contract.version} of {contract.contract_id}"
            )
        seen.add(key)
        if currency.setdefault(contract.contract_id, contract.currency) != contract.currency:
            raise ValueError(f"contracts[{index}]: a contract keeps one transaction currency across versions")
        obligations.setdefault(contract.contract_id, set()).update(o.id for o in contract.obligations)
        rebillable.update(
            (contract.contract_id, o.id)
            for o in contract.obligations
            if isinstance(o.pattern, RebillablePattern)
        )
        vcs.setdefault(contract.contract_id, set()).update(v.id for v in contract.variable_consideration)
    event_ids: set[str] = set()
    for index, event in enumerate(events):
        if event.id in event_ids:
            raise ValueError(f"events[{index}].id: duplicate event id {event.id}")
        event_ids.add(event.id)
        if isinstance(event, PeriodClose):
            continue
        if event.contract_id not in obligations:
            raise ValueError(f"events[{index}].contract_id: unknown contract {event.contract_id}")
        if isinstance(event, _ObligationEvent) and event.obligation_id not in obligations[event.contract_id]:
            raise ValueError(f"events[{index}].obligation_id: unknown obligation {event.obligation_id}")
        if isinstance(event, Rebill) and (event.contract_id, event.obligation_id) not in rebillable:
            raise ValueError(
                f"events[{index}].obligation_id: {event.obligation_id} is not a rebillable obligation"
            )
        if isinstance(event, VariableConsiderationEstimate) and event.vc_id not in vcs[event.contract_id]:
            raise ValueError(f"events[{index}].vc_id: unknown variable consideration {event.vc_id}")
        if isinstance(event, ContractCost | RoyaltyReported):
            for target in event.obligation_ids or []:
                if target not in obligations[event.contract_id]:
                    raise ValueError(f"events[{index}].obligation_ids: unknown obligation {target}")
