from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pssync.money import Money, RoundingPolicy, from_minor, quantum, round_amount, to_minor


def test_amounts_are_exact_decimals_and_serialise_as_strings() -> None:
    money = Money.of("0.10", "USD") + Money.of("0.20", "USD")
    assert money.amount == Decimal("0.30")
    assert money.model_dump(mode="json") == {"amount": "0.30", "currency": "USD"}


def test_float_amounts_are_refused() -> None:
    with pytest.raises(ValidationError, match="never floats"):
        Money(amount=0.1, currency="USD")  # type: ignore[arg-type]


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValidationError, match="unsupported ISO 4217"):
        Money.of("1", "XYZ")


def test_cross_currency_arithmetic_is_an_error() -> None:
    with pytest.raises(ValueError, match="currency mismatch"):
        Money.of("1", "USD") + Money.of("1", "EUR")


def test_minor_units_follow_iso_4217() -> None:
    assert quantum("JPY") == Decimal("1")
    assert quantum("KWD") == Decimal("0.001")
    assert to_minor(Decimal("12.345"), "KWD") == 12345
    with pytest.raises(ValueError, match="more precision"):
        to_minor(Decimal("1.005"), "USD")


def test_rounding_policies_differ_on_ties() -> None:
    assert round_amount(Decimal("2.345"), "USD", RoundingPolicy.HALF_UP) == Decimal("2.35")
    assert round_amount(Decimal("2.345"), "USD", RoundingPolicy.HALF_EVEN) == Decimal("2.34")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["USD", "JPY", "KWD"]))
def test_minor_unit_round_trip(units: int, currency: str) -> None:
    assert to_minor(from_minor(units, currency), currency) == units
