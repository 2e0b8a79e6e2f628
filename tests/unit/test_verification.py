"""Standard Webhooks verification: every rejection class, and the rotation window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pssync.errors import MalformedDelivery, SignatureInvalid, StaleDelivery
from pssync.local.webhook_client import standard_webhook_headers
from pssync.model.events import SourceSystem
from pssync.model.sources import SignatureScheme, SourceConfig
from pssync.ports import SigningSecrets
from pssync.sources.request import RawRequest
from pssync.sources.standard_webhooks import StandardWebhooksScheme as StandardWebhooksVerifier
from tests.conftest import PREVIOUS_SECRET, WEBHOOK_SECRET

NOW = datetime(2026, 11, 20, 10, 15, 30, tzinfo=UTC)
SOURCE = SourceConfig(
    name="crm",
    scheme=SignatureScheme.STANDARD_WEBHOOKS,
    system=SourceSystem.SALESFORCE,
    secret_id="pssync/test/webhooks/crm",
)
BODY = b'{"type":"contract.booked"}'


def _request(headers: dict[str, str], body: bytes = BODY) -> RawRequest:
    return RawRequest(
        method="POST", url="/webhooks/crm", body=body, headers={k.lower(): [v] for k, v in headers.items()}
    )


def _signed(secret: str = WEBHOOK_SECRET, *, at: datetime = NOW, body: bytes = BODY) -> dict[str, str]:
    return standard_webhook_headers(secret, body, delivery_id="msg_1", timestamp=int(at.timestamp()))


def verify(request: RawRequest, secrets: SigningSecrets | None = None) -> object:
    return StandardWebhooksVerifier().verify(request, SOURCE, secrets or SigningSecrets(WEBHOOK_SECRET), NOW)


def test_valid_signature_verifies_and_returns_the_delivery_id() -> None:
    delivery = verify(_request(_signed()))
    assert delivery.delivery_id == "msg_1"  # type: ignore[attr-defined]


def test_published_standard_webhooks_vector() -> None:
    # The test vector published with the Standard Webhooks / Svix reference libraries.
    body = b'{"test": 2432232314}'
    request = _request(
        {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        body=body,
    )
    sent = datetime.fromtimestamp(1614265330, tz=UTC)
    delivery = StandardWebhooksVerifier().verify(
        request,
        SOURCE,
        SigningSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        sent + timedelta(seconds=10),
    )
    assert delivery.delivery_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert delivery.sent_at == sent


def test_previous_secret_still_verifies_during_rotation() -> None:
    verify(
        _request(_signed(PREVIOUS_SECRET)), SigningSecrets(current=WEBHOOK_SECRET, previous=PREVIOUS_SECRET)
    )


def test_previous_secret_is_refused_once_rotation_ends() -> None:
    with pytest.raises(SignatureInvalid):
        verify(_request(_signed(PREVIOUS_SECRET)))


def test_one_byte_body_change_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify(_request(_signed(), body=BODY.replace(b"booked", b"bookeD")))


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify(_request(_signed("whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_a_signature_failure(missing: str) -> None:
    headers = _signed()
    del headers[missing]
    with pytest.raises(SignatureInvalid, match=missing):
        verify(_request(headers))


def test_duplicated_security_header_is_refused() -> None:
    headers = {k.lower(): [v] for k, v in _signed().items()}
    headers["webhook-signature"].append("v1,AAAA")
    with pytest.raises(SignatureInvalid, match="exactly once"):
        verify(RawRequest(method="POST", url="/webhooks/crm", body=BODY, headers=headers))


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_stale_and_future_timestamps_are_refused(offset: timedelta) -> None:
    with pytest.raises(StaleDelivery):
        verify(_request(_signed(at=NOW + offset)))


def test_non_numeric_timestamp_is_malformed() -> None:
    headers = _signed()
    headers["webhook-timestamp"] = "yesterday"
    with pytest.raises(MalformedDelivery):
        verify(_request(headers))


@pytest.mark.parametrize("signature", ["v2,abc", "v1,", "v1,***", "garbage"])
def test_unusable_signature_header_is_refused(signature: str) -> None:
    headers = _signed()
    headers["webhook-signature"] = signature
    with pytest.raises(SignatureInvalid):
        verify(_request(headers))


def test_any_one_of_several_offered_signatures_may_match() -> None:
    headers = _signed()
    headers["webhook-signature"] = (
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " + headers["webhook-signature"]
    )
    verify(_request(headers))


def test_a_broken_configured_secret_never_verifies() -> None:
    with pytest.raises(SignatureInvalid):
        verify(_request(_signed()), SigningSecrets(current="whsec_"))


def test_base64_encoded_api_gateway_bodies_are_decoded_before_verification() -> None:
    import base64

    request = RawRequest.from_api_gateway(
        method="POST",
        url="/webhooks/crm",
        body=base64.b64encode(BODY).decode(),
        is_base64_encoded=True,
        headers=_signed(),
        multi_value_headers=None,
    )
    assert request.body == BODY
    verify(request)


def test_generated_local_secrets_are_always_valid_standard_webhooks_keys() -> None:
    from pssync.local.runtime import new_signing_secret

    for _ in range(200):  # url-safe base64 once produced undecodable keys one run in a few
        secret = new_signing_secret()
        headers = standard_webhook_headers(secret, BODY, delivery_id="msg_1", timestamp=int(NOW.timestamp()))
        verify(_request(headers), SigningSecrets(secret))


@pytest.mark.parametrize(
    "hostile", ["99999999999999999", "9999999999999999", "²", "\uff11\uff12\uff13", "-5", "1e9"]
)
def test_hostile_timestamps_are_malformed_not_crashes(hostile: str) -> None:
    headers = _signed()
    headers["webhook-timestamp"] = hostile
    with pytest.raises(MalformedDelivery):
        verify(_request(headers))
