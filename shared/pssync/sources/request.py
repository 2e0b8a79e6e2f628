"""A transport-neutral inbound HTTP request: what verification and normalisation need, nothing more."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pssync.errors import MalformedDelivery, SignatureInvalid


@dataclass(frozen=True)
class RawRequest:
    method: str
    url: str
    body: bytes
    # Lower-cased header name -> every value received (duplicates matter: they are rejected).
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def from_api_gateway(
        cls,
        *,
        method: str,
        url: str,
        body: str | None,
        is_base64_encoded: bool,
        headers: Mapping[str, str] | None,
        multi_value_headers: Mapping[str, Sequence[str]] | None,
    ) -> RawRequest:
        if body is None:
            raw = b""
        elif is_base64_encoded:
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise MalformedDelivery("body is flagged base64 but does not decode") from None
        else:
            raw = body.encode("utf-8")
        merged: dict[str, list[str]] = {}
        for name, values in (multi_value_headers or {}).items():
            merged.setdefault(name.lower(), []).extend(values)
        for name, value in (headers or {}).items():
            merged.setdefault(name.lower(), [value])
        return cls(method=method.upper(), url=url, body=raw, headers=merged)

    def single_header(self, name: str) -> str:
        """The one value of a security header; missing or repeated is a signature failure."""
        values = self.headers.get(name.lower(), [])
        if len(values) != 1 or not values[0].strip():
            raise SignatureInvalid(f"header {name} must be present exactly once")
        return values[0].strip()
