"""Dynamics 365 / Dataverse service endpoints (webhook, authentication type HttpHeader).

Dataverse cannot sign. The service endpoint sends a static key in header `x-pssync-key`, compared in
constant time with the current and previous secret; the `OrganizationId` of the RemoteExecutionContext
must be one of `tenants`. Replay guard: `OperationCreatedOn` within `tolerance_seconds` when present, and
dedupe on `RequestId` (falling back to the `x-request-id` header).

Mapping:
- `opportunity` `Win`, or `Update` whose Target sets `statecode` 1 (Won) -> ContractBooked.
  The terms come from the post image when it carries `pssync_contractjson` (register the image with that
  column), else it becomes a ClosedWonSignalled and the closed-won resolver reads the opportunity
  through the Web API behind a queue.
- `opportunity` `Update` of an opportunity that is won already (the Target leaves `statecode` alone, the
  post image says 1) and whose Target changes a column that can change the contract
  (`AMENDABLE_COLUMNS`) -> ClosedWonSignalled of kind `changed`: the resolver reads the opportunity,
  diffs its terms against the contract's head version and publishes a ContractAmended only when
  something contractual changed (ordered by `modifiedon`). Register the post image with `statecode`.
  Other columns (owner, probability, description) are acknowledged without an event.
- `invoice` `Create` -> InvoicePosted, one summary line (invoice lines are separate `invoicedetail` rows):
  `invoicenumber`, `name`, `customerid`, `totalamount`, `totaltax`, `totallineitemamount`, `duedate`,
  `createdon`, `pssync_contractid` (optional) and `pssync_isocurrencycode`, a formula column holding
  `transactioncurrencyid.isocurrencycode` (the context carries only the currency's record id).
- everything else is acknowledged without an event. Register one of Win / Update per opportunity step:
  both would emit two ContractBooked events (their RequestIds differ).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from pssync.errors import (
    MalformedDelivery,
    SignatureInvalid,
    StaleDelivery,
    UnknownTenant,
    UnprocessableDelivery,
)
from pssync.model.contract import ContractTerms
from pssync.model.events import (
    ClosedWonSignalled,
    ContractBooked,
    ContractBookedData,
    EventEnvelope,
    InvoiceLine,
    InvoicePosted,
    InvoicePostedData,
    canonical_event_id,
)
from pssync.model.sources import SourceConfig
from pssync.money import Money
from pssync.ports import IngestResult, JsonReader, NormalisedEvent, RecordFetcher, SigningSecrets
from pssync.sources.base import (
    HttpReply,
    NormaliseContext,
    fingerprint_of,
    json_acknowledgement,
    parse_json_body,
)
from pssync.sources.crm_terms import (
    ContractMappingError,
    WonRecord,
    check_amount,
    checked_id,
    read_record,
    terms_from_json,
    with_crm_identity,
)
from pssync.sources.request import RawRequest
from pssync.sources.verification import VerifiedDelivery, epoch_instant, matches_any

KEY_HEADER = "x-pssync-key"
WEB_API_PATH = "/api/data/v9.2"
CONTRACT_TERMS_ATTRIBUTE = "pssync_contractjson"
OPPORTUNITY_WON = 1
# Update Targets hold only the columns that changed: these are the ones that can change a contract.
AMENDABLE_COLUMNS = frozenset(
    {CONTRACT_TERMS_ATTRIBUTE, "actualvalue", "estimatedvalue", "transactioncurrencyid", "customerid"}
)
_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
_WCF_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class DataverseScheme:
    media_type = "application/json"

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery:
        if secrets is None:
            raise SignatureInvalid("no key is configured for this source")
        offered = request.single_header(KEY_HEADER).encode()
        if not matches_any(offered, [s.encode() for s in secrets.all()]):
            raise SignatureInvalid(f"{KEY_HEADER} matches no configured key")
        document = _parse(request.body)
        organisation = str(document.get("OrganizationId") or "").lower()
        if not organisation:
            raise MalformedDelivery("body has no OrganizationId")
        if organisation not in {t.lower() for t in source.tenants}:
            raise UnknownTenant(f"organisation {organisation} is not configured for this source")
        sent_at = _operation_created_on(document)
        if sent_at is not None:
            skew = (now - sent_at).total_seconds()
            if abs(skew) > source.tolerance_seconds:
                direction = "old" if skew > 0 else "in the future"
                raise StaleDelivery(
                    f"OperationCreatedOn is {int(abs(skew))} s {direction} "
                    f"(limit {source.tolerance_seconds} s)"
                )
        return VerifiedDelivery(delivery_id=_request_id(document, request), sent_at=sent_at)

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]:
        document = _parse(context.body)
        message = document.get("MessageName")
        entity = document.get("PrimaryEntityName")
        target = _input_entity(document, "Target")
        image = _post_image(document)
        attributes = {**image, **(target or {}).get("Attributes", {})}
        record_id = next(
            (
                str(i)
                for i in (document.get("PrimaryEntityId"), (target or {}).get("Id"))
                if i and i != _EMPTY_GUID
            ),
            "",
        )
        if not record_id:
            raise MalformedDelivery("no PrimaryEntityId / Target Id names the record")
        changed = (target or {}).get("Attributes", {})
        try:
            if entity == "opportunity" and (
                message == "Win"
                or (message == "Update" and _option(changed.get("statecode")) == OPPORTUNITY_WON)
            ):
                event: EventEnvelope = self._contract_booked(context, document, attributes, record_id)
            elif (
                entity == "opportunity"
                and message == "Update"
                and "statecode" not in changed
                and _option(image.get("statecode")) == OPPORTUNITY_WON
                and AMENDABLE_COLUMNS & changed.keys()
            ):
                event = _won_opportunity_changed(context, document, record_id)
            elif entity == "invoice" and message == "Create":
                event = _invoice_posted(context, document, attributes, record_id)
            else:
                return []
        except ValidationError as error:
            raise UnprocessableDelivery(f"Dataverse {entity} {message} does not map: {error}") from None
        return [NormalisedEvent(event=event, fingerprint=fingerprint_of(document))]

    def _contract_booked(
        self, context: NormaliseContext, document: dict[str, Any], attributes: dict[str, Any], record_id: str
    ) -> ContractBooked | ClosedWonSignalled:
        occurred_at = _operation_created_on(document) or context.received_at
        common = _common(context, document, occurred_at)
        if not attributes.get(CONTRACT_TERMS_ATTRIBUTE):
            # Thin context (Win carries only the OpportunityClose): the closed-won resolver reads the
            # record through the Web API behind a queue.
            return ClosedWonSignalled.of(
                source=context.source.name,
                source_system=context.source.system,
                source_event_id=common["source_event_id"],
                source_version=common["source_version"],
                closed_won_at=occurred_at,
                received_at=context.received_at,
                record_type="dataverse-opportunity",
                record_id=record_id,
            )
        terms = contract_terms_from_opportunity(attributes, record_id)
        return ContractBooked(**common, data=ContractBookedData(closed_won_at=occurred_at, contract=terms))

    def acknowledge(self, result: IngestResult) -> HttpReply:
        return json_acknowledgement(result)


def _won_opportunity_changed(
    context: NormaliseContext, document: dict[str, Any], record_id: str
) -> ClosedWonSignalled:
    """Read behind the queue: only the resolver sees the contract's head version to diff against."""
    occurred_at = _operation_created_on(document) or context.received_at
    common = _common(context, document, occurred_at)
    return ClosedWonSignalled.of(
        source=context.source.name,
        source_system=context.source.system,
        source_event_id=common["source_event_id"],
        source_version=common["source_version"],
        closed_won_at=occurred_at,
        received_at=context.received_at,
        record_type="dataverse-opportunity",
        record_id=record_id,
        kind="changed",
    )


