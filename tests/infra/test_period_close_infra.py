"""The close-period state machine in the template: Distributed Map over S3, schedule, least privilege."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.period_close import parse_close_entities
from tests.infra.conftest import Synthesis, synthesize
from tests.infra.test_infra_template import Resources, as_list, functions_by_role, of_type, ref_target

pytestmark = pytest.mark.infra

ENTITIES = ["NL01", "DE02"]
STATE_MACHINE_NAME = "pssync-dev-close-period"
STEP_ROLES = (
    "close_period_gate",
    "close_period_plan",
    "close_period_shard",
    "close_period_lock",
    "close_period_reopen",
)


@pytest.fixture(scope="module")
def scheduled() -> Synthesis:
    """The app with a monthly close configured for two legal entities (cdk-nag runs in this synth)."""
    return synthesize({"pssync:close_entities": ENTITIES})


@pytest.fixture(scope="module")
def close_resources(scheduled: Synthesis) -> Resources:
    if scheduled.template is None:
        pytest.fail(f"synth with pssync:close_entities failed:\n{scheduled.error}")
    return dict(scheduled.template["Resources"])


def _flatten(value: Any) -> str:
    """A Fn::Join of literal text and references, with each reference as a readable placeholder."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(part) for part in parts)
    if isinstance(value, dict):
        target = ref_target(value)
        if target is not None:
            return f"<{target}>"
        if "Ref" in value or "Fn::GetAtt" in value:
            return "<ref>"
        return "<" + next(iter(value)) + ">"
    return str(value)


def _close_state_machine(resources: Resources) -> tuple[str, dict[str, Any]]:
    [(logical_id, machine)] = [
        (i, r)
        for i, r in of_type(resources, "AWS::StepFunctions::StateMachine").items()
        if r["Properties"].get("StateMachineName") == STATE_MACHINE_NAME
    ]
    return logical_id, machine


def _definition(machine: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_flatten(machine["Properties"]["DefinitionString"]))  # type: ignore[no-any-return]


