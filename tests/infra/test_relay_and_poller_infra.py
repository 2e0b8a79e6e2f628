"""The stack with an Event Relay partner bus and a Kantata poller configured (context FULL_CONTEXT)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pssync.ingest import closed_won, event_relay
from tests.infra.conftest import Synthesis, cfn_lint_output, synthesize
from tests.infra.full_context import FULL_CONTEXT, PARTNER_EVENT_SOURCE
from tests.infra.test_infra_template import (
    ASYNC_INVOKERS,
    SERVICE_WIDE_ACTIONS,
    Resources,
    as_list,
    dead_letter_stores,
    functions_by_role,
    identity_policy_statements,
    of_type,
    ref_target,
)

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def full_synthesis() -> Synthesis:
    return synthesize(FULL_CONTEXT)


@pytest.fixture(scope="module")
def full(full_synthesis: Synthesis) -> Resources:
    if full_synthesis.template is None:
        pytest.fail(f"synth failed:\n{full_synthesis.error}")
    return dict(full_synthesis.template["Resources"])


@pytest.fixture(scope="module")
def full_template(full_synthesis: Synthesis) -> Template:
    assert full_synthesis.template is not None
    return Template.from_json(full_synthesis.template)


def _logical_id(resources: Resources, resource_type: str, prefix: str) -> str:
    # CDK appends an 8-character hash to the construct path: "Inbox" must not also match "InboxDlq".
    (found,) = [i for i in of_type(resources, resource_type) if re.fullmatch(f"{prefix}[0-9A-F]{{8}}", i)]
    return found


def _role_statements(resources: Resources, role: str) -> list[dict[str, Any]]:
    fn = functions_by_role(resources)[role]
    role_id = ref_target(fn["Properties"]["Role"])
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in as_list(s["Action"])}


def test_cdk_nag_is_clean_with_relay_and_poller(full_synthesis: Synthesis) -> None:
    assert full_synthesis.error is None, full_synthesis.error


def test_cfn_lint_reports_no_errors_with_relay_and_poller(full_synthesis: Synthesis, tmp_path: Path) -> None:
    assert full_synthesis.template is not None
    assert cfn_lint_output(full_synthesis.template, tmp_path) is None


def test_partner_bus_rule_feeds_the_buffer_with_dlq(full_template: Template, full: Resources) -> None:
    full_template.has_resource_properties(
        "AWS::Events::EventBus", {"Name": PARTNER_EVENT_SOURCE, "EventSourceName": PARTNER_EVENT_SOURCE}
    )
    bus_id = _logical_id(full, "AWS::Events::EventBus", "SalesforceEventRelayPartnerBus0")
    buffer_id = _logical_id(full, "AWS::SQS::Queue", "QueuesSalesforceEventRelayBuffer")
    dlq_id = _logical_id(full, "AWS::SQS::Queue", "QueuesSalesforceEventRelayDlq")
    (rule,) = [
        r
        for r in of_type(full, "AWS::Events::Rule").values()
        if "EventBusName" in r["Properties"] and ref_target(r["Properties"]["EventBusName"]) == bus_id
    ]
    assert rule["Properties"]["EventPattern"] == {"source": [PARTNER_EVENT_SOURCE]}
    (target,) = rule["Properties"]["Targets"]
    assert ref_target(target["Arn"]) == buffer_id
    assert ref_target(target["DeadLetterConfig"]["Arn"]) == dlq_id
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    buffer = full[buffer_id]["Properties"]
    assert ref_target(buffer["RedrivePolicy"]["deadLetterTargetArn"]) == dlq_id
    assert buffer["RedrivePolicy"]["maxReceiveCount"] == 5
    tags = {t["Key"]: t["Value"] for t in full[dlq_id]["Properties"]["Tags"]}
    assert tags["pssync:replay"] == "redrive"


def test_relay_normaliser_reads_the_buffer_with_partial_failures(full: Resources) -> None:
    buffer_id = _logical_id(full, "AWS::SQS::Queue", "QueuesSalesforceEventRelayBuffer")
    fn_id = [
        i
        for i, f in of_type(full, "AWS::Lambda::Function").items()
        if f.get("Metadata", {}).get("pssync:role") == "salesforce_event_relay"
    ]
    (mapping,) = [
        m
        for m in of_type(full, "AWS::Lambda::EventSourceMapping").values()
        if ref_target(m["Properties"]["EventSourceArn"]) == buffer_id
    ]
    assert ref_target(mapping["Properties"]["FunctionName"]) in fn_id
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert full[buffer_id]["Properties"]["VisibilityTimeout"] >= 6 * 30
    timeout = functions_by_role(full)["salesforce_event_relay"]["Properties"]["Timeout"]
    assert mapping["Properties"]["BatchSize"] * event_relay.READ_BUDGET_SECONDS < timeout


def test_schedule_invokes_the_poller_with_dlq_and_retry_policy(full: Resources) -> None:
    dlq_id = _logical_id(full, "AWS::SQS::Queue", "QueuesKantataPollerDlq")
    poller_id = [
        i
        for i, f in of_type(full, "AWS::Lambda::Function").items()
        if f.get("Metadata", {}).get("pssync:role") == "kantata_poller"
    ]
    (rule,) = [
        r
        for r in of_type(full, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and any(ref_target(t["Arn"]) in poller_id for t in r["Properties"]["Targets"])
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (target,) = rule["Properties"]["Targets"]
    assert ref_target(target["DeadLetterConfig"]["Arn"]) == dlq_id
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 2}
    (invoke_config,) = [
        c
        for c in of_type(full, "AWS::Lambda::EventInvokeConfig").values()
        if ref_target(c["Properties"]["FunctionName"]) in poller_id
    ]
    assert ref_target(invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]) == dlq_id


def test_the_poller_has_time_to_drain_a_backlog_and_the_rest_keep_the_short_timeout(full: Resources) -> None:
    timeouts = {
        f.get("Metadata", {}).get("pssync:role"): f["Properties"]["Timeout"]
        for f in of_type(full, "AWS::Lambda::Function").values()
        if "pssync:role" in f.get("Metadata", {})
    }
    assert timeouts.pop("kantata_poller") == 120
    # The close planner streams the portfolio into shard files; a shard closes 200 contracts.
    assert (timeouts.pop("close_period_shard"), timeouts.pop("close_period_plan")) == (300, 870)
    # The daily reconciliation reads the whole portfolio in one run (sharding it is left for > ~5,000).
    assert timeouts.pop("reconcile_portfolio") == 900
    assert set(timeouts.values()) == {30}


def test_every_async_target_and_queue_has_a_dead_letter_store(full: Resources) -> None:
    queues = of_type(full, "AWS::SQS::Queue")
    stores = dead_letter_stores(full)
    assert {i for i in queues if "Relay" in i or "Kantata" in i} - stores == {
        _logical_id(full, "AWS::SQS::Queue", "QueuesSalesforceEventRelayBuffer")
    }
    for logical_id in set(queues) - stores:
        assert "RedrivePolicy" in queues[logical_id]["Properties"], logical_id
    for logical_id, rule in of_type(full, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target and "RetryPolicy" in target, logical_id
    async_functions = {
        ref_target(p["Properties"]["FunctionName"])
        for p in of_type(full, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] in ASYNC_INVOKERS
    }
    with_destination = {
        ref_target(c["Properties"]["FunctionName"])
        for c in of_type(full, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert async_functions and async_functions <= with_destination
    watched = {
        ref_target(d["Value"])
        for alarm in of_type(full, "AWS::CloudWatch::Alarm").values()
        for d in alarm["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert watched == stores


def test_relay_and_poller_get_exactly_the_accept_grants(full: Resources) -> None:
    ingest = _role_statements(full, "ingest_webhook")
    accept = {
        "events:PutEvents",
        "s3:PutObject",
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
    }
    for role in ("salesforce_event_relay", "kantata_poller", "ingest_webhook"):
        actions = _actions(_role_statements(full, role))
        assert accept <= actions, role
        assert not {a for a in actions if a.startswith("states:") or a == "dynamodb:Scan"}, role
    relay = _role_statements(full, "salesforce_event_relay")
    poller = _role_statements(full, "kantata_poller")
    # Only the poller touches the cursor table, only the relay the CRM token, neither any signing secret.
    cursor_id = _logical_id(full, "AWS::DynamoDB::Table", "TablesCursorTable")

    def tables(statements: list[dict[str, Any]]) -> set[str | None]:
        return {
            ref_target(r)
            for s in statements
            if "dynamodb:PutItem" in as_list(s["Action"])
            for r in as_list(s["Resource"])
        }

    assert cursor_id in tables(poller) and cursor_id not in tables(relay) | tables(ingest)
    s3_resources = [
        r for s in relay + poller if "s3:PutObject" in as_list(s["Action"]) for r in as_list(s["Resource"])
    ]
    assert all("/raw/*" in json.dumps(r) for r in s3_resources)
    relay_secrets = [s for s in relay if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    assert "pssync/dev/crm/sf-relay" in json.dumps(relay_secrets)
    poller_secrets = json.dumps(
        [s for s in poller if "secretsmanager:GetSecretValue" in as_list(s["Action"])]
    )
    assert "webhooks" not in poller_secrets
    for logical_id, statement in identity_policy_statements(full):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{logical_id}: {action}"
        if "*" in as_list(statement.get("Resource", [])):
            assert not set(as_list(statement["Action"])) - SERVICE_WIDE_ACTIONS, logical_id


def test_both_functions_get_the_same_source_registry_and_their_settings(full: Resources) -> None:
    by_role = functions_by_role(full)
    registries = {
        role: by_role[role]["Properties"]["Environment"]["Variables"]["SOURCE_REGISTRY"]
        for role in ("ingest_webhook", "salesforce_event_relay", "kantata_poller")
    }
    assert len(set(registries.values())) == 1
    registry = json.loads(registries["kantata_poller"])
    assert [(s["name"], s["scheme"]) for s in registry] == [
        ("crm", "standard-webhooks"),
        ("sf-relay", "salesforce-event-relay"),
        ("psa", "kantata-poll"),
        ("hubspot", "hubspot"),
    ]
    poller_env = by_role["kantata_poller"]["Properties"]["Environment"]["Variables"]
    assert poller_env["KANTATA_CURRENCY"] == "EUR" and poller_env["KANTATA_OVERLAP_SECONDS"] == "600"
    assert json.loads(poller_env["KANTATA_TOKEN_SECRET_IDS"]) == {"psa": "pssync/dev/kantata/psa"}
    assert by_role["salesforce_event_relay"]["Metadata"]["pssync:function"] == "salesforce_event_relay"
    assert by_role["kantata_poller"]["Metadata"]["pssync:function"] == "kantata_poller"
    secret_names = {s["Properties"]["Name"] for s in of_type(full, "AWS::SecretsManager::Secret").values()}
    assert secret_names == {
        "pssync/dev/webhooks/crm",
        "pssync/dev/webhooks/hubspot",
        "pssync/dev/kantata/psa",
    }


def test_each_function_still_has_its_own_role_and_log_group(full: Resources) -> None:
    functions = of_type(full, "AWS::Lambda::Function")
    assert len({ref_target(f["Properties"]["Role"]) for f in functions.values()}) == len(functions)
    groups = {ref_target(f["Properties"]["LoggingConfig"]["LogGroup"]) for f in functions.values()}
    assert len(groups) == len(functions)


@pytest.mark.parametrize(
    ("role", "token"),
    [("resolve_closed_won", "pssync/dev/crm/hubspot"), ("salesforce_event_relay", "pssync/dev/crm/sf-relay")],
)
def test_functions_that_fetch_records_may_read_exactly_their_crm_tokens(
    full: Resources, role: str, token: str
) -> None:
    """IAM is not enforced by moto: without this a closed-won deal would fail to book only on AWS."""
    readable = [
        json.dumps(s.get("Resource"))
        for s in _role_statements(full, role)
        if "secretsmanager:GetSecretValue" in _actions([s])
    ]
    assert any(token in resource for resource in readable)
    other = {
        "resolve_closed_won": "pssync/dev/crm/sf-relay",
        "salesforce_event_relay": "pssync/dev/crm/hubspot",
    }
    assert not any(other[role] in resource for resource in readable)


def test_the_webhook_reads_no_crm_token_and_closed_won_signals_reach_the_resolver(full: Resources) -> None:
    readable = [
        json.dumps(s.get("Resource"))
        for s in _role_statements(full, "ingest_webhook")
        if "secretsmanager:GetSecretValue" in _actions([s])
    ]
    assert readable and not any("/crm/" in resource for resource in readable)
    inbox = _logical_id(full, "AWS::SQS::Queue", "QueuesClosedWonInbox")
    (rule,) = [
        r
        for r in of_type(full, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail-type") == ["ClosedWonSignalled"]
    ]
    assert [ref_target(t["Arn"]) for t in rule["Properties"]["Targets"]] == [inbox]
    (mapping,) = [
        m
        for m in of_type(full, "AWS::Lambda::EventSourceMapping").values()
        if ref_target(m["Properties"]["EventSourceArn"]) == inbox
    ]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
    fn = functions_by_role(full)["resolve_closed_won"]
    # Every read a batch may make, Retry-After waits included, fits the function's timeout.
    assert mapping["Properties"]["BatchSize"] * closed_won.READ_BUDGET_SECONDS < fn["Properties"]["Timeout"]
    dlq = _logical_id(full, "AWS::SQS::Queue", "QueuesClosedWonInboxDlq")
    assert ref_target(full[inbox]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) == dlq
