"""The reconciliation construct in the whole stack (added here as the stack will add it, with one line):
two scheduled functions with read-only table access and peek-only queue access, their schedules and
DLQ, the tolerance from context; cdk-nag and cfn-lint clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack

from infra.app import build_app
from infra.constructs.functions import Functions
from infra.constructs.queues import Queues
from infra.constructs.reconciliation import (
    RECONCILIATION_TOLERANCE_CONTEXT_KEY,
    Reconciliation,
    parse_reconciliation_tolerance,
)
from infra.constructs.tables import Tables
from infra.constructs.workflows import WorkflowStores
from tests.infra.conftest import STAGE, cfn_lint_output
from tests.infra.test_infra_template import Resources, of_type, ref_target

pytestmark = pytest.mark.infra


def _synth_with_reconciliation(context: dict[str, Any]) -> dict[str, Any]:
    """The app as `build_app` makes it, plus the construct wired as the stack line in the report does
    (until the stack composes it itself)."""
    app = build_app(bundle=False, stage=STAGE, context=context)
    stack = app.node.find_child(f"pssync-{STAGE}")
    assert isinstance(stack, Stack)
    functions = stack.node.find_child("Functions")
    tables = stack.node.find_child("Tables")
    queues = stack.node.find_child("Queues")
    bus = stack.node.find_child("Events")
    assert isinstance(functions, Functions) and isinstance(tables, Tables) and isinstance(queues, Queues)
    if stack.node.try_find_child("Reconciliation") is not None:  # the stack composes it (the lead's line)
        return app.synth().get_stack_by_name(f"pssync-{STAGE}").template  # type: ignore[no-any-return]
    Reconciliation(
        stack,
        "Reconciliation",
        functions=functions,
        stores=WorkflowStores(
            business_table=tables.business,
            delivery_log_table=tables.delivery_log,
            bus=bus.bus,  # type: ignore[attr-defined]
            exceptions_queue=queues.exceptions,
        ),
        dead_letter_queues={**queues.dead_letter_queues, "ExceptionsQueue": queues.exceptions},
        tolerance=parse_reconciliation_tolerance(
            stack.node.try_get_context(RECONCILIATION_TOLERANCE_CONTEXT_KEY)
        ),
    )
    assembly = app.synth()  # raises on an unacknowledged cdk-nag finding
    return assembly.get_stack_by_name(f"pssync-{STAGE}").template  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _synth_with_reconciliation({RECONCILIATION_TOLERANCE_CONTEXT_KEY: '{"EUR": "5.00"}'})


def _function(resources: Resources, folder: str) -> tuple[str, dict[str, Any]]:
    [found] = [
        (logical_id, r)
        for logical_id, r in of_type(resources, "AWS::Lambda::Function").items()
        if r.get("Metadata", {}).get("pssync:function") == folder
    ]
    return found


def _statements(resources: Resources, function: dict[str, Any]) -> list[dict[str, Any]]:
    role = ref_target(function["Properties"]["Role"])
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        if role in [ref_target(r) for r in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        found |= {actions} if isinstance(actions, str) else set(actions)
    return found


def test_the_reconciler_reads_both_tables_sends_exceptions_and_has_the_tolerance(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    logical_id, function = _function(resources, "reconcile_portfolio")
    environment = function["Properties"]["Environment"]["Variables"]
    assert environment["RECONCILIATION_TOLERANCE"] == '{"EUR": "5.00"}'
    assert {"BUSINESS_TABLE_NAME", "DELIVERY_LOG_TABLE_NAME", "EXCEPTIONS_QUEUE_URL"} <= set(environment)
    assert function["Properties"]["Timeout"] == 900
    actions = _actions(_statements(resources, function))
    assert {"dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem", "sqs:SendMessage"} <= actions
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & actions  # read-only

    [rule] = [
        r["Properties"]
        for r in of_type(resources, "AWS::Events::Rule").values()
        if any(ref_target(t["Arn"]) == logical_id for t in r["Properties"].get("Targets", []))
    ]
    assert rule["ScheduleExpression"] == "cron(0 4 * * ? *)"
    [target] = rule["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_exception_aging_peeks_every_dead_letter_store_and_never_deletes(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    logical_id, function = _function(resources, "measure_exception_aging")
    urls = function["Properties"]["Environment"]["Variables"]["EXCEPTION_QUEUE_URLS"]
    assert "ExceptionsQueue" in str(urls)
    statements = [s for s in _statements(resources, function) if "sqs:ReceiveMessage" in s["Action"]]
    assert statements and all(
        set(s["Action"]) == {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"} for s in statements
    )
    assert "sqs:DeleteMessage" not in _actions(_statements(resources, function))
    [rule] = [
        r["Properties"]
        for r in of_type(resources, "AWS::Events::Rule").values()
        if any(ref_target(t["Arn"]) == logical_id for t in r["Properties"].get("Targets", []))
    ]
    assert rule["ScheduleExpression"] == "rate(15 minutes)"


def test_cfn_lint_accepts_the_template_with_reconciliation(template: dict[str, Any], tmp_path: Path) -> None:
    assert cfn_lint_output(template, tmp_path) is None


def test_a_malformed_tolerance_in_context_fails_the_synth() -> None:
    with pytest.raises(ValueError, match=r"pssync:reconciliation_tolerance.*negative"):
        _synth_with_reconciliation({RECONCILIATION_TOLERANCE_CONTEXT_KEY: '{"EUR": "-1"}'})
    with pytest.raises(ValueError, match=r"pssync:reconciliation_tolerance"):
        parse_reconciliation_tolerance(["EUR"])
