"""The revenue computation: contract versions and events in, cumulative revenue per obligation and period out.

Model. An obligation's revenue is a sequence of *segments*, one per contract version that changed how it is
measured. In a segment, cumulative revenue at day t is

    inception / catch-up:  A(t) x p(t)                        (A: allocated price, p: progress)
    prospective:           R + A(t) x (p(t) - p0) / (1 - p0)  (R, p0: revenue and progress at the
                                                               modification; A: the remaining price)
    frozen:                R                                  (satisfied or removed before a change)

all in integer minor units, rounded half away from zero once per cumulative figure, so per-period amounts are
differences of cumulative figures and always add up to the allocated price at completion.

Period close. Period k is reported with the knowledge it had when it was closed (facts recorded on or before
its close date); open and future periods use the knowledge at `as_of`. Reported revenue of period k is
C_k(k) - C_{k-1}(k-1), split into the period's own revenue C_k(k) - C_k(k-1) and an adjustment for earlier
periods C_k(k-1) - C_{k-1}(k-1). Closed figures are thus never rewritten; late facts land in the first open
period as adjustments.
"""

from __future__ import annotations

import bisect
import gc
from array import array
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from pssync.money import minor_unit
from pssync.revenue.allocation import AllocationRule, allocate, largest_remainder
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import (
    DISTINCT_REMAINDER_BY_DEFAULT,
    ContractEvent,
    Invoice,
    ModificationFacts,
    ModificationTreatment,
    Outcome,
    Payment,
    PerformanceObligation,
    PeriodClose,
    PointInTimePattern,
    ProgressRounding,
    RatablePattern,
    RevenueContract,
    RightToInvoicePattern,
    Scenario,
    VariableConsideration,
    VariableConsiderationEstimate,
)
from pssync.revenue.periods import PeriodIndex, periods_covering
from pssync.revenue.progress import (
    OBLIGATION_EVENT_TYPES,
    Measure,
    ObligationEvent,
    StepTable,
    measure,
    round_half_up_div,
)


def to_minor_units(amount: Decimal, exponent: int) -> int:
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise RevenueRuleError(f"{amount} has more precision than the currency's minor unit allows")
    return int(scaled)


# ------------------------------------------------------------------------------------ compiled inputs


@dataclass(slots=True)
class CompiledVersion:
    contract: RevenueContract
    index: int  # position in Scenario.contracts, for error field paths
    exponent: int
    fixed: int
    obligations: dict[str, PerformanceObligation]
    order: tuple[str, ...]
    effective: int
    ssp_minor: dict[str, int | None]

    @property
    def number(self) -> int:
        return self.contract.version

    def ssp(self, obligation_id: str) -> int | None:
        return self.ssp_minor[obligation_id]

    def field(self, obligation_id: str | None = None) -> str:
        if obligation_id is None:
            return f"contracts[{self.index}]"
        return f"contracts[{self.index}].obligations[{self.order.index(obligation_id)}]"


def compile_version(contract: RevenueContract, index: int) -> CompiledVersion:
    exponent = minor_unit(contract.currency)
    try:
        fixed = to_minor_units(contract.fixed_price, exponent)
    except RevenueRuleError as error:
        raise RevenueRuleError(error.reason, f"contracts[{index}].fixed_price") from None
    return CompiledVersion(
        contract=contract,
        index=index,
        exponent=exponent,
        fixed=fixed,
        obligations={o.id: o for o in contract.obligations},
        order=tuple(o.id for o in contract.obligations),
        effective=contract.effective_date.toordinal(),
        ssp_minor={
            o.id: None if o.ssp is None else to_minor_units(o.ssp, exponent) for o in contract.obligations
        },
    )


