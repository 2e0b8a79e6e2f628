"""Infrastructure assertions on the synthesised pssync stack (bundle=False: no pip downloads)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.workflows import STATEMACHINES_DIR
from infra.sources import DEFAULT_SOURCES, parse_event_relay, parse_kantata, parse_sources
from infra.workflow_catalog import catalog
from tests.infra.conftest import cfn_lint_output
from tests.infra.full_context import FULL_CONTEXT, PARTNER_EVENT_SOURCE

pytestmark = pytest.mark.infra

Resources = dict[str, dict[str, Any]]

# Role name -> handler folder: the ingest functions, then every catalogued workflow's starter and steps.
FUNCTION_FOLDERS = {
    "ingest_webhook": "ingest_webhook",
    "resolve_closed_won": "resolve_closed_won",
    **{
        "_".join(word.lower() for word in re.findall(r"[A-Z][a-z]*", spec.starter_id)): "start_workflow"
        for spec in catalog()
    },
    **{step.folder: step.folder for spec in catalog() for step in spec.steps},
    # The period close (not a catalogued workflow: started on request, not by a business event).
    **{
        folder: folder
        for folder in (
            "close_period_gate",
            "close_period_plan",
            "close_period_shard",
            "close_period_lock",
            "close_period_reopen",
        )
    },
    # Reconciliation and exception aging (scheduled).
    "reconcile_portfolio": "reconcile_portfolio",
    "measure_exception_aging": "measure_exception_aging",
}
COMMON_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "pssync",
    "POWERTOOLS_METRICS_NAMESPACE": "pssync",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
# The only Resource "*" grants: services without resource-level permissions (each acknowledged as IAM5).
SERVICE_WIDE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# Principals that invoke Lambda asynchronously: such functions need an on-failure destination or DLQ.
ASYNC_INVOKERS = {"events.amazonaws.com", "sns.amazonaws.com", "s3.amazonaws.com", "scheduler.amazonaws.com"}


def of_type(resources: Resources, resource_type: str) -> Resources:
    return {logical_id: r for logical_id, r in resources.items() if r["Type"] == resource_type}


def ref_target(value: Any) -> str | None:
    """The logical id behind {"Ref": id} or {"Fn::GetAtt": [id, attr]}."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_policy_statements(resources: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, policy in of_type(resources, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, statement
    for logical_id, role in of_type(resources, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def functions_by_role(resources: Resources) -> dict[str, dict[str, Any]]:
    return {
        fn["Metadata"]["pssync:role"]: fn
        for fn in of_type(resources, "AWS::Lambda::Function").values()
        if "pssync:role" in fn.get("Metadata", {})
    }


def test_cdk_nag_has_no_unacknowledged_findings(synthesis: Any) -> None:
    assert synthesis.error is None, synthesis.error


def test_cfn_lint_reports_no_errors(synthesis: Any, tmp_path: Path) -> None:
    assert synthesis.template is not None
    assert cfn_lint_output(synthesis.template, tmp_path) is None


# --- Dead letters -----------------------------------------------------------------------------------------


def dead_letter_stores(resources: Resources) -> set[str]:
    """Queues that receive failures: redrive targets, EventBridge target DLQs and the exceptions queue."""
    stores = {
        ref_target(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for queue in of_type(resources, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in queue["Properties"]
    }
    stores |= {
        ref_target(target["DeadLetterConfig"]["Arn"])
        for rule in of_type(resources, "AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
        if "DeadLetterConfig" in target
    }
    stores |= {
        logical_id
        for logical_id in of_type(resources, "AWS::SQS::Queue")
        if logical_id.startswith("QueuesExceptionsQueue")
    }
    return {store for store in stores if store}


def test_every_work_queue_redrives_to_a_dlq(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    work_queues = set(queues) - dead_letter_stores(resources)
    assert work_queues, "expected at least the provision inbox"
    for logical_id in work_queues:
        assert "RedrivePolicy" in queues[logical_id]["Properties"], f"{logical_id} has no DLQ"


def test_dead_letter_stores_keep_messages_14_days(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    for logical_id in dead_letter_stores(resources):
        assert queues[logical_id]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600, logical_id


def test_every_queue_is_encrypted_and_requires_tls(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    tls_enforced = {
        ref_target(queue_ref)
        for policy in of_type(resources, "AWS::SQS::QueuePolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for queue_ref in policy["Properties"]["Queues"]
    }
    for logical_id, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, logical_id
        assert logical_id in tls_enforced, logical_id


def test_every_event_rule_target_has_dlq_and_retry_policy(resources: Resources) -> None:
    rules = of_type(resources, "AWS::Events::Rule")
    assert rules
    for logical_id, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target, f"{logical_id} target {target['Id']} has no DLQ"
            if "ScheduleExpression" in rule["Properties"]:  # schedules choose their own (bounded) retries
                assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1, logical_id
                continue
            assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_every_sqs_event_source_reads_a_queue_with_dlq(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    for logical_id, mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").items():
        queue = queues[ref_target(mapping["Properties"]["EventSourceArn"]) or ""]
        assert "RedrivePolicy" in queue["Properties"], logical_id
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_asynchronously_invoked_functions_have_a_failure_destination(resources: Resources) -> None:
    async_functions = {
        ref_target(permission["Properties"]["FunctionName"])
        for permission in of_type(resources, "AWS::Lambda::Permission").values()
        if permission["Properties"]["Principal"] in ASYNC_INVOKERS
    }
    with_destination = {
        ref_target(config["Properties"]["FunctionName"])
        for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if "OnFailure" in config["Properties"].get("DestinationConfig", {})
    }
    functions = of_type(resources, "AWS::Lambda::Function")
    for logical_id in async_functions:
        has_dlq = "DeadLetterConfig" in functions[logical_id or ""]["Properties"]
        assert has_dlq or logical_id in with_destination, f"{logical_id} is invoked async without a DLQ"


def test_contract_booked_rule_routes_to_provision_inbox(template: Template, resources: Resources) -> None:
    queue_ids = of_type(resources, "AWS::SQS::Queue")
    (inbox_id,) = [i for i in queue_ids if i.startswith("QueuesProvisionEngagementInbox") and "Dlq" not in i]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["pssync.ingest"], "detail-type": ["ContractBooked"]},
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [inbox_id, "Arn"]}})],
        },
    )
    inbox = resources[inbox_id]["Properties"]
    assert inbox["RedrivePolicy"]["maxReceiveCount"] == 5
    starter = functions_by_role(resources)["start_provision_engagement"]["Properties"]
    assert inbox["VisibilityTimeout"] >= 6 * starter["Timeout"]


def test_event_bus_is_archived_for_replay(template: Template) -> None:
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "pssync-dev"})
    template.has_resource_properties("AWS::Events::Archive", {"RetentionDays": 30})


