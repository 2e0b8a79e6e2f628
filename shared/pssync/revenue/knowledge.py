"""Knowledge cut-offs: which facts each period is reported with.

Period k is reported with the facts recorded on or before its close date; open and future periods use the
knowledge at `as_of`. Closing period k closes every earlier period too, so a period's cut-off is its own
earliest close or that of a later period. Periods share few distinct cut-offs (close dates, as_of), so a
contract is computed once per distinct state of knowledge, not once per period.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import date

from pssync.revenue.compiled import CompiledVersion
from pssync.revenue.computation import ContractComputation, computation_for
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.evaluation import Track
from pssync.revenue.models import ContractEvent, Event, PeriodClose, ProgressRounding
from pssync.revenue.periods import PeriodIndex

# (day pssync learned it, 0 for a version / 1 for an event, version number, event id, the fact)
KnownItem = tuple[int, int, int, str, CompiledVersion | ContractEvent]


def close_days(events: Sequence[Event], periods: PeriodIndex, as_of: date) -> list[int | None]:
    """Per period, the day (ordinal) its books were closed as known at `as_of`; None while it is open."""
    period_count = len(periods.periods)
    close_day: list[int | None] = [None] * period_count
    for index, event in enumerate(events):
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
    return close_day


def knowledge_cut_offs(close_day: Sequence[int | None], as_of_ordinal: int) -> list[int]:
    """Per period, the last day (ordinal) whose facts the period is reported with."""
    return [c if c is not None else as_of_ordinal for c in close_day]


def contract_history(
    versions: Sequence[CompiledVersion], events: Sequence[tuple[int, ContractEvent]]
) -> list[KnownItem]:
    """A contract's versions and (day known, event) pairs in the order pssync learned them."""
    return sorted(
        [(v.contract.known_from.toordinal(), 0, v.number, "", v) for v in versions]
        + [(day, 1, 0, e.id, e) for day, e in events],
        key=lambda item: item[:4],  # event ids break ties: the input order never matters
    )


def states_of_knowledge(
    history: Sequence[KnownItem],
    knowledge: Sequence[int],
    cuts: Sequence[int],
    as_of_ordinal: int,
    periods: PeriodIndex,
    policy: ProgressRounding,
) -> tuple[list[dict[str, Track]], ContractComputation | None, dict[str, Track]]:
    """Per period, the tracks of the contract as known at the period's cut-off; the computation with the
    knowledge at as_of (None when the contract was not known yet then) and its tracks.

    `cuts` are the distinct values of `knowledge`; periods with the same state of knowledge share one
    computation (and the same dict of tracks).
    """
    known_days = [item[0] for item in history]
    computed: dict[int, dict[str, Track]] = {}
    computations: dict[int, ContractComputation] = {}
    signature_of = {cut: bisect.bisect_right(known_days, cut) for cut in cuts}
    for signature in {signature_of[cut] for cut in cuts}:
        if signature not in computed:
            known = [item[4] for item in history[:signature]]
            known_versions = [v for v in known if isinstance(v, CompiledVersion)]
            if not known_versions:
                computed[signature] = {}
            else:
                computation = computation_for(known_versions, known, periods, policy)
                computed[signature] = computation.tracks(periods.end_ordinals)
                computations[signature] = computation
    per_period = [computed[signature_of[cut]] for cut in knowledge]
    final = bisect.bisect_right(known_days, as_of_ordinal)
    return per_period, computations.get(final), computed.get(final, {})
