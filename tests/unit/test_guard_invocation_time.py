"""Vendor calls fit the Lambda invocation: a slow NetSuite ends as a typed transient error before the
function's timeout, never as a container killed mid-command.

Time is a manual clock: the respx vendor is slow by taking the whole timeout each attempt is given (the
clock moves by it, then the read times out), and the fake Lambda context counts down on the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from pssync.connectors.http_policy import invocation_seconds_left, invocation_time
from pssync.connectors.netsuite import (
    NETSUITE_COMMAND_SECONDS,
    NETSUITE_WRITES,
    NetSuiteConnector,
    NetSuiteTokens,
    netsuite_http,
)
from pssync.errors import TransientDownstreamError
from pssync.handlers.stack import lambda_handler
from tests.unit.test_netsuite_connector import (
    CREDENTIALS,
    MAPPING,
    RECORDS,
    TOKEN_URL,
    FakeNetSuite,
    billing_schedule,
)

FUNCTION_TIMEOUT_SECONDS = 30.0  # infra/runtime.py LAMBDA_TIMEOUT, the sending steps' timeout
RESERVE = NETSUITE_WRITES.invocation_reserve_seconds


@dataclass
class ManualClock:
    now: float = 5_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeContext:
    """The Lambda context's countdown, on the manual clock."""

    clock: ManualClock
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock()) * 1000))


@dataclass
class SlowVendor:
    """Every record request takes the whole timeout it was given, then times out."""

    clock: ManualClock
    read_timeouts: list[tuple[float, float]] = field(default_factory=list)  # (seconds left, timeout given)
    context: FakeContext | None = None

    def record(self, request: httpx.Request) -> httpx.Response:
        timeout = float(request.extensions["timeout"]["read"])
        left = self.context.get_remaining_time_in_millis() / 1000 if self.context else float("inf")
        self.read_timeouts.append((left, timeout))
        self.clock.now += timeout
        raise httpx.ReadTimeout("NetSuite did not answer in time", request=request)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def slow(clock: ManualClock) -> Any:
    vendor = SlowVendor(clock)
    token_service = FakeNetSuite()
    with respx.mock(assert_all_called=False) as mock:
        mock.post(TOKEN_URL).mock(side_effect=token_service.token)
        mock.route(url__startswith=RECORDS).mock(side_effect=vendor.record)
        yield vendor


def connector(clock: ManualClock) -> NetSuiteConnector:
    tokens = NetSuiteTokens(CREDENTIALS)
    http = netsuite_http(CREDENTIALS, tokens, sleep=clock.sleep, monotonic=clock, rng=lambda: 0.5)
    return NetSuiteConnector(http, tokens, MAPPING)


def invocation(clock: ManualClock, seconds_left: float) -> FakeContext:
    return FakeContext(clock, clock() + seconds_left)


def test_the_policy_fits_the_sending_functions_timeout() -> None:
    # One command's calls and the reserve fit a fresh invocation (the CDK check holds infra to the same).
    assert NETSUITE_WRITES.deadline_seconds <= NETSUITE_COMMAND_SECONDS
    assert NETSUITE_COMMAND_SECONDS + RESERVE <= FUNCTION_TIMEOUT_SECONDS


@pytest.mark.parametrize("seconds_left", [FUNCTION_TIMEOUT_SECONDS, 12.0, 4.5])
def test_a_slow_netsuite_ends_as_a_transient_error_before_the_invocation_does(
    clock: ManualClock, slow: SlowVendor, seconds_left: float
) -> None:
    # 12 s: e.g. what is left after waiting for a concurrency slot and the steps before the send.
    context = invocation(clock, seconds_left)
    slow.context = context
    started = clock()
    with (
        invocation_time(lambda: context.get_remaining_time_in_millis() / 1000),
        pytest.raises(TransientDownstreamError) as error,
    ):
        connector(clock).send(billing_schedule(2), "t")
    assert type(error.value) is TransientDownstreamError  # the class name the workflows retry on
    assert slow.read_timeouts  # it did try the vendor
    assert clock() - started <= seconds_left - RESERVE  # the reserve is still there: the step can return
    assert context.get_remaining_time_in_millis() >= RESERVE * 1000
    for left, timeout in slow.read_timeouts:
        assert timeout <= left - RESERVE  # no attempt was allowed to run into the reserve


def test_without_an_invocation_a_slow_command_still_stops_at_its_own_budget(
    clock: ManualClock, slow: SlowVendor
) -> None:
    started = clock()
    with pytest.raises(TransientDownstreamError):
        connector(clock).send(billing_schedule(2), "t")
    assert clock() - started <= NETSUITE_COMMAND_SECONDS  # one deadline for the command's three calls


def test_with_less_than_the_reserve_left_no_request_is_made(clock: ManualClock, slow: SlowVendor) -> None:
    context = invocation(clock, RESERVE - 0.5)
    with (
        invocation_time(lambda: context.get_remaining_time_in_millis() / 1000),
        pytest.raises(TransientDownstreamError, match="left in the invocation"),
    ):
        connector(clock).send(billing_schedule(2), "t")
    assert slow.read_timeouts == []


def test_the_token_request_is_bounded_by_the_invocation_too() -> None:
    timeouts: list[float] = []

    def token(request: httpx.Request) -> httpx.Response:
        timeouts.append(float(request.extensions["timeout"]["read"]))
        return httpx.Response(200, json={"access_token": "a", "expires_in": "3600"})

    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=token)
        with invocation_time(lambda: RESERVE + 1.5):
            assert NetSuiteTokens(CREDENTIALS)() == "a"
        with (
            invocation_time(lambda: RESERVE - 0.1),
            pytest.raises(TransientDownstreamError, match="token endpoint: not called"),
        ):
            NetSuiteTokens(CREDENTIALS)()
    assert timeouts == [pytest.approx(1.5)]


def test_the_handler_stack_registers_the_contexts_remaining_time() -> None:
    from pssync.local.lambda_host import FakeLambdaContext

    seen: list[float | None] = []

    @lambda_handler()
    def handler(event: dict[str, Any], context: Any) -> None:
        seen.append(invocation_seconds_left())

    handler({}, FakeLambdaContext(function_name="send", memory_limit_in_mb=512, timeout_seconds=600))
    [left] = seen
    assert left is not None and 0 < left <= 600  # the context's countdown, in seconds
    assert invocation_seconds_left() is None  # nothing leaks past the invocation