def _invoice_posted(
    context: NormaliseContext, document: dict[str, Any], attributes: dict[str, Any], record_id: str
) -> InvoicePosted:
    currency = attributes.get("pssync_isocurrencycode")
    customer = attributes.get("customerid")
    total = _money_value(attributes.get("totalamount"))
    if not isinstance(currency, str) or not isinstance(customer, dict) or total is None:
        raise UnprocessableDelivery(
            "invoice Create needs pssync_isocurrencycode, customerid and totalamount attributes"
        )
    tax = _money_value(attributes.get("totaltax"))
    net = _money_value(attributes.get("totallineitemamount"))
    if net is None:
        net = total - (tax or Decimal(0))
    occurred_at = _operation_created_on(document) or context.received_at
    created = _date_value(attributes.get("createdon"))
    number = attributes.get("invoicenumber")
    due = _date_value(attributes.get("duedate"))
    return InvoicePosted(
        **_common(context, document, occurred_at),
        data=InvoicePostedData(
            invoice_id=record_id,
            invoice_number=number if isinstance(number, str) else None,
            contract_id=attributes.get("pssync_contractid") or None,
            customer_id=str(customer.get("Id")),
            invoice_date=(created or occurred_at).date(),
            due_date=due.date() if due else None,
            lines=[
                InvoiceLine(
                    description=str(attributes.get("name") or f"Invoice {number or record_id}"),
                    amount=Money(amount=net, currency=currency),
                )
            ],
            tax=Money(amount=tax, currency=currency) if tax is not None else None,
            total=Money(amount=total, currency=currency),
        ),
    )


def _common(context: NormaliseContext, document: dict[str, Any], occurred_at: datetime) -> dict[str, Any]:
    dedupe_id = context.delivery.delivery_id
    event_id = canonical_event_id(context.source.name, dedupe_id)
    return {
        "event_id": event_id,
        "source": context.source.name,
        "source_system": context.source.system,
        "source_event_id": dedupe_id,
        "source_version": _iso(occurred_at),
        "correlation_id": event_id,
        "occurred_at": occurred_at,
        "received_at": context.received_at,
    }


