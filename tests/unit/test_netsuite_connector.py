"""NetSuite connector against respx fakes answering with NetSuite's documented payloads.

The fake record service keeps records by (type, external id), as NetSuite's `eid:` upsert does, so the
tests can count records, not just calls.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pssync.connectors.netsuite import (
    NetSuiteConnector,
    NetSuiteCredentials,
    NetSuiteMapping,
    NetSuiteTokens,
    account_host,
    json_number,
    netsuite_http,
)
from pssync.errors import BusinessRuleViolation, TransientDownstreamError, VendorAuthRefused, VendorRejected
from pssync.model import examples
from pssync.model.commands import ConnectorCommand, Target
from pssync.workflows import provision

ACCOUNT = "1234567_SB1"
HOST = account_host(ACCOUNT)
TOKEN_URL = HOST + "/services/rest/auth/oauth2/v1/token"
RECORDS = HOST + "/services/rest/record/v1"
MAPPING = NetSuiteMapping(
    subsidiaries={"NL01": "3"},
    currencies={"EUR": "4"},
    items={
        "milestone": "501",
        "instalment": "502",
        "managed_service": "503",
        "time": "510",
        "expense": "520",
    },
    accounts={"1200": "119", "2400": "221", "4000": "54"},
)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CREDENTIALS = NetSuiteCredentials(
    account_id=ACCOUNT, client_id="client-abc", certificate_id="cert-kid-1", private_key_pem=_pem(RSA_KEY)
)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeNetSuite:
    """Token endpoint and record service with NetSuite's answers: 200 token JSON, 204 on upsert."""

    def __init__(self, expires_in: str = "3600") -> None:
        self.expires_in = expires_in
        self.assertions: list[str] = []
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.internal_ids = 0
        self.queued: list[httpx.Response | Exception] = []  # answers (or failures) before the normal one
        self.lose_next_response = False
        self.requests: list[httpx.Request] = []

    def token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["client_credentials"]
        assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        self.assertions.append(form["client_assertion"][0])
        token = f"access-{len(self.assertions)}"
        return httpx.Response(
            200, json={"access_token": token, "expires_in": self.expires_in, "token_type": "bearer"}
        )

    def record(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            answer = self.queued.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        record_type, key = request.url.raw_path.decode().split("/record/v1/")[1].split("?")[0].split("/", 1)
        external_id = unquote(key).removeprefix("eid:")
        if request.method == "GET":
            held = self.records.get((record_type, external_id))
            return httpx.Response(200, json=held) if held else _not_found()
        if (record_type, external_id) not in self.records:
            self.internal_ids += 1
        self.records[(record_type, external_id)] = json.loads(request.content)
        if self.lose_next_response:  # written, but the answer never arrives
            self.lose_next_response = False
            raise httpx.ReadTimeout("response lost", request=request)
        return httpx.Response(204, headers={"Location": f"{RECORDS}/{record_type}/{self.internal_ids}"})


def _not_found() -> httpx.Response:
    return httpx.Response(
        404,
        json={
            "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5",
            "title": "Not Found",
            "status": 404,
            "o:errorDetails": [
                {"detail": "The record instance does not exist.", "o:errorCode": "NONEXISTENT_ID"}
            ],
        },
    )


@pytest.fixture
def netsuite() -> Any:
    fake = FakeNetSuite()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(TOKEN_URL).mock(side_effect=fake.token)
        mock.route(url__startswith=RECORDS).mock(side_effect=fake.record)
        yield fake


def connector(clock: Clock | None = None) -> tuple[NetSuiteConnector, list[float]]:
    sleeps: list[float] = []
    tokens = NetSuiteTokens(CREDENTIALS, clock=clock or Clock())
    http = netsuite_http(CREDENTIALS, tokens, sleep=sleeps.append, rng=lambda: 0.5)
    return NetSuiteConnector(http, tokens, MAPPING), sleeps


def billing_schedule(version: int = 1) -> ConnectorCommand:
    booked = examples.contract_booked()
    return provision.billing_schedule_command(booked, booked.data.contract, version)


def erp_command(operation: str, external_id: str, payload: dict[str, Any]) -> ConnectorCommand:
    return ConnectorCommand(
        target=Target.ERP,
        operation=operation,
        external_id=external_id,
        idempotency_key=f"{operation}:{external_id}",
        payload=payload,
        caused_by_event_id="evt-1",
        correlation_id="corr-1",
    )


CUSTOMER = {"customer_id": "CUST-0099", "name": "Fabrikam BV", "country": "NL", "external_ids": {}}


def journal(kind: str) -> ConnectorCommand:
    """Shaped like pssync.workflows.period_close.journal_command."""
    return ConnectorCommand(
        target=Target.ERP,
        operation="post_journal_entry",
        external_id="NL01/C-2026-0412/2027-01",
        idempotency_key=f"journal:C-2026-0412:2027-01:{kind}",
        payload={
            "legal_entity": "NL01",
            "contract_id": "C-2026-0412",
            "customer": CUSTOMER,
            "period": "2027-01",
            "posting_date": "2027-01-31",
            "kind": kind,
            "currency": "EUR",
            "lines": [
                {"account": "1200", "debit": "1500.25", "credit": "0.00"},
                {"account": "4000", "debit": "0.00", "credit": "1500.25"},
            ],
            "functional_currency": "EUR",
            "functional_lines": None,
            "close_id": "close-2027-01",
        },
        caused_by_event_id="close-2027-01",
        correlation_id="close-2027-01",
    )


# --- OAuth 2.0 client credentials --------------------------------------------------------------------


def test_the_client_assertion_is_a_ps256_jwt_signed_with_the_certificate_key(netsuite: FakeNetSuite) -> None:
    clock = Clock()
    connector(clock)[0].send(billing_schedule(), "2027-01-01T00:00:00+00:00")
    [assertion] = netsuite.assertions
    header, claims, signature = assertion.split(".")
    assert json.loads(_unb64(header)) == {"typ": "JWT", "alg": "PS256", "kid": "cert-kid-1"}
    body = json.loads(_unb64(claims))
    assert (body["iss"], body["scope"], body["aud"]) == ("client-abc", "rest_webservices", TOKEN_URL)
    assert body["iat"] == int(clock.now) and 0 < body["exp"] - body["iat"] <= 3600
    RSA_KEY.public_key().verify(  # raises if the signature is not PS256 over header.claims
        _unb64(signature),
        f"{header}.{claims}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_an_ec_certificate_signs_es256_with_a_raw_r_and_s(netsuite: FakeNetSuite) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    tokens = NetSuiteTokens(
        NetSuiteCredentials(ACCOUNT, "client-abc", "cert-ec", private_key_pem=_pem(key)), clock=Clock()
    )
    assert tokens() == "access-1"
    header, claims, signature = netsuite.assertions[0].split(".")
    assert json.loads(_unb64(header))["alg"] == "ES256"
    raw = _unb64(signature)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))


