"""Allocation of a transaction price to performance obligations, in integer minor units.

Rounding policy: largest remainder to the currency's minor unit. Each share is floored, then the units still
missing go to the largest remainders, ties broken by the obligations' order in the contract. The shares
therefore always sum exactly to the price, and the same inputs always give the same split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pssync.revenue.errors import RevenueRuleError


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` minor units in proportion to non-negative integer `weights`, summing exactly."""
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise RevenueRuleError("cannot allocate in proportion to weights that sum to zero")
    shares = [total * w // weight_sum for w in weights]
    missing = total - sum(shares)
    if missing:
        # Largest remainder first; sorted() is stable, so equal remainders keep the obligations' order.
        negated = [s * weight_sum - total * w for w, s in zip(weights, shares, strict=True)]
        order = sorted(range(len(weights)), key=negated.__getitem__)
        for i in order[:missing]:
            shares[i] += 1
    return shares


@dataclass(frozen=True, slots=True)
class AllocationRule:
    """How one allocation group splits its price. Amounts in minor units; obligations in contract order."""

    obligation_ids: tuple[str, ...]
    ssp: tuple[int | None, ...]
    ssp_range: tuple[tuple[int, int] | None, ...]
    discount_subset: tuple[str, ...] = ()
    bundle_price: int = 0
    override: Mapping[str, int] | None = None
    override_reason: str = ""
    field_prefix: str = "obligations"

    @property
    def method(self) -> str:
        if self.override is not None:
            return "manual_override"
        if any(s is None for s in self.ssp):
            return "residual"
        if self.discount_subset:
            return "discount_to_subset"
        return "relative_ssp"


def allocate(rule: AllocationRule, price: int) -> dict[str, int]:
    """Allocate `price` (minor units) to the rule's obligations; RevenueRuleError when a rule refuses."""
    ids = rule.obligation_ids
    if ids and rule.override is None and not rule.discount_subset and None not in rule.ssp:
        # Relative SSP over every obligation (the usual rule): what the general path below computes.
        return _relative(rule, list(range(len(ids))), price)
    if rule.override is not None:
        overridden = sum(rule.override.get(i, 0) for i in ids)
        if overridden != price:
            raise RevenueRuleError(
                f"manual allocation sums to {overridden} minor units but the price is {price}",
                "allocation_override.amounts",
            )
        return {i: rule.override.get(i, 0) for i in ids}

    residual = [n for n, s in enumerate(rule.ssp) if s is None]
    if len(residual) > 1:
        raise RevenueRuleError("at most one obligation may be priced by the residual approach", "obligations")
    priced = [n for n in range(len(ids)) if n not in residual]
    result: dict[str, int] = {}
    remaining = price
    in_subset = [n for n in priced if ids[n] in rule.discount_subset]
    others = [n for n in priced if ids[n] not in rule.discount_subset]
    if in_subset:
        subset_shares = _relative(rule, in_subset, rule.bundle_price)
        result.update(subset_shares)
        remaining -= rule.bundle_price
    if residual:
        # Residual approach: everything else at its SSP (or the evidenced bundle price), the rest to the one
        # obligation whose SSP is highly variable, and only if it lands in the observed range.
        for n in others:
            ssp = rule.ssp[n]
            assert ssp is not None
            result[ids[n]] = ssp
            remaining -= ssp
        n = residual[0]
        bounds = rule.ssp_range[n]
        if bounds is None:
            raise RevenueRuleError(
                "an obligation without SSP needs the observed SSP range to use the residual approach",
                f"{rule.field_prefix}[{n}].ssp_range",
            )
        low, high = bounds
        if not low <= remaining <= high:
            raise RevenueRuleError(
                f"residual approach not appropriate: the residual {remaining} minor units for {ids[n]} "
                f"is outside the observed SSP range {low}-{high}; use another estimation method",
                f"{rule.field_prefix}[{n}].ssp_range",
            )
        result[ids[n]] = remaining
    elif others:
        result.update(_relative(rule, others, remaining))
    elif remaining:
        raise RevenueRuleError(
            f"{remaining} minor units are left after the discounted subset and no obligation takes them",
            "discount_evidence.bundle_price",
        )
    return {i: result[i] for i in ids}


def _relative(rule: AllocationRule, members: list[int], amount: int) -> dict[str, int]:
    weights = [rule.ssp[n] or 0 for n in members]
    if sum(weights) == 0:
        # All SSPs zero (e.g. free items): split evenly rather than refuse.
        weights = [1] * len(members)
    shares = largest_remainder(amount, weights)
    return {rule.obligation_ids[n]: share for n, share in zip(members, shares, strict=True)}
