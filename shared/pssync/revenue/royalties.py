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
    """Each royalty split over its obligations; `versions` sorted by (effective date, number).

    Reports split the same way (same obligations, same SSPs) are split on their running total, each report's
    shares being the change in the split total: the cumulative amount is rounded, never each report, so an
    obligation's royalties do not depend on how the sales were reported (issue 11 item 8; two reports of
    0.01 over two equal obligations give 0.01 each, as one report of 0.02 does, not 0.02 and 0.00)."""
    # (obligations, weights) -> reports in sale-date order: (day, id, minor units)
    splits: dict[tuple[tuple[str, ...], tuple[int, ...]], list[tuple[int, str, int]]] = {}
    for royalty in royalties:
        version, targets = royalty_targets(versions, royalty)
        try:
            amount = to_minor_units(royalty.amount, version.exponent)
        except RevenueRuleError as error:
            raise RevenueRuleError(f"royalty {royalty.id}: {error.reason}", "amount") from None
        weights = [version.ssp(t) or 0 for t in targets]
        key = (tuple(targets), tuple(weights if sum(weights) else [1] * len(targets)))
        splits.setdefault(key, []).append((royalty.on.toordinal(), royalty.id, amount))
    shares: dict[str, list[tuple[int, int]]] = {}
    for (targets_key, weights_key), reports in splits.items():
        running = 0
        previous = [0] * len(targets_key)
        for day, _, amount in sorted(reports):
            running += amount
            split = _split(running, list(weights_key))
            for target, now, before in zip(targets_key, split, previous, strict=True):
                shares.setdefault(target, []).append((day, now - before))
            previous = split
    return {
        oid: ([d for d, _ in entries], [a for _, a in entries])
        for oid, entries in ((o, sorted(e)) for o, e in shares.items())
    }


def royalty_targets(
    versions: Sequence[CompiledVersion], royalty: RoyaltyReported
) -> tuple[CompiledVersion, list[str]]:
    """The version in force on the royalty's sale date (`versions` sorted by (effective date, number)) and
    the obligations the royalty is split over; RevenueRuleError (field `obligation_ids`, which the engine
    prefixes with the event's place) when it names an obligation that version does not have, or none is
    left (every obligation earned as billed)."""
    starts = [v.effective for v in versions]
    version = versions[max(bisect.bisect_right(starts, royalty.on.toordinal()) - 1, 0)]
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
    return version, targets


def _split(total: int, weights: list[int]) -> list[int]:
    """`total` (possibly negative: corrections) by weights, rounded once, summing exactly."""
    if total < 0:
        return [-share for share in largest_remainder(-total, weights)]
    return largest_remainder(total, weights)


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
