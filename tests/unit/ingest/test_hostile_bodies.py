"""Bodies a hostile or broken sender controls: signed (so they reach parsing), every one a 400 with nothing
written. Before parsing was shared, a 5,000-digit integer or deep nesting answered 502 in four schemes, a
lone surrogate escape crashed serialisation, and bytes that are not UTF-8 were accepted (Dataverse booked
a contract from one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from pssync.errors import MalformedDelivery, UnsupportedMediaType
from pssync.sources.base import MAX_JSON_DEPTH, parse_json_body
from pssync.sources.request import RawRequest
from tests.unit.ingest.sources_kit import (
    assert_refused_without_writes,
    dataverse_request,
    hubspot_request,
    jira_request,
    standard_request,
)

SIGNED: dict[str, tuple[Callable[[bytes], RawRequest], bool]] = {
    # source name -> (signed request for a body, whether the scheme's body is an array of events)
    "standard": (standard_request, False),
    "hubspot": (hubspot_request, True),
    "jira": (jira_request, False),
    "dataverse": (dataverse_request, False),
}
HOSTILE: dict[str, bytes] = {
    "5,000-digit integer": b'{"a": ' + b"9" * 5000 + b"}",
    "nested 5,000 deep": b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nested past the limit": b'{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
    "lone surrogate escape": b'{"a": "\\ud800"}',
    "lone surrogate bytes (not UTF-8)": b'{"a": "\xed\xa0\x80"}',
    "latin-1 bytes": b'{"a": "caf\xe9"}',
    "UTF-8 BOM": b'\xef\xbb\xbf{"a": 1}',
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("source", SIGNED)
def test_hostile_bodies_are_400_and_write_nothing(source: str, body: bytes) -> None:
    build, array = SIGNED[source]
    payload = b"[" + body + b"]" if array else body
    assert_refused_without_writes(source, lambda: build(payload), MalformedDelivery)


def test_the_depth_limit_leaves_room_for_real_documents() -> None:
    nested = b'{"a": ' + b"[" * (MAX_JSON_DEPTH - 2) + b"]" * (MAX_JSON_DEPTH - 2) + b"}"
    document = parse_json_body(nested)
    for _ in range(MAX_JSON_DEPTH - 2):
        document = document[0] if isinstance(document, list) else document["a"]
    assert document == []


def test_surrogate_pairs_are_fine() -> None:
    assert parse_json_body(b'{"a": "\\ud83d\\ude00"}') == {"a": "\N{GRINNING FACE}"}


@pytest.mark.parametrize(
    "content_type",
    [["text/plain"], [], ["application/json", "application/json"], ["application/json; charset=utf-16"]],
    ids=["text/plain", "missing", "repeated", "utf-16"],
)
@pytest.mark.parametrize("source", SIGNED)
def test_a_content_type_the_vendor_does_not_send_is_415(source: str, content_type: list[str]) -> None:
    build, array = SIGNED[source]
    body = b'[{"a": 1}]' if array else b'{"a": 1}'

    def signed_with_content_type() -> RawRequest:
        signed = build(body)
        return replace(signed, headers={**signed.headers, "content-type": content_type})

    assert_refused_without_writes(source, signed_with_content_type, UnsupportedMediaType)


# Found by the scorecard (R4): Dataverse parses numbers with parse_float=Decimal, and the lone-surrogate
# check serialised the whole document with json.dumps, which cannot serialise a Decimal: a TypeError, a 502.
# A valid surrogate pair was enough (the check is triggered by any \uD8xx escape), so a real delivery with
# an escaped emoji and a money value was a 502 too.
DECIMAL_AND_SURROGATE: dict[str, bytes] = {
    "lone surrogate next to a decimal": b'{"a": "\\ud800", "b": 92000.00}',
    "lone low surrogate in a key next to a decimal": b'{"\\udc00": 1.5}',
}


@pytest.mark.parametrize("body", DECIMAL_AND_SURROGATE.values(), ids=DECIMAL_AND_SURROGATE.keys())
@pytest.mark.parametrize("source", SIGNED)
def test_a_lone_surrogate_beside_a_decimal_is_400_not_a_crash(source: str, body: bytes) -> None:
    build, array = SIGNED[source]
    payload = b"[" + body + b"]" if array else body
    assert_refused_without_writes(source, lambda: build(payload), MalformedDelivery)


def test_a_surrogate_pair_beside_a_decimal_parses() -> None:
    from decimal import Decimal

    document = parse_json_body(b'{"name": "Contoso \\ud83d\\ude00", "v": 92000.00}', parse_float=Decimal)
    assert document == {"name": "Contoso \N{GRINNING FACE}", "v": Decimal("92000.00")}