def test_the_access_token_is_cached_until_shortly_before_it_expires(netsuite: FakeNetSuite) -> None:
    clock = Clock()
    tokens = NetSuiteTokens(CREDENTIALS, clock=clock)
    assert tokens() == tokens() == "access-1"
    clock.now += 3600 - 120
    assert tokens() == "access-1"
    clock.now += 90  # inside the refresh margin
    assert tokens() == "access-2"
    assert len(netsuite.assertions) == 2


def test_a_token_expiring_mid_batch_is_refreshed_once_on_401(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    ns.send(billing_schedule(), "t")
    netsuite.queued = [httpx.Response(401, json={"title": "Unauthorized", "status": 401})]
    ns.send(billing_schedule(), "t")
    assert len(netsuite.assertions) == 2  # the refused token was replaced, once
    assert ("salesOrder", "C-2026-0412") in netsuite.records


def test_a_second_401_after_a_refresh_is_reported_not_looped(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    unauthorised = httpx.Response(401, json={"title": "Unauthorized", "status": 401})
    netsuite.queued = [unauthorised, unauthorised]
    with pytest.raises(VendorAuthRefused):
        ns.send(billing_schedule(), "t")
    assert len(netsuite.assertions) == 2


def test_a_refused_assertion_is_an_auth_failure_not_a_retry_loop() -> None:
    with respx.mock:
        respx.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
        with pytest.raises(VendorAuthRefused, match="invalid_grant"):
            NetSuiteTokens(CREDENTIALS, clock=Clock())()


def test_a_throttled_token_endpoint_is_transient() -> None:
    with respx.mock:
        respx.post(TOKEN_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "5"}))
        with pytest.raises(TransientDownstreamError, match="429"):
            NetSuiteTokens(CREDENTIALS, clock=Clock())()


