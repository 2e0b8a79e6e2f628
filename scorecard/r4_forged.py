"""R4 forged and malformed: generated hostile requests across every webhook scheme; 100 % 4xx, 0 writes.

Every request starts from a correctly signed one (the row first proves, with positive controls, that the
signing is right, or a forged request would be refused for the wrong reason) and is mutated so that it
must be refused: the signature, the body (bit flips, truncation, deep nesting, 5,000-digit integers, lone
surrogates, invalid UTF-8, XML entities and DTDs, also in UTF-16), timestamps, headers (missing,
repeated, wrong case), encodings, tenants, methods, content types, paths and shapes. A body mutation is
re-signed where the scheme signs the body (so it reaches the parser), and sent with the right key where the
scheme only has a static key (Dataverse, Salesforce outbound messages). For those two schemes a changed
byte cannot be detected by design, so their body mutations are only those that make the body unusable
(a high bit set in ASCII is always invalid UTF-8; a truncated JSON object or XML document never parses).

Writes are compared on a snapshot taken before and after (DynamoDB items per table, S3 objects per bucket,
messages per queue, executions, events delivered by the bus to a capture rule of our own).
"""

from __future__ import annotations

import gzip
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from scorecard import context as ctx
from scorecard import senders as s
from scorecard.harness import Answer, RowResult, Stack
from scorecard.progress import Progress

ID = "R4"
NAME = "forged and malformed requests"
FULL_N = 5_000
QUICK_N = 150
SENDERS = 8
PROBE = "__scorecard_probe__"
METHODS = ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


# --- what each scheme's valid request looks like ------------------------------------------------------


@dataclass
class Kit:
    """One webhook source: a document that would be written if accepted, and how its sender signs it."""

    source: str
    signs_body: bool  # HMAC over the body (a changed byte is a 401) or a static key (not detectable)
    xml: bool
    document: Callable[[random.Random], Any]  # JSON-able document or XML bytes
    control: Callable[[random.Random], Any]  # accepted and writes nothing (or only what the control does)
    string_field: Callable[[Any], tuple[Any, Any]]  # (container, key) of a real string field
    retenant: Callable[[Any, random.Random], Any] | None

    def encode(self, document: Any) -> bytes:
        return document if self.xml else s.dumps(document)

    def sign(
        self,
        stack: Stack,
        body: bytes,
        *,
        secret: str | None = None,
        timestamp_offset: float = 0.0,
        delivery_id: str | None = None,
    ) -> s.Request:
        key = secret if secret is not None else stack.secret(self.source)
        if self.source in (ctx.CRM, ctx.ERP):
            sent = int(time.time() + timestamp_offset)
            return s.Request(self.source, body, s.standard_headers(key, body, delivery_id or _msg_id(), sent))
        if self.source == ctx.HUBSPOT:
            sent_ms = int((time.time() + timestamp_offset) * 1000)
            return s.Request(self.source, body, s.hubspot_headers(key, body, sent_ms))
        if self.source == ctx.JIRA:
            return s.Request(self.source, body, s.jira_headers(key, body, delivery_id or str(uuid.uuid4())))
        if self.source == ctx.DATAVERSE:
            return s.Request(self.source, body, s.dataverse_headers(key))
        return s.Request(self.source, body, s.salesforce_headers(), query=f"key={key}")


def _msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _first(document: Any) -> Any:
    return document[0] if isinstance(document, list) else document


def _retenant_hubspot(document: Any, rng: random.Random) -> Any:
    for event in document:
        event["portalId"] = rng.choice([99999, 1, 625150, 6251])
    return document


def _retenant_jira(document: Any, rng: random.Random) -> Any:
    host = rng.choice(["evil.atlassian.net", "acme-consulting.atlassian.net.evil.com", "acme.atlassian.net"])
    return json.loads(json.dumps(document).replace(ctx.JIRA_SITE, host))