def estimate_variable_consideration(
    vc: VariableConsideration, outcomes: Sequence[Outcome], exponent: int
) -> int:
    """The constrained estimate of a variable amount, in minor units."""
    if vc.method == "expected_value":
        estimate = sum((o.amount * o.probability for o in outcomes), Decimal(0))
    else:
        estimate = max(outcomes, key=lambda o: o.probability).amount  # first listed wins a tie
    if vc.constraint_min_probability is not None:
        # Highest amount reached with at least the required probability: including more could reverse.
        safe = None
        for candidate in sorted({o.amount for o in outcomes}, reverse=True):
            reach = sum((o.probability for o in outcomes if o.amount >= candidate), Decimal(0))
            if reach >= vc.constraint_min_probability:
                safe = candidate
                break
        estimate = min(estimate, safe if safe is not None else Decimal(0))
    if vc.constraint_cap is not None:
        estimate = min(estimate, vc.constraint_cap)
    return int(estimate.scaleb(exponent).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(slots=True)
class AllocationGroup:
    """Obligations that share one price: a contract at inception, a modified contract, a separate contract."""

    rule: AllocationRule
    fixed: int
    vcs: list[VariableConsideration]
    vc_timeline: dict[str, tuple[list[int], list[list[Outcome]]]]
    exponent: int
    version: int
    cache: dict[tuple[int, ...], dict[str, int]] = field(default_factory=dict)

    def vc_amounts(self, day: int) -> tuple[int, ...]:
        amounts = []
        for vc in self.vcs:
            days, outcomes = self.vc_timeline.get(vc.id, ([], []))
            i = bisect.bisect_right(days, day) - 1
            amounts.append(
                estimate_variable_consideration(vc, outcomes[i] if i >= 0 else vc.outcomes, self.exponent)
            )
        return tuple(amounts)

    def price(self, day: int) -> int:
        return self.fixed + sum(self.vc_amounts(day))

    def at(self, day: int) -> dict[str, int]:
        key = self.vc_amounts(day) if self.vcs else ()
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        members = set(self.rule.obligation_ids)
        pooled = self.fixed
        targeted: list[tuple[list[str], int]] = []
        sole: set[str] = set()
        for vc, amount in zip(self.vcs, key, strict=True):
            targets = [t for t in (vc.allocate_to or []) if t in members]
            if targets:
                targeted.append((targets, amount))
                if vc.sole_consideration_of_targets:
                    sole.update(targets)
            else:
                pooled += amount
        rule = self.rule
        if sole and sole != members:
            keep = [n for n, oid in enumerate(rule.obligation_ids) if oid not in sole]
            rule = replace(
                rule,
                obligation_ids=tuple(rule.obligation_ids[n] for n in keep),
                ssp=tuple(rule.ssp[n] for n in keep),
                ssp_range=tuple(rule.ssp_range[n] for n in keep),
            )
        result = dict.fromkeys(self.rule.obligation_ids, 0)
        if rule.obligation_ids:
            result.update(allocate(rule, pooled))
        for targets, amount in targeted:
            positions = [self.rule.obligation_ids.index(t) for t in targets]
            weights = [self.rule.ssp[p] or 0 for p in positions]
            shares = largest_remainder(amount, weights if sum(weights) else [1] * len(weights))
            for target, share in zip(targets, shares, strict=True):
                result[target] = result[target] + share
        self.cache[key] = result
        return result


SegmentMode = str  # "inception" | "catch_up" | "prospective" | "frozen" | "right_to_invoice"


@dataclass(slots=True)
class Segment:
    start: int
    version: CompiledVersion
    obligation: PerformanceObligation
    mode: SegmentMode
    group: AllocationGroup | None
    base: int = 0
    p0: tuple[int, int] = (0, 1)
    treatment: str = "inception"


@dataclass(slots=True)
class Track:
    """Cumulative revenue of one obligation at each evaluated day, with what produced each figure.

    Compact on purpose (a portfolio holds one per obligation): figures in an int64 array, and the measure
    behind a figure is rebuilt with its explanation only when a line is asked for.
    """

    cumulative: array[int]
    expected_total: array[int]  # the obligation's price at that point (allocated, or earned for T&M)
    pieces: list[tuple[int, Segment]]  # (first index, segment in force from there)
    days: Sequence[int]
    computation: ContractComputation

    def explain(self, k: int) -> tuple[Segment, Measure, int] | None:
        """The segment in force at index k and its measure (with inputs and causes) at that day."""
        for first, segment in reversed(self.pieces):
            if k >= first:
                m = self.computation.measure_for(segment, [self.days[k]], explain=True)
                return segment, m, 0
        return None

    def explain_all(self) -> list[tuple[Segment, Measure, int] | None]:
        """explain() for every index, one measure per segment (for reports that cover every period)."""
        explained: list[tuple[Segment, Measure, int] | None] = [None] * len(self.days)
        bounds = [first for first, _ in self.pieces[1:]] + [len(self.days)]
        for (first, segment), end in zip(self.pieces, bounds, strict=True):
            m = self.computation.measure_for(segment, self.days[first:end], explain=True)
            for i in range(end - first):
                explained[first + i] = (segment, m, i)
        return explained


@dataclass(slots=True)
class ModificationRecord:
    contract_id: str
    version: int
    effective_date: date
    treatment: ModificationTreatment
    overridden: bool
    rationale: str
    prospective: list[str]
    catch_up: list[str]
    added: list[str]
    catch_up_amounts: dict[str, int]
    causing_event_id: str


# --------------------------------------------------------------------------------- one contract


class ContractComputation:
    """Cumulative revenue of one contract for one state of knowledge (the versions and events then known)."""

    def __init__(
        self,
        versions: list[CompiledVersion],
        events: dict[str, list[ObligationEvent]],
        vc_events: list[VariableConsiderationEstimate],
        periods: PeriodIndex,
        policy: ProgressRounding,
    ) -> None:
        self.versions = sorted(versions, key=lambda v: (v.effective, v.number))
        self.events = events
        self.periods = periods
        self.policy = policy
        timeline: dict[str, tuple[list[int], list[list[Outcome]]]] = {}
        for estimate in sorted(vc_events, key=lambda e: (e.on, e.id)):
            days, outcomes = timeline.setdefault(estimate.vc_id, ([], []))
            days.append(estimate.on.toordinal())
            outcomes.append(estimate.outcomes)
        self.vc_timeline = timeline
        self.segments: dict[str, list[Segment]] = {}
        self.step_cache: dict[tuple[int, int], StepTable] = {}
        self.obligation_order: list[str] = []
        self.modifications: list[ModificationRecord] = []
        self._build()

    # -- building segments from versions

    def _group(
        self, version: CompiledVersion, members: list[str], fixed: int, vcs: list[VariableConsideration]
    ) -> AllocationGroup:
        contract = version.contract
        allocated = [
            m for m in members if not isinstance(version.obligations[m].pattern, RightToInvoicePattern)
        ]
        ranges: list[tuple[int, int] | None] = []
        for m in allocated:
            r = version.obligations[m].ssp_range
            ranges.append(
                None
                if r is None
                else (to_minor_units(r.low, version.exponent), to_minor_units(r.high, version.exponent))
            )
        evidence = contract.discount_evidence
        override = contract.allocation_override
        rule = AllocationRule(
            obligation_ids=tuple(allocated),
            ssp=tuple(version.ssp(m) for m in allocated),
            ssp_range=tuple(ranges),
            discount_subset=tuple(t for t in evidence.obligation_ids if t in allocated) if evidence else (),
            bundle_price=to_minor_units(evidence.bundle_price, version.exponent) if evidence else 0,
            override=(
                {
                    k: to_minor_units(v, version.exponent)
                    for k, v in override.amounts.items()
                    if k in allocated
                }
                if override
                else None
            ),
            override_reason=override.reason if override else "",
            field_prefix=f"contracts[{version.index}].obligations",
        )
        group = AllocationGroup(rule, fixed, vcs, self.vc_timeline, version.exponent, version.number)
        try:
            group.at(version.effective)
        except RevenueRuleError as error:
            field_path = error.field or ""
            if field_path.startswith(("allocation_override", "discount_evidence")):
                field_path = f"contracts[{version.index}].{field_path}"
            raise RevenueRuleError(error.reason, field_path or version.field()) from None
        return group

    def _segment_mode(self, obligation: PerformanceObligation, default: SegmentMode) -> SegmentMode:
        return "right_to_invoice" if isinstance(obligation.pattern, RightToInvoicePattern) else default

    def _build(self) -> None:
        first = self.versions[0]
        group = self._group(
            first, list(first.order), first.fixed, list(first.contract.variable_consideration)
        )
        for oid in first.order:
            obligation = first.obligations[oid]
            self.segments[oid] = [
                Segment(0, first, obligation, self._segment_mode(obligation, "inception"), group)
            ]
            self.obligation_order.append(oid)
        for previous, version in zip(self.versions, self.versions[1:], strict=False):
            self._modify(previous, version)

    def _modify(self, old: CompiledVersion, new: CompiledVersion) -> None:
        day_before = new.effective - 1
        facts = new.contract.modification or ModificationFacts()
        kept = [o for o in old.order if o in new.obligations]
        added = [o for o in new.order if o not in old.obligations]
        removed = [o for o in self.segments if o not in new.obligations]
        recognised: dict[str, int] = {}
        satisfied: dict[str, bool] = {}
        for oid, history in self.segments.items():
            in_force = next((s for s in reversed(history) if s.start <= day_before), None)
            if in_force is None:  # the obligation did not exist yet
                recognised[oid], satisfied[oid] = 0, False
                continue
            m = self.measure_for(in_force, [day_before])
            value: list[int] = []
            self._apply(in_force, m, [day_before], value, [])
            recognised[oid] = value[0]
            satisfied[oid] = in_force.mode == "frozen" or (m.nums[0] >= m.dens[0] and m.earned is None)
        unsatisfied = [o for o in kept if not satisfied[o]]

        treatment: ModificationTreatment
        distinct: dict[str, bool] = {}
        if facts.override is not None:
            treatment = facts.override
            rationale = facts.rationale or ""
            for oid in unsatisfied:
                distinct[oid] = treatment is not ModificationTreatment.CUMULATIVE_CATCH_UP
            if treatment is ModificationTreatment.MIXED:
                distinct = {o: self._remaining_distinct(o, new, facts) for o in unsatisfied}
        else:
            old_vcs = {v.id for v in old.contract.variable_consideration}
            added_ssp = [new.ssp(o) for o in added]
            increase = new.fixed - old.fixed
            priced_at_ssp = facts.priced_at_ssp
            if priced_at_ssp is None:
                priced_at_ssp = all(s is not None for s in added_ssp) and increase == sum(
                    s or 0 for s in added_ssp
                )
            # Only a contract that merely adds goods can be a separate contract; compare the rest only then.
            unchanged = (
                bool(added)
                and facts.added_goods_distinct
                and not removed
                and all(
                    old.obligations[o].pattern == new.obligations[o].pattern and old.ssp(o) == new.ssp(o)
                    for o in kept
                )
                and old_vcs <= {v.id for v in new.contract.variable_consideration}
            )
            if added and facts.added_goods_distinct and priced_at_ssp and unchanged:
                treatment = ModificationTreatment.SEPARATE_CONTRACT
                rationale = "distinct goods or services added at their standalone selling price (IFRS 15.20)"
            else:
                distinct = {o: self._remaining_distinct(o, new, facts) for o in unsatisfied}
                if all(distinct.values()):
                    treatment = ModificationTreatment.PROSPECTIVE
                    rationale = (
                        "remaining goods or services are distinct from those transferred: termination of the "
                        "old contract and creation of a new one (IFRS 15.21(a))"
                    )
                elif not any(distinct.values()):
                    treatment = ModificationTreatment.CUMULATIVE_CATCH_UP
                    rationale = (
                        "remaining goods or services form part of a partially satisfied obligation: "
                        "cumulative catch-up (IFRS 15.21(b))"
                    )
                else:
                    treatment = ModificationTreatment.MIXED
                    rationale = (
                        "remaining goods or services are partly distinct: mixed treatment (IFRS 15.21(c))"
                    )
            if not priced_at_ssp and added and facts.added_goods_distinct and unchanged:
                rationale += "; the price of the added goods does not reflect their standalone selling price"

        record = ModificationRecord(
            contract_id=new.contract.contract_id,
            version=new.number,
            effective_date=new.contract.effective_date,
            treatment=treatment,
            overridden=facts.override is not None,
            rationale=rationale,
            prospective=[],
            catch_up=[],
            added=added,
            catch_up_amounts={},
            causing_event_id=new.contract.causing_event_id,
        )
        self.modifications.append(record)
        for oid in added:
            if oid not in self.segments:
                self.segments[oid] = []
                self.obligation_order.append(oid)

        if treatment is ModificationTreatment.SEPARATE_CONTRACT:
            old_vcs = {v.id for v in old.contract.variable_consideration}
            vcs = [v for v in new.contract.variable_consideration if v.id not in old_vcs]
            group = self._group(new, added, new.fixed - old.fixed, vcs)
            for oid in added:
                obligation = new.obligations[oid]
                self.segments[oid].append(
                    Segment(
                        new.effective,
                        new,
                        obligation,
                        self._segment_mode(obligation, "inception"),
                        group,
                        treatment="separate_contract",
                    )
                )
            return

        # Termination + new contract and/or catch-up: the price still to allocate is the modified contract's
        # price less the revenue already recognised on what was transferred (distinct remainders, satisfied
        # and removed obligations). Catch-up obligations are re-measured in full: their revenue stays in.
        for oid in list(self.segments):
            if oid in added:
                continue
            if oid not in new.obligations or satisfied[oid]:
                last_segment = self.segments[oid][-1]
                self.segments[oid].append(
                    Segment(
                        new.effective,
                        last_segment.version,
                        last_segment.obligation,
                        "frozen",
                        None,
                        base=recognised[oid],
                        treatment="frozen",
                    )
                )
        catch_up = [o for o in unsatisfied if not distinct.get(o, True)]
        prospective = [o for o in unsatisfied if distinct.get(o, True)]
        deducted = sum(v for o, v in recognised.items() if o not in catch_up)
        members = [o for o in new.order if o in added or o in unsatisfied]
        group = self._group(new, members, new.fixed - deducted, list(new.contract.variable_consideration))
        for oid in members:
            obligation = new.obligations[oid]
            if oid in added:
                segment = Segment(
                    new.effective,
                    new,
                    obligation,
                    self._segment_mode(obligation, "inception"),
                    group,
                    treatment=str(treatment),
                )
            elif oid in catch_up:
                segment = Segment(
                    new.effective,
                    new,
                    obligation,
                    self._segment_mode(obligation, "catch_up"),
                    group,
                    treatment="cumulative_catch_up",
                )
            else:
                m = self._measure(new, obligation, [day_before])
                segment = Segment(
                    new.effective,
                    new,
                    obligation,
                    self._segment_mode(obligation, "prospective"),
                    group,
                    base=recognised[oid],
                    p0=(m.nums[0], m.dens[0]),
                    treatment="prospective",
                )
                if segment.mode == "right_to_invoice":
                    segment.p0 = ((m.earned or [0])[0], 1)
            self.segments[oid].append(segment)
        record.prospective, record.catch_up = prospective, catch_up
        for oid in catch_up:
            # Catch-up = the re-measured obligation at the modification date less what was recognised.
            segment = self.segments[oid][-1]
            re_measured: list[int] = []
            m = self._measure(new, segment.obligation, [day_before])
            self._apply(segment, m, [new.effective], re_measured, [])
            record.catch_up_amounts[oid] = re_measured[0] - recognised[oid]

    def _remaining_distinct(self, oid: str, new: CompiledVersion, facts: ModificationFacts) -> bool:
        if oid in facts.remaining_distinct:
            return facts.remaining_distinct[oid]
        return new.obligations[oid].pattern.kind in DISTINCT_REMAINDER_BY_DEFAULT

    # -- evaluation

    def _measure(
        self,
        version: CompiledVersion,
        obligation: PerformanceObligation,
        days: Sequence[int],
        explain: bool = False,
    ) -> Measure:
        return measure(
            obligation.pattern,
            self.events.get(obligation.id, ()),
            days,
            self.policy,
            self.periods,
            version.exponent,
            version.effective,
            explain,
            self.step_cache,
        )

    def measure_for(self, segment: Segment, days: Sequence[int], explain: bool = False) -> Measure:
        return self._measure(segment.version, segment.obligation, days, explain)

    def _evaluate(self, oid: str, days: Sequence[int], first_index: int = 0) -> Track:
        segments = self.segments[oid]
        starts = [s.start for s in segments]
        cumulative: list[int] = []
        expected: list[int] = []
        pieces: list[tuple[int, Segment]] = []
        position = 0
        while position < len(days):
            j = bisect.bisect_right(starts, days[position]) - 1
            if j < 0:  # before the obligation existed
                cumulative.append(0)
                expected.append(0)
                position += 1
                continue
            end = bisect.bisect_left(days, starts[j + 1], position) if j + 1 < len(starts) else len(days)
            segment = segments[j]
            chunk = days[position:end]
            m = self._measure(segment.version, segment.obligation, chunk)
            pieces.append((first_index + position, segment))
            self._apply(segment, m, chunk, cumulative, expected)
            position = end
        return Track(array("q", cumulative), array("q", expected), pieces, days, self)

    @staticmethod
    def _apply(
        segment: Segment, m: Measure, days: Sequence[int], cumulative: list[int], expected: list[int]
    ) -> None:
        mode = segment.mode
        if mode == "frozen":
            cumulative.extend([segment.base] * len(days))
            expected.extend([segment.base] * len(days))
            return
        if mode == "right_to_invoice":
            assert m.earned is not None
            # p0 holds the amount earned before the segment started (zero at inception).
            values = [segment.base + e - segment.p0[0] for e in m.earned]
            cumulative.extend(values)
            expected.extend(values)
            return
        group = segment.group
        assert group is not None
        oid = segment.obligation.id
        nums, dens = m.nums, m.dens
        carve, at_cost = m.carve_out, m.at_cost
        n0, d0 = segment.p0
        if not group.vcs:
            allocated = group.at(days[0])[oid] if days else 0
            # Hot paths: one allocation for the whole chunk, integer arithmetic only. With one denominator and
            # non-negative terms, half-up rounding is inlined as (2x + d) // 2d.
            d = m.common_den
            if d is not None and allocated >= 0 and carve is None:
                if mode != "prospective":
                    twice = 2 * allocated
                    cumulative.extend([(twice * n + d) // (2 * d) for n in nums])
                    expected.extend([allocated] * len(days))
                    return
                if not nums or nums[0] * d0 >= n0 * d:  # time only moves forward from p0
                    base, span = segment.base, 2 * d * (d0 - n0)
                    twice = 2 * allocated
                    cumulative.extend([base + (twice * (n * d0 - n0 * d) + span // 2) // span for n in nums])
                    expected.extend([base + allocated] * len(days))
                    return
            if mode != "prospective" and carve is None:
                cumulative.extend(
                    [round_half_up_div(allocated * n, d) for n, d in zip(nums, dens, strict=True)]
                )
                expected.extend([allocated] * len(days))
                return
            if mode == "prospective":
                base = segment.base
                cumulative.extend(
                    [
                        base + round_half_up_div(allocated * (n * d0 - n0 * d), d * (d0 - n0))
                        for n, d in zip(nums, dens, strict=True)
                    ]
                )
                expected.extend([base + allocated] * len(days))
                return
        for i, day in enumerate(days):
            a = group.at(day)[oid] if group.vcs else allocated
            n, d = nums[i], dens[i]
            if mode == "prospective":
                value = segment.base + round_half_up_div(a * (n * d0 - n0 * d), d * (d0 - n0))
                expected.append(segment.base + a)
            else:
                c = carve[i] if carve is not None else 0
                value = round_half_up_div((a - c) * n, d) + (at_cost[i] if at_cost is not None else 0)
                expected.append(a)
            cumulative.append(value)

    def tracks(self, days: Sequence[int]) -> dict[str, Track]:
        return {oid: self._evaluate(oid, days) for oid in self.obligation_order}


# ------------------------------------------------------------------------------- the whole scenario


@dataclass(slots=True)
class ContractOutcome:
    """Everything computed for one contract; the result module turns it into reports."""

    contract_id: str
    legal_entity: str
    currency: str
    exponent: int
    latest: CompiledVersion
    obligation_order: list[str]
    tracks: dict[str, Track]  # knowledge at as_of
    reported: dict[str, array[int]]  # reported cumulative per period (closed periods frozen)
    own: dict[
        str, array[int]
    ]  # the period's own revenue, when some period saw other knowledge (else derived)
    adjustment: dict[str, array[int]]  # corrections of earlier periods booked in this period
    knowledge_tracks: list[dict[str, Track]]  # per period: the tracks the period was reported with
    modifications: list[ModificationRecord]
    billed: array[int]  # invoices booked per period
    paid: array[int]
    billing_causes: dict[int, list[str]]  # period index -> invoice / payment ids

    def own_amounts(self, obligation_id: str) -> array[int]:
        """Revenue earned in each period with the knowledge the period was reported with."""
        stored = self.own.get(obligation_id)
        if stored is not None:
            return stored
        # One state of knowledge for every period: own revenue is the difference of cumulative figures
        # (derived on demand rather than stored for every obligation of a portfolio).
        cumulative = self.reported[obligation_id]
        return array("q", [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)])


@dataclass(slots=True)
class EngineRun:
    scenario: Scenario
    as_of: date
    periods: PeriodIndex
    as_of_index: int
    closed_on: list[date | None]
    contracts: list[ContractOutcome]


def _horizon(scenario: Scenario, as_of: date) -> tuple[date, date]:
    first = min(c.effective_date for c in scenario.contracts)
    last = as_of
    for contract in scenario.contracts:
        for obligation in contract.obligations:
            pattern = obligation.pattern
            if isinstance(pattern, RatablePattern):
                first, last = min(first, pattern.start), max(last, pattern.end)
            elif isinstance(pattern, PointInTimePattern) and pattern.satisfied_on:
                last = max(last, pattern.satisfied_on)
        last = max(last, contract.effective_date)
    for event in scenario.events:
        last = max(last, event.on)
    return first, last


def default_as_of(scenario: Scenario) -> date:
    days = [c.known_from for c in scenario.contracts] + [e.known_from for e in scenario.events]
    return max(days)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a run builds its (acyclic) structures.

    A portfolio run allocates millions of small objects and none of them needs the cycle collector: it would
    rescan the growing heap again and again (measured at N = 10,000: about 40 % of the run). Reference
    counting still frees everything; the collector's previous state is restored on exit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(scenario: Scenario, as_of: date | None = None) -> EngineRun:
    with gc_paused():
        return _run(scenario, as_of)


def _run(scenario: Scenario, as_of: date | None) -> EngineRun:
    as_of = as_of or scenario.as_of or default_as_of(scenario)
    as_of_ordinal = as_of.toordinal()
    first, last = _horizon(scenario, as_of)
    periods = PeriodIndex(periods_covering(scenario.calendar, first, last))
    period_count = len(periods.periods)
    ends = periods.end_ordinals
    as_of_index = min(periods.index_of(as_of), period_count - 1)

    # Closing period k closes every earlier period too; a period's knowledge cut is its earliest close.
    close_day: list[int | None] = [None] * period_count
    for index, event in enumerate(scenario.events):
        if isinstance(event, PeriodClose) and event.known_from <= as_of:
            if event.period not in periods.position:
                raise RevenueRuleError(
                    f"unknown period {event.period!r} for this calendar", f"events[{index}].period"
                )
            k = periods.position[event.period]
            day = event.on.toordinal()
            close_day[k] = day if close_day[k] is None else min(day, close_day[k] or day)
    running: int | None = None
    for k in range(period_count - 1, -1, -1):
        if close_day[k] is not None:
            running = close_day[k] if running is None else min(running, close_day[k] or running)
        close_day[k] = running
    knowledge = [c if c is not None else as_of_ordinal for c in close_day]
    distinct_cuts = sorted(set(knowledge))

    versions_by_contract: dict[str, list[CompiledVersion]] = defaultdict(list)
    for index, contract in enumerate(scenario.contracts):
        versions_by_contract[contract.contract_id].append(compile_version(contract, index))
    events_by_contract: dict[str, list[tuple[int, ContractEvent]]] = defaultdict(list)
    billing_by_contract: dict[str, list[Invoice | Payment]] = defaultdict(list)
    for event in scenario.events:
        if not isinstance(event, PeriodClose):
            events_by_contract[event.contract_id].append((event.known_from.toordinal(), event))
            if isinstance(event, Invoice | Payment):
                billing_by_contract[event.contract_id].append(event)

    no_adjustments = array("q", [0] * period_count)  # shared, never mutated
    outcomes = []
    for contract_id in sorted(versions_by_contract):
        versions = versions_by_contract[contract_id]
        items = sorted(
            [(v.contract.known_from.toordinal(), 0, v.number, "", v) for v in versions]
            + [(day, 1, 0, e.id, e) for day, e in events_by_contract.get(contract_id, [])],
            key=lambda item: item[:4],  # event ids break ties: the input order never matters
        )
        known_days = [item[0] for item in items]
        computed: dict[int, dict[str, Track]] = {}
        computation_for: dict[int, ContractComputation] = {}
        # Periods share few distinct knowledge cuts (close dates, as_of): one computation per distinct state.
        signature_of = {cut: bisect.bisect_right(known_days, cut) for cut in distinct_cuts}
        for signature in {signature_of[cut] for cut in distinct_cuts}:
            if signature not in computed:
                known = [item[4] for item in items[:signature]]
                known_versions = [v for v in known if isinstance(v, CompiledVersion)]
                if not known_versions:
                    computed[signature] = {}
                else:
                    computation = _computation(known_versions, known, periods, scenario.progress_rounding)
                    computed[signature] = computation.tracks(ends)
                    computation_for[signature] = computation
        per_period = [computed[signature_of[cut]] for cut in knowledge]
        final_signature = bisect.bisect_right(known_days, as_of_ordinal)
        if final_signature not in computation_for:
            continue  # the contract was not known yet at as_of
        final = computation_for[final_signature]
        final_tracks = computed[final_signature]
        reported: dict[str, array[int]] = {}
        own: dict[str, array[int]] = {}
        adjustment: dict[str, array[int]] = {}
        single_knowledge = all(tracks is final_tracks for tracks in per_period)
        for oid in final.obligation_order:
            if single_knowledge:
                # Every period was reported with the same knowledge: no adjustments, own = differences.
                cumulative = final_tracks[oid].cumulative
                reported[oid] = cumulative
                adjustment[oid] = no_adjustments
                continue
            rep, own_list, adj_list = [], [], []
            previous = 0
            for k in range(period_count):
                track = per_period[k].get(oid)
                here = track.cumulative[k] if track else 0
                before = track.cumulative[k - 1] if track and k else 0
                rep.append(here)
                own_list.append(here - before)
                adj_list.append(before - previous)
                previous = here
            reported[oid], own[oid], adjustment[oid] = (
                array("q", rep),
                array("q", own_list),
                array("q", adj_list),
            )
        billed, paid = array("q", no_adjustments), array("q", no_adjustments)
        causes: dict[int, list[str]] = {}
        latest = max(final.versions, key=lambda v: (v.effective, v.number))
        for billing in sorted(billing_by_contract.get(contract_id, []), key=lambda b: (b.known_from, b.id)):
            if billing.known_from <= as_of and billing.on <= as_of:
                k = periods.index_of(billing.on)
                recorded = billing.known_from.toordinal()
                while k < period_count and knowledge[k] < recorded:
                    k += 1
                if k >= period_count:
                    continue
                amount = to_minor_units(billing.amount, latest.exponent)
                (billed if isinstance(billing, Invoice) else paid)[k] += amount
                causes.setdefault(k, []).append(billing.id)
        outcomes.append(
            ContractOutcome(
                contract_id=contract_id,
                legal_entity=latest.contract.legal_entity,
                currency=latest.contract.currency,
                exponent=latest.exponent,
                latest=latest,
                obligation_order=final.obligation_order,
                tracks=final_tracks,
                reported=reported,
                own=own,
                adjustment=adjustment,
                knowledge_tracks=per_period,
                modifications=final.modifications,
                billed=billed,
                paid=paid,
                billing_causes=causes,
            )
        )
    closed_on = [date.fromordinal(c) if c is not None else None for c in close_day]
    return EngineRun(scenario, as_of, periods, as_of_index, closed_on, outcomes)


def _computation(
    versions: list[CompiledVersion], known: Sequence[object], periods: PeriodIndex, policy: ProgressRounding
) -> ContractComputation:
    by_obligation: dict[str, list[ObligationEvent]] = defaultdict(list)
    vc_events: list[VariableConsiderationEstimate] = []
    for item in known:
        if isinstance(item, VariableConsiderationEstimate):
            vc_events.append(item)
        elif isinstance(item, OBLIGATION_EVENT_TYPES):
            by_obligation[item.obligation_id].append(item)
    for events in by_obligation.values():
        events.sort(key=lambda e: (e.on, e.id))
    return ContractComputation(versions, dict(by_obligation), vc_events, periods, policy)
