"""Salesforce Outbound Messages: key, organisation allowlist, safe XML, fan-out with re-fetch, SOAP Ack.

Like Dataverse there is no signature: a changed byte in the body cannot be detected by design.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from pssync.errors import (
    DeliveryInProgress,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    UnknownTenant,
)
from pssync.model.events import ClosedWonSignalled, canonical_event_id, closed_won_signal_id
from pssync.model.sources import SignatureScheme
from pssync.sources import scheme_for
from pssync.sources.crm_terms import ContractMappingError
from tests.unit.ingest.sources_kit import (
    SALESFORCE_KEY,
    SALESFORCE_PREVIOUS,
    Harness,
    assert_refused_without_writes,
    salesforce_opportunity,
    salesforce_request,
    sample,
)

MESSAGE = sample("salesforce-outbound/opportunity-closed-won.xml")


def test_closed_won_notifications_fan_out_as_signals_and_own_writes_are_dropped() -> None:
    harness = Harness()
    result = harness.send("salesforce", salesforce_request(MESSAGE))
    first, second = harness.publisher.published
    assert isinstance(first, ClosedWonSignalled) and isinstance(second, ClosedWonSignalled)
    assert harness.fetcher.calls == []  # Salesforce gets its Ack without waiting for the REST API
    assert first.source_event_id == "04l5g00000AbCdEAAX"
    assert first.event_id == closed_won_signal_id("salesforce", "04l5g00000AbCdEAAX")
    assert first.correlation_id == canonical_event_id("salesforce", "04l5g00000AbCdEAAX")
    assert (first.data.record_type, first.data.record_id) == ("salesforce-opportunity", "0065g00000AbCdEAAX")
    assert first.occurred_at == first.data.closed_won_at == datetime(2026, 11, 20, 10, 14, 58, tzinfo=UTC)
    # ...G was written by our integration user, ...H is not closed won: no signal for either.
    assert second.source_event_id == "04l5g00000AbCdFAAX"
    assert len(result.events) == 2


def test_signals_resolve_after_a_re_fetch_into_bookings() -> None:
    harness = Harness()
    harness.send("salesforce", salesforce_request(MESSAGE))
    harness.resolve_signals()
    first, second = harness.bookings()
    assert first.event_id == first.correlation_id == canonical_event_id("salesforce", "04l5g00000AbCdEAAX")
    assert first.source_version == "2026-11-20T10:15:03.000Z"  # the fetched record's LastModifiedDate
    assert first.occurred_at == first.data.closed_won_at == datetime(2026, 11, 20, 10, 14, 58, tzinfo=UTC)
    assert first.data.contract.contract_id == "C-2026-0412"
    assert first.data.contract.crm_opportunity_id == "0065g00000AbCdEAAX"
    assert first.data.contract.customer.external_ids["salesforce"] == "0015g00000XyZ12AAB"
    assert (
        second.source_event_id == "04l5g00000AbCdFAAX" and second.data.contract.contract_id == "C-2026-0413"
    )
    assert harness.fetcher.calls == [
        ("Opportunity", "0065g00000AbCdEAAX"),
        ("Opportunity", "0065g00000AbCdFAAX"),
    ]


@pytest.mark.parametrize(("via", "key"), [("header", SALESFORCE_KEY), ("query", SALESFORCE_PREVIOUS)])
def test_key_in_header_or_query_and_previous_key(via: str, key: str) -> None:
    assert len(Harness().send("salesforce", salesforce_request(MESSAGE, key=key, via=via)).events) == 2


def test_reply_is_the_soap_ack() -> None:
    harness = Harness()
    result = harness.send("salesforce", salesforce_request(MESSAGE))
    reply = scheme_for(SignatureScheme.SALESFORCE_OUTBOUND).acknowledge(result)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/xml")
    ack = ET.fromstring(reply.body)  # noqa: S314 - our own constant reply
    assert ack.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
    assert ack.findtext(".//{http://soap.sforce.com/2005/09/outbound}Ack") == "true"


def test_an_opportunity_reopened_since_the_notification_is_dropped() -> None:
    harness = Harness()
    harness.fetcher.records[("Opportunity", "0065g00000AbCdFAAX")] = salesforce_opportunity(
        "0065g00000AbCdFAAX", "C-2026-0413", won=False
    )
    assert len(harness.send("salesforce", salesforce_request(MESSAGE)).events) == 2
    resolutions = harness.resolve_signals()
    assert [(r.published, r.dropped) for r in resolutions] == [(True, False), (False, True)]
    assert [e.source_event_id for e in harness.bookings()] == ["04l5g00000AbCdEAAX"]


def test_a_retry_carrying_newer_field_values_is_a_duplicate() -> None:
    harness = Harness()
    harness.send("salesforce", salesforce_request(MESSAGE))
    newer = MESSAGE.replace(b"2026-11-20T10:14:58.000Z", b"2026-11-20T10:20:00.000Z")
    assert harness.send("salesforce", salesforce_request(newer)).all_duplicates
    assert len(harness.publisher.published) == 2


def test_concurrent_copies_publish_each_notification_once() -> None:
    harness = Harness()

    def attempt(_: int) -> None:
        with contextlib.suppress(DeliveryInProgress):
            harness.send("salesforce", salesforce_request(MESSAGE))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(attempt, range(12)))
    assert sorted(e.source_event_id for e in harness.publisher.published) == [
        "04l5g00000AbCdEAAX",
        "04l5g00000AbCdFAAX",
    ]


def test_a_line_item_for_an_obligation_outside_the_sow_is_refused_at_resolution() -> None:
    harness = Harness()
    record = harness.fetcher.records[("Opportunity", "0065g00000AbCdEAAX")]
    record["OpportunityLineItems"]["records"][0]["PSSync_Obligation_Id__c"] = "UNKNOWN"
    harness.send("salesforce", salesforce_request(MESSAGE))
    with pytest.raises(ContractMappingError, match="UNKNOWN"):
        harness.resolver.resolve(harness.signals()[0])
    assert harness.bookings() == []


LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&lol2;</soapenv:Body>
</soapenv:Envelope>"""

