"""Cumulative revenue of one contract for one state of knowledge (the versions and events then known)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pssync.revenue.compiled import CompiledVersion
from pssync.revenue.consideration import vc_timeline
from pssync.revenue.evaluation import Measurer, Track, evaluate
from pssync.revenue.models import ProgressRounding, RoyaltyReported, VariableConsiderationEstimate
from pssync.revenue.periods import PeriodIndex
from pssync.revenue.progress import OBLIGATION_EVENT_TYPES, ObligationEvent
from pssync.revenue.royalties import add_royalties, royalty_shares
from pssync.revenue.segments import build_segments


class ContractComputation:
    """The segments of every obligation of a contract, evaluated on demand at the days asked for."""

    def __init__(
        self,
        versions: list[CompiledVersion],
        events: dict[str, list[ObligationEvent]],
        vc_events: list[VariableConsiderationEstimate],
        periods: PeriodIndex,
        policy: ProgressRounding,
        royalties: list[RoyaltyReported] | None = None,
    ) -> None:
        self.versions = sorted(versions, key=lambda v: (v.effective, v.number))
        self.measurer = Measurer(events, periods, policy)
        built = build_segments(self.versions, self.measurer, vc_timeline(vc_events))
        self.segments = built.by_obligation
        self.obligation_order = built.order
        self.modifications = built.modifications
        self.royalties = royalty_shares(self.versions, royalties) if royalties else {}

    def tracks(self, days: Sequence[int]) -> dict[str, Track]:
        tracks = {oid: evaluate(self.segments[oid], days, self.measurer) for oid in self.obligation_order}
        if self.royalties:
            add_royalties(tracks, self.royalties, self.measurer)
        return tracks


def computation_for(
    versions: list[CompiledVersion], known: Sequence[object], periods: PeriodIndex, policy: ProgressRounding
) -> ContractComputation:
    """The computation of a contract from the versions and the events known (in any order)."""
    by_obligation: dict[str, list[ObligationEvent]] = defaultdict(list)
    vc_events: list[VariableConsiderationEstimate] = []
    royalties: list[RoyaltyReported] = []
    for item in known:
        if isinstance(item, VariableConsiderationEstimate):
            vc_events.append(item)
        elif isinstance(item, RoyaltyReported):
            royalties.append(item)
        elif isinstance(item, OBLIGATION_EVENT_TYPES):
            by_obligation[item.obligation_id].append(item)
    for events in by_obligation.values():
        events.sort(key=lambda e: (e.on, e.id))
    return ContractComputation(versions, dict(by_obligation), vc_events, periods, policy, royalties)
