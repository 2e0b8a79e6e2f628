"""Relative-SSP allocation (the usual rule, which takes a short path) against its definition: each share the
floor of the exact proportion, the units still missing to the largest remainders, ties in contract order."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from pssync.revenue.allocation import AllocationRule, allocate, largest_remainder


def by_definition(total: int, weights: list[int]) -> list[int]:
    exact = [Fraction(total * w, sum(weights)) for w in weights]
    shares = [int(e // 1) for e in exact]
    missing = total - sum(shares)
    ranked = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in ranked[:missing]:
        shares[i] += 1
    return shares


weights_st = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8).filter(
    lambda ws: sum(ws) > 0
)


@given(st.integers(min_value=0, max_value=10**12), weights_st)
def test_largest_remainder_is_the_floor_plus_the_largest_remainders_in_order(total: int, weights: list[int]):
    assert largest_remainder(total, weights) == by_definition(total, weights)


@given(st.integers(min_value=0, max_value=10**12), weights_st)
def test_relative_ssp_allocation_splits_the_price_by_definition_in_contract_order(
    price: int, weights: list[int]
):
    ids = tuple(f"o{n}" for n in range(len(weights)))
    rule = AllocationRule(obligation_ids=ids, ssp=tuple(weights), ssp_range=(None,) * len(weights))
    allocated = allocate(rule, price)
    assert list(allocated) == list(ids)
    assert list(allocated.values()) == by_definition(price, weights)


def test_equal_remainders_go_to_the_earlier_obligations():
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
