"""Helpers shared by the reports: decimals from minor units, period status, explanations of figures."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import ParamSpec, TypeVar

from pssync.revenue.engine import ContractOutcome, EngineRun, gc_paused
from pssync.revenue.evaluation import Segment
from pssync.revenue.models import RatablePattern
from pssync.revenue.periods import Period
from pssync.revenue.progress import Measure
from pssync.revenue.result.models import PeriodStatus

P = ParamSpec("P")
T = TypeVar("T")
Explained = tuple[Segment, Measure, int]  # segment in force, its measure, index of the day in the measure


def collector_paused(method: Callable[P, T]) -> Callable[P, T]:
    """Build report models with the cycle collector paused (they are acyclic; see engine.gc_paused): with a
    large portfolio alive, collections triggered by the new objects would rescan it again and again."""

    @functools.wraps(method)
    def paused(*args: P.args, **kwargs: P.kwargs) -> T:
        with gc_paused():
            return method(*args, **kwargs)

    return paused


def dec(units: int, exponent: int) -> Decimal:
    """Minor units as an exact decimal amount."""
    return Decimal(units).scaleb(-exponent)


def period_revenue(
    outcome: ContractOutcome, periods: Sequence[Period], obligation_id: str | None = None
) -> dict[str, Decimal]:
    """Revenue booked per period (own + adjustment; forecast after as_of), one obligation or all."""
    ids = [obligation_id] if obligation_id else outcome.obligation_order
    totals = [0] * len(periods)
    for oid in ids:
        for k, (own, adj) in enumerate(zip(outcome.own_amounts(oid), outcome.adjustment[oid], strict=True)):
            totals[k] += own + adj
    return {p.key: dec(t, outcome.exponent) for p, t in zip(periods, totals, strict=True)}


def period_status(run: EngineRun, k: int) -> PeriodStatus:
    if run.closed_on[k] is not None:
        return "closed"
    return "open" if k <= run.as_of_index else "forecast"


def period_statuses(run: EngineRun, count: int) -> list[PeriodStatus]:
    """period_status of periods 0..count-1 in one go (the stream asks for them once per contract)."""
    as_of_index = run.as_of_index
    return [
        "closed" if closed is not None else "open" if k <= as_of_index else "forecast"
        for k, closed in enumerate(run.closed_on[:count])
    ]


def explainer(outcome: ContractOutcome) -> Callable[[str, int], Explained | None]:
    """explain(obligation, period) for the knowledge each period was reported with, one measure per segment
    and track rather than one per line."""
    cache: dict[int, list[Explained | None]] = {}

    def explain(oid: str, k: int) -> Explained | None:
        track = outcome.knowledge_tracks[k].get(oid)
        if track is None:
            return None
        table = cache.get(id(track))
        if table is None:
            table = cache[id(track)] = track.explain_all()
        return table[k]

    return explain


def cause(explained: Explained) -> str:
    """The event that last moved the figure, else the one that caused the contract version."""
    segment, m, i = explained
    return (m.causes[i] if m.causes else None) or segment.version.contract.causing_event_id


def progress_text(pattern: object, m: Measure, i: int) -> str:
    if isinstance(pattern, RatablePattern):
        unit = "days" if pattern.basis == "daily" else "periods"
        return f"{m.nums[i]}/{m.dens[i]} {unit} of {pattern.start}..{pattern.end} elapsed"
    if m.earned is not None:
        return f"earned to date {m.earned[i]} minor units"
    return f"progress {m.nums[i]}/{m.dens[i]}"
