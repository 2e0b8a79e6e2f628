"""The scheduled reconciliation and exception-aging handlers in-process against moto: the portfolio of the
unit tests written to DynamoDB (every version and command with its recorded_at), the exceptions queue on
SQS, metrics read back from the EMF lines Powertools prints."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.ops.reconcile import DeliveryLogScan
from tests.integration.conftest import AwsWorld, context, load_handler
from tests.unit.test_reconciliation import (
    LATER,
    TRANSFORMATION,
    Plant,
    RecordingLog,
    _plant_rate_difference,
    build_portfolio,
)


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def _metrics(emf: list[dict[str, Any]], name: str) -> list[tuple[list[str], str, Any, dict[str, str]]]:
    """(dimension names, unit, value, dimension values) of every EMF document carrying `name`."""
    found = []
    for document in emf:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Name"] == name:
                    [dimensions] = directive["Dimensions"]
                    values = {d: document[d] for d in dimensions}
                    found.append((dimensions, metric["Unit"], document[name], values))
    return found


def _write(aws: AwsWorld, plant: Plant, rate: str | None = None) -> None:
    store, log = build_portfolio(plant)
    if rate is not None:
        _plant_rate_difference(log, rate)
    _copy(aws, store.versions, log)


def _copy(aws: AwsWorld, versions: dict[Any, list[Any]], log: RecordingLog) -> None:
    dynamodb = aws.clients["dynamodb"]
    business = DynamoDBVersionStore("business", dynamodb)
    for (aggregate, aggregate_id), history in versions.items():
        for stored in history:
            business.append(
                aggregate,
                aggregate_id,
                expected_version=stored.version - 1,
                body=stored.body,
                caused_by_event_id=stored.caused_by_event_id,
                correlation_id=stored.correlation_id,
                recorded_at=stored.recorded_at,
            )
    deliveries = DynamoDBDeliveryLog("delivery-log", dynamodb)
    for logged in log.logged_commands():
        deliveries.record(logged.command, logged.recorded_at)


@pytest.fixture
def exceptions_queue(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> str:
    url = str(aws.clients["sqs"].create_queue(QueueName="exceptions")["QueueUrl"])
    monkeypatch.setenv("EXCEPTIONS_QUEUE_URL", url)
    return url


def _received(aws: AwsWorld, url: str) -> list[dict[str, Any]]:
    messages = (
        aws.clients["sqs"]
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )
    return messages  # type: ignore[no-any-return]


def test_a_clean_portfolio_raises_nothing_and_reports_zero_variances(
    aws: AwsWorld, exceptions_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(aws, Plant())
    run = load_handler("reconcile_portfolio")({"as_of": LATER.date().isoformat()}, context())

    assert (run["engagements"], run["exceptions_sent"], run["variances_by_cause"]) == (2, [], {})
    assert _received(aws, exceptions_queue) == []
    emf = _emf(capsys.readouterr().out)
    assert _metrics(emf, "EngagementsReconciled") == [(["service"], "Count", [2.0], {"service": "pssync"})]
    assert _metrics(emf, "ReconciliationVariances") == [(["service"], "Count", [0.0], {"service": "pssync"})]


def test_planted_variances_go_to_the_exceptions_queue_typed_and_into_the_metrics(
    aws: AwsWorld, exceptions_queue: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(aws, Plant(psa_misses_amendment=True, m2_accepted_not_released=True), rate="250.00")
    monkeypatch.setenv("RECONCILIATION_TOLERANCE", '{"EUR": "100.00"}')
    run = load_handler("reconcile_portfolio")({"as_of": LATER.date().isoformat()}, context())

    assert run["variances_by_cause"] == {
        "rate_difference": 1,  # 320.00 EUR: above the 100.00 tolerance
        "unbilled_milestone": 1,
        "version_not_received": 1,
    }
    assert run["variance_amounts"] == {"EUR": "92320.00"}
    messages = _received(aws, exceptions_queue)
    assert len(messages) == 2
    bodies = {json.loads(m["Body"])["contract_id"]: m for m in messages}
    transformation = json.loads(bodies[TRANSFORMATION]["Body"])
    assert (transformation["kind"], transformation["cause"]) == ("reconciliation_variance",) * 2
    assert transformation["workflow"] == "reconcile-portfolio"
    assert [v["cause"] for v in transformation["variances"]] == ["unbilled_milestone"]
    assert transformation["error"]["Error"] == "ReconciliationVariance"
    attributes = bodies[TRANSFORMATION]["MessageAttributes"]
    assert attributes["pssync-reason"]["StringValue"] == "reconciliation_variance"

    emf = _emf(capsys.readouterr().out)
    assert _metrics(emf, "ReconciliationVariances") == [
        (["service"], "Count", [3.0], {"service": "pssync"}),
        *[
            (["service", "cause"], "Count", [1.0], {"service": "pssync", "cause": cause})
            for cause in ("rate_difference", "unbilled_milestone", "version_not_received")
        ],
    ]
    assert _metrics(emf, "ReconciliationVarianceAmount") == [
        (["service", "currency"], "None", [92320.0], {"service": "pssync", "currency": "EUR"})
    ]


def test_named_contracts_are_reconciled_alone(
    aws: AwsWorld, exceptions_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(aws, Plant(psa_misses_amendment=True, m2_accepted_not_released=True))
    run = load_handler("reconcile_portfolio")(
        {"as_of": LATER.date().isoformat(), "contract_ids": [TRANSFORMATION]}, context()
    )
    assert (run["engagements"], run["engagements_above_tolerance"]) == (1, [TRANSFORMATION])
    assert [json.loads(m["Body"])["contract_id"] for m in _received(aws, exceptions_queue)] == [
        TRANSFORMATION
    ]


def test_a_malformed_tolerance_stops_the_run_before_anything_is_read_or_sent(
    aws: AwsWorld, exceptions_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(aws, Plant(m2_accepted_not_released=True))
    monkeypatch.setenv("RECONCILIATION_TOLERANCE", '{"EUR": -1}')
    with pytest.raises(ValueError, match="negative"):
        load_handler("reconcile_portfolio")({}, context())
    assert _received(aws, exceptions_queue) == []


def test_the_delivery_log_scan_skips_refusals(aws: AwsWorld) -> None:
    store, log = build_portfolio(Plant())
    _copy(aws, store.versions, log)
    deliveries = DynamoDBDeliveryLog("delivery-log", aws.clients["dynamodb"])
    first = next(iter(log.logged_commands())).command
    deliveries.record_refusal(first, held_version=3, recorded_at=LATER.isoformat())
    scanned = list(DeliveryLogScan("delivery-log", aws.clients["dynamodb"]).logged_commands())
    assert sorted(c.command.command_id for c in scanned) == sorted(log.items)


def test_exception_aging_is_measured_per_workflow_stage_and_cause_without_consuming_anything(
    aws: AwsWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = aws.clients["sqs"]
    exceptions = sqs.create_queue(QueueName="exceptions")["QueueUrl"]
    inbox_dlq = sqs.create_queue(QueueName="provision-inbox-dlq")["QueueUrl"]
    step_failed = {
        "kind": "workflow_step_failed",
        "workflow": "provision-engagement",
        "failed_step": "ValidateMasterData",
        "error": {
            "Error": "BusinessRuleViolation",
            "Cause": json.dumps({"errorType": "BusinessRuleViolation", "errorMessage": "WBS 9 unknown"}),
        },
        "event": {"event_id": "e1"},
    }
    for _ in range(2):
        sqs.send_message(QueueUrl=exceptions, MessageBody=json.dumps(step_failed))
    sqs.send_message(
        QueueUrl=inbox_dlq,
        MessageBody=json.dumps({"detail": {"event_id": "e2"}}),
        MessageAttributes={
            "pssync-function": {"DataType": "String", "StringValue": "start_workflow"},
            "pssync-error": {"DataType": "String", "StringValue": "ValidationError"},
        },
    )
    monkeypatch.setenv(
        "EXCEPTION_QUEUE_URLS", json.dumps({"ExceptionsQueue": exceptions, "ProvisionInboxDlq": inbox_dlq})
    )
    result = load_handler("measure_exception_aging")({}, context())

    assert result == {"groups": 2, "open_exceptions": 3}
    emf = _emf(capsys.readouterr().out)
    dimensions = ["service", "workflow", "stage", "cause"]
    open_exceptions = _metrics(emf, "OpenExceptions")
    assert [
        (d, unit, value, v["workflow"], v["stage"], v["cause"]) for d, unit, value, v in open_exceptions
    ] == [
        (dimensions, "Count", [1.0], "ProvisionInboxDlq", "start_workflow", "ValidationError"),
        (dimensions, "Count", [2.0], "provision-engagement", "ValidateMasterData", "BusinessRuleViolation"),
    ]
    ages = _metrics(emf, "ExceptionAgeSeconds")
    assert [(d, unit) for d, unit, _, _ in ages] == [(dimensions, "Seconds")] * 2
    assert all(0 <= value[0] < timedelta(days=1).total_seconds() for _, _, value, _ in ages)
    # Peeked, not consumed: everything is still there to replay.
    depth = sqs.get_queue_attributes(QueueUrl=exceptions, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "2"
