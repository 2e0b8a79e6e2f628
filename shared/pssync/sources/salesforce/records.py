"""The Salesforce Opportunity: reading it over REST and mapping it to contract terms (one mapping).

Outbound messages and Event Relay events name an opportunity or carry some of its fields; whichever way
a record arrives, `contract_terms_from_opportunity` is the one mapping from it to `ContractTerms` (terms
JSON, amount and currency check, line items naming obligations of the terms, identity from the record).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pssync.errors import UnprocessableDelivery
from pssync.model.contract import ContractTerms
from pssync.model.events import ClosedWonSignalled
from pssync.ports import JsonReader, RecordFetcher
from pssync.sources.crm_terms import (
    ContractMappingError,
    WonRecord,
    check_amount,
    checked_id,
    read_record,
    terms_from_json,
    with_crm_identity,
)

API_VERSION = "v62.0"
OPPORTUNITY = "Opportunity"
CONTRACT_TERMS_FIELD = "PSSync_Contract_JSON__c"
OBLIGATION_FIELD = "PSSync_Obligation_Id__c"
CLOSED_WON_STAGES = frozenset({"Closed Won"})
# 15- or 18-character record ids; alphanumerics only, so an id can be put into a URL or SOQL safely.
SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_LINE_ITEMS_SOQL = (
    "SELECT Id, Name, Quantity, UnitPrice, TotalPrice, Product2Id, PSSync_Obligation_Id__c "
    "FROM OpportunityLineItem"
)


def salesforce_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # REST API style +0000
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UnprocessableDelivery(f"{value!r} is not a Salesforce dateTime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def salesforce_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_won(record: Mapping[str, Any]) -> bool:
    return record.get("IsWon") is True or record.get("StageName") in CLOSED_WON_STAGES


class SalesforceRecordFetcher:
    """`fetch("Opportunity", id)`: the sObject plus its line items under `OpportunityLineItems.records`."""

    def __init__(self, http: JsonReader, api_version: str = API_VERSION) -> None:
        self._http = http
        self._base = f"/services/data/{api_version}"

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        if object_type != OPPORTUNITY:
            raise ValueError(f"Salesforce fetcher reads Opportunity, not {object_type!r}")
        record_id = checked_id(object_id, SALESFORCE_ID)  # validated: it is interpolated into SOQL
        record = read_record(self._http, f"{self._base}/sobjects/Opportunity/{record_id}")
        # record_id matched SALESFORCE_ID above (alphanumerics only): nothing can be injected.
        soql = f"{_LINE_ITEMS_SOQL} WHERE OpportunityId = '{record_id}'"
        items = read_record(self._http, f"{self._base}/query", {"q": soql})
        return {**record, "OpportunityLineItems": {"records": list(items.get("records", []))}}


def contract_terms_from_opportunity(record: Mapping[str, Any]) -> ContractTerms:
    """The one Salesforce mapping: a fetched record, or the fields an event carries (with its `Id`)."""
    record_id = str(record.get("Id") or "")
    if not SALESFORCE_ID.fullmatch(record_id):
        raise ContractMappingError(f"opportunity id {record_id!r} is not a Salesforce id")
    terms = terms_from_json(record.get(CONTRACT_TERMS_FIELD), f"Opportunity {record_id}")
    check_amount(terms, record.get("Amount"), record.get("CurrencyIsoCode"), f"Opportunity {record_id}")
    items = (record.get("OpportunityLineItems") or {}).get("records") or []
    known = terms.obligation_ids()
    for item in items:
        obligation = item.get(OBLIGATION_FIELD)
        if obligation and obligation not in known:
            raise ContractMappingError(
                f"Opportunity {record_id}: line item {item.get('Id')} names obligation {obligation!r}, "
                f"which the contract terms do not define"
            )
    account = record.get("AccountId")
    return with_crm_identity(terms, record_id, "salesforce", str(account) if account else None)


def read_won_opportunity(signal: ClosedWonSignalled, fetcher: RecordFetcher) -> WonRecord | None:
    """The opportunity behind a signal as it is now (None: reopened since the notification was sent)."""
    record = fetcher.fetch(OPPORTUNITY, signal.data.record_id)
    if record.get("IsWon") is False:
        return None
    # The record's own LastModifiedDate orders a booking and an amendment made from it alike.
    modified_at = salesforce_datetime(record.get("LastModifiedDate"))
    return WonRecord(
        terms=contract_terms_from_opportunity(record),
        modified_at=modified_at,
        booking_version=salesforce_iso(modified_at or signal.occurred_at),
    )
