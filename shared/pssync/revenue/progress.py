"""Measures of progress per recognition pattern, evaluated at a sorted list of days (ordinals).

Each measure is a fraction num/den in [0, 1] per day, so revenue can be computed exactly in integers. Time
elapsed (ratable) is exact; measured progress (input and output methods) goes through the scenario's named
rounding policy. The id of the event that last moved the measure is kept so every line can say what caused it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from pssync.money import RoundingPolicy
from pssync.revenue.models import (
    CostEntry,
    EstimateRevision,
    InputCostPattern,
    InputHoursPattern,
    MaterialRightPattern,
    MilestonePattern,
    MilestoneReached,
    ObligationSatisfied,
    PointInTimePattern,
    ProgressReport,
    ProgressRounding,
    RatablePattern,
    Rebill,
    RebillablePattern,
    RecognitionPattern,
    RightToInvoicePattern,
    SurveyedProgressPattern,
    TimeEntry,
    UnitsDelivered,
    UnitsPattern,
)
from pssync.revenue.periods import PeriodIndex

ObligationEvent = (
    TimeEntry
    | CostEntry
    | EstimateRevision
    | MilestoneReached
    | ProgressReport
    | UnitsDelivered
    | ObligationSatisfied
    | Rebill
)
OBLIGATION_EVENT_TYPES = (
    TimeEntry,
    CostEntry,
    EstimateRevision,
    MilestoneReached,
    ProgressReport,
    UnitsDelivered,
    ObligationSatisfied,
    Rebill,
)


@dataclass(slots=True)
class Measure:
    """Progress per evaluated day, plus the extras of cost-to-cost with uninstalled materials.

    For cost-to-cost, revenue = (allocated - carve_out) x progress + at_cost, where carve_out is the expected
    cost of uninstalled materials and at_cost the materials transferred so far (recognised at zero margin).
    For right-to-invoice, `earned` is the amount invoiceable for work performed (no allocation involved).
    """

    nums: list[int]
    dens: list[int]
    causes: list[str | None]
    description: str
    carve_out: list[int] | None = None
    at_cost: list[int] | None = None
    earned: list[int] | None = None
    inputs: list[str] = field(default_factory=list)
    common_den: int | None = None  # set when every day shares one denominator (time elapsed)


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero (denominator > 0)."""
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


EXACT_PROGRESS = ProgressRounding(round_to_percent_decimals=None)


def _rounded(ratio: Fraction, policy: ProgressRounding) -> tuple[int, int]:
    """Clip progress to [0, 1] and apply the named rounding policy, in integers (no Fraction arithmetic)."""
    num, den = ratio.numerator, ratio.denominator
    if num <= 0:
        return 0, 1
    if num >= den:
        return 1, 1
    if policy.round_to_percent_decimals is None:
        return num, den
    scale = 10 ** (2 + policy.round_to_percent_decimals)
    if policy.mode is RoundingPolicy.HALF_EVEN:
        quotient, remainder = divmod(num * scale, den)
        if 2 * remainder > den or (2 * remainder == den and quotient % 2):
            quotient += 1
        return quotient, scale
    return round_half_up_div(num * scale, den), scale


def _percent_ratio(percent: Decimal) -> Fraction:
    num, den = percent.as_integer_ratio()
    return Fraction(num, den * 100)


def _percent(num: int, den: int) -> str:
    return f"{Decimal(num * 100) / Decimal(den):.4f}".rstrip("0").rstrip(".") + " %"


def _to_minor(amount: Decimal, exponent: int) -> int:
    scaled = amount.scaleb(exponent)
    return int(scaled.to_integral_value(rounding="ROUND_HALF_UP"))