def _parse(body: bytes) -> dict[str, Any]:
    # Money arrives as JSON numbers: read them as Decimal, never float.
    document = parse_json_body(body, parse_float=Decimal)
    if not isinstance(document, dict):
        raise MalformedDelivery("body must be a RemoteExecutionContext JSON object")
    return document


def _request_id(document: dict[str, Any], request: RawRequest) -> str:
    request_id = document.get("RequestId")
    if isinstance(request_id, str) and request_id.strip():
        return request_id.strip()
    headers = request.headers.get("x-request-id", [])
    if len(headers) == 1 and headers[0].strip():
        return headers[0].strip()
    raise MalformedDelivery("neither RequestId nor a single x-request-id header identifies the delivery")


def _date_value(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    match = _WCF_DATE.match(value)
    if match:
        return epoch_instant(match.group(1), milliseconds=True, what="OperationCreatedOn")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedDelivery(f"{value!r} is not a date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _operation_created_on(document: dict[str, Any]) -> datetime | None:
    """Optional; when present it must be a date, or the freshness check would be skipped silently."""
    value = document.get("OperationCreatedOn")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedDelivery(f"OperationCreatedOn {value!r} is not a date")
    return _date_value(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pairs(items: Any) -> dict[str, Any]:
    """[{key, value}, ...] (DataContract JSON of a collection) -> dict."""
    if isinstance(items, dict):
        return items
    if not isinstance(items, list):
        return {}
    return {i["key"]: i.get("value") for i in items if isinstance(i, dict) and isinstance(i.get("key"), str)}


def _input_entity(document: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = _pairs(document.get("InputParameters")).get(key)
    if not isinstance(value, dict):
        return None
    return {**value, "Attributes": _pairs(value.get("Attributes"))}


def _post_image(document: dict[str, Any]) -> dict[str, Any]:
    for image in _pairs(document.get("PostEntityImages")).values():
        if isinstance(image, dict):
            return _pairs(image.get("Attributes"))
    return {}


def _option(value: Any) -> Any:
    return value.get("Value") if isinstance(value, dict) else value


def _money_value(value: Any) -> Decimal | None:
    value = _option(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise UnprocessableDelivery(f"{value!r} is not an amount")
    return Decimal(str(value))


# --- the opportunity behind a thin Win ----------------------------------------------------------------


class DataverseRecordFetcher:
    """`fetch("opportunity", id)`: GET /api/data/v9.2/opportunities({id})."""

    _ENTITY_SETS = {"opportunity": "opportunities", "invoice": "invoices"}

    def __init__(self, http: JsonReader) -> None:
        self._http = http

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        entity_set = self._ENTITY_SETS.get(object_type)
        if entity_set is None:
            raise ValueError(f"Dataverse fetcher reads {sorted(self._ENTITY_SETS)}, not {object_type!r}")
        return read_record(self._http, f"{WEB_API_PATH}/{entity_set}({checked_id(object_id)})")


def contract_terms_from_opportunity(attributes: dict[str, Any], opportunity_id: str) -> ContractTerms:
    """`attributes` as a flat dict: Web API JSON, or a RemoteExecutionContext image flattened."""
    terms = terms_from_json(attributes.get(CONTRACT_TERMS_ATTRIBUTE), f"opportunity {opportunity_id}")
    actual = attributes.get("actualvalue")
    if isinstance(actual, dict):  # Money in a RemoteExecutionContext: {"__type": "Money:...", "Value": ...}
        actual = actual.get("Value")
    check_amount(terms, actual, None, f"opportunity {opportunity_id}")
    customer = attributes.get("customerid") or attributes.get("parentaccountid")
    customer_id = customer.get("Id") if isinstance(customer, dict) else attributes.get("_customerid_value")
    return with_crm_identity(terms, opportunity_id, "dynamics365", str(customer_id) if customer_id else None)


def read_won_opportunity(signal: ClosedWonSignalled, fetcher: RecordFetcher) -> WonRecord | None:
    """The opportunity behind a signal as it is now (None: reopened or lost since)."""
    record_id = signal.data.record_id
    record = fetcher.fetch("opportunity", record_id)
    if record.get("statecode", OPPORTUNITY_WON) != OPPORTUNITY_WON:
        return None
    try:
        modified_at = _date_value(record.get("modifiedon"))
    except MalformedDelivery:
        raise ContractMappingError(
            f"opportunity {record_id}: modifiedon {record.get('modifiedon')!r} is not a date"
        ) from None
    return WonRecord(
        terms=contract_terms_from_opportunity(record, record_id),
        modified_at=modified_at,
        booking_version=signal.source_version,
    )
