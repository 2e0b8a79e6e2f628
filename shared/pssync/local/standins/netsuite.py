"""A NetSuite stand-in: test equipment, NOT NetSuite. An HTTP server on 127.0.0.1 answering like
NetSuite's REST record service does, as documented, for what `pssync.connectors.netsuite` uses.

- `POST /services/rest/auth/oauth2/v1/token`: OAuth 2.0 client credentials with a JWT client assertion.
  The assertion's signature is verified against the configured certificate's public key (PS256 for RSA,
  ES256 for P-256; RS256 is refused as NetSuite does), and `kid`, `iss`, `aud`, `scope`, `iat`/`exp`
  (at most 60 minutes apart, not expired) and a single use of `jti` are checked. Answers
  `{"access_token", "token_type": "bearer", "expires_in": "<seconds>"}` (a string, as NetSuite sends it)
  or `{"error": "invalid_grant" | "invalid_request" | "invalid_client"}`.
- `PUT /services/rest/record/v1/<type>/eid:<externalId>`: upsert by external id. 204 No Content with a
  `Location` header naming the record's internal id, for a create and an update alike. `?replace=<sublist>`
  replaces a sublist's lines; without it lines are updated by position and extra lines appended.
  References by `externalId` in the fields that name a parent (`parent`, `entity`, `customer`, `project`,
  `billTo`) must resolve to a customer or project the account holds, else 400 `INVALID_KEY_OR_REF`
  (so a connector that writes children before parents fails here as it would there). A journal whose
  debits and credits differ is refused (400 `USER_ERROR`).
- `GET /services/rest/record/v1/<type>/eid:<externalId>[?expandSubResources=true]`: the record, with
  references answered by internal id; 404 `NONEXISTENT_ID` when it does not exist.
- Errors carry NetSuite's body: `{"type", "title", "status", "o:errorDetails": [{"detail",
  "o:errorCode"}]}`. A missing, unknown or expired bearer token gets 401 `INVALID_LOGIN`.
- Concurrency: more record-service requests in flight than the account's limit (default 5) get 429
  `CONCURRENCY_LIMIT_EXCEEDED` with `Retry-After`. A `FaultPlan` injects 429, 503, slow answers
  (timeouts), writes whose response is lost (applied, then the connection closed), token expiry and
  400s, scripted or at a seeded random rate.

Every response carries `X-Stand-In: netsuite`. `holdings()` is the JSON-able state: records by type,
each with its revisions' memos, and request counters.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

STAND_IN_HEADER = ("X-Stand-In", "netsuite")
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path
RECORD_PREFIX = "/services/rest/record/v1/"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RECORD_TYPES = frozenset(
    {"customer", "job", "salesOrder", "timeBill", "charge", "invoice", "journalEntry", "employee"}
)
# Fields whose reference must resolve to a customer or project the account holds.
PARENT_FIELDS = frozenset({"parent", "entity", "customer", "project", "billTo"})
MAX_ASSERTION_LIFETIME_SECONDS = 3600
CLOCK_SKEW_SECONDS = 60

FAULT_KINDS = ("429", "503", "timeout", "lose_response", "expire_token", "reject")


def new_certificate_key() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM for the integration's secret, public PEM for the stand-in)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class Fault:
    """One injected fault for requests matching `method` / `path_contains` (None: any), `times` times."""

    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    seconds: float = 2.0  # `timeout`: how long the answer is held back
    retry_after: int = 1  # `429`: the Retry-After it carries

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; use one of {FAULT_KINDS}")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass
class FaultPlan:
    """Scripted faults (taken in order, each `times` times), then a seeded random rate of `random_kinds`."""

    scripted: list[Fault] = field(default_factory=list)
    random_rate: float = 0.0
    random_kinds: tuple[str, ...] = ("429", "503")
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.scripted.append(fault)

    def draw(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.scripted:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
            if self.random_rate and self._rng.random() < self.random_rate:
                return Fault(self._rng.choice(self.random_kinds))
        return None


_Answer = tuple[int, Any, dict[str, str]]  # status, JSON document (None: no body), headers


class _Refusal(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
_TITLES[503] = "Service Unavailable"


def error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    """NetSuite's REST error document."""
    return {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.{5 if status < 500 else 6}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class NetSuiteStandIn:
    """`NetSuiteStandIn(public_key_pem=...).start()` -> base URL; `.stop()`; `.holdings()`.

    The connector is pointed at the base URL as the account's REST domain; it cannot tell the difference,
    which is the point.
    """

    def __init__(
        self,
        *,
        public_key_pem: str,
        account_id: str = "1234567_SB1",
        client_id: str = "pssync-stand-in-client",
        certificate_id: str = "stand-in-certificate-1",
        concurrency_limit: int = 5,
        token_lifetime_seconds: int = 3600,
        service_time_seconds: float = 0.0,
        fault_plan: FaultPlan | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.certificate_id = certificate_id
        self.concurrency_limit = concurrency_limit
        self.token_lifetime_seconds = token_lifetime_seconds
        self.service_time_seconds = service_time_seconds
        self.faults = fault_plan or FaultPlan()
        self._public_key = serialization.load_pem_public_key(public_key_pem.encode())
        self._port = port
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        self._revisions: dict[tuple[str, str], list[str]] = {}
        self._ids = itertools.count(101)
        self._tokens: dict[str, float] = {}
        self._seen_jti: set[str] = set()
        self._in_flight = 0
        self.counters: dict[str, int] = {
            "requests": 0,
            "token_requests": 0,
            "tokens_issued": 0,
            "writes": 0,
            "reads": 0,
            "throttled": 0,
            "unauthorised": 0,
            "refused": 0,
            "max_in_flight": 0,
            **{f"fault_{kind}": 0 for kind in FAULT_KINDS},
        }
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_PUT(self) -> None:
                standin._handle(self, "PUT")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="netsuite-stand-in", daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def expire_tokens(self) -> None:
        """Every issued access token lapses now (NetSuite revoked them, or they ran out)."""
        with self._lock:
            self._tokens.clear()

    # --- state -------------------------------------------------------------------------------

    def holdings(self) -> dict[str, Any]:
        """What the account holds: records by type (external id -> record with its revisions' memos)."""
        with self._lock:
            records: dict[str, dict[str, Any]] = {}
            for (record_type, external_id), record in sorted(self._records.items()):
                records.setdefault(record_type, {})[external_id] = {
                    **json.loads(json.dumps(record, default=_json_number)),
                    "revisions": list(self._revisions[(record_type, external_id)]),
                }
            return {
                "stand_in": "netsuite",
                "account_id": self.account_id,
                "concurrency_limit": self.concurrency_limit,
                "records": records,
                "counters": dict(self.counters),
            }

    def record(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        with self._lock:
            held = self._records.get((record_type, external_id))
            return json.loads(json.dumps(held, default=_json_number)) if held is not None else None

    # --- request handling --------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        if method == "POST" and url.path == TOKEN_PATH:
            with self._lock:
                self.counters["token_requests"] += 1
            status, document = self._token(body)
            self._answer(http, status, document)
            return
        if not url.path.startswith(RECORD_PREFIX):
            self._answer(http, 404, error_body(404, "INVALID_URL", f"no resource at {url.path}"))
            return
        with self._lock:
            self.counters["requests"] += 1
            self._in_flight += 1
            over_limit = self._in_flight > self.concurrency_limit
            self.counters["max_in_flight"] = max(self.counters["max_in_flight"], self._in_flight)
            if over_limit:
                self.counters["throttled"] += 1
        try:
            if over_limit:
                answer: _Answer | None = self._throttled(1)
            else:
                answer = self._serve_record(http, method, url.path, parse_qs(url.query), body)
        finally:
            # Out of flight before the answer is written: a client that sends its next request the moment
            # it reads this one's answer must not find its own previous request still counted.
            with self._lock:
                self._in_flight -= 1
        if answer is None:
            http.close_connection = True  # applied, but the answer is lost: the connection just closes
            return
        self._answer(http, *answer)

    def _serve_record(
        self, http: BaseHTTPRequestHandler, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> _Answer | None:
        fault = self.faults.draw(method, path)
        if fault is not None:
            with self._lock:
                self.counters[f"fault_{fault.kind}"] += 1
            if fault.kind == "429":
                return self._throttled(fault.retry_after)
            if fault.kind == "503":
                return 503, error_body(503, "UNEXPECTED_ERROR", "An unexpected error occurred."), {}
            if fault.kind == "reject":
                return 400, error_body(400, "USER_ERROR", "Injected refusal (stand-in)."), {}
            if fault.kind == "expire_token":
                self.expire_tokens()
            if fault.kind == "timeout":
                time.sleep(fault.seconds)  # the client gives up first; the request is still processed
        if self.service_time_seconds:
            time.sleep(self.service_time_seconds)
        try:
            self._authorise(http.headers.get("Authorization", ""))
            status, headers, document = self._record_call(method, path, query, body)
        except _Refusal as refusal:
            with self._lock:
                self.counters["unauthorised" if refusal.status == 401 else "refused"] += 1
            return refusal.status, error_body(refusal.status, refusal.code, refusal.detail), {}
        if fault is not None and fault.kind == "lose_response":
            return None
        return status, document, headers

    def _throttled(self, retry_after: int) -> _Answer:
        detail = f"Request limit exceeded: more than {self.concurrency_limit} concurrent requests."
        return (
            429,
            error_body(429, "CONCURRENCY_LIMIT_EXCEEDED", detail),
            {"Retry-After": str(retry_after)},
        )

    def _authorise(self, header: str) -> None:
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        with self._lock:
            expires_at = self._tokens.get(token)
        if not token or expires_at is None or self._clock() >= expires_at:
            raise _Refusal(
                401, "INVALID_LOGIN", "Invalid login attempt. The access token is invalid or expired."
            )

    def _record_call(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parts = path[len(RECORD_PREFIX) :].split("/")
        if len(parts) != 2 or not parts[1].startswith("eid:"):
            raise _Refusal(404, "INVALID_URL", f"unsupported record path {path}")
        record_type, external_id = parts[0], unquote(parts[1][len("eid:") :])
        if record_type not in RECORD_TYPES:
            raise _Refusal(400, "INVALID_RCRD_TYPE", f"Record type {record_type} is not supported.")
        if method == "GET":
            expand = query.get("expandSubResources", ["false"])[0] == "true"
            return 200, {}, self._read(record_type, external_id, expand)
        if method != "PUT":
            raise _Refusal(
                405 if method != "POST" else 400, "INVALID_REQUEST", f"{method} is not supported here"
            )
        try:
            document = json.loads(body or b"null", parse_float=Decimal)
        except ValueError:
            raise _Refusal(400, "INVALID_CONTENT", "The request body is not valid JSON.") from None
        if not isinstance(document, dict):
            raise _Refusal(400, "INVALID_CONTENT", "The request body must be a JSON object.")
        replace = set(",".join(query.get("replace", [])).split(",")) - {""}
        internal_id = self._upsert(record_type, external_id, document, replace)
        location = f"{self.base_url}{RECORD_PREFIX}{record_type}/{internal_id}"
        return 204, {"Location": location}, None

    def _upsert(self, record_type: str, external_id: str, document: dict[str, Any], replace: set[str]) -> str:
        with self._lock:
            resolved = {name: self._resolved(name, value) for name, value in document.items()}
            if record_type == "journalEntry":
                _check_balanced(resolved)
            key = (record_type, external_id)
            held = self._records.get(key)
            if held is None:
                held = {"id": str(next(self._ids)), "externalId": external_id}
                self._records[key] = held
                self._revisions[key] = []
            for name, value in resolved.items():
                if isinstance(value, dict) and "items" in value:
                    lines = list(value["items"])
                    if name not in replace and isinstance(held.get(name), dict):
                        previous = list(held[name]["items"])
                        lines = [
                            {**(previous[i] if i < len(previous) else {}), **line}
                            for i, line in enumerate(lines)
                        ] + previous[len(lines) :]
                    held[name] = {"items": lines}
                else:
                    held[name] = value
            self._revisions[key].append(str(document.get("memo", "")))
            self.counters["writes"] += 1
            return str(held["id"])

    def _resolved(self, name: str, value: Any) -> Any:
        """A reference by external id becomes one by internal id; a parent that does not exist is refused."""
        if isinstance(value, dict) and "items" in value and isinstance(value["items"], list):
            return {"items": [{k: self._resolved(k, v) for k, v in line.items()} for line in value["items"]]}
        if not (isinstance(value, dict) and "externalId" in value):
            return value
        for record_type in ("job", "customer"):
            held = self._records.get((record_type, str(value["externalId"])))
            if held is not None:
                return {"id": held["id"]}
        if name in PARENT_FIELDS:
            raise _Refusal(
                400,
                "INVALID_KEY_OR_REF",
                f"Invalid {name} reference key {value['externalId']}.",
            )
        return dict(value)  # master data the stand-in does not model (employees): kept as given

    def _read(self, record_type: str, external_id: str, expand: bool) -> dict[str, Any]:
        with self._lock:
            self.counters["reads"] += 1
            held = self._records.get((record_type, external_id))
            if held is None:
                raise _Refusal(
                    404, "NONEXISTENT_ID", f"The record instance does not exist: eid:{external_id}."
                )
            answer: dict[str, Any] = json.loads(json.dumps(held, default=_json_number))
        link = f"{self.base_url}{RECORD_PREFIX}{record_type}/{answer['id']}"
        answer["links"] = [{"rel": "self", "href": link}]
        if not expand:
            for name, value in list(answer.items()):
                if isinstance(value, dict) and "items" in value:
                    answer[name] = {"links": [{"rel": "self", "href": f"{link}/{name}"}]}
        return answer

    # --- token endpoint ----------------------------------------------------------------------

    def _token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != JWT_BEARER:
            return 400, {"error": "invalid_request"}
        try:
            self._verify_assertion(form.get("client_assertion", ""))
        except _Refusal as refusal:
            return refusal.status, {"error": refusal.code, "error_description": refusal.detail}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self._clock() + self.token_lifetime_seconds
            self.counters["tokens_issued"] += 1
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": str(self.token_lifetime_seconds),
        }

    def _verify_assertion(self, assertion: str) -> None:
        try:
            header_part, claims_part, signature_part = assertion.split(".")
            header = json.loads(_unb64(header_part))
            claims = json.loads(_unb64(claims_part))
            signature = _unb64(signature_part)
        except ValueError:
            raise _Refusal(400, "invalid_request", "the client assertion is not a JWT") from None
        if header.get("kid") != self.certificate_id:
            raise _Refusal(401, "invalid_client", "unknown certificate id (kid)")
        signing_input = f"{header_part}.{claims_part}".encode("ascii")
        try:
            self._verify_signature(str(header.get("alg")), signing_input, signature)
        except InvalidSignature:
            raise _Refusal(400, "invalid_grant", "the assertion's signature does not verify") from None
        now = self._clock()
        issued, expires = claims.get("iat"), claims.get("exp")
        if claims.get("iss") != self.client_id:
            raise _Refusal(401, "invalid_client", "unknown client id (iss)")
        if claims.get("aud") not in (self.base_url + TOKEN_PATH, _canonical_token_url(self.account_id)):
            raise _Refusal(400, "invalid_grant", "the assertion's audience is not this token endpoint")
        if "rest_webservices" not in str(claims.get("scope", "")).replace(",", " ").split():
            raise _Refusal(400, "invalid_scope", "scope must include rest_webservices")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise _Refusal(400, "invalid_grant", "iat and exp are required")
        if expires - issued > MAX_ASSERTION_LIFETIME_SECONDS or issued > now + CLOCK_SKEW_SECONDS:
            raise _Refusal(400, "invalid_grant", "the assertion's lifetime is invalid")
        if expires <= now:
            raise _Refusal(400, "invalid_grant", "the assertion has expired")
        jti = str(claims.get("jti", ""))
        with self._lock:
            if not jti or jti in self._seen_jti:
                raise _Refusal(400, "invalid_grant", "the assertion's jti is missing or was used before")
            self._seen_jti.add(jti)

    def _verify_signature(self, algorithm: str, signing_input: bytes, signature: bytes) -> None:
        key = self._public_key
        if algorithm == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                signature,
                signing_input,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size),
                hashes.SHA256(),
            )
        elif algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature(
                f"algorithm {algorithm} does not fit the certificate (PS256 or ES256 only)"
            )

    # --- answers -----------------------------------------------------------------------------

    def _answer(
        self,
        http: BaseHTTPRequestHandler,
        status: int,
        document: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = b"" if document is None else json.dumps(document, default=_json_number).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            http.send_response(status)
            http.send_header(*STAND_IN_HEADER)
            if payload:
                http.send_header(
                    "Content-Type", "application/vnd.oracle.resource+json; type=singular-resource"
                )
            http.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                http.send_header(name, value)
            http.end_headers()
            if payload:
                http.wfile.write(payload)


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _canonical_token_url(account_id: str) -> str:
    return f"https://{account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com{TOKEN_PATH}"


def _check_balanced(journal: dict[str, Any]) -> None:
    lines = journal.get("line", {}).get("items", []) if isinstance(journal.get("line"), dict) else []
    debit = sum((Decimal(str(line.get("debit", 0))) for line in lines), Decimal(0))
    credit = sum((Decimal(str(line.get("credit", 0))) for line in lines), Decimal(0))
    if not lines or debit != credit:
        raise _Refusal(
            400, "USER_ERROR", f"The transaction is not in balance: debits {debit}, credits {credit}."
        )
