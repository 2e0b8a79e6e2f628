"""Which dead letters a replay takes, and how fast: pure selection logic, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pssync.model import examples
from pssync.ops.selection import (
    DeadLetterFacts,
    RateLimiter,
    ReplayFilter,
    facts_of,
    parse_age,
    sent_at_of,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PARKED = {
    "pssync-error": "RecordNotFound",
    "pssync-reason": "record_not_found",
    "pssync-message": "deal 42 does not exist",
    "pssync-function": "resolve_closed_won",
    "pssync-receives": "5",
}


def _canonical() -> dict:
    return examples.contract_booked().model_dump(mode="json")


def _bus_body() -> str:
    return json.dumps({"detail-type": "ContractBooked", "source": "pssync.ingest", "detail": _canonical()})


def _workflow_exception_body() -> str:
    cause = {"errorType": "VendorRejected", "errorMessage": "PSA said no", "stackTrace": []}
    return json.dumps(
        {
            "kind": "workflow_step_failed",
            "workflow": "provision-engagement",
            "failed_step": "ProvisionPsaProject",
            "error": {"Error": "States.TaskFailed", "Cause": json.dumps(cause)},
            "event": _canonical(),
            "attempt": 0,
        }
    )


def test_facts_of_an_eventbridge_event_parked_with_its_cause() -> None:
    event = _canonical()
    facts = facts_of("m-1", _bus_body(), PARKED, NOW)
    assert facts == DeadLetterFacts(
        message_id="m-1",
        event_id=event["event_id"],
        event_type="ContractBooked",
        sources=frozenset({event["source"], event["source_system"]}),
        causes=frozenset({"RecordNotFound", "record_not_found"}),
        sent_at=NOW,
    )


def test_facts_of_a_workflow_exception_name_the_catch_error_and_the_lambda_error_type() -> None:
    facts = facts_of("m-2", _workflow_exception_body())
    assert facts.causes == {"States.TaskFailed", "VendorRejected"}
    assert facts.event_type == "ContractBooked" and facts.event_id == _canonical()["event_id"]


def test_facts_of_a_body_that_is_not_json_keep_the_cause() -> None:
    facts = facts_of("m-3", "<not json>", PARKED)
    assert facts.causes == {"RecordNotFound", "record_not_found"} and facts.event_id is None


def test_an_empty_filter_takes_everything_even_what_it_cannot_read() -> None:
    assert ReplayFilter().is_empty
    assert ReplayFilter().matches(facts_of("m", "<not json>"), NOW)


@pytest.mark.parametrize(
    ("selection", "taken"),
    [
        (ReplayFilter(causes=frozenset({"RecordNotFound"})), True),
        (ReplayFilter(causes=frozenset({"record_not_found", "Other"})), True),
        (ReplayFilter(causes=frozenset({"VendorRejected"})), False),
        (ReplayFilter(sources=frozenset({"crm"})), True),
        (ReplayFilter(sources=frozenset({"salesforce"})), True),  # the source's system
        (ReplayFilter(sources=frozenset({"hubspot"})), False),
        (ReplayFilter(event_types=frozenset({"ContractBooked", "ContractAmended"})), True),
        (ReplayFilter(event_types=frozenset({"ContractAmended"})), False),
        (ReplayFilter(event_ids=frozenset({"someone-else"})), False),
        (ReplayFilter(older_than=timedelta(hours=2)), True),
        (ReplayFilter(older_than=timedelta(hours=4)), False),
        (ReplayFilter(newer_than=timedelta(hours=4)), True),
        (ReplayFilter(newer_than=timedelta(hours=2)), False),
        # Kinds are ANDed: every one must take the message.
        (ReplayFilter(causes=frozenset({"RecordNotFound"}), sources=frozenset({"hubspot"})), False),
        (ReplayFilter(causes=frozenset({"RecordNotFound"}), event_types=frozenset({"ContractBooked"})), True),
    ],
)
def test_filters(selection: ReplayFilter, taken: bool) -> None:
    event = _canonical()
    assert event["source"] == "crm" and event["source_system"] == "salesforce"
    facts = facts_of("m", _bus_body(), PARKED, NOW - timedelta(hours=3))
    assert selection.matches(facts, NOW) is taken


def test_the_event_id_filter_takes_exactly_that_event() -> None:
    event_id = _canonical()["event_id"]
    assert ReplayFilter(event_ids=frozenset({event_id})).matches(facts_of("m", _bus_body()), NOW)


def test_an_age_filter_never_takes_a_message_of_unknown_age() -> None:
    facts = facts_of("m", _bus_body(), sent_at=None)
    assert not ReplayFilter(older_than=timedelta(0)).matches(facts, NOW)


def test_filters_describe_only_what_was_set_for_the_audit_record() -> None:
    selection = ReplayFilter(causes=frozenset({"b", "a"}), older_than=timedelta(hours=2))
    assert selection.describe() == {"cause": ["a", "b"], "older_than": "7200s"}
    assert ReplayFilter().describe() == {}


def test_sent_at_is_sqs_sent_timestamp_in_milliseconds() -> None:
    assert sent_at_of({"SentTimestamp": "1764504000000"}) == datetime(2025, 11, 30, 12, 0, tzinfo=UTC)
    assert sent_at_of({}) is None and sent_at_of({"SentTimestamp": "soon"}) is None


@pytest.mark.parametrize(
    ("text", "age"),
    [("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)),
     ("1.5d", timedelta(hours=36)), ("1w", timedelta(days=7))],
)  # fmt: skip
def test_ages(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-1h", "1y"])
def test_bad_ages_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an age"):
        parse_age(text)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_spaces_calls_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, clock, clock.sleep)
    for _ in range(5):
        limiter.wait()
    assert clock.slept == [0.25, 0.25, 0.25, 0.25]
    clock.now += 10  # idle for a while: no burst credit is saved up beyond the next call
    limiter.wait()
    limiter.wait()
    assert clock.slept[-1] == 0.25 and len(clock.slept) == 5


def test_no_rate_means_no_waiting_and_a_full_batch() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock, clock.sleep)
    limiter.wait()
    limiter.wait()
    assert clock.slept == [] and limiter.batch_size(10, 60) == 10


def test_a_slow_rate_takes_fewer_messages_at_a_time() -> None:
    clock = FakeClock()
    assert RateLimiter(0.05, clock, clock.sleep).batch_size(10, 60) == 3
    assert RateLimiter(0.01, clock, clock.sleep).batch_size(10, 60) == 1
    assert RateLimiter(50, clock, clock.sleep).batch_size(10, 60) == 10


@pytest.mark.parametrize("rate", [0, -1, 0.001, 5000])
def test_rates_out_of_range_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="between"):
        RateLimiter(rate, FakeClock(), FakeClock().sleep)