CASES = {
    "wrong key": (lambda: salesforce_request(MESSAGE, key="guess"), SignatureInvalid),
    "key missing": (lambda: salesforce_request(MESSAGE, via="none"), SignatureInvalid),
    "key in header and query": (
        lambda: salesforce_request(MESSAGE, extra_headers={"x-pssync-key": SALESFORCE_KEY}),
        SignatureInvalid,
    ),
    "key twice in the query": (
        lambda: salesforce_request(MESSAGE, key=f"{SALESFORCE_KEY}&key={SALESFORCE_KEY}"),
        SignatureInvalid,
    ),
    "unknown organisation": (
        lambda: salesforce_request(MESSAGE.replace(b"00D5g000004ABCDEAA", b"00D000000000001AAA")),
        UnknownTenant,
    ),
    "no organisation": (
        lambda: salesforce_request(
            MESSAGE.replace(b"<OrganizationId>00D5g000004ABCDEAA</OrganizationId>", b"")
        ),
        MalformedDelivery,
    ),
    "DOCTYPE (entity expansion)": (lambda: salesforce_request(LAUGHS), MalformedDelivery),
    "ENTITY without DOCTYPE": (
        lambda: salesforce_request(b'<!ENTITY x SYSTEM "file:///etc/passwd">'),
        MalformedDelivery,
    ),
    "not XML": (lambda: salesforce_request(b"<soapenv:Envelope"), MalformedDelivery),
    "not a SOAP envelope": (lambda: salesforce_request(b"<notifications/>"), MalformedDelivery),
    "notification without Id": (
        lambda: salesforce_request(MESSAGE.replace(b"<Id>04l5g00000AbCdEAAX</Id>", b"")),
        MalformedDelivery,
    ),
    "oversize": (lambda: salesforce_request(MESSAGE + b" " * 70_000), PayloadTooLarge),
}


@pytest.mark.parametrize("case", CASES)
def test_rejections_have_their_status_and_write_nothing(case: str) -> None:
    assert_refused_without_writes("salesforce", *CASES[case])


@pytest.mark.parametrize(
    "encoded",
    [
        # UTF-16 hides "<!DOCTYPE" from a byte search; a declared other encoding or a BOM is refused too.
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16"),
        b'<?xml version="1.0" encoding="ISO-8859-1"?><soapenv:Envelope/>',
        b"\xef\xbb\xbf<?xml version='1.0'?><soapenv:Envelope/>",
    ],
)
def test_non_utf8_bodies_are_refused_before_parsing(encoded: bytes) -> None:
    harness = Harness()
    with pytest.raises(MalformedDelivery):
        harness.send("salesforce", salesforce_request(encoded))
    assert harness.nothing_written()


def test_a_multibyte_character_across_byte_200_is_still_utf8() -> None:
    """The encoding check once decoded the first 200 bytes only: a character split there made a valid
    message a 400."""
    declaration_end = MESSAGE.index(b"?>") + 2
    comment = "<!-- " + "x" * (199 - declaration_end - len("<!-- ")) + "€ -->"
    body = MESSAGE[:declaration_end] + comment.encode("utf-8") + MESSAGE[declaration_end:]
    assert body[199:202] == "€".encode()  # the character spans bytes 199-201
    harness = Harness()
    harness.send("salesforce", salesforce_request(body))
    assert len(harness.publisher.published) == 2


def test_utf16_without_a_bom_cannot_smuggle_an_entity_past_the_checks() -> None:
    """UTF-16-LE of ASCII is valid UTF-8 byte for byte (with NULs between), hides `<!DOCTYPE` from a
    byte search, and expat reads it as UTF-16: a declared entity once turned IsWon false into true."""
    text = MESSAGE.decode("utf-8").replace("<sf:IsWon>false</sf:IsWon>", "<sf:IsWon>&won;</sf:IsWon>")
    assert "&won;" in text
    declaration_end = text.index("?>") + 2
    prolog = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY won "true">]>'
    smuggled = prolog + text[declaration_end:]
    harness = Harness()
    with pytest.raises(MalformedDelivery):
        harness.send("salesforce", salesforce_request(smuggled.encode("utf-16-le")))
    assert harness.nothing_written()
