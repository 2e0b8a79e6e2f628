"""Sales- and usage-based royalties for a licence of intellectual property (IFRS 15.B63, ASC 606-10-55-65).

A royalty is never estimated: each reported amount is split over the obligations it relates to (by their
SSPs in the version in force on the sale date) and recognised once both the sale or usage has occurred and
the obligation has begun to be satisfied. It is added on top of the obligation's revenue from the
transaction price, so it takes no part in allocations, modifications or the remaining obligations.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from pssync.revenue.allocation import largest_remainder
from pssync.revenue.compiled import CompiledVersion, to_minor_units
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.evaluation import Measurer, Track
from pssync.revenue.models import EARNED_AS_BILLED, RoyaltyReported

# obligation id -> (sale days, minor units) in date order
RoyaltyShares = dict[str, tuple[list[int], list[int]]]


def royalty_shares(
    versions: Sequence[CompiledVersion], royalties: Sequence[RoyaltyReported]
) -> RoyaltyShares:
    """Each royalty split over its obligations; `versions` sorted by (effective date, number)."""
    shares: dict[str, list[tuple[int, int]]] = {}
    starts = [v.effective for v in versions]
    for royalty in royalties:
        day = royalty.on.toordinal()
        version = versions[max(bisect.bisect_right(starts, day) - 1, 0)]
        targets = royalty.obligation_ids or [
            o for o in version.order if not isinstance(version.obligations[o].pattern, EARNED_AS_BILLED)
        ]
        missing = [t for t in targets if t not in version.obligations]
        if missing or not targets:
            raise RevenueRuleError(
                f"royalty {royalty.id} relates to {', '.join(missing) or 'no obligation'}, not an obligation "
                f"of version {version.number} in force on {royalty.on}",
                "obligation_ids",
            )
        try:
            amount = to_minor_units(royalty.amount, version.exponent)
        except RevenueRuleError as error:
            raise RevenueRuleError(f"royalty {royalty.id}: {error.reason}", "amount") from None
        weights = [version.ssp(t) or 0 for t in targets]
        split = largest_remainder(amount, weights if sum(weights) else [1] * len(targets))
        for target, share in zip(targets, split, strict=True):
            shares.setdefault(target, []).append((day, share))
    return {
        oid: ([d for d, _ in entries], [a for _, a in entries])
        for oid, entries in ((o, sorted(e)) for o, e in shares.items())
    }


def add_royalties(tracks: dict[str, Track], shares: RoyaltyShares, measurer: Measurer) -> None:
    """Add each obligation's royalties to its track from the first day both the sale and some satisfaction
    of the obligation have occurred (B63: the later of the two)."""
    for oid, (sale_days, amounts) in shares.items():
        track = tracks.get(oid)
        if track is None or not track.pieces:
            continue
        started = _started(track, measurer)
        running = 0
        reported = 0
        for k, day in enumerate(track.days):
            while reported < len(sale_days) and sale_days[reported] <= day:
                running += amounts[reported]
                reported += 1
            if started[k]:
                track.cumulative[k] += running
                track.expected_total[k] += running


def _started(track: Track, measurer: Measurer) -> list[bool]:
    """Per evaluated day, whether the obligation had been satisfied at least in part by then."""
    segment = track.pieces[-1][1]  # the obligation as last stated measures its own progress
    m = measurer.measure(segment.version, segment.obligation, track.days)
    started, seen = [], False
    for n in m.nums:
        seen = seen or n > 0
        started.append(seen)
    return started