# --- Tables -------------------------------------------------------------------------------------------------


def test_idempotency_table_expires_records(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_tables_have_pitr_on_demand_billing_and_encryption(resources: Resources) -> None:
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert len(tables) == 4  # idempotency, business, delivery log, replay audit
    for logical_id, table in tables.items():
        properties = table["Properties"]
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, (
            logical_id
        )
        assert properties["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert properties["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert "TableName" not in properties, "CloudFormation names the tables"


# --- IAM ----------------------------------------------------------------------------------------------------


def test_no_policy_grants_wildcard_actions(resources: Resources) -> None:
    for logical_id, statement in identity_policy_statements(resources):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{logical_id}: {action}"


def test_resource_wildcards_only_for_services_without_resource_permissions(resources: Resources) -> None:
    for logical_id, statement in identity_policy_statements(resources):
        if "*" in as_list(statement.get("Resource", [])):
            extra = set(as_list(statement["Action"])) - SERVICE_WIDE_ACTIONS
            assert not extra, f"{logical_id} grants {extra} on Resource '*'"


def test_each_function_has_its_own_role_and_log_group(resources: Resources) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    log_groups = of_type(resources, "AWS::Logs::LogGroup")
    roles = [ref_target(fn["Properties"]["Role"]) for fn in functions.values()]
    assert len(set(roles)) == len(functions), "functions share a role"
    groups = [ref_target(fn["Properties"]["LoggingConfig"]["LogGroup"]) for fn in functions.values()]
    assert len(set(groups)) == len(functions), "functions share a log group"
    for group in groups:
        assert log_groups[group or ""]["Properties"]["RetentionInDays"] > 0


def test_every_log_group_has_retention(resources: Resources) -> None:
    for logical_id, group in of_type(resources, "AWS::Logs::LogGroup").items():
        assert group["Properties"].get("RetentionInDays"), logical_id


# --- Functions ----------------------------------------------------------------------------------------------


def test_every_function_maps_to_its_handler_folder(resources: Resources) -> None:
    functions = of_type(resources, "AWS::Lambda::Function").values()
    assert all("pssync:function" in fn.get("Metadata", {}) for fn in functions)
    assert {role: fn["Metadata"]["pssync:function"] for role, fn in functions_by_role(resources).items()} == (
        FUNCTION_FOLDERS
    )


def test_functions_share_runtime_settings_and_environment(resources: Resources) -> None:
    (layer_id,) = of_type(resources, "AWS::Lambda::LayerVersion")
    for role, fn in functions_by_role(resources).items():
        properties = fn["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Handler"] == "handler.handler"
        assert properties["LoggingConfig"]["LogFormat"] == "JSON"
        assert properties["Layers"] == [{"Ref": layer_id}]
        assert (
            properties["Environment"]["Variables"] | COMMON_ENVIRONMENT
            == properties["Environment"]["Variables"]
        )
        assert properties["Environment"]["Variables"]["PSSYNC_FUNCTION"] == role


def test_ingest_registry_names_one_secret_per_source(resources: Resources) -> None:
    variables = functions_by_role(resources)["ingest_webhook"]["Properties"]["Environment"]["Variables"]
    registry = json.loads(variables["SOURCE_REGISTRY"])
    assert [entry["name"] for entry in registry] == [source["name"] for source in DEFAULT_SOURCES]
    secret_names = {
        s["Properties"]["Name"] for s in of_type(resources, "AWS::SecretsManager::Secret").values()
    }
    assert {entry["secret_id"] for entry in registry} == secret_names == {"pssync/dev/webhooks/crm"}
    assert variables["IDEMPOTENCY_EXPIRY_SECONDS"] == "345600"


def test_sources_context_accepts_json_text_and_rejects_bad_names() -> None:
    (source,) = parse_sources(
        '[{"name": "hubspot", "scheme": "hubspot", "system": "hubspot", "tenants": ["1"], '
        '"public_url": "https://hooks.example.com/prod/webhooks/hubspot"}]',
        "prod",
    )
    assert source.secret_id == "pssync/prod/webhooks/hubspot"
    with pytest.raises(ValueError, match="should match pattern"):
        parse_sources([{"name": "Bad Name", "scheme": "standard-webhooks", "system": "salesforce"}])
    with pytest.raises(ValueError, match="scheme"):
        parse_sources([{"name": "x", "scheme": "hubspot-v3", "system": "hubspot"}])
    with pytest.raises(ValueError, match="source names must be unique"):
        parse_sources([{"name": "a", "scheme": "standard-webhooks", "system": "salesforce"}] * 2)


def test_sources_are_validated_by_pssyncs_own_source_config() -> None:
    """Non-HTTP schemes need no secret; unknown fields are refused like the Lambda's registry refuses them."""
    sources = parse_sources(FULL_CONTEXT["pssync:sources"])
    assert [s.secret_id for s in sources] == [
        "pssync/dev/webhooks/crm",
        None,
        None,
        "pssync/dev/webhooks/hubspot",
    ]
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        parse_sources([{"name": "x", "scheme": "standard-webhooks", "system": "salesforce", "colour": 1}])


def test_event_relay_context_needs_a_relay_source_listing_the_org() -> None:
    sources = parse_sources(FULL_CONTEXT["pssync:sources"])
    (bus,) = parse_event_relay(f'["{PARTNER_EVENT_SOURCE}"]', sources)
    assert bus.source.name == "sf-relay" and bus.org_id == "00D5g000004SxYzEAK"
    assert parse_event_relay(None, sources) == []
    with pytest.raises(ValueError, match=r"not aws\.partner"):
        parse_event_relay(["aws.partner/hubspot.com/1/2"], sources)
    with pytest.raises(ValueError, match="no salesforce-event-relay source"):
        parse_event_relay(["aws.partner/salesforce.com/00D000000000001AAA/0YLx"], sources)


def test_kantata_context_defaults_and_needs_a_kantata_source() -> None:
    sources = parse_sources(FULL_CONTEXT["pssync:sources"])
    polling = parse_kantata(None, sources)
    assert polling is not None and polling.schedule_minutes == 1 and polling.overlap_minutes == 10
    assert parse_kantata(None, parse_sources(None)) is None
    with pytest.raises(ValueError, match="no source uses the kantata-poll scheme"):
        parse_kantata({"schedule_minutes": 5}, parse_sources(None))


def test_default_context_creates_no_relay_or_poller(resources: Resources) -> None:
    assert set(functions_by_role(resources)) == set(FUNCTION_FOLDERS)
    assert not [
        r
        for r in of_type(resources, "AWS::Events::EventBus").values()
        if "EventSourceName" in r["Properties"]
    ]


# --- Workflow and API ---------------------------------------------------------------------------------------


def _machine(resources: Resources, construct_id: str) -> dict:
    (machine,) = [
        r
        for lid, r in of_type(resources, "AWS::StepFunctions::StateMachine").items()
        if lid.startswith(construct_id)
    ]
    return machine


@pytest.mark.parametrize("spec", catalog(), ids=lambda s: s.name)
def test_state_machine_substitutes_every_placeholder(template: Template, resources: Resources, spec) -> None:  # type: ignore[no-untyped-def]
    placeholders = set(re.findall(r"\$\{(\w+)\}", (STATEMACHINES_DIR / spec.asl_file).read_text()))
    machine = _machine(resources, spec.construct_id)
    assert placeholders == set(machine["Properties"]["DefinitionSubstitutions"])
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
        },
    )