def measure(
    pattern: RecognitionPattern,
    events: Sequence[ObligationEvent],
    days: Sequence[int],
    policy: ProgressRounding,
    periods: PeriodIndex,
    currency_exponent: int,
    estimates_from: int,
    explain: bool = False,
    cache: dict[tuple[int, int], StepTable] | None = None,
) -> Measure:
    """Progress of one obligation under `pattern` at each of `days` (sorted ordinals).

    `events` are the obligation's known events sorted by (date, id); `estimates_from` is the first day on
    which estimate revisions count (the version's effective date: a version restates its own estimates).
    With `explain` the measure also says, per day, what its inputs were and which event caused it; the hot
    path skips that text and rebuilds it only for the lines a caller asks to see.
    """
    if isinstance(pattern, RatablePattern):
        return _ratable(pattern, days, periods)
    if isinstance(pattern, PointInTimePattern):
        return _point_in_time(pattern.satisfied_on, events, days)
    if isinstance(pattern, RightToInvoicePattern):
        return _right_to_invoice(pattern, events, days, currency_exponent)
    if isinstance(pattern, RebillablePattern):
        return _rebilled(pattern, events, days, currency_exponent)
    if isinstance(pattern, MaterialRightPattern):
        # Unexercised, the right is satisfied when it lapses; its exercise is a contract version
        # (segments._Builder._exercise) that freezes it and passes its price to the goods bought.
        return _point_in_time(pattern.expires_on, (), days)
    if isinstance(pattern, InputCostPattern):
        return _cost_to_cost(pattern, events, days, policy, currency_exponent, estimates_from, explain)
    return _measured(pattern, events, days, policy, estimates_from, explain, cache)


def _ratable(pattern: RatablePattern, days: Sequence[int], periods: PeriodIndex) -> Measure:
    # Time-elapsed measures depend only on the term and the days: contracts with the same term share one
    # (measures are never mutated after creation).
    if not days:
        return Measure([], [], [], "ratable " + pattern.basis)
    head = periods.end_position.get(days[0])
    contiguous = len(days) <= 2 or (
        head is not None and periods.end_position.get(days[-1]) == head + len(days) - 1
    )
    # First day, last day and count identify a run of consecutive period ends (or a list of up to two days).
    days_key: tuple[int, ...] = (days[0], days[-1], len(days)) if contiguous else tuple(days)
    key = (pattern.start, pattern.end, pattern.basis, days_key)
    shared = periods.measure_cache.get(key)
    if shared is None:
        shared = periods.measure_cache[key] = _ratable_measure(pattern, days, periods)
    return shared


def _ratable_measure(pattern: RatablePattern, days: Sequence[int], periods: PeriodIndex) -> Measure:
    start, end = pattern.start.toordinal(), pattern.end.toordinal()
    description = "ratable " + pattern.basis
    if pattern.basis == "daily":
        total = end - start + 1
        nums = [0 if d < start else total if d >= end else d - start + 1 for d in days]
        return Measure(nums, [total] * len(days), [None] * len(days), description, common_den=total)
    # By period: each period covered earns one unit, partial periods in proportion to their days covered.
    geometry = periods.term_cache.get((start, end))
    if geometry is None:
        first, last = periods.index_of(pattern.start), periods.index_of(pattern.end)
        aligned = periods.start_ordinals[first] == start and periods.end_ordinals[last] == end
        total = last - first + 1
        # Whole periods elapsed at each period end, clipped to the term (used when the term is aligned).
        elapsed = [min(max(k - first + 1, 0), total) for k in range(len(periods.end_ordinals))]
        geometry = periods.term_cache[(start, end)] = (first, last, aligned, elapsed)
    first, last, aligned, elapsed = geometry
    ends = periods.end_ordinals
    position = periods.end_position
    head = position.get(days[0]) if days else None
    if aligned and head is not None and position.get(days[-1]) == head + len(days) - 1:
        # Days are consecutive period ends (the usual case): a slice of the precomputed table.
        total = last - first + 1
        return Measure(
            elapsed[head : head + len(days)], [total] * len(days), [], description, common_den=total
        )
    weights = []
    for k in range(first, last + 1):
        covered = min(end, ends[k]) - max(start, periods.start_ordinals[k]) + 1
        weights.append(Fraction(covered, ends[k] - periods.start_ordinals[k] + 1))
    total_units = sum(weights, Fraction(0))
    nums_f: list[Fraction] = []
    for d in days:
        if d < start:
            nums_f.append(Fraction(0))
            continue
        if d >= end:
            nums_f.append(Fraction(1))
            continue
        k = bisect.bisect_left(ends, d)
        done = sum(weights[: k - first], Fraction(0))
        period_days = ends[k] - periods.start_ordinals[k] + 1
        covered = d - max(start, periods.start_ordinals[k]) + 1
        nums_f.append((done + Fraction(covered, period_days)) / total_units)
    return Measure(
        [f.numerator for f in nums_f], [f.denominator for f in nums_f], [None] * len(days), description
    )


