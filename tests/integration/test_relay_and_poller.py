"""The cursor store and both handlers in-process against moto (mock_aws), Kantata's API mocked by respx."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx

from pssync.adapters.cursors import DynamoDBCursorStore
from pssync.errors import TransientDownstreamError
from pssync.local.lambda_host import FakeLambdaContext
from pssync.ports import CursorConflict
from pssync.sources.kantata.feed import SUBSCRIBED_EVENTS_PATH
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "samples"
ORG = "00D5g000004SxYzEAK"
REGISTRY = [
    {
        "name": "sf-relay",
        "scheme": "salesforce-event-relay",
        "system": "salesforce",
        "tenants": [ORG],
        "own_client_ids": ["pssync-int"],
    },
    {"name": "psa", "scheme": "kantata-poll", "system": "kantata", "tenants": ["12345"]},
]


@pytest.fixture
def world(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    aws.clients["dynamodb"].create_table(
        TableName="cursors",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws.clients["secretsmanager"].create_secret(
        Name="pssync/test/kantata/psa", SecretString=json.dumps({"access_token": "tok"})
    )
    for key, value in {
        "SOURCE_REGISTRY": json.dumps(REGISTRY),
        "CURSOR_TABLE_NAME": "cursors",
        "KANTATA_BASE_URL": "https://kantata.test",
        "KANTATA_CURRENCY": "EUR",
        "KANTATA_TOKEN_SECRET_IDS": json.dumps({"psa": "pssync/test/kantata/psa"}),
    }.items():
        monkeypatch.setenv(key, value)
    return aws


def test_cursor_writes_are_conditional(world: AwsWorld) -> None:
    store = DynamoDBCursorStore("cursors", world.clients["dynamodb"])
    empty = store.get("psa")
    first = store.advance(empty, datetime(2026, 11, 20, 10, tzinfo=UTC), datetime.now(UTC))
    assert store.get("psa") == first and first.version == 1
    with pytest.raises(CursorConflict):
        store.advance(empty, datetime(2026, 11, 20, 11, tzinfo=UTC), datetime.now(UTC))  # stale: v0
    second = store.advance(first, datetime(2026, 11, 20, 11, tzinfo=UTC), datetime.now(UTC))
    with pytest.raises(CursorConflict):
        store.advance(first, datetime(2026, 11, 20, 12, tzinfo=UTC), datetime.now(UTC))
    assert store.get("psa") == second


def test_relay_handler_publishes_contract_booked_once_and_reports_failures(world: AwsWorld) -> None:
    handler = load_handler("salesforce_event_relay")
    create = (SAMPLES / "salesforce-event-relay/cdc-create-closed-won.json").read_text()
    foreign = json.loads(create)
    foreign["source"] = "aws.partner/salesforce.com/00D000000000001AAA/0YLabc"
    event = {
        "Records": [sqs_record(create, "m1"), sqs_record(json.dumps(foreign), "m2"), sqs_record(create, "m3")]
    }
    result = handler(event, context("salesforce_event_relay"))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    captured = world.captured()
    assert [(m["detail-type"], m["detail"]["source"]) for m in captured] == [("ContractBooked", "sf-relay")]
    assert captured[0]["detail"]["lineage"]["raw_payload_ref"].startswith("s3://raw-payloads/raw/sf-relay/")


@respx.mock
def test_poller_handler_publishes_time_approved_and_dedupes_overlapping_polls(world: AwsWorld) -> None:
    pages = [
        json.loads((SAMPLES / f"kantata/{n}.json").read_text())
        for n in ("subscribed-events-page", "subscribed-events-overlapping-page")
    ]
    route = respx.get("https://kantata.test" + SUBSCRIBED_EVENTS_PATH).mock(
        side_effect=[httpx.Response(200, json=p) for p in pages]
    )
    handler = load_handler("kantata_poller")
    first = handler({"source": "aws.events"}, context("kantata_poller"))
    second = handler({"source": "aws.events"}, context("kantata_poller"))
    assert [(r["published"], r["duplicates"]) for r in first["polled"] + second["polled"]] == [(2, 0), (1, 1)]
    assert route.calls[0].request.headers["Authorization"] == "Bearer tok"
    captured = world.captured()
    assert [m["detail"]["source_event_id"] for m in captured] == ["5001", "5002", "5003"]
    assert {m["detail-type"] for m in captured} == {"TimeApproved"}
    cursor = DynamoDBCursorStore("cursors", world.clients["dynamodb"]).get("psa")
    assert cursor.version == 2 and cursor.position == datetime(2026, 11, 20, 11, 0, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bad_answer", "cause"),
    [
        (httpx.Response(401, json={"errors": [{"message": "invalid token"}]}), "VendorAuthRefused"),
        # A 200 whose body is not JSON (a maintenance page) once raised JSONDecodeError past the loop.
        (httpx.Response(200, text="<html>down for maintenance</html>"), "not JSON"),
    ],
    ids=["revoked-token", "200-not-json"],
)
@respx.mock
def test_one_kantata_account_failing_does_not_stop_the_others(
    world: AwsWorld, monkeypatch: pytest.MonkeyPatch, bad_answer: httpx.Response, cause: str
) -> None:
    second = {"name": "psa-eu", "scheme": "kantata-poll", "system": "kantata", "tenants": ["67890"]}
    monkeypatch.setenv("SOURCE_REGISTRY", json.dumps([second, *REGISTRY]))
    monkeypatch.setenv(
        "KANTATA_TOKEN_SECRET_IDS",
        json.dumps({"psa": "pssync/test/kantata/psa", "psa-eu": "pssync/test/kantata/psa-eu"}),
    )
    world.clients["secretsmanager"].create_secret(
        Name="pssync/test/kantata/psa-eu", SecretString=json.dumps({"access_token": "revoked"})
    )
    good_page = json.loads((SAMPLES / "kantata/subscribed-events-page.json").read_text())

    def kantata(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer revoked":
            return bad_answer
        return httpx.Response(200, json=good_page)

    respx.get("https://kantata.test" + SUBSCRIBED_EVENTS_PATH).mock(side_effect=kantata)
    handler = load_handler("kantata_poller")
    with pytest.raises(TransientDownstreamError, match="psa-eu") as failure:
        handler({"source": "aws.events"}, context("kantata_poller"))
    assert cause in str(failure.value)
    # psa-eu was polled first and failed; psa still ran, and the invocation still fails for the DLQ.
    assert [m["detail"]["source_event_id"] for m in world.captured()] == ["5001", "5002"]
    assert DynamoDBCursorStore("cursors", world.clients["dynamodb"]).get("psa-eu").version == 0


@respx.mock
def test_a_poll_that_cannot_read_one_window_in_time_fails_loudly(world: AwsWorld) -> None:
    route = respx.get("https://kantata.test" + SUBSCRIBED_EVENTS_PATH).mock(
        return_value=httpx.Response(
            200, json=json.loads((SAMPLES / "kantata/subscribed-events-page.json").read_text())
        )
    )
    handler = load_handler("kantata_poller")
    almost_out = FakeLambdaContext(function_name="kantata_poller", memory_limit_in_mb=256, timeout_seconds=5)
    with pytest.raises(TransientDownstreamError, match="no window could be read in time"):
        handler({"source": "aws.events"}, almost_out)
    assert route.call_count == 0 and world.captured() == []
