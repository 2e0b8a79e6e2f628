"""Amounts in minor units: exact for whole minor units at any size, refused (never rounded) otherwise."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pssync.revenue.compiled import to_minor_units
from pssync.revenue.errors import RevenueRuleError


@given(st.integers(min_value=-(10**20), max_value=10**20), st.sampled_from([0, 2, 3]))
def test_whole_minor_units_convert_exactly(units: int, exponent: int):
    assert to_minor_units(Decimal(units).scaleb(-exponent), exponent) == units


@given(
    st.integers(min_value=-(10**12), max_value=10**12).filter(lambda n: n % 10), st.sampled_from([0, 2, 3])
)
def test_a_finer_amount_is_refused(tenths_of_a_unit: int, exponent: int):
    with pytest.raises(RevenueRuleError, match="more precision than the currency's minor unit allows"):
        to_minor_units(Decimal(tenths_of_a_unit).scaleb(-exponent - 1), exponent)


def test_not_a_number_is_refused_as_an_amount():
    with pytest.raises(RevenueRuleError):
        to_minor_units(Decimal("NaN"), 2)