# --- record upserts ----------------------------------------------------------------------------------


def test_the_billing_schedule_is_upserted_by_external_id_with_its_lines(netsuite: FakeNetSuite) -> None:
    command = billing_schedule()
    result = connector()[0].send(command, "t")
    assert result.command == command
    # The example customer is linked to NetSuite id 4711: referenced, not upserted a second time.
    assert set(netsuite.records) == {("job", "P-CONTOSO-0412"), ("salesOrder", "C-2026-0412")}
    assert netsuite.records[("job", "P-CONTOSO-0412")]["parent"] == {"id": "4711"}
    order = netsuite.records[("salesOrder", "C-2026-0412")]
    assert order["entity"] == {"externalId": "P-CONTOSO-0412"}
    assert order["currency"] == {"id": "4"} and order["subsidiary"] == {"id": "3"}
    priced = [line for line in command.payload["lines"] if line["amount"] is not None]
    assert [line["custcol_pssync_line_id"] for line in order["item"]["items"]] == [
        line["line_id"] for line in priced
    ]
    assert sum(Decimal(str(line["amount"])) for line in order["item"]["items"]) == sum(
        Decimal(line["amount"]["amount"]) for line in priced
    )


def test_a_new_version_replaces_the_sales_order_lines(netsuite: FakeNetSuite) -> None:
    connector()[0].send(billing_schedule(2), "t")
    order_put = next(r for r in netsuite.requests if "/salesOrder/" in str(r.url))
    assert order_put.method == "PUT" and order_put.url.params["replace"] == "item"
    assert netsuite.records[("salesOrder", "C-2026-0412")]["memo"].endswith("v2")


def test_a_customer_unknown_to_netsuite_is_upserted_by_our_id_first(netsuite: FakeNetSuite) -> None:
    command = erp_command(
        "upsert_rebillable_expense",
        "EXP-77",
        {
            "contract_id": "C-1",
            "customer": CUSTOMER,
            "legal_entity": "NL01",
            "currency": "EUR",
            "project_id": "P-1",
            "line_id": "X1",
            "expense_id": "E-77",
            "person_id": "EMP-9",
            "category": "travel",
            "incurred_on": "2027-01-12",
            "description": "Train Utrecht-Brussels",
            "cost": {"amount": "180.00", "currency": "EUR"},
            "markup_percent": "10",
            "markup": {"amount": "18.00", "currency": "EUR"},
            "amount": {"amount": "198.00", "currency": "EUR"},
        },
    )
    connector()[0].send(command, "t")
    assert list(netsuite.records) == [("customer", "CUST-0099"), ("job", "P-1"), ("charge", "EXP-77")]
    charge = netsuite.records[("charge", "EXP-77")]
    assert charge["billTo"] == {"externalId": "CUST-0099"} and charge["amount"] == 198.0


def test_a_write_whose_response_is_lost_is_retried_onto_the_same_record(netsuite: FakeNetSuite) -> None:
    ns, sleeps = connector()
    ns.send(billing_schedule(), "t")
    created = netsuite.internal_ids
    netsuite.lose_next_response = True
    ns.send(billing_schedule(), "t")  # the job PUT times out after writing; the retry upserts it again
    assert netsuite.internal_ids == created  # nothing created twice
    assert len(sleeps) == 1


def test_429_waits_for_retry_after_then_succeeds(netsuite: FakeNetSuite) -> None:
    ns, sleeps = connector()
    netsuite.queued = [
        httpx.Response(
            429,
            headers={"Retry-After": "2"},
            json={
                "title": "Too Many Requests",
                "status": 429,
                "o:errorDetails": [
                    {
                        "detail": "Concurrent request limit exceeded.",
                        "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED",
                    }
                ],
            },
        )
    ]
    ns.send(billing_schedule(), "t")
    assert sleeps == [2.0]
    assert ("salesOrder", "C-2026-0412") in netsuite.records


