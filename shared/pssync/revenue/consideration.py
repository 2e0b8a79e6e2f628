"""The transaction price of a group of obligations and its allocation, as variable consideration evolves.

A group is the set of obligations that share one price: a contract at inception, a modified contract
(remaining and added obligations), or the added goods of a separate contract.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

from pssync.revenue.allocation import AllocationRule, allocate, largest_remainder
from pssync.revenue.compiled import CompiledVersion, to_minor_units
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import (
    EARNED_AS_BILLED,
    Outcome,
    VariableConsideration,
    VariableConsiderationEstimate,
)

# vc id -> (days of the re-estimates, outcomes of each re-estimate), days sorted
VcTimeline = dict[str, tuple[list[int], list[list[Outcome]]]]


def vc_timeline(estimates: Sequence[VariableConsiderationEstimate]) -> VcTimeline:
    """Known re-estimates of each variable amount in date order (event ids break ties)."""
    timeline: VcTimeline = {}
    for estimate in sorted(estimates, key=lambda e: (e.on, e.id)):
        days, outcomes = timeline.setdefault(estimate.vc_id, ([], []))
        days.append(estimate.on.toordinal())
        outcomes.append(estimate.outcomes)
    return timeline


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
    vc_timeline: VcTimeline
    exponent: int
    version: int
    cache: dict[tuple[int, ...], dict[str, int]] = field(default_factory=dict)
    # IFRS 15.90(a), after a modification accounted for under 15.21(a): variable amounts promised before it
    # enter this group at their estimate on `anchor_day` (what the modification allocated), and their later
    # changes arrive through `carried`, already split on the pre-modification basis.
    anchored: frozenset[str] = frozenset()
    anchor_day: int = 0
    carried: list[CarriedChange] = field(default_factory=list)

    @property
    def varies(self) -> bool:
        """Whether the allocation can change from day to day (variable amounts, or changes carried in)."""
        return bool(self.vcs or self.carried)

    def vc_amounts(self, day: int) -> tuple[int, ...]:
        amounts = []
        for vc in self.vcs:
            estimated_on = self.anchor_day if vc.id in self.anchored else day
            days, outcomes = self.vc_timeline.get(vc.id, ([], []))
            i = bisect.bisect_right(days, estimated_on) - 1
            amounts.append(
                estimate_variable_consideration(vc, outcomes[i] if i >= 0 else vc.outcomes, self.exponent)
            )
        return tuple(amounts)

    def carried_amounts(self, day: int) -> tuple[int, ...]:
        return tuple(c.amount(day) for c in self.carried)

    def price(self, day: int) -> int:
        return self.fixed + sum(self.vc_amounts(day)) + sum(self.carried_amounts(day))

    def at(self, day: int) -> dict[str, int]:
        """Allocated amount per obligation with the variable amounts estimated as known at `day`."""
        if not self.vcs and not self.carried:  # a fixed price: one allocation whatever the day (key ())
            fixed = self.cache.get(())
            if fixed is not None:
                return fixed
        vc_key = self.vc_amounts(day) if self.vcs else ()
        inflow = self.carried_amounts(day) if self.carried else ()
        key = vc_key + inflow
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        members = set(self.rule.obligation_ids)
        pooled = self.fixed + sum(inflow)
        targeted: list[tuple[list[str], int]] = []
        sole: set[str] = set()
        for vc, amount in zip(self.vcs, vc_key, strict=True):
            targets = [t for t in (vc.allocate_to or []) if t in members]
            if targets:
                targeted.append((targets, amount))
                if vc.sole_consideration_of_targets:
                    sole.update(targets)
            else:
                pooled += amount
        result = dict.fromkeys(self.rule.obligation_ids, 0)
        rule = self._without(sole) if sole and sole != members else self.rule
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

    def _without(self, sole: set[str]) -> AllocationRule:
        """The rule for the pooled price: obligations whose only consideration is a variable amount leave."""
        rule = self.rule
        keep = [n for n, oid in enumerate(rule.obligation_ids) if oid not in sole]
        return replace(
            rule,
            obligation_ids=tuple(rule.obligation_ids[n] for n in keep),
            ssp=tuple(rule.ssp[n] for n in keep),
            ssp_range=tuple(rule.ssp_range[n] for n in keep),
        )


@dataclass(slots=True)
class CarriedChange:
    """A change in variable consideration promised before a modification, split as IFRS 15.90(a) requires.

    `source` is a group in force before the modification; the change since `anchor` (the day before the
    modification) is allocated on the source's own basis (the inception basis, 15.88), and the shares of
    `obligation_ids` are what this carry passes on: to a satisfied obligation at once, or to the modified
    contract for the obligations that were still unsatisfied (15.90(a), IFRS 15 IE Example 6)."""

    source: AllocationGroup
    anchor: int
    obligation_ids: tuple[str, ...]

    def amount(self, day: int) -> int:
        now, then = self.source.at(day), self.source.at(self.anchor)
        return sum(now[o] - then[o] for o in self.obligation_ids)


def allocation_group(
    version: CompiledVersion,
    members: list[str],
    fixed: int,
    vcs: list[VariableConsideration],
    timeline: VcTimeline,
) -> AllocationGroup:
    """The group of `members` sharing `fixed` plus `vcs`, checked by allocating at the version's start."""
    group = AllocationGroup(
        _allocation_rule(version, members), fixed, vcs, timeline, version.exponent, version.number
    )
    try:
        group.at(version.effective)
    except RevenueRuleError as error:
        field_path = error.field or ""
        if field_path.startswith(("allocation_override", "discount_evidence")):
            field_path = f"contracts[{version.index}].{field_path}"
        raise RevenueRuleError(error.reason, field_path or version.field()) from None
    return group


def _allocation_rule(version: CompiledVersion, members: list[str]) -> AllocationRule:
    """Relative-SSP rule over the members (right-to-invoice obligations take no part in the allocation)."""
    contract = version.contract
    allocated = [m for m in members if not isinstance(version.obligations[m].pattern, EARNED_AS_BILLED)]
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
    return AllocationRule(
        obligation_ids=tuple(allocated),
        ssp=tuple(version.ssp(m) for m in allocated),
        ssp_range=tuple(ranges),
        discount_subset=tuple(t for t in evidence.obligation_ids if t in allocated) if evidence else (),
        bundle_price=to_minor_units(evidence.bundle_price, version.exponent) if evidence else 0,
        override=(
            {k: to_minor_units(v, version.exponent) for k, v in override.amounts.items() if k in allocated}
            if override
            else None
        ),
        override_reason=override.reason if override else "",
        field_prefix=f"contracts[{version.index}].obligations",
    )
