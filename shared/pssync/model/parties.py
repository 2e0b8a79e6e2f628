"""Customers and the firm's own legal entities."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pssync.money import CurrencyCode

Identifier = str


class Customer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: Identifier = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    external_ids: dict[str, str] = Field(
        default_factory=dict, description="Record id per system, e.g. {'salesforce': '001...'}"
    )


class LegalEntity(BaseModel):
    """The contracting entity of the firm: it books revenue in its functional currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Identifier = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=256)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    functional_currency: CurrencyCode
    tax_registration: str | None = None
