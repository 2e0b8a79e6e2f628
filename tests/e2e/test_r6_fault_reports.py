"""Fault directives report from inside the container when they fire, named by the invocation's request id.

A probe function that makes one AWS SDK call (to a closed local port: nothing answers it), hosted by
`LambdaHost` without moto. What R6 relies on: a directive handed out is not a fault reached; the report
says which invocation reached it, and the host's record of that invocation says how it ended.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pssync.local.faults import KeyedFaults
from pssync.local.lambda_host import HostedFunction, LambdaHost

pytestmark = pytest.mark.e2e

PROBE = """
import botocore.session
from botocore.config import Config


def handler(event, context):
    client = botocore.session.get_session().create_client(
        "sts",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="probe",
        aws_secret_access_key="probe",
        config=Config(retries={"max_attempts": 0}, connect_timeout=2, read_timeout=2),
    )
    try:
        client.get_caller_identity()
    except Exception as error:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return f"{type(error).__name__} {code}".strip()
    return "answered"
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaHost]:
    root = tmp_path_factory.mktemp("functions")
    (root / "probe").mkdir()
    (root / "probe" / "handler.py").write_text(textwrap.dedent(PROBE))
    lambda_host = LambdaHost(root, {"AWS_REGION": "us-east-1"}, log_path=root / "lambda.log")
    lambda_host.register(
        HostedFunction(
            name="probe", folder="probe", handler="handler.handler", environment={}, timeout_seconds=2
        )
    )
    yield lambda_host
    lambda_host.fault_plan = None
    lambda_host.close()


def _plan(host: LambdaHost, tmp_path: Path) -> KeyedFaults:
    plan = KeyedFaults(key_of=lambda function, event: event.get("key"), report_to=tmp_path / "fired.jsonl")
    host.fault_plan = plan
    return plan


def test_a_hung_invocation_reports_before_it_is_killed_and_the_host_records_which_one_it_was(
    host: LambdaHost, tmp_path: Path
) -> None:
    plan = _plan(host, tmp_path)
    plan.add(
        "delivery-1", {"service": "sts", "operation": "GetCallerIdentity", "action": "hang", "label": "h"}
    )

    result, errored = host.invoke("probe", {"key": "delivery-1"})

    assert errored and result["errorType"] == "Sandbox.Timedout"
    record = host.invocations[-1]
    assert record.fault is not None and record.fault["key"] == "delivery-1"
    assert record.cold and record.seconds is not None  # the host's first container: its first run
    [fired] = plan.fired("delivery-1")
    assert fired.request_id == record.request_id and fired.label == "h"
    assert plan.fired("delivery-2") == []


def test_a_directive_handed_out_is_not_a_fault_reached(host: LambdaHost, tmp_path: Path) -> None:
    plan = _plan(host, tmp_path)
    plan.add("delivery-3", {"service": "dynamodb", "operation": "PutItem", "action": "hang"})  # never called

    result, errored = host.invoke("probe", {"key": "delivery-3"})

    assert not errored and result.startswith("EndpointConnectionError")
    assert plan.sent_to("delivery-3") == 1 and plan.pending("delivery-3") == 0
    assert plan.fired("delivery-3") == []


def test_an_injected_error_reports_once_and_the_next_invocation_runs_unarmed(
    host: LambdaHost, tmp_path: Path
) -> None:
    plan = _plan(host, tmp_path)
    plan.add(
        "delivery-4", {"service": "sts", "action": "error", "code": "ThrottlingException", "status": 400}
    )

    first, first_errored = host.invoke("probe", {"key": "delivery-4"})
    second, second_errored = host.invoke("probe", {"key": "delivery-4"})

    assert (first, first_errored) == ("ClientError ThrottlingException", False)
    assert not second_errored and second.startswith("EndpointConnectionError")
    assert not host.invocations[-1].cold  # the same container again: warm
    [fired] = plan.fired()
    assert fired.key == "delivery-4" and fired.request_id == host.invocations[-2].request_id