def _statements_of_role(resources: Resources, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if any(ref_target(role) == role_id for role in policy["Properties"].get("Roles", []))
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _grants(statements: list[dict[str, Any]]) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            grants.setdefault(action, []).extend(_flatten(r) for r in as_list(statement["Resource"]))
    return grants


def test_cdk_nag_stays_clean_with_scheduled_closes(scheduled: Synthesis) -> None:
    assert scheduled.error is None, scheduled.error


def test_the_close_maps_over_shard_files_on_s3_with_a_distributed_map(close_resources: Resources) -> None:
    _, machine = _close_state_machine(close_resources)
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    states = _definition(machine)["States"]
    shards = states["CloseShards"]
    assert shards["Type"] == "Map"
    assert shards["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert shards["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert shards["ItemReader"]["Parameters"] == {"Bucket.$": "$.plan.bucket", "Key.$": "$.plan.manifest_key"}
    assert shards["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert shards["ToleratedFailurePercentage"] == 0 and shards["MaxConcurrency"] > 1
    assert shards["ResultPath"] is None  # results go to S3 per shard; the state stays small at any scale
    child = shards["ItemProcessor"]["States"]["CloseShard"]
    assert "TransientDownstreamError" in child["Retry"][0]["ErrorEquals"]
    assert [
        states[s]["Type"] for s in ("Request", "GateClose", "PlanClose", "LockPeriod", "ReopenPeriod")
    ] == [
        "Pass",
        "Task",
        "Task",
        "Task",
        "Task",
    ]
    assert states["Request"]["Parameters"]["request"]["close_id.$"] == "$$.Execution.Name"


def test_the_state_machine_role_starts_only_its_own_children_and_reads_only_manifests(
    close_resources: Resources,
) -> None:
    logical_id, machine = _close_state_machine(close_resources)
    grants = _grants(_statements_of_role(close_resources, ref_target(machine["Properties"]["RoleArn"]) or ""))
    [own_arn] = grants["states:StartExecution"]
    assert own_arn.endswith(f":stateMachine:{STATE_MACHINE_NAME}")
    assert grants["states:DescribeExecution"] == [own_arn.replace(":stateMachine:", ":execution:") + ":*"]
    assert grants["states:StopExecution"] == grants["states:DescribeExecution"]
    [bucket_id] = [
        i for i in of_type(close_resources, "AWS::S3::Bucket") if i.startswith("PeriodCloseManifests")
    ]
    assert grants["s3:GetObject"] == [f"<{bucket_id}>/closes/*"]
    steps = {
        logical
        for logical, fn in of_type(close_resources, "AWS::Lambda::Function").items()
        if fn.get("Metadata", {}).get("pssync:role") in STEP_ROLES
    }
    assert {r.strip("<>") for r in grants["lambda:InvokeFunction"]} == steps
    assert not {a for a in grants if a.startswith(("dynamodb:", "sqs:Delete", "s3:Put"))}, logical_id


def test_only_the_planner_scans_and_the_gate_only_peeks(close_resources: Resources) -> None:
    functions = functions_by_role(close_resources)
    roles = {name: ref_target(fn["Properties"]["Role"]) or "" for name, fn in functions.items()}
    scanners = [
        name
        for name, role in roles.items()
        if "dynamodb:Scan" in _grants(_statements_of_role(close_resources, role))
    ]
    # The two portfolio-wide readers: the close planner (its shards) and the daily reconciliation.
    assert sorted(scanners) == ["close_period_plan", "reconcile_portfolio"]
    gate = _grants(_statements_of_role(close_resources, roles["close_period_gate"]))
    assert {a for a in gate if a.startswith("sqs:")} == {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }
    assert not {a for a in gate if a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")}
    queues = set(gate["sqs:ReceiveMessage"])
    assert any("ExceptionsQueue" in q for q in queues) and any("InboxDlq" in q for q in queues)
    shard = _grants(_statements_of_role(close_resources, roles["close_period_shard"]))
    assert shard["s3:GetObject"] == shard["s3:PutObject"] and shard["s3:GetObject"][0].endswith("/closes/*")


def test_each_configured_entity_gets_a_monthly_schedule_with_dead_letters(close_resources: Resources) -> None:
    requester = functions_by_role(close_resources)["request_period_close"]
    requester_id = next(i for i, r in close_resources.items() if r is requester)
    rules = [
        r["Properties"]
        for r in of_type(close_resources, "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression", "").startswith("cron(")
        and any(ref_target(t["Arn"]) == requester_id for t in r["Properties"]["Targets"])
    ]
    assert sorted(json.loads(rule["Targets"][0]["Input"])["legal_entity"] for rule in rules) == sorted(
        ENTITIES
    )
    for rule in rules:
        assert rule["ScheduleExpression"] == "cron(0 3 1 * ? *)"
        [target] = rule["Targets"]
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    [invoke_config] = [
        c["Properties"]
        for c in of_type(close_resources, "AWS::Lambda::EventInvokeConfig").values()
        if ref_target(c["Properties"]["FunctionName"]) == requester_id
    ]
    assert "OnFailure" in invoke_config["DestinationConfig"]
    grants = _grants(_statements_of_role(close_resources, ref_target(requester["Properties"]["Role"]) or ""))
    assert grants["states:StartExecution"][0].endswith(f":stateMachine:{STATE_MACHINE_NAME}")


def test_without_configured_entities_nothing_is_scheduled(resources: Resources) -> None:
    assert "request_period_close" not in functions_by_role(resources)
    _, machine = _close_state_machine(resources)
    assert machine["Properties"]["StateMachineType"] == "STANDARD"


def test_close_entities_context_is_validated() -> None:
    assert parse_close_entities('["NL01", "NL01", "DE02"]') == ["NL01", "DE02"]
    assert parse_close_entities(None) == []
    with pytest.raises(ValueError, match="legal entity codes"):
        parse_close_entities(["NL 01"])
