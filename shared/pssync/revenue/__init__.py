"""pssync revenue engine (ASC 606 / IFRS 15): pure computation, no I/O, no AWS, no environment access.

Entry points:
- `run_scenario(scenario, as_of=None) -> RevenueResult`: a whole scenario (contract versions + events).
- `schedule_for(contract, ...) -> RevenueResult`: one contract version and optional events, for a workflow
  step that only knows the version it is booking or amending.
- `parse_scenario(json_text_or_mapping) -> Scenario`: validation of a scenario document.
- `scenario_json_schema() -> dict`: the JSON schema of the scenario file (published as revrec-scenario.v1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from pssync.revenue.engine import gc_paused
from pssync.revenue.engine import run as _run
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import (
    AllocationOverride,
    CalendarSpec,
    Concession,
    ContractCost,
    ContractCostPolicy,
    CostEntry,
    CostsToProvideEstimate,
    DiscountEvidence,
    EstimateRevision,
    Event,
    ExercisedOption,
    FxPolicy,
    FxRate,
    InputCostPattern,
    InputHoursPattern,
    Invoice,
    MaterialRightPattern,
    Milestone,
    MilestonePattern,
    MilestoneReached,
    ModificationFacts,
    ModificationTreatment,
    NetSettlement,
    ObligationSatisfied,
    Outcome,
    Payment,
    PerformanceObligation,
    PeriodClose,
    PointInTimePattern,
    ProgressReport,
    ProgressRounding,
    RatablePattern,
    Rebill,
    RebillablePattern,
    RevenueContract,
    RightToInvoicePattern,
    RoyaltyReported,
    Scenario,
    SspRange,
    SurveyedProgressPattern,
    Termination,
    TimeEntry,
    UnitsDelivered,
    UnitsPattern,
    VariableConsideration,
    VariableConsiderationEstimate,
)
from pssync.revenue.result import RevenueReport, RevenueResult

SCENARIO_SCHEMA_ID = "https://pssync.dev/schemas/revrec-scenario.v1.json"


def parse_scenario(document: str | bytes | Mapping[str, Any]) -> Scenario:
    """Validate a scenario from JSON text/bytes (amounts as strings) or an already-decoded mapping.

    Raises pydantic.ValidationError whose error locations name the offending field. Validation builds many
    small acyclic objects, so it runs with the cycle collector paused (see engine.gc_paused).
    """
    with gc_paused():
        if isinstance(document, str | bytes):
            return Scenario.model_validate_json(document)
        return Scenario.model_validate(document)


def run_scenario(scenario: Scenario, as_of: date | None = None) -> RevenueResult:
    """Compute revenue for every contract of the scenario as known at `as_of` (default: scenario.as_of, else
    the latest date a fact was recorded). Raises RevenueRuleError when a revenue rule refuses the inputs."""
    return RevenueResult(_run(scenario, as_of))


def schedule_for(
    contract: RevenueContract,
    *,
    previous_versions: Iterable[RevenueContract] = (),
    events: Iterable[Event] = (),
    calendar: CalendarSpec | None = None,
    progress_rounding: ProgressRounding | None = None,
    as_of: date | None = None,
) -> RevenueResult:
    """Schedule of one contract from the version a workflow step holds (plus earlier versions when amending).

    Without events, ratable and dated point-in-time obligations are fully scheduled; progress-measured ones
    stay unscheduled (their remaining price shows in RPO as timing not scheduled).
    """
    scenario = Scenario(
        as_of=as_of or contract.known_from,
        calendar=calendar or CalendarSpec(),
        progress_rounding=progress_rounding or ProgressRounding(),
        contracts=[*previous_versions, contract],
        events=list(events),
    )
    return run_scenario(scenario)


def scenario_json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$id"] = SCENARIO_SCHEMA_ID
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


__all__ = [
    "AllocationOverride",
    "CalendarSpec",
    "Concession",
    "ContractCost",
    "ContractCostPolicy",
    "CostEntry",
    "CostsToProvideEstimate",
    "DiscountEvidence",
    "EstimateRevision",
    "Event",
    "ExercisedOption",
    "FxPolicy",
    "FxRate",
    "InputCostPattern",
    "InputHoursPattern",
    "Invoice",
    "MaterialRightPattern",
    "Milestone",
    "MilestonePattern",
    "MilestoneReached",
    "ModificationFacts",
    "ModificationTreatment",
    "NetSettlement",
    "ObligationSatisfied",
    "Outcome",
    "Payment",
    "PerformanceObligation",
    "PeriodClose",
    "PointInTimePattern",
    "ProgressReport",
    "ProgressRounding",
    "RatablePattern",
    "Rebill",
    "RebillablePattern",
    "RevenueContract",
    "RevenueReport",
    "RevenueResult",
    "RevenueRuleError",
    "RightToInvoicePattern",
    "RoyaltyReported",
    "Scenario",
    "SspRange",
    "SurveyedProgressPattern",
    "Termination",
    "TimeEntry",
    "UnitsDelivered",
    "UnitsPattern",
    "VariableConsideration",
    "VariableConsiderationEstimate",
    "parse_scenario",
    "run_scenario",
    "scenario_json_schema",
    "schedule_for",
]
