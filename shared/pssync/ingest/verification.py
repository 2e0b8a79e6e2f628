"""Signature verification strategies. Fail closed, constant-time, over the raw body bytes."""

from __future__ import annotations

import hmac
from base64 import b64decode
from binascii import Error as Base64Error
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from pssync.errors import MalformedDelivery, SignatureInvalid, StaleDelivery
from pssync.ingest.request import RawRequest
from pssync.ingest.sources import SignatureScheme, SourceConfig


@dataclass(frozen=True)
class SigningSecrets:
    """The current secret and, during a rotation, the previous one: both verify."""

    current: str
    previous: str | None = None

    def all(self) -> list[str]:
        return [s for s in (self.current, self.previous) if s]


@dataclass(frozen=True)
class VerifiedDelivery:
    delivery_id: str
    sent_at: datetime


class Verifier(Protocol):
    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets, now: datetime
    ) -> VerifiedDelivery: ...


class StandardWebhooksVerifier:
    """https://www.standardwebhooks.com: HMAC-SHA256 over `id.timestamp.body`, `v1,<base64>` signatures.

    The library computes the signature (secret decoding, message layout); the timestamp window is ours
    because it is configured per source and a stale delivery must read 400, not 401.
    """

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets, now: datetime
    ) -> VerifiedDelivery:
        delivery_id = request.single_header("webhook-id")
        timestamp_text = request.single_header("webhook-timestamp")
        signature_header = request.single_header("webhook-signature")
        if not timestamp_text.isdigit():
            raise MalformedDelivery("webhook-timestamp must be integer seconds since the epoch")
        sent_at = datetime.fromtimestamp(int(timestamp_text), tz=UTC)
        skew = abs((now - sent_at).total_seconds())
        if skew > source.tolerance_seconds:
            raise StaleDelivery(
                f"webhook-timestamp is {int(skew)} s away from now (limit {source.tolerance_seconds} s)"
            )
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedDelivery("body is not UTF-8") from None

        offered = _offered_v1_signatures(signature_header)
        for secret in secrets.all():
            try:
                expected = Webhook(secret).sign(msg_id=delivery_id, timestamp=sent_at, data=body)
            except (EmptyWebhookSecretError, Base64Error, ValueError):
                continue  # a malformed configured secret verifies nothing; the other may
            expected_bytes = b64decode(expected.split(",", 1)[1])
            # Compare against every offered signature without short-circuiting on the first miss.
            matched = False
            for candidate in offered:
                matched |= hmac.compare_digest(expected_bytes, candidate)
            if matched:
                return VerifiedDelivery(delivery_id=delivery_id, sent_at=sent_at)
        raise SignatureInvalid("no webhook-signature matches a configured secret")


def _offered_v1_signatures(header: str) -> list[bytes]:
    signatures: list[bytes] = []
    for token in header.split():
        version, _, value = token.partition(",")
        if version != "v1" or not value:
            continue
        try:
            signatures.append(b64decode(value, validate=True))
        except (Base64Error, ValueError):
            continue
    if not signatures:
        raise SignatureInvalid("webhook-signature carries no v1 signature")
    return signatures


VERIFIERS: dict[SignatureScheme, Verifier] = {SignatureScheme.STANDARD_WEBHOOKS: StandardWebhooksVerifier()}