def _point_in_time(
    satisfied_on: date | None, events: Sequence[ObligationEvent], days: Sequence[int]
) -> Measure:
    """Nothing before control transfers (the pattern's date, or an earlier ObligationSatisfied), all of it
    from then on. Days are sorted, so the measure is one run of zeros then one run of ones."""
    cause: str | None = None
    for event in events:
        if isinstance(event, ObligationSatisfied):
            if satisfied_on is None or event.on <= satisfied_on:
                satisfied_on, cause = event.on, event.id
            break
    count = len(days)
    if satisfied_on is None:
        return Measure([0] * count, [1] * count, [None] * count, "point in time (not yet satisfied)")
    before = bisect.bisect_left(days, satisfied_on.toordinal())
    after = count - before
    causes: list[str | None] = [None] * before
    causes += [cause] * after
    return Measure(
        [0] * before + [1] * after,
        [1] * count,
        causes,
        f"point in time, control transferred {satisfied_on}",
    )


def _right_to_invoice(
    pattern: RightToInvoicePattern, events: Sequence[ObligationEvent], days: Sequence[int], exponent: int
) -> Measure:
    entry_days: list[int] = []
    cumulative: list[int] = []
    ids: list[str] = []
    hours = Decimal(0)
    for event in events:
        if isinstance(event, TimeEntry):
            # Round the cumulative amount, never an entry: revenue must not depend on how the hours were
            # split into rows (two entries of 0.004 earn what one of 0.008 does).
            hours += event.hours
            entry_days.append(event.on.toordinal())
            cumulative.append(_to_minor(hours * pattern.rate_per_hour, exponent))
            ids.append(event.id)
    earned, causes = [], []
    for d in days:
        i = bisect.bisect_right(entry_days, d) - 1
        earned.append(cumulative[i] if i >= 0 else 0)
        causes.append(ids[i] if i >= 0 else None)
    return Measure(
        [1] * len(days),
        [1] * len(days),
        causes,
        f"right to invoice at {pattern.rate_per_hour}/hour",
        earned=earned,
    )


def _rebilled(
    pattern: RebillablePattern, events: Sequence[ObligationEvent], days: Sequence[int], exponent: int
) -> Measure:
    """Earned to date: the amounts billed (principal, gross) or billed less the supplier's cost (agent,
    net), as each item is rebilled."""
    item_days: list[int] = []
    cumulative: list[int] = []
    ids: list[str] = []
    total = Decimal(0)
    for event in events:
        if isinstance(event, Rebill):
            total += event.billed if pattern.role == "principal" else event.billed - event.cost
            item_days.append(event.on.toordinal())
            cumulative.append(_to_minor(total, exponent))
            ids.append(event.id)
    earned, causes = [], []
    for d in days:
        i = bisect.bisect_right(item_days, d) - 1
        earned.append(cumulative[i] if i >= 0 else 0)
        causes.append(ids[i] if i >= 0 else None)
    basis = "gross, as principal" if pattern.role == "principal" else "net of supplier cost, as agent"
    return Measure([1] * len(days), [1] * len(days), causes, f"rebilled {basis}", earned=earned)


