"""Period reporting: revenue reported per period from the tracks each period was reported with.

Reported revenue of period k is C_k(k) - C_{k-1}(k-1) (C_j: cumulative revenue with period j's knowledge),
split into the period's own revenue C_k(k) - C_k(k-1) and an adjustment for earlier periods
C_k(k-1) - C_{k-1}(k-1). Closed figures are thus never rewritten; late facts land as adjustments.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from pssync.revenue.evaluation import Track

Figures = dict[str, "array[int]"]


def period_figures(
    obligation_order: Sequence[str],
    per_period: Sequence[dict[str, Track]],
    final_tracks: dict[str, Track],
    zeros: array[int],
) -> tuple[Figures, Figures, Figures]:
    """(reported cumulative, own revenue, adjustment) per obligation and period.

    When every period was reported with the final knowledge, reported is the final track itself, adjustments
    are the shared `zeros` and own revenue is left out (derived on demand as differences of cumulative
    figures), so a portfolio does not store three arrays per obligation.
    """
    reported: Figures = {}
    own: Figures = {}
    adjustment: Figures = {}
    single_knowledge = all(tracks is final_tracks for tracks in per_period)
    for oid in obligation_order:
        if single_knowledge:
            reported[oid] = final_tracks[oid].cumulative
            adjustment[oid] = zeros
            continue
        reported[oid], own[oid], adjustment[oid] = _restated(oid, per_period)
    return reported, own, adjustment


def _restated(oid: str, per_period: Sequence[dict[str, Track]]) -> tuple[array[int], array[int], array[int]]:
    """Figures of one obligation when periods saw different knowledge (some were closed before late facts)."""
    rep, own, adj = [], [], []
    previous = 0
    for k, tracks in enumerate(per_period):
        track = tracks.get(oid)
        here = track.cumulative[k] if track else 0
        before = track.cumulative[k - 1] if track and k else 0
        rep.append(here)
        own.append(here - before)
        adj.append(before - previous)
        previous = here
    return array("q", rep), array("q", own), array("q", adj)
