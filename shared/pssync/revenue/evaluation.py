"""Segments and their evaluation: cumulative revenue of one obligation at a sorted list of days.

A segment is how one obligation is measured from one contract version on (see engine.py for the model):

    inception / catch-up:  A(t) x p(t)                        (A: allocated price, p: progress)
    prospective:           R + A(t) x (p(t) - p0) / (1 - p0)  (R, p0: revenue and progress at the
                                                               modification; A: the remaining price)
    frozen:                R [+ C(t)]                         (satisfied or removed before a change; C: its
                                                               share of later changes in variable amounts
                                                               promised before, IFRS 15.90(a))
    transferred:           R + A(t)                           (prospective, but complete under the new
                                                               version already: nothing remains, p0 = 1)
    right to invoice:      R + earned(t) - earned(t0)         (no allocation involved)

in integer minor units, rounded half away from zero once per cumulative figure. A concession granted at a
modification for goods or services already transferred is subtracted from every figure of the segment.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from pssync.revenue.compiled import CompiledVersion
from pssync.revenue.consideration import AllocationGroup, CarriedChange
from pssync.revenue.models import EARNED_AS_BILLED, PerformanceObligation, ProgressRounding
from pssync.revenue.periods import PeriodIndex
from pssync.revenue.progress import Measure, ObligationEvent, StepTable, measure, round_half_up_div

# "inception" | "catch_up" | "prospective" | "transferred" | "frozen" | "right_to_invoice"
SegmentMode = str


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
    carry: CarriedChange | None = None  # frozen only: later price changes recognised at once (15.90(a))
    concession: int = 0  # price reduction for goods already transferred, booked on the segment's start


def segment_mode(obligation: PerformanceObligation, default: SegmentMode) -> SegmentMode:
    return "right_to_invoice" if isinstance(obligation.pattern, EARNED_AS_BILLED) else default


@dataclass(slots=True)
class Measurer:
    """Progress measures for one state of knowledge: the obligations' known events, the rounding policy."""

    events: dict[str, list[ObligationEvent]]
    periods: PeriodIndex
    policy: ProgressRounding
    step_cache: dict[tuple[int, int], StepTable] = field(default_factory=dict)

    def measure(
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
        return self.measure(segment.version, segment.obligation, days, explain)


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
    measurer: Measurer

    def explain(self, k: int) -> tuple[Segment, Measure, int] | None:
        """The segment in force at index k and its measure (with inputs and causes) at that day."""
        for first, segment in reversed(self.pieces):
            if k >= first:
                m = self.measurer.measure_for(segment, [self.days[k]], explain=True)
                return segment, m, 0
        return None

    def explain_all(self) -> list[tuple[Segment, Measure, int] | None]:
        """explain() for every index, one measure per segment (for reports that cover every period)."""
        explained: list[tuple[Segment, Measure, int] | None] = [None] * len(self.days)
        for first, end, segment, m in self.explained_pieces():
            for i in range(end - first):
                explained[first + i] = (segment, m, i)
        return explained

    def explained_pieces(self) -> list[tuple[int, int, Segment, Measure]]:
        """(first index, end index, segment, its measure with explanations over those days) per piece: what
        explain_all() spreads over every index, for callers that need only one thing per piece (the stream's
        version and cause references). Indices before the first piece have no explanation."""
        bounds = [first for first, _ in self.pieces[1:]] + [len(self.days)]
        return [
            (first, end, segment, self.measurer.measure_for(segment, self.days[first:end], explain=True))
            for (first, segment), end in zip(self.pieces, bounds, strict=True)
        ]


def evaluate(segments: list[Segment], days: Sequence[int], measurer: Measurer) -> Track:
    """The track of an obligation with these segments (sorted by start) at `days` (sorted ordinals)."""
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
        m = measurer.measure(segment.version, segment.obligation, chunk)
        pieces.append((position, segment))
        apply_segment(segment, m, chunk, cumulative, expected)
        position = end
    return Track(array("q", cumulative), array("q", expected), pieces, days, measurer)


def apply_segment(
    segment: Segment, m: Measure, days: Sequence[int], cumulative: list[int], expected: list[int]
) -> None:
    """Append the segment's cumulative revenue and expected total at each of `days` (measured by `m`)."""
    if not segment.concession:
        _apply_measured(segment, m, days, cumulative, expected)
        return
    first = len(cumulative)
    _apply_measured(segment, m, days, cumulative, expected)
    for i in range(first, len(cumulative)):
        cumulative[i] -= segment.concession
        expected[i] -= segment.concession


def _apply_measured(
    segment: Segment, m: Measure, days: Sequence[int], cumulative: list[int], expected: list[int]
) -> None:
    mode = segment.mode
    if mode == "frozen":
        carry = segment.carry
        base = segment.base
        values = [base] * len(days) if carry is None else [base + carry.amount(d) for d in days]
        cumulative.extend(values)
        expected.extend(values)
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
    if mode == "transferred":
        _apply_transferred(segment, group, days, cumulative, expected)
    elif group.varies or not _apply_fixed_price(segment, group, m, days, cumulative, expected):
        _apply_per_day(segment, group, m, days, cumulative, expected)


def _apply_transferred(
    segment: Segment, group: AllocationGroup, days: Sequence[int], cumulative: list[int], expected: list[int]
) -> None:
    """A prospective remainder with nothing left to transfer (p0 = 1, where (p - p0) / (1 - p0) has no
    value): the remaining consideration allocated to it is recognised at once, R + A(t), and re-estimates of
    variable consideration allocated to it are recognised as they happen (IFRS 15.88)."""
    oid = segment.obligation.id
    values = [segment.base + group.at(day)[oid] for day in days]
    cumulative.extend(values)
    expected.extend(values)


def _apply_fixed_price(
    segment: Segment,
    group: AllocationGroup,
    m: Measure,
    days: Sequence[int],
    cumulative: list[int],
    expected: list[int],
) -> bool:
    """Hot paths without variable consideration: one allocation for the whole chunk, integer arithmetic only.

    False (nothing appended) for cost-to-cost with uninstalled materials outside a prospective segment,
    which goes day by day."""
    allocated = group.at(days[0])[segment.obligation.id] if days else 0
    nums, dens = m.nums, m.dens
    n0, d0 = segment.p0
    prospective = segment.mode == "prospective"
    # With one denominator and non-negative terms, half-up rounding is inlined as (2x + d) // 2d.
    d = m.common_den
    if d is not None and allocated >= 0 and m.carve_out is None:
        if not prospective:
            twice = 2 * allocated
            cumulative.extend([(twice * n + d) // (2 * d) for n in nums])
            expected.extend([allocated] * len(days))
            return True
        if not nums or nums[0] * d0 >= n0 * d:  # time only moves forward from p0
            base, span = segment.base, 2 * d * (d0 - n0)
            twice = 2 * allocated
            cumulative.extend([base + (twice * (n * d0 - n0 * d) + span // 2) // span for n in nums])
            expected.extend([base + allocated] * len(days))
            return True
    if not prospective:
        if m.carve_out is not None:
            return False
        cumulative.extend([round_half_up_div(allocated * n, d) for n, d in zip(nums, dens, strict=True)])
        expected.extend([allocated] * len(days))
        return True
    base = segment.base
    cumulative.extend(
        [
            base + round_half_up_div(allocated * (n * d0 - n0 * d), d * (d0 - n0))
            for n, d in zip(nums, dens, strict=True)
        ]
    )
    expected.extend([base + allocated] * len(days))
    return True


def _apply_per_day(
    segment: Segment,
    group: AllocationGroup,
    m: Measure,
    days: Sequence[int],
    cumulative: list[int],
    expected: list[int],
) -> None:
    """Day by day: variable consideration re-allocated as estimated each day, or cost-to-cost with
    uninstalled materials (revenue = (allocated - carve-out) x progress + materials at cost)."""
    oid = segment.obligation.id
    fixed = None if group.varies or not days else group.at(days[0])[oid]
    n0, d0 = segment.p0
    carve, at_cost = m.carve_out, m.at_cost
    for i, day in enumerate(days):
        a = group.at(day)[oid] if fixed is None else fixed
        n, d = m.nums[i], m.dens[i]
        if segment.mode == "prospective":
            value = segment.base + round_half_up_div(a * (n * d0 - n0 * d), d * (d0 - n0))
            expected.append(segment.base + a)
        else:
            c = carve[i] if carve is not None else 0
            value = round_half_up_div((a - c) * n, d) + (at_cost[i] if at_cost is not None else 0)
            expected.append(a)
        cumulative.append(value)