def _cost_to_cost(
    pattern: InputCostPattern,
    events: Sequence[ObligationEvent],
    days: Sequence[int],
    policy: ProgressRounding,
    exponent: int,
    estimates_from: int,
    explain: bool,
) -> Measure:
    eac, materials_expected = pattern.estimate_at_completion, pattern.uninstalled_materials_cost
    timeline: list[
        tuple[int, str, Decimal, Decimal, Decimal, Decimal]
    ] = []  # day, id, cost, materials, eac, M
    progress_cost = materials = Decimal(0)
    for event in events:
        if isinstance(event, CostEntry):
            if event.category == "progress":
                progress_cost += event.amount
            elif event.category == "uninstalled_materials":
                materials += event.amount
            else:
                continue  # waste and other costs that do not depict progress: excluded from the measure
        elif isinstance(event, EstimateRevision) and event.on.toordinal() >= estimates_from:
            if event.estimate_at_completion is not None:
                eac = event.estimate_at_completion
            if event.uninstalled_materials_cost is not None:
                materials_expected = event.uninstalled_materials_cost
        else:
            continue
        timeline.append((event.on.toordinal(), event.id, progress_cost, materials, eac, materials_expected))
    timeline_days = [t[0] for t in timeline]
    m = Measure([], [], [], "input: cost-to-cost", carve_out=[], at_cost=[])
    assert m.carve_out is not None and m.at_cost is not None
    for d in days:
        i = bisect.bisect_right(timeline_days, d) - 1
        if i < 0:
            cost, mat, cause = Decimal(0), Decimal(0), None
            est, carve = pattern.estimate_at_completion, pattern.uninstalled_materials_cost
        else:
            _, cause, cost, mat, est, carve = timeline[i]
        num, den = _rounded(Fraction(cost) / Fraction(est - carve), policy)
        m.nums.append(num)
        m.dens.append(den)
        m.causes.append(cause)
        m.carve_out.append(_to_minor(carve, exponent))
        m.at_cost.append(_to_minor(min(mat, carve), exponent))
        if explain:
            m.inputs.append(
                f"costs {cost} / (EAC {est} - uninstalled materials {carve}) = {_percent(num, den)}"
                + (f"; materials at cost {min(mat, carve)}" if mat else "")
            )
    return m


Step = tuple[int, str, Fraction, str]  # day, event id, progress, inputs


@dataclass(slots=True)
class StepTable:
    """A stepping measure's description, steps, their days, their progress rounded (index 0: nothing yet),
    and, made the first time an explanation is asked for, each index's cause and inputs text."""

    description: str
    steps: list[Step]
    days: list[int]
    rounded: list[tuple[int, int]]
    explained: tuple[list[str | None], list[str]] | None = None

    def explanation(self) -> tuple[list[str | None], list[str]]:
        if self.explained is None:
            labels = [
                "no progress yet",
                *(f"{s[3]} -> {_percent(*r)}" for s, r in zip(self.steps, self.rounded[1:], strict=True)),
            ]
            self.explained = [None, *(s[1] for s in self.steps)], labels
        return self.explained


def _step_runs(step_days: list[int], days: Sequence[int]) -> list[tuple[int, int]]:
    """(step index, how many consecutive days it holds for) over the sorted `days`: index i is the number of
    steps on or before the day, so index i holds from the first day on or after step i's day."""
    if len(step_days) >= len(days):  # few days (a modification date, one line): look each one up
        return [(bisect.bisect_right(step_days, d), 1) for d in days]
    bounds = [0, *(bisect.bisect_left(days, d) for d in step_days), len(days)]
    return [(i, bounds[i + 1] - bounds[i]) for i in range(len(bounds) - 1) if bounds[i + 1] > bounds[i]]