def _retenant_dataverse(document: Any, rng: random.Random) -> Any:
    document["OrganizationId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return document


def _retenant_salesforce(document: Any, rng: random.Random) -> Any:
    other = rng.choice([b"00D000000000001AAA", b"00D5g000004ABCEEAA", b"00D5g000004ABCE"])
    return document.replace(b"00D5g000004ABCDEAA", other)


def kits() -> list[Kit]:
    return [
        Kit(
            ctx.CRM,
            True,
            False,
            lambda rng: s.booking_document(f"R4-{rng.getrandbits(48):x}"),
            lambda rng: s.booking_document(f"R4-CONTROL-{rng.getrandbits(48):x}"),
            lambda d: (d["data"]["contract"], "title"),
            None,
        ),
        Kit(
            ctx.ERP,
            True,
            False,
            lambda rng: s.booking_document(f"R4-{rng.getrandbits(48):x}"),  # a CRM fact from an ERP: 422
            lambda rng: s.booking_document(f"R4-{rng.getrandbits(48):x}"),
            lambda d: (d["data"]["contract"], "title"),
            None,
        ),
        Kit(
            ctx.HUBSPOT,
            True,
            False,
            lambda rng: s.hubspot_batch(rng),
            lambda rng: s.hubspot_batch(rng, closed_won=False),
            lambda d: (d[0], "propertyValue"),
            _retenant_hubspot,
        ),
        Kit(
            ctx.JIRA,
            True,
            False,
            lambda rng: s.jira_document(rng),
            lambda rng: s.jira_document(rng, milestone_done=False),
            lambda d: (d["issue"], "key"),
            _retenant_jira,
        ),
        Kit(
            ctx.DATAVERSE,
            False,
            False,
            lambda rng: s.dataverse_invoice(rng),
            lambda rng: s.dataverse_open_update(rng),
            lambda d: (d, "RequestId"),
            _retenant_dataverse,
        ),
        Kit(
            ctx.SALESFORCE,
            False,
            True,
            lambda rng: s.salesforce_message(rng),
            lambda rng: s.salesforce_message(rng, won=False),
            lambda d: (None, None),
            _retenant_salesforce,
        ),
    ]


# --- mutations ---------------------------------------------------------------------------------------
# Each returns the request to send, or None when it does not apply to the kit.

Mutation = Callable[[Kit, random.Random, Stack], "s.Request | None"]


def _with_probe(kit: Kit, document: Any, raw_value: str | bytes, rng: random.Random) -> bytes:
    """The document's JSON with `raw_value` (raw JSON bytes) in a real string field or an extra one."""
    if rng.random() < 0.5:
        container, key = kit.string_field(document)
        container[key] = PROBE
    else:
        _first(document)["pssync_extra"] = PROBE
    raw = raw_value if isinstance(raw_value, bytes) else raw_value.encode()
    return s.dumps(document).replace(json.dumps(PROBE).encode(), raw)


def _body_signed(kit: Kit, rng: random.Random, stack: Stack, body: bytes) -> s.Request:
    """A body mutation that reaches the parser: re-signed (HMAC schemes) or with the right key."""
    return kit.sign(stack, body)


def sig_bitflip(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    if not kit.signs_body:
        return None
    body = kit.encode(kit.document(rng))
    request = kit.sign(stack, body)
    flipped = bytearray(body)
    position = rng.randrange(len(flipped))
    flipped[position] ^= 1 << rng.randrange(8)
    request.body = bytes(flipped)
    return request


def sig_wrong_secret(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    body = kit.encode(kit.document(rng))
    others = [
        name
        for name in (ctx.CRM, ctx.ERP, ctx.HUBSPOT, ctx.JIRA, ctx.DATAVERSE, ctx.SALESFORCE)
        if name != kit.source
    ]
    choice = rng.random()
    if kit.source in (ctx.CRM, ctx.ERP):
        # another source's secret, or a made-up one of the right form
        secret = (
            stack.secret(ctx.ERP if kit.source == ctx.CRM else ctx.CRM)
            if choice < 0.5
            else "whsec_" + "QUFB" * 8
        )
    else:
        secret = stack.secret(rng.choice(others)) if choice < 0.5 else f"guess-{rng.getrandbits(64):x}"
    return kit.sign(stack, body, secret=secret)


SIGNATURE_HEADERS = {
    ctx.CRM: "webhook-signature",
    ctx.ERP: "webhook-signature",
    ctx.HUBSPOT: "X-HubSpot-Signature-v3",
    ctx.JIRA: "X-Hub-Signature",
    ctx.DATAVERSE: "x-pssync-key",
}


def _replace_header(request: s.Request, name: str, value: str | None) -> s.Request:
    request.headers = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    if value is not None:
        request.headers.append((name, value))
    return request


def _signature_value(request: s.Request, kit: Kit) -> str:
    if kit.source == ctx.SALESFORCE:
        return request.query.removeprefix("key=")
    return next(v for k, v in request.headers if k.lower() == SIGNATURE_HEADERS[kit.source].lower())


def _set_signature(request: s.Request, kit: Kit, value: str | None) -> s.Request:
    if kit.source == ctx.SALESFORCE:
        request.query = f"key={value}" if value is not None else ""
        return request
    return _replace_header(request, SIGNATURE_HEADERS[kit.source], value)


def sig_missing(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    return _set_signature(request, kit, None if rng.random() < 0.7 else "")


def sig_truncated(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    value = _signature_value(request, kit)
    return _set_signature(request, kit, value[: rng.randrange(1, len(value) - 1)])


def sig_wrong_case(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """Case matters in base64 signatures and keys; the hex digest of X-Hub-Signature is compared
    case-insensitively (as GitHub-style verifiers do), so Jira gets its algorithm name in upper case."""
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    value = _signature_value(request, kit)
    if kit.source == ctx.JIRA:
        return _set_signature(request, kit, "SHA256=" + value.split("=", 1)[1])
    if kit.source in (ctx.CRM, ctx.ERP):
        version, signature = value.split(",", 1)
        return _set_signature(request, kit, f"{version},{signature.swapcase()}")
    return _set_signature(request, kit, value.swapcase())


def sig_repeated(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A security header twice (identical, or a forged second value): exactly one is required."""
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    value = _signature_value(request, kit)
    second = value if rng.random() < 0.5 else value[:-4] + "AAAA"
    if kit.source == ctx.SALESFORCE:
        if rng.random() < 0.5:
            request.query = f"key={value}&key={second}"
        else:
            request.headers.append(("x-pssync-key", second))  # key in the header and in the query
        return request
    request.headers.append((SIGNATURE_HEADERS[kit.source], second))
    return request


def sig_other_message(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A valid signature over something else: another delivery id, another URL, a legacy version."""
    body = kit.encode(kit.document(rng))
    if kit.source in (ctx.CRM, ctx.ERP):
        request = kit.sign(stack, body)
        return _replace_header(request, "webhook-id", _msg_id())
    if kit.source == ctx.HUBSPOT:
        if rng.random() < 0.5:  # signed over the URL API Gateway sees instead of the public one
            sent = int(time.time() * 1000)
            uri = f"{stack.runtime.api.url}/webhooks/hubspot"
            request = kit.sign(stack, body)
            signature = s.hubspot_signature_over(stack.secret(kit.source), "POST", uri, body, sent)
            _replace_header(request, "X-HubSpot-Request-Timestamp", str(sent))
            return _replace_header(request, "X-HubSpot-Signature-v3", signature)
        request = kit.sign(stack, body)  # legacy v2 while legacy_signatures is off
        _replace_header(request, "X-HubSpot-Signature-v3", None)
        request.headers.append(("X-HubSpot-Signature-Version", "v2"))
        request.headers.append(("X-HubSpot-Signature", s.hubspot_v2(stack.secret(kit.source), body)))
        return request
    if kit.source == ctx.JIRA:
        request = kit.sign(stack, body + b" ")
        request.body = body
        return request
    return None


def ts_stale(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    offset = rng.choice([-1, 1]) * rng.uniform(310, 10 * 86400)
    if kit.source in (ctx.CRM, ctx.ERP, ctx.HUBSPOT):
        return kit.sign(stack, kit.encode(kit.document(rng)), timestamp_offset=offset)
    if kit.source == ctx.JIRA:
        document = kit.document(rng)
        document["timestamp"] = int((time.time() + offset) * 1000)
        return kit.sign(stack, kit.encode(document))
    if kit.source == ctx.DATAVERSE:
        document = kit.document(rng)
        document["OperationCreatedOn"] = f"/Date({int((time.time() + offset) * 1000)})/"
        return kit.sign(stack, kit.encode(document))
    return None


def ts_garbage(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    garbage = rng.choice(["", "abc", "1e9", "-1", "9" * 40, "1796000000.5", "0x6b", "NaN", "1 2"])
    if kit.source in (ctx.CRM, ctx.ERP):
        request = kit.sign(stack, kit.encode(kit.document(rng)))
        return _replace_header(request, "webhook-timestamp", garbage or "x")
    if kit.source == ctx.HUBSPOT:
        request = kit.sign(stack, kit.encode(kit.document(rng)))
        return _replace_header(request, "X-HubSpot-Request-Timestamp", garbage or "x")
    if kit.source == ctx.JIRA:
        document = kit.document(rng)
        document["timestamp"] = rng.choice([garbage, None, [], {}, True, 10**30])
        return kit.sign(stack, kit.encode(document))
    if kit.source == ctx.DATAVERSE:
        document = kit.document(rng)
        document["OperationCreatedOn"] = rng.choice(
            ["/Date(abc)/", "yesterday", "/Date(" + "9" * 40 + ")/", 5]
        )
        return kit.sign(stack, kit.encode(document))
    return None


def header_missing(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A required non-signature header left out: the delivery id or the timestamp."""
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    names = {
        ctx.CRM: ["webhook-id", "webhook-timestamp"],
        ctx.ERP: ["webhook-id", "webhook-timestamp"],
        ctx.HUBSPOT: ["X-HubSpot-Request-Timestamp"],
        ctx.JIRA: ["X-Atlassian-Webhook-Identifier"],
    }.get(kit.source)
    if not names:
        return None
    return _replace_header(request, rng.choice(names), None)


def header_repeated(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """The delivery id or timestamp twice with different values."""
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    if kit.source in (ctx.CRM, ctx.ERP):
        name = rng.choice(["webhook-id", "webhook-timestamp"])
        value = _msg_id() if name == "webhook-id" else str(int(time.time()) - 1)
    elif kit.source == ctx.HUBSPOT:
        name, value = "X-HubSpot-Request-Timestamp", str(int(time.time() * 1000) - 1)
    elif kit.source == ctx.JIRA:
        name, value = "X-Atlassian-Webhook-Identifier", str(uuid.uuid4())
    else:
        return None
    request.headers.append((name, value))
    return request


def body_truncated(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    body = kit.encode(kit.document(rng))
    return _body_signed(kit, rng, stack, body[: rng.randrange(0, len(body) - 1)])


def body_high_bit(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A high bit set in an ASCII body: never valid UTF-8 (a lone continuation byte or a broken lead)."""
    body = bytearray(kit.encode(kit.document(rng)))
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(len(body))
        if body[position] < 0x80:
            body[position] |= 0x80
    return _body_signed(kit, rng, stack, bytes(body))


INVALID_UTF8 = (
    b"\xed\xa0\x80",  # a lone surrogate encoded as UTF-8 (CESU-8)
    b"\xed\xbf\xbf",
    b"\xc0\xaf",  # overlong '/'
    b"\xe0\x80\xaf",
    b"\xff",
    b"\xfe",
    b"\xc3",  # a truncated two-byte sequence
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\x80",
)


def body_invalid_utf8(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    bad = rng.choice(INVALID_UTF8)
    if kit.xml:
        body = kit.document(rng).replace(b"<sf:StageName>Closed Won", b"<sf:StageName>Closed Won" + bad)
        return _body_signed(kit, rng, stack, body)
    return _body_signed(kit, rng, stack, _with_probe(kit, kit.document(rng), b'"x' + bad + b'"', rng))


def body_lone_surrogate(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A `\\uD800`-style escape with no partner (JSON) or a surrogate character reference (XML)."""
    if kit.xml:
        body = kit.document(rng).replace(b"<sf:StageName>Closed Won", b"<sf:StageName>Closed Won&#xD800;")
        return _body_signed(kit, rng, stack, body)
    escape = rng.choice(["\\ud800", "\\uDBFF", "\\udc00", "\\uDFFF", "x\\ud83dy", "\\udc00\\ud800"])
    return _body_signed(kit, rng, stack, _with_probe(kit, kit.document(rng), f'"{escape}"', rng))


def body_deep(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    if kit.xml:
        return None  # XML nesting is no hazard here (expat is iterative); a deep element is not refused
    depth = rng.choice([65, 100, 1_000, 5_000, 20_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return _body_signed(
        kit, rng, stack, _with_probe(kit, kit.document(rng), opener * depth + "1" + closer * depth, rng)
    )


def body_big_number(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    if kit.xml:
        return None
    digits = rng.choice([65, 500, 4_300, 5_000, 50_000])
    literal = (
        ("-" if rng.random() < 0.3 else "")
        + str(rng.randint(1, 9))
        + "".join(rng.choice("0123456789") for _ in range(digits - 1))
    )
    return _body_signed(kit, rng, stack, _with_probe(kit, kit.document(rng), literal, rng))


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>'
)


def body_xml_entities(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """DTDs and entities: an internal entity turning IsWon false into true, laughs, external entities;
    in UTF-8, and in UTF-16 (LE/BE, with and without BOM) where a byte search for <!DOCTYPE sees nothing."""
    if not kit.xml:
        return None
    text = (
        kit.document(rng).decode("utf-8").replace("<sf:IsWon>false</sf:IsWon>", "<sf:IsWon>&won;</sf:IsWon>")
    )
    declaration_end = text.index("?>") + 2
    variant = rng.randrange(4)
    if variant == 0:
        prolog = '<!DOCTYPE x [<!ENTITY won "true">]>'
    elif variant == 1:
        prolog = '<!DOCTYPE x [<!ENTITY won SYSTEM "file:///etc/passwd">]>'
    elif variant == 2:
        prolog = '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd"><!-- -->'
        text = text.replace("&won;", "false")
    else:
        body = LAUGHS if rng.random() < 0.5 else b'<!ENTITY x SYSTEM "file:///etc/passwd">'
        return _body_signed(kit, rng, stack, body)
    encoding = rng.choice(["utf-8", "utf-16", "utf-16-le", "utf-16-be"])
    declaration = f'<?xml version="1.0" encoding="{encoding.upper().replace("-LE", "").replace("-BE", "")}"?>'
    document = declaration + prolog + text[declaration_end:]
    return _body_signed(kit, rng, stack, document.encode(encoding))


def body_encoding(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """The same document in another encoding (signed over what is sent): UTF-16/32, a BOM, gzip."""
    text = kit.encode(kit.document(rng)).decode("utf-8")
    choice = rng.randrange(6)
    if choice == 0:
        body = text.encode("utf-16")  # with BOM
    elif choice == 1:
        body = text.encode(rng.choice(["utf-16-le", "utf-16-be"]))
    elif choice == 2:
        body = text.encode("utf-32")
    elif choice == 3:
        body = b"\xef\xbb\xbf" + text.encode("utf-8")
    elif choice == 4:
        if kit.xml:
            body = text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
        else:
            body = text.encode("utf-8") + b"\x00"
    else:
        request = _body_signed(kit, rng, stack, gzip.compress(text.encode("utf-8")))
        request.headers.append(("Content-Encoding", "gzip"))
        return request
    return _body_signed(kit, rng, stack, body)


def body_oversize(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    body = kit.encode(kit.document(rng))
    padding = rng.choice([256 * 1024, 300_000, 1_000_000])
    if kit.xml:
        body = body.replace(b"</soapenv:Envelope>", b" " * padding + b"</soapenv:Envelope>")
    else:
        body = body[:-1] + b" " * padding + body[-1:]
    return _body_signed(kit, rng, stack, body)


def body_shape(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """Well-formed and signed, but not what the vendor sends: wrong top-level type, fields missing."""
    if kit.xml:
        body = rng.choice(
            [
                b"<notifications/>",
                b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"/>',
                kit.document(rng).replace(b"<OrganizationId>00D5g000004ABCDEAA</OrganizationId>", b""),
                b"",
                b"null",
            ]
        )
        return _body_signed(kit, rng, stack, body)
    document = kit.document(rng)
    if kit.source == ctx.JIRA:
        candidates: list[Any] = [[], "x", None, 1, {"timestamp": document["timestamp"]}]
    elif kit.source == ctx.HUBSPOT:
        broken = [dict(e) for e in document]
        broken[0].pop(rng.choice(["portalId", "eventId", "subscriptionType", "objectId"]))
        candidates = [{}, "x", None, 1, broken, [[]]]
    elif kit.source == ctx.DATAVERSE:
        no_org = dict(document)
        no_org.pop("OrganizationId")
        candidates = [[], "x", None, 1, no_org]
    else:
        wrong_type = dict(document, type="contract.deleted")
        no_data = {k: v for k, v in document.items() if k != "data"}
        bad_price = json.loads(json.dumps(document))
        bad_price["data"]["contract"]["transaction_price"] = {"amount": "-1", "currency": "EUR"}
        no_contract_id = json.loads(json.dumps(document))
        no_contract_id["data"]["contract"].pop("contract_id")
        candidates = [[], "x", None, 1, {}, wrong_type, no_data, bad_price, no_contract_id]
    return _body_signed(kit, rng, stack, s.dumps(rng.choice(candidates)))


def tenant(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A tenant (portal, site, organisation) that is not ours, correctly signed; for Standard Webhooks, a
    fact its system does not own (a booking from the ERP source)."""
    if kit.retenant is None:
        if kit.source == ctx.ERP:
            return kit.sign(stack, kit.encode(kit.document(rng)))
        return None
    return kit.sign(stack, kit.encode(kit.retenant(kit.document(rng), rng)))


def method(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    request.method = rng.choice(METHODS)
    return request


def content_type(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    expected = "text/xml" if kit.xml else "application/json"
    choices = [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml" if kit.xml else "text/xml",
        f"{expected}; charset=iso-8859-1",
        f"{expected}; charset=utf-16",
        "application/soap+xml" if kit.xml else "application/json-patch+json",
        None,  # missing
        "repeated",
    ]
    choice = rng.choice(choices)
    if choice == "repeated":
        request.headers.append(("Content-Type", expected))
        return request
    return _replace_header(request, "Content-Type", choice)


def path(kit: Kit, rng: random.Random, stack: Stack) -> s.Request | None:
    """A signed request to a path that is not the source's: unknown source, case, trailing slash."""
    request = kit.sign(stack, kit.encode(kit.document(rng)))
    request.path = rng.choice(
        [
            f"/webhooks/{kit.source.upper()}",
            f"/webhooks/{kit.source}/",
            f"/webhooks/{kit.source}-x",
            "/webhooks/",
            "/webhooks/no-such-source",
            f"/webhook/{kit.source}",
            f"/webhooks/{kit.source}%00",
            f"/Webhooks/{kit.source}",
        ]
    )
    return request


MUTATIONS: dict[str, Mutation] = {
    "signature: body changed after signing": sig_bitflip,
    "signature: wrong secret or key": sig_wrong_secret,
    "signature: missing or empty": sig_missing,
    "signature: truncated": sig_truncated,
    "signature: wrong case": sig_wrong_case,
    "signature: repeated": sig_repeated,
    "signature: over another message": sig_other_message,
    "timestamp: outside the window": ts_stale,
    "timestamp: not a timestamp": ts_garbage,
    "header: required header missing": header_missing,
    "header: repeated with another value": header_repeated,
    "body: truncated": body_truncated,
    "body: high bit set (invalid UTF-8)": body_high_bit,
    "body: invalid UTF-8 sequence": body_invalid_utf8,
    "body: lone surrogate": body_lone_surrogate,
    "body: deep nesting": body_deep,
    "body: 65-50,000-digit integer": body_big_number,
    "body: XML DTD / entities (UTF-8, UTF-16)": body_xml_entities,
    "body: other encoding": body_encoding,
    "body: oversize": body_oversize,
    "body: wrong shape": body_shape,
    "tenant: not ours (or not the owner)": tenant,
    "method: not POST": method,
    "content type: not the vendor's": content_type,
    "path: not the source's": path,
}


def generate(rng: random.Random, stack: Stack, n: int) -> list[tuple[str, str, s.Request]]:
    """n (source, mutation, request) triples: every (kit, mutation) pair that applies, in a fresh random
    order on each pass, until n (so even the CI size covers every pair at least once)."""
    pairs = [(kit, name) for kit in kits() for name in MUTATIONS]
    generated: list[tuple[str, str, s.Request]] = []
    while len(generated) < n:
        rng.shuffle(pairs)
        for kit, name in pairs:
            request = MUTATIONS[name](kit, rng, stack)
            if request is not None:
                generated.append((kit.source, name, request))
            if len(generated) == n:
                break
    return generated


def controls(rng: random.Random, stack: Stack) -> list[tuple[str, s.Request]]:
    """Correctly signed requests of each kit, also with header names in other cases: must be 2xx."""
    found = []
    for kit in kits():
        if kit.source == ctx.ERP:
            continue  # its base document is a CRM fact: refused by ownership, on purpose
        for case in (str, str.upper):
            request = kit.sign(stack, kit.encode(kit.control(rng)))
            request.headers = [(case(k), v) for k, v in request.headers]
            found.append((kit.source, request))
    return found


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    rng = random.Random(seed)
    started = time.monotonic()
    result = RowResult(
        id=ID,
        name=NAME,
        seed=seed,
        n=n,
        wall_s=0.0,
        passed=False,
        expectation="100 % answered 4xx, 0 5xx, 0 writes (DynamoDB, S3, SQS, executions, bus deliveries)",
    )

    # Positive controls first: a forged request is only refused for the right reason if the unmutated
    # one is accepted.
    control_answers = [(source, stack.send(request)) for source, request in controls(rng, stack)]
    bad_controls = [
        f"{source}: control answered {a.status} {a.body[:160]!r}"
        for source, a in control_answers
        if not 200 <= a.status < 300
    ]
    stack.wait_idle()
    stack.drain_capture()

    before = stack.snapshot()
    errored_before = sum(1 for r in stack.runtime.host.invocations if r.errored)
    requests = generate(rng, stack, n)
    statuses: Counter[int] = Counter()
    by_kind: dict[str, Counter[int]] = {}
    by_source: dict[str, Counter[int]] = {}
    failures: list[str] = []

    task = progress.task(f"{ID} {NAME}", total=n)

    def send(item: tuple[str, str, s.Request]) -> tuple[str, str, s.Request, Answer]:
        source, kind, request = item
        return source, kind, request, stack.send(request)

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for source, kind, request, answer in pool.map(send, requests):
            statuses[answer.status] += 1
            by_kind.setdefault(kind, Counter())[answer.status] += 1
            by_source.setdefault(source, Counter())[answer.status] += 1
            if not 400 <= answer.status < 500 and len(failures) < 20:
                failures.append(
                    f"{source} / {kind}: {request.method} {request.target()[:80]} answered {answer.status} "
                    f"{answer.body[:200]!r}"
                )
            progress.advance(task)
    try:  # a wrongly accepted thin event keeps its resolver retrying: bounded, the snapshot shows it
        stack.wait_idle(timeout=60)
    except TimeoutError:
        failures.append("the runtime was still busy 60 s after the last request (something was accepted)")
    after = stack.snapshot()
    errored_after = sum(1 for r in stack.runtime.host.invocations if r.errored)

    writes = _differences(before, after)
    answered_4xx = sum(c for status, c in statuses.items() if 400 <= status < 500)
    server_errors = sum(c for status, c in statuses.items() if status >= 500)
    result.counts = {
        "requests": n,
        "answered_4xx": answered_4xx,
        "answered_5xx": server_errors,
        "answered_other": n - answered_4xx - server_errors,
        "writes": sum(abs(d) for d in writes.values()),
        "lambda_errors": errored_after - errored_before,
        "controls_accepted": f"{len(control_answers) - len(bad_controls)}/{len(control_answers)}",
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "by_source": {k: {str(s_): c for s_, c in sorted(v.items())} for k, v in sorted(by_source.items())},
        "by_mutation": {k: {str(s_): c for s_, c in sorted(v.items())} for k, v in sorted(by_kind.items())},
        "snapshot_after": _flat(after),
    }
    result.failures = bad_controls + failures + [f"write: {k} changed by {v:+d}" for k, v in writes.items()]
    result.passed = not bad_controls and answered_4xx == n and not writes and errored_after == errored_before
    result.wall_s = round(time.monotonic() - started, 1)
    return result


def _flat(snapshot: dict[str, Any]) -> dict[str, int]:
    flat: dict[str, int] = {}
    for key, value in snapshot.items():
        if isinstance(value, dict):
            flat.update({f"{key}:{k}": int(v) for k, v in value.items()})
        else:
            flat[key] = int(value)
    return flat


def _differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    a, b = _flat(before), _flat(after)
    return {k: b.get(k, 0) - a.get(k, 0) for k in sorted(set(a) | set(b)) if b.get(k, 0) != a.get(k, 0)}
