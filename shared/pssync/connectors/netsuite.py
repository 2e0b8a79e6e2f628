"""The NetSuite ERP connector: ERP commands as external-id upserts over the REST record service.

Every write is `PUT /record/v1/{type}/eid:{externalId}` (NetSuite's upsert): a retry after a lost
response updates the record the first attempt created, never a second one. Authentication is OAuth 2.0
client credentials with a JWT assertion signed by the certificate's private key (PS256 for RSA keys,
ES256 for P-256 keys, as NetSuite's token endpoint requires); the access token is cached until shortly
before it expires, and a 401 refreshes it once. Retries, timeouts, 429 / Retry-After and the mapping of
failures to `TransientDownstreamError` / `VendorRejected` (with NetSuite's `o:errorCode`) are the one
vendor HTTP client's (`pssync.connectors.http`).

NetSuite internal ids (subsidiary per legal entity, currency, items, GL accounts) are per account
configuration (`NetSuiteMapping`); a value the mapping lacks is a `BusinessRuleViolation`, not a guess.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pssync.connectors.http import VendorHttp, json_object, retry_after_seconds
from pssync.connectors.http_policy import CallPolicy, invocation_seconds_left
from pssync.errors import BusinessRuleViolation, TransientDownstreamError, VendorAuthRefused
from pssync.model.commands import ConnectorCommand, Target
from pssync.ports import RecordedCommand

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path, not a secret
RECORD_PATH = "/services/rest/record/v1"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# NetSuite caps the assertion's lifetime at 60 minutes; a short one limits what a leaked assertion is worth.
ASSERTION_LIFETIME_SECONDS = 300
# Refresh this long before the access token expires, so a call never starts with a token about to lapse.
TOKEN_REFRESH_MARGIN_SECONDS = 60


def account_host(account_id: str) -> str:
    """`1234567_SB1` -> `https://1234567-sb1.suitetalk.api.netsuite.com` (NetSuite's account domain)."""
    return f"https://{account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


# NetSuite answers 429 when the account's concurrency limit is reached: a Retry-After is honoured, and a
# write may wait a little longer than a CRM read for its slot. Sized to the sending functions' 30 s timeout
# (infra/runtime.py; infra/constructs/cutover.py refuses a synth where they disagree): one command's calls
# plus the reserve fit a fresh invocation, and inside one every call also ends before the invocation does.
NETSUITE_WRITES = CallPolicy(
    timeout_seconds=15.0,
    deadline_seconds=20.0,
    max_attempts=4,
    backoff_base_seconds=0.5,
    invocation_reserve_seconds=3.0,
)
# Every call of one command (customer, project, then the transaction) shares this deadline: a command holds
# its account's concurrency slot and its record's writer lease (60 s each) for no longer than this plus
# one token fetch.
NETSUITE_COMMAND_SECONDS = 25.0
TOKEN_TIMEOUT_SECONDS = 5.0


# --- OAuth 2.0 client credentials (M2M) --------------------------------------------------------------


@dataclass(frozen=True)
class NetSuiteCredentials:
    """One integration record's M2M credentials (from Secrets Manager; never from the environment)."""

    account_id: str
    client_id: str
    certificate_id: str  # the `kid`: the id NetSuite gave the uploaded certificate
    private_key_pem: str = field(repr=False)
    scope: str = "rest_webservices"
    # The account's REST domain when it is not the default one (NetSuite publishes it per account:
    # Company Information > Company URLs > SuiteTalk); None means `account_host(account_id)`.
    rest_domain: str | None = None

    @property
    def base_url(self) -> str:
        return (self.rest_domain or account_host(self.account_id)).rstrip("/")

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def client_assertion(credentials: NetSuiteCredentials, now: float) -> str:
    """The signed JWT the token endpoint exchanges for an access token (NetSuite's request token)."""
    key = serialization.load_pem_private_key(credentials.private_key_pem.encode(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "PS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ES256"
    else:
        raise BusinessRuleViolation(
            "the NetSuite certificate key must be RSA (PS256) or EC P-256 (ES256)", code="netsuite_key_type"
        )
    header = {"typ": "JWT", "alg": algorithm, "kid": credentials.certificate_id}
    issued = int(now)
    claims = {
        "iss": credentials.client_id,
        "scope": credentials.scope,
        "aud": credentials.token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    ).encode("ascii")
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(
            signing_input,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size),
            hashes.SHA256(),
        )
    else:
        # JWS wants ECDSA signatures as r || s, 32 bytes each, not the DER cryptography returns.
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input.decode("ascii") + "." + _b64url(signature)


class NetSuiteTokens:
    """Access tokens for one integration: fetched on first use, cached until shortly before expiry.

    Thread-safe: concurrent calls in one container share one token and one refresh.
    """

    def __init__(
        self,
        credentials: NetSuiteCredentials,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_seconds: float = TOKEN_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        invocation_reserve_seconds: float = NETSUITE_WRITES.invocation_reserve_seconds,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._invocation_reserve_seconds = invocation_reserve_seconds
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - TOKEN_REFRESH_MARGIN_SECONDS:
                self._token, self._expires_at = self._fetch()
            return self._token

    @property
    def account_id(self) -> str:
        return self._credentials.account_id

    def invalidate(self) -> None:
        """Forget the cached token (NetSuite refused it: revoked, or the role lost a permission)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[str, float]:
        now = self._clock()
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": client_assertion(self._credentials, now),
        }
        try:
            response = self._client.post(self._credentials.token_url, data=form, timeout=self._timeout())
        except httpx.TransportError as error:
            raise TransientDownstreamError(f"netsuite token endpoint: {type(error).__name__}") from error
        if response.status_code == 429 or response.status_code >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            raise TransientDownstreamError(
                f"netsuite token endpoint: HTTP {response.status_code}"
                + (f", retry after {wait:.0f} s" if wait is not None else "")
            )
        if not response.is_success:
            # invalid_client / invalid_grant: the certificate, client id or role mapping is wrong or was
            # revoked; the work item is retried and parked until an operator fixes the integration.
            raise VendorAuthRefused(
                f"netsuite token endpoint refused our assertion: HTTP {response.status_code} "
                f"({_oauth_error(response)})",
                status=response.status_code,
            )
        body = json_object(response, "netsuite", TOKEN_PATH)
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            raise TransientDownstreamError("netsuite token endpoint answered without an access_token")
        try:
            lifetime = float(str(expires_in))  # NetSuite sends it as a string ("3600")
        except (TypeError, ValueError):
            lifetime = 0.0  # unknown lifetime: use it for this call only
        return token, now + lifetime

    def _timeout(self) -> float:
        """The token request's timeout, ending before the invocation does (less the reserve)."""
        seconds_left = invocation_seconds_left()
        if seconds_left is None:
            return self._timeout_seconds
        usable = seconds_left - self._invocation_reserve_seconds
        if usable <= 0:
            raise TransientDownstreamError(
                f"netsuite token endpoint: not called, {seconds_left:.1f} s left in the invocation"
            )
        return min(self._timeout_seconds, usable)

    def close(self) -> None:
        self._client.close()


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no error body"
    return str(body.get("error", "unknown")) if isinstance(body, dict) else "unknown"


# --- mapping to NetSuite records ---------------------------------------------------------------------


@dataclass(frozen=True)
class NetSuiteMapping:
    """The account's internal ids for what our commands name by code (set up once per deployment)."""

    subsidiaries: Mapping[str, str]  # legal entity code -> subsidiary id
    currencies: Mapping[str, str]  # ISO 4217 -> currency id
    items: Mapping[str, str]  # billing line kind / "time" / "expense" / "milestone" -> service item id
    accounts: Mapping[str, str]  # our GL account code -> account id

    def _lookup(self, table: Mapping[str, str], what: str, key: str) -> dict[str, str]:
        try:
            return {"id": table[key]}
        except KeyError:
            raise BusinessRuleViolation(
                f"no NetSuite {what} is mapped for {key!r}; add it to the NetSuite mapping",
                code="netsuite_mapping_missing",
            ) from None

    def subsidiary(self, legal_entity: str) -> dict[str, str]:
        return self._lookup(self.subsidiaries, "subsidiary", legal_entity)

    def currency(self, code: str) -> dict[str, str]:
        return self._lookup(self.currencies, "currency", code)

    def item(self, kind: str) -> dict[str, str]:
        return self._lookup(self.items, "item", kind)

    def account(self, code: str) -> dict[str, str]:
        return self._lookup(self.accounts, "account", code)


@dataclass(frozen=True)
class RecordWrite:
    """One upsert: the NetSuite record type, our external id for it, and the body we PUT."""

    record_type: str
    external_id: str
    body: dict[str, Any]
    replace_sublists: tuple[str, ...] = ()  # sublists whose lines the body replaces (a new version's lines)

    @property
    def path(self) -> str:
        # External ids hold '/' (contract/milestone): encode it, or NetSuite reads a sub-resource path.
        return f"{RECORD_PATH}/{self.record_type}/eid:{quote(self.external_id, safe='')}"


def json_number(amount: Decimal | str) -> float:
    """A Decimal as a JSON number whose text is exactly that decimal.

    NetSuite wants numbers, and the HTTP client serialises floats with repr, which is the shortest text
    that round-trips: for any amount of up to 15 significant digits that text is the decimal itself. An
    amount that would not survive is refused rather than sent rounded.
    """
    exact = Decimal(amount)
    number = float(exact)
    if Decimal(repr(number)) != exact:
        raise BusinessRuleViolation(
            f"amount {exact} cannot be sent to NetSuite exactly", code="netsuite_amount_precision"
        )
    return number


def _ref(external_id: str) -> dict[str, str]:
    return {"externalId": external_id}


def _money(payload: Mapping[str, Any], key: str) -> Decimal:
    return Decimal(str(payload[key]["amount"]))


def record_writes(command: ConnectorCommand, mapping: NetSuiteMapping) -> list[RecordWrite]:
    """The upserts one command becomes, parents first (customer, then project, then the transaction)."""
    builder = _BUILDERS.get(command.operation)
    if builder is None:
        raise BusinessRuleViolation(
            f"the NetSuite connector has no mapping for operation {command.operation!r}",
            code="netsuite_unsupported_operation",
        )
    return builder(command, mapping)


def _customer_ref(customer: Mapping[str, Any]) -> dict[str, str]:
    """The customer as NetSuite knows it: its internal id when the CRM already links one, else ours."""
    known = customer.get("external_ids", {}).get("netsuite")
    return {"id": known} if known else _ref(customer["customer_id"])


def _customer_and_project(payload: Mapping[str, Any], mapping: NetSuiteMapping) -> list[RecordWrite]:
    """Parent records first, so the transaction's references resolve. A customer NetSuite already holds
    (linked by internal id) is the firm's master data: referenced, never rewritten or duplicated."""
    customer = payload["customer"]
    writes = []
    if "id" not in _customer_ref(customer):
        writes.append(
            RecordWrite(
                "customer",
                customer["customer_id"],
                {
                    "companyName": customer["name"],
                    "subsidiary": mapping.subsidiary(payload["legal_entity"]),
                    "currency": mapping.currency(payload["currency"]),
                },
            )
        )
    writes.append(
        RecordWrite(
            "job",
            payload["project_id"],
            {
                "companyName": payload["project_id"],
                "parent": _customer_ref(customer),
                "subsidiary": mapping.subsidiary(payload["legal_entity"]),
                "currency": mapping.currency(payload["currency"]),
            },
        )
    )
    return writes


def _billing_schedule(command: ConnectorCommand, mapping: NetSuiteMapping) -> list[RecordWrite]:
    p = command.payload
    # Lines billed from approved time at the rate card carry no amount: they reach NetSuite as billable
    # time, not as sales order lines.
    lines = [
        {
            "item": mapping.item(line["kind"]),
            "description": line["description"],
            "amount": json_number(Decimal(str(line["amount"]["amount"]))),
            "custcol_pssync_line_id": line["line_id"],
        }
        for line in p["lines"]
        if line.get("amount") is not None
    ]
    order = RecordWrite(
        "salesOrder",
        command.external_id,
        {
            "entity": _ref(p["project_id"]),
            "subsidiary": mapping.subsidiary(p["legal_entity"]),
            "currency": mapping.currency(p["currency"]),
            "memo": f"pssync contract {p['contract_id']} v{p['contract_version']}",
            "item": {"items": lines},
        },
        replace_sublists=("item",),  # the new version's lines replace the previous version's
    )
    return [*_customer_and_project(p, mapping), order]


def _billable_time(command: ConnectorCommand, mapping: NetSuiteMapping) -> list[RecordWrite]:
    p = command.payload
    entry = RecordWrite(
        "timeBill",
        command.external_id,
        {
            "customer": _ref(p["project_id"]),
            "employee": _ref(p["person_id"]),
            "item": mapping.item("time"),
            "tranDate": p["work_date"],
            "hours": json_number(p["hours"]),
            "rate": json_number(_money(p, "rate")),
            "isBillable": True,
            "memo": f"pssync time {p['time_entry_id']} ({p['role']})",
        },
    )
    return [*_customer_and_project(p, mapping), entry]


def _rebillable_expense(command: ConnectorCommand, mapping: NetSuiteMapping) -> list[RecordWrite]:
    p = command.payload
    charge = RecordWrite(
        "charge",
        command.external_id,
        {
            "billTo": _customer_ref(p["customer"]),
            "project": _ref(p["project_id"]),
            "chargeDate": p["incurred_on"],
            "billingItem": mapping.item("expense"),
            "currency": mapping.currency(p["currency"]),
            "amount": json_number(_money(p, "amount")),
            "description": f"{p['category']}: {p['description']}" if p.get("description") else p["category"],
        },
    )
    return [*_customer_and_project(p, mapping), charge]


def _milestone_invoice(command: ConnectorCommand, mapping: NetSuiteMapping) -> list[RecordWrite]:
    p = command.payload
    invoice = RecordWrite(
        "invoice",
        command.external_id,
        {
            "entity": _ref(p["project_id"]),
            "subsidiary": mapping.subsidiary(p["legal_entity"]),
            "currency": mapping.currency(p["currency"]),
            "tranDate": p["accepted_on"],
            "memo": f"pssync milestone {p['milestone_id']} of contract {p['contract_id']}",
            "item": {
                "items": [
                    {
                        "item": mapping.item("milestone"),
                        "description": p["description"],
                        "amount": json_number(_money(p, "amount")),
                        "custcol_pssync_line_id": p["billing_line_id"],
                    }
                ]
            },
        },
        replace_sublists=("item",),
    )
    return [*_customer_and_project(p, mapping), invoice]


def _journal_entry(command: ConnectorCommand, mapping: NetSuiteMapping) -> list[RecordWrite]:
    p = command.payload
    lines = []
    for line in p["lines"]:
        debit, credit = Decimal(line["debit"]), Decimal(line["credit"])
        side = {"debit": json_number(debit)} if debit else {"credit": json_number(credit)}
        lines.append({"account": mapping.account(line["account"]), **side, "memo": p["contract_id"]})
    # One period can hold several journals of a contract (the original, then adjustments): the kind is
    # part of the record's identity, or an adjustment would overwrite the original.
    journal = RecordWrite(
        "journalEntry",
        f"{command.external_id}/{p['kind']}",
        {
            "subsidiary": mapping.subsidiary(p["legal_entity"]),
            "currency": mapping.currency(p["currency"]),
            "tranDate": p["posting_date"],
            "memo": f"pssync {p['kind']} revenue journal {p['contract_id']} {p['period']}",
            "line": {"items": lines},
        },
        replace_sublists=("line",),
    )
    return [journal]


_BUILDERS: dict[str, Callable[[ConnectorCommand, NetSuiteMapping], list[RecordWrite]]] = {
    "upsert_billing_schedule": _billing_schedule,
    "upsert_billable_time": _billable_time,
    "upsert_rebillable_expense": _rebillable_expense,
    "release_milestone_invoice": _milestone_invoice,
    "post_journal_entry": _journal_entry,
}
SUPPORTED_OPERATIONS = frozenset(_BUILDERS)


# --- comparing what was written with what NetSuite holds (dual mode) ---------------------------------


def differences(written: Mapping[str, Any], held: Mapping[str, Any], path: str = "") -> list[str]:
    """Fields we wrote whose value NetSuite does not hold, as paths (`item.items[0].amount`).

    Numbers compare as decimals; references we wrote by internal id compare by id; references we wrote
    by external id are not compared (a read answers with internal ids only).
    """
    found: list[str] = []
    for key, value in written.items():
        where = f"{path}.{key}" if path else key
        actual = held.get(key)
        if isinstance(value, dict) and "externalId" in value:
            continue
        if isinstance(value, dict) and "items" in value:
            actual_items = actual.get("items") if isinstance(actual, dict) else None
            found += _item_differences(value["items"], actual_items, where)
        elif isinstance(value, dict):
            if not isinstance(actual, dict) or str(actual.get("id")) != str(value.get("id")):
                found.append(where)
        elif isinstance(value, bool) or isinstance(actual, bool):
            if value is not actual:
                found.append(where)
        elif isinstance(value, float | int):
            if actual is None or Decimal(str(actual)) != Decimal(repr(value)):
                found.append(where)
        elif value != actual:
            found.append(where)
    return found


def _item_differences(written: Sequence[Any], held: Any, where: str) -> list[str]:
    if not isinstance(held, list) or len(held) != len(written):
        return [f"{where} (line count)"]
    found: list[str] = []
    for index, (ours, theirs) in enumerate(zip(written, held, strict=True)):
        found += differences(ours, theirs if isinstance(theirs, dict) else {}, f"{where}[{index}]")
    return found


# --- the connector -----------------------------------------------------------------------------------


class NetSuiteConnector:
    """Writes ERP commands to one NetSuite account; safe to call twice with the same command."""

    vendor = "netsuite"

    def __init__(self, http: VendorHttp, tokens: NetSuiteTokens, mapping: NetSuiteMapping) -> None:
        self._http = http
        self._tokens = tokens
        self._mapping = mapping

    @property
    def account_id(self) -> str:
        """The account written to: the key of its concurrency slots."""
        return self._tokens.account_id

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        writes = self.writes(command)
        not_after = self._http.now() + NETSUITE_COMMAND_SECONDS
        for write in writes:
            params = {"replace": ",".join(write.replace_sublists)} if write.replace_sublists else None
            self._authorised(
                partial(
                    self._http.request,
                    "PUT",
                    write.path,
                    params=params,
                    json_body=write.body,
                    not_after=not_after,
                )
            )
        return RecordedCommand(command=command, first_time=True)

    def writes(self, command: ConnectorCommand) -> list[RecordWrite]:
        if command.target is not Target.ERP:
            raise BusinessRuleViolation(
                f"NetSuite is the ERP; it cannot take a {command.target} command", code="wrong_target"
            )
        return record_writes(command, self._mapping)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        """Read back the transaction the command wrote; the fields that differ from what we sent."""
        transaction = self.writes(command)[-1]
        held = self._authorised(
            lambda: json_object(
                self._http.request("GET", transaction.path, params={"expandSubResources": "true"}),
                self.vendor,
                transaction.path,
            )
        )
        return [
            f"{transaction.record_type}/{transaction.external_id}: {d}"
            for d in differences(transaction.body, held)
        ]

    def _authorised(self, call: Callable[[], Any]) -> Any:
        """Run a call; on a 401 fetch a new token and run it once more (a token revoked or expired early)."""
        try:
            return call()
        except VendorAuthRefused as refused:
            if refused.status != 401:
                raise
            self._tokens.invalidate()
            return call()


def netsuite_http(
    credentials: NetSuiteCredentials,
    tokens: NetSuiteTokens,
    policy: CallPolicy | None = None,
    **options: Any,
) -> VendorHttp:
    """The vendor HTTP client for one NetSuite account (tests pass a transport, clock and jitter)."""
    return VendorHttp(
        "netsuite", credentials.base_url, policy or NETSUITE_WRITES, bearer_token=tokens, **options
    )