def _measured(
    pattern: InputHoursPattern | MilestonePattern | SurveyedProgressPattern | UnitsPattern,
    events: Sequence[ObligationEvent],
    days: Sequence[int],
    policy: ProgressRounding,
    estimates_from: int,
    explain: bool,
    cache: dict[tuple[int, int], StepTable] | None,
) -> Measure:
    """Hours, milestones, surveyed percent and units: a ratio stepping at each relevant event."""
    # The step table depends only on the pattern, its events and the estimates' start: a contract evaluates
    # it several times (modification dates, period ends), so the caller may keep it (one cache per state of
    # knowledge and rounding policy: the Measurer's, so the events and policy are fixed for a key).
    key = (id(pattern), estimates_from)
    table = cache.get(key) if cache is not None else None
    if table is None:
        table = _step_table(pattern, events, policy, estimates_from)
        if cache is not None:
            cache[key] = table
    # Index 0 of `rounded` is "nothing yet"; each day points at the last step on or before it, and days
    # between two steps share an index, so the lists are built one run of days at a time.
    runs = _step_runs(table.days, days)
    rounded = table.rounded
    nums: list[int] = []
    dens: list[int] = []
    for i, count in runs:
        num, den = rounded[i]
        nums += [num] * count
        dens += [den] * count
    m = Measure(nums, dens, [], table.description)
    if explain:
        step_causes, labels = table.explanation()
        for i, count in runs:
            m.causes += [step_causes[i]] * count
            m.inputs += [labels[i]] * count
    return m


def _step_table(
    pattern: InputHoursPattern | MilestonePattern | SurveyedProgressPattern | UnitsPattern,
    events: Sequence[ObligationEvent],
    policy: ProgressRounding,
    estimates_from: int,
) -> StepTable:
    if isinstance(pattern, InputHoursPattern):
        description, steps = "input: hours", _hours_steps(pattern, events, estimates_from)
    elif isinstance(pattern, MilestonePattern):
        description, steps = "output: milestones", _milestone_steps(pattern, events)
    elif isinstance(pattern, UnitsPattern):
        description, steps = "output: units delivered", _units_steps(pattern, events)
    else:
        description, steps = "output: surveyed progress", _survey_steps(events)
    if isinstance(pattern, MilestonePattern):
        # Milestones carry their contractual weight: progress is that exact share (rounding it to 0.1 %
        # would recognise 79,920.00 for a milestone the contract values at 80,000.00).
        policy = EXACT_PROGRESS
    return StepTable(
        description, steps, [s[0] for s in steps], [(0, 1), *(_rounded(s[2], policy) for s in steps)]
    )


def _hours_steps(
    pattern: InputHoursPattern, events: Sequence[ObligationEvent], estimates_from: int
) -> list[Step]:
    steps: list[Step] = []
    hours, estimate = Decimal(0), pattern.estimated_total_hours
    for event in events:
        if isinstance(event, TimeEntry):
            hours += event.hours
        elif isinstance(event, EstimateRevision) and event.estimated_total_hours is not None:
            if event.on.toordinal() < estimates_from:
                continue
            estimate = event.estimated_total_hours
        else:
            continue
        steps.append(
            (
                event.on.toordinal(),
                event.id,
                Fraction(hours) / Fraction(estimate),
                f"hours {hours} / {estimate}",
            )
        )
    return steps


def _milestone_steps(pattern: MilestonePattern, events: Sequence[ObligationEvent]) -> list[Step]:
    steps: list[Step] = []
    weights = {m.id: Fraction(m.weight) for m in pattern.milestones}
    total = sum(weights.values(), Fraction(0))
    reached: set[str] = set()
    for event in events:
        if isinstance(event, MilestoneReached) and event.milestone_id in weights:
            reached.add(event.milestone_id)
            achieved = sum((weights[r] for r in reached), Fraction(0))
            steps.append(
                (event.on.toordinal(), event.id, achieved / total, f"milestones reached {sorted(reached)}")
            )
    return steps


def _units_steps(pattern: UnitsPattern, events: Sequence[ObligationEvent]) -> list[Step]:
    steps: list[Step] = []
    units = Decimal(0)
    for event in events:
        if isinstance(event, UnitsDelivered):
            units += event.units
            steps.append(
                (
                    event.on.toordinal(),
                    event.id,
                    Fraction(units) / Fraction(pattern.total_units),
                    f"units {units} / {pattern.total_units}",
                )
            )
    return steps


def _survey_steps(events: Sequence[ObligationEvent]) -> list[Step]:
    return [
        (
            event.on.toordinal(),
            event.id,
            _percent_ratio(event.percent_complete),
            f"surveyed {event.percent_complete} %",
        )
        for event in events
        if isinstance(event, ProgressReport)
    ]