@pytest.mark.parametrize("asl", sorted(STATEMACHINES_DIR.glob("*.asl.json")), ids=lambda p: p.stem)
def test_every_lambda_task_retries_a_timed_out_or_crashed_function(asl: Path) -> None:
    """A function killed at its timeout fails the task with Sandbox.Timedout (not States.Timeout, which is
    the task's own TimeoutSeconds); a container that exits fails it with Runtime.ExitError (Lambda.Unknown on
    AWS for out-of-memory): steps are idempotent, so all are retried like any transient fault."""

    def tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, state in states.items():
            if state["Type"] == "Task" and "FunctionArn" in str(state.get("Resource", "")):
                yield name, state
            for nested in (state.get("ItemProcessor") or state.get("Iterator") or {},):
                yield from tasks(nested.get("States", {}))

    found = list(tasks(json.loads(asl.read_text())["States"]))
    assert found
    for name, state in found:
        retried = {error for rule in state.get("Retry", []) for error in rule["ErrorEquals"]}
        assert {"Sandbox.Timedout", "States.Timeout", "Runtime.ExitError", "Lambda.Unknown"} <= retried, name


@pytest.mark.parametrize("spec", catalog(), ids=lambda s: s.name)
def test_state_machine_may_invoke_exactly_its_step_functions(resources: Resources, spec) -> None:  # type: ignore[no-untyped-def]
    machine = _machine(resources, spec.construct_id)
    step_functions = {
        ref_target(arn)
        for key, arn in machine["Properties"]["DefinitionSubstitutions"].items()
        if key.endswith("FunctionArn")
    }
    role_id = ref_target(machine["Properties"]["RoleArn"])
    invocable = {
        ref_target(resource)
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    assert invocable == step_functions


def test_webhook_api_is_throttled_and_logged(template: Template) -> None:
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "{source}"})
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "POST", "Integration": Match.object_like({"Type": "AWS_PROXY"})},
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": [
                Match.object_like(
                    {"LoggingLevel": "INFO", "DataTraceEnabled": False, "ThrottlingRateLimit": 50}
                )
            ],
        },
    )
    template.has_output("WebhookBaseUrl", Match.any_value())


