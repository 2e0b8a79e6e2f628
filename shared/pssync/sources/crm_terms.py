"""Where the contract terms of a CRM deal come from, and the checks every CRM mapping applies.

CRMs hold deals and opportunities, not ASC 606 terms. The SOW tool (or CPQ) writes the full
`ContractTerms` document as JSON into one long-text field of the deal/opportunity:

| CRM        | field holding the ContractTerms JSON  | amount / currency cross-checked against |
|------------|---------------------------------------|-----------------------------------------|
| HubSpot    | deal property `pssync_contract_json`  | `amount`, `deal_currency_code`          |
| Salesforce | Opportunity `PSSync_Contract_JSON__c` | `Amount`, `CurrencyIsoCode`             |
| Dataverse  | opportunity `pssync_contractjson`     | `actualvalue` (Money), when present     |

The CRM stays authoritative for identity: `crm_opportunity_id` is the record id (never what the JSON
says) and the customer's `external_ids[<system>]` is the associated company / account. A deal amount
that disagrees with the terms' transaction price is refused instead of booked: the SOW JSON is stale.
Each vendor's mapping (in its own module) reads its fields and calls these helpers.

Booking and amending read a deal the same way: each vendor's `read_won_*` returns a `WonRecord` (the
terms by the one mapping, plus the record's own last-modified stamp: HubSpot `hs_lastmodifieddate`,
Salesforce `LastModifiedDate`, Dataverse `modifiedon`), or None when the deal is not won (any more).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from pssync.errors import UnprocessableDelivery, VendorNotFound
from pssync.model.contract import ContractTerms
from pssync.ports import JsonReader

SAFE_RECORD_ID = re.compile(r"^[A-Za-z0-9_{}-]{1,64}$")


@dataclass(frozen=True)
class WonRecord:
    """A won deal as the CRM holds it now."""

    terms: ContractTerms
    modified_at: datetime | None  # the record's last-modified stamp: orders an amendment made from it
    booking_version: str | None  # what a booking from it is ordered by (each vendor's documented choice)


class RecordNotFound(UnprocessableDelivery):
    """The CRM says the record behind the event does not exist (deleted, or the wrong portal/org)."""

    code = "record_not_found"


class ContractMappingError(UnprocessableDelivery):
    """The fetched record does not hold usable contract terms under the documented convention."""

    code = "contract_mapping"


def read_record(reader: JsonReader, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """A CRM record read: a record the CRM does not have is unprocessable, not a transport failure."""
    try:
        return reader.get_json(path, params)
    except VendorNotFound as error:
        raise RecordNotFound(f"{path} does not exist in the CRM ({error.status})") from None


def checked_id(object_id: str, pattern: re.Pattern[str] = SAFE_RECORD_ID) -> str:
    """Record ids go into URLs and queries: only the vendor's id alphabet is let through."""
    if not pattern.fullmatch(object_id):
        raise UnprocessableDelivery(f"record id {object_id!r} is not a valid CRM id")
    return object_id


def terms_from_json(raw: Any, what: str) -> ContractTerms:
    """The ContractTerms JSON of a CRM field (text, or already a JSON object in relayed events)."""
    if not isinstance(raw, dict) and not (isinstance(raw, str) and raw.strip()):
        raise ContractMappingError(f"{what} has no contract terms JSON (see pssync.sources.crm_terms)")
    try:
        if isinstance(raw, dict):
            return ContractTerms.model_validate(raw)
        return ContractTerms.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise ContractMappingError(f"{what}: contract terms JSON is invalid: {problems}") from None


def check_amount(terms: ContractTerms, amount: Any, currency: Any, what: str) -> None:
    """The CRM's amount and currency, when it has them, must be the terms' transaction price."""
    if amount is not None and amount != "":
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise ContractMappingError(f"{what}: amount {amount!r} is not a number") from None
        if value != terms.transaction_price.amount:
            raise ContractMappingError(
                f"{what}: CRM amount {value} differs from the contract's transaction price "
                f"{terms.transaction_price.amount}; the SOW terms are out of date"
            )
    if currency and currency != terms.currency:
        raise ContractMappingError(
            f"{what}: CRM currency {currency} differs from the contract's {terms.currency}"
        )


def with_crm_identity(
    terms: ContractTerms, record_id: str, system: str, customer_record_id: str | None
) -> ContractTerms:
    """The record id and the customer's CRM id come from the record, whatever the JSON says."""
    external_ids = dict(terms.customer.external_ids)
    if customer_record_id:
        external_ids[system] = customer_record_id
    customer = terms.customer.model_copy(update={"external_ids": external_ids})
    return terms.model_copy(update={"crm_opportunity_id": record_id or None, "customer": customer})
