"""Money: a Decimal amount with an ISO 4217 currency, and the named rounding policies.

Amounts never travel as floats: JSON carries them as strings, and a float handed to a
money field is rejected rather than silently converted (0.1 + 0.2 is not an amount).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, field_validator

# ISO 4217 minor units for the currencies a services firm bills in. A currency missing here is
# rejected: guessing two decimals for KWD (3) or JPY (0) would misstate every amount.
MINOR_UNITS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PHP": 2,
    "PLN": 2,
    "QAR": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TND": 3,
    "TRY": 2,
    "TWD": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}


class RoundingPolicy(StrEnum):
    """How an amount is brought to a currency's minor unit. Named so every caller states one."""

    HALF_UP = "half_up"  # commercial rounding, what invoices usually show
    HALF_EVEN = "half_even"  # banker's rounding, unbiased over many lines

    @property
    def decimal_mode(self) -> str:
        return ROUND_HALF_UP if self is RoundingPolicy.HALF_UP else ROUND_HALF_EVEN


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"unsupported ISO 4217 currency code: {currency!r}") from None


def quantum(currency: str) -> Decimal:
    """The smallest representable amount of a currency, e.g. Decimal('0.01') for USD."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_amount(amount: Decimal, currency: str, policy: RoundingPolicy) -> Decimal:
    return amount.quantize(quantum(currency), rounding=policy.decimal_mode)


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact conversion to integer minor units; refuses amounts finer than the currency allows."""
    scaled = amount.scaleb(minor_unit(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more precision than {currency} minor units allow")
    return int(scaled)


def from_minor(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-minor_unit(currency))


def _reject_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amounts must be given as strings or integers, never floats")
    return value


def _check_currency(value: Any) -> Any:
    if isinstance(value, str):
        minor_unit(value)
    return value


# A Decimal that refuses float input and serialises as a string in JSON.
ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_reject_float),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
]
CurrencyCode = Annotated[str, BeforeValidator(_check_currency)]


class Money(BaseModel):
    """An exact amount in one currency. Arithmetic across currencies is an error, not a conversion."""

    model_config = ConfigDict(frozen=True)

    amount: ExactDecimal
    currency: CurrencyCode

    @field_validator("amount")
    @classmethod
    def _finite(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("amount must be a finite number")
        return value

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        return cls(amount=Decimal(amount), currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def rounded(self, policy: RoundingPolicy) -> Money:
        return Money(amount=round_amount(self.amount, self.currency, policy), currency=self.currency)

    @property
    def minor_units(self) -> int:
        return to_minor(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