def test_monitoring_alarms_on_every_dead_letter_store_and_failed_executions(resources: Resources) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    watched_queues = {
        ref_target(dimension["Value"])
        for alarm in alarms
        for dimension in alarm["Properties"].get("Dimensions", [])
        if dimension["Name"] == "QueueName"
    }
    assert watched_queues == dead_letter_stores(resources)
    assert any(alarm["Properties"]["MetricName"] == "ExecutionsFailed" for alarm in alarms)
    aging = {
        ref_target(alarm["Properties"]["Dimensions"][0]["Value"]): alarm["Properties"]["Threshold"]
        for alarm in alarms
        if alarm["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    }
    assert aging == dict.fromkeys(dead_letter_stores(resources), 24 * 3600)  # exception aging, per store


def test_the_dashboard_shows_the_emitted_business_metrics(resources: Resources) -> None:
    from pssync.observability import BusinessMetric

    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in BusinessMetric:
        if metric is not BusinessMetric.WORKFLOW_STARTED:
            assert metric.value in body, metric
    assert "ApproximateAgeOfOldestMessage" in body


def test_cdk_nag_runs_during_synth() -> None:
    """Guards the check above against passing vacuously: an unacknowledged finding must fail the synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    from infra.app import build_app

    app = build_app(bundle=False)
    sqs.Queue(cdk.Stack(app, "NagProbe"), "QueueWithoutDlqOrTls")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
