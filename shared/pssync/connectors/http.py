"""The one outbound HTTP client for every vendor API call (CRM reads today, PSA/ERP writes next).

What every call gets, in one place:
- a per-attempt timeout, and a total deadline for the call that retries and waits must fit in (a caller
  may cap it further with `not_after`, e.g. a queued record's read budget; inside a Lambda invocation it
  also ends the policy's `invocation_reserve_seconds` before the function's timeout, see http_policy);
- bounded retries with full-jitter exponential backoff (tenacity), on timeouts, connection errors, 408,
  425, 429 and 5xx; `Retry-After` is honoured up to `max_retry_after_seconds`, and a wait that would
  overrun the deadline gives up at once instead of sleeping into a timeout;
- an idempotency header on writes, for vendors that have one;
- one classification of outcomes into the project's errors: retryable failures end as
  `TransientDownstreamError`; 401/403 as `VendorAuthRefused` (transient for the work item, not retried
  in the call); 404/410 as `VendorNotFound`; any other 4xx as `VendorRejected` with the vendor's error
  code; a success whose body is not a JSON object as `TransientDownstreamError`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import tenacity

from pssync.connectors.http_policy import CallPolicy, invocation_seconds_left
from pssync.errors import TransientDownstreamError, VendorAuthRefused, VendorNotFound, VendorRejected

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date, RFC 9110 §10.2.3);
    None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)  # delta-seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Retryable(Exception):
    """One attempt's retryable failure; `retry_after` when the vendor said how long to wait."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class VendorHttp:
    """A pooled httpx client for one vendor account, with the project's retry and error policy."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        policy: CallPolicy = CallPolicy(),  # noqa: B008 - frozen, shared safely
        *,
        bearer_token: Callable[[], str] | None = None,
        idempotency_header: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.vendor = vendor
        self.policy = policy
        self._bearer_token = bearer_token
        self._timeout = policy.timeout_seconds
        self._deadline_seconds = policy.deadline_seconds
        self._max_attempts = policy.max_attempts
        self._backoff_base = policy.backoff_base_seconds
        self._backoff_cap = policy.backoff_cap_seconds
        self._max_retry_after = policy.max_retry_after_seconds
        self._idempotency_header = idempotency_header
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(
                policy.timeout_seconds, connect=min(policy.connect_timeout_seconds, policy.timeout_seconds)
            ),
            transport=transport,
            headers={"Accept": "application/json", **(headers or {})},
        )

    def now(self) -> float:
        return self._monotonic()

    def within(self, seconds: float) -> BudgetedReader:
        """A view whose every call shares one deadline `seconds` from now (one queued record's reads)."""
        return BudgetedReader(self, self._monotonic() + seconds)

    def get_json(
        self, path: str, params: Mapping[str, str | int] | None = None, *, not_after: float | None = None
    ) -> dict[str, Any]:
        return json_object(self.request("GET", path, params=params, not_after=not_after), self.vendor, path)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
        not_after: float | None = None,
    ) -> httpx.Response:
        """One logical call: retried as the policy says; returns a 2xx response or raises (see module)."""
        what = f"{self.vendor} {method} {path}"
        deadline = self._deadline(what, not_after)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=lambda state: self._should_stop(state, deadline),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, path, params, json_body, idempotency_key, deadline)
        except _Retryable as error:
            raise TransientDownstreamError(f"{what} failed after retries: {error.problem}") from None

    def _deadline(self, what: str, not_after: float | None) -> float:
        """The call's deadline: the policy's, a caller's `not_after`, and the invocation's remaining time
        less the policy's reserve, whichever comes first. No time left at all fails before any request."""
        now = self._monotonic()
        deadline = now + self._deadline_seconds
        if not_after is not None:
            deadline = min(deadline, not_after)
        seconds_left = invocation_seconds_left()
        if seconds_left is not None:
            deadline = min(deadline, now + seconds_left - self.policy.invocation_reserve_seconds)
            if deadline <= now:
                raise TransientDownstreamError(
                    f"{what}: not started, {seconds_left:.1f} s left in the invocation and "
                    f"{self.policy.invocation_reserve_seconds:.1f} s are kept for what follows the call"
                )
        return deadline

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        idempotency_key: str | None,
        deadline: float,
    ) -> httpx.Response:
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            raise _Retryable("no time left in the call's deadline")
        headers = {}
        if self._bearer_token is not None:
            headers["Authorization"] = f"Bearer {self._bearer_token()}"
        if idempotency_key is not None and self._idempotency_header is not None:
            headers[self._idempotency_header] = idempotency_key
        try:
            response = self.client.request(
                method,
                path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=min(self._timeout, remaining),
            )
        except httpx.TransportError as error:  # timeouts, connection resets, DNS
            raise _Retryable(type(error).__name__) from error
        return self._classified(response, f"{self.vendor} {method} {path}")

    def _classified(self, response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        if response.is_success:
            return response
        if status in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {status}", retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise VendorAuthRefused(f"{what} refused our credentials: HTTP {status}", status=status)
        vendor_code = _vendor_error_code(response)
        detail = f"HTTP {status}" + (f" ({vendor_code})" if vendor_code else "")
        if status in (404, 410):
            raise VendorNotFound(f"{what}: not found, {detail}", status=status, vendor_code=vendor_code)
        raise VendorRejected(f"{what} was refused: {detail}", status=status, vendor_code=vendor_code)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return min(failure.retry_after, self._max_retry_after)
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0 ** (state.attempt_number - 1))
        return self._rng() * ceiling  # full jitter

    def _should_stop(self, state: tenacity.RetryCallState, deadline: float) -> bool:
        # Waiting past the deadline would only end in a timeout: give up now and let the caller's queue
        # or workflow retry later.
        out_of_time = self._monotonic() + state.upcoming_sleep >= deadline
        return state.attempt_number >= self._max_attempts or out_of_time

    def close(self) -> None:
        self.client.close()


class BudgetedReader:
    """Every read through it shares one deadline (e.g. all reads for one queued record)."""

    def __init__(self, http: VendorHttp, not_after: float) -> None:
        self._http = http
        self._not_after = not_after

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        if self._not_after <= self._http.now():
            raise TransientDownstreamError(
                f"{self._http.vendor} GET {path}: no time left in the record's read budget"
            )
        return self._http.get_json(path, params, not_after=self._not_after)


def json_object(response: httpx.Response, vendor: str, path: str) -> dict[str, Any]:
    """A success's JSON object body. A body that is not JSON (an HTML maintenance page behind a 200, a
    truncated answer) is transient: the same call may well succeed later."""
    try:
        document = response.json()
    except ValueError:
        raise TransientDownstreamError(f"{vendor} answered {path} with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise TransientDownstreamError(f"{vendor} answered {path} with JSON that is not an object")
    return document


def _vendor_error_code(response: httpx.Response) -> str | None:
    """The vendor's own error code from the common error shapes (`{"error": {"code"}}`, `{"errors":
    [{"code"}]}`, NetSuite's `o:errorDetails[].o:errorCode`, HubSpot's `category`)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    candidates: list[Any] = []
    error = body.get("error")
    candidates.append(error.get("code") if isinstance(error, dict) else error)
    for key, code_key in (("errors", "code"), ("o:errorDetails", "o:errorCode")):
        items = body.get(key)
        if isinstance(items, list) and items and isinstance(items[0], dict):
            candidates.append(items[0].get(code_key))
    candidates += [body.get("errorCode"), body.get("category")]
    code = next((c for c in candidates if isinstance(c, str | int) and not isinstance(c, bool)), None)
    return None if code is None else str(code)[:100]