def test_5xx_until_the_attempts_run_out_is_transient(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    netsuite.queued = [httpx.Response(503) for _ in range(4)]
    with pytest.raises(TransientDownstreamError, match="failed after retries"):
        ns.send(billing_schedule(), "t")


def test_a_4xx_is_rejected_with_netsuites_error_code(netsuite: FakeNetSuite) -> None:
    ns, sleeps = connector()
    netsuite.queued = [
        httpx.Response(
            400,
            json={
                "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                "title": "Bad Request",
                "status": 400,
                "o:errorDetails": [
                    {
                        "detail": "Invalid value for the resource or sub-resource field 'currency'.",
                        "o:errorPath": "currency",
                        "o:errorCode": "INVALID_VALUE",
                    }
                ],
            },
        )
    ]
    with pytest.raises(VendorRejected) as refused:
        ns.send(billing_schedule(), "t")
    assert (refused.value.status, refused.value.vendor_code) == (400, "INVALID_VALUE")
    assert sleeps == []


def test_journals_of_one_period_are_one_record_per_kind(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    ns.send(journal("original"), "t")
    ns.send(journal("adjustment-1"), "t")
    keys = [key for key in netsuite.records if key[0] == "journalEntry"]
    assert keys == [
        ("journalEntry", "NL01/C-2026-0412/2027-01/original"),
        ("journalEntry", "NL01/C-2026-0412/2027-01/adjustment-1"),
    ]
    lines = netsuite.records[keys[0]]["line"]["items"]
    assert lines[0]["account"] == {"id": "119"} and lines[0]["debit"] == 1500.25 and "credit" not in lines[0]
    assert lines[1]["account"] == {"id": "54"} and lines[1]["credit"] == 1500.25 and "debit" not in lines[1]


def test_an_external_id_with_a_slash_is_encoded_into_one_path_segment(netsuite: FakeNetSuite) -> None:
    connector()[0].send(journal("original"), "t")
    assert (
        netsuite.requests[-1]
        .url.raw_path.decode()
        .startswith("/services/rest/record/v1/journalEntry/eid:NL01%2FC-2026-0412%2F2027-01%2Foriginal")
    )


def test_a_value_missing_from_the_mapping_is_a_business_exception_before_any_call(
    netsuite: FakeNetSuite,
) -> None:
    booked = examples.contract_booked()
    command = provision.billing_schedule_command(booked, booked.data.contract, 1)
    unmapped = command.model_copy(update={"payload": {**command.payload, "legal_entity": "US01"}})
    with pytest.raises(BusinessRuleViolation, match="US01") as error:
        connector()[0].send(unmapped, "t")
    assert error.value.code == "netsuite_mapping_missing" and netsuite.records == {}


def test_psa_commands_and_unknown_operations_are_refused(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    with pytest.raises(BusinessRuleViolation, match="no mapping for operation"):
        ns.send(erp_command("delete_everything", "X", {}), "t")
    psa = billing_schedule().model_copy(update={"target": Target.PSA})
    with pytest.raises(BusinessRuleViolation, match="ERP"):
        ns.send(psa, "t")


# --- read back (dual mode) ---------------------------------------------------------------------------


def test_read_back_finds_no_difference_when_netsuite_holds_what_we_wrote(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    ns.send(billing_schedule(), "t")
    assert ns.mismatches(billing_schedule()) == []


def test_read_back_reports_a_line_netsuite_holds_differently(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    ns.send(billing_schedule(), "t")
    held = netsuite.records[("salesOrder", "C-2026-0412")]
    held["item"]["items"][1]["amount"] = 91999.99  # e.g. a NetSuite workflow rounded or edited the line
    held["currency"] = {"id": "1", "refName": "USD"}
    assert connector()[0].mismatches(billing_schedule()) == [
        "salesOrder/C-2026-0412: currency",
        "salesOrder/C-2026-0412: item[1].amount",
    ]


# --- amounts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["0.01", "92000.00", "1500.25", "123456789012.34", "-7.125"])
def test_amounts_reach_the_wire_as_exactly_their_decimal(amount: str) -> None:
    assert Decimal(json.dumps(json_number(Decimal(amount)))) == Decimal(amount)


def test_an_amount_a_json_number_cannot_carry_exactly_is_refused() -> None:
    with pytest.raises(BusinessRuleViolation, match="exactly"):
        json_number(Decimal("12345678901234567.89"))
