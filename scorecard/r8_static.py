"""R8 static: cdk-nag clean, no wildcard IAM actions, no secret of the run in any environment or log.

- cdk-nag: the app synthesized with the scorecard's context (every webhook scheme) through the infra tests'
  `synthesize` (AwsSolutions checks run during synth; an unacknowledged finding fails it);
- IAM: every statement of every identity policy in that template: no action `*` or `service:*`, no action
  with a wildcard on a data service (DynamoDB, S3, SQS, EventBridge, Step Functions, Secrets Manager, KMS,
  SNS, Lambda), and `Resource: "*"` only with actions that have no resource-level permissions;
- secrets: every secret value this run used (signing secrets and keys, current and previous, CRM API
  tokens; also the base64 body of each `whsec_` secret) is searched for in every environment variable of
  the template and of the running functions, and in the run's Lambda log (all handler output of every row
  that ran before this one).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pssync.local.template import project_context
from scorecard.context import SCORECARD_CONTEXT, secret_values
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress
from scorecard.senders import ROOT

ID = "R8"
NAME = "static: cdk-nag, IAM, secrets"
FULL_N = QUICK_N = 0  # not a sample: every statement, variable and secret
DATA_SERVICES = ("dynamodb", "s3", "sqs", "events", "states", "secretsmanager", "kms", "sns", "lambda")
# Actions without resource-level permissions: Resource "*" is the only form they take (each an IAM5
# acknowledgment in infra/).
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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every identity policy: AWS::IAM::Policy, managed policies, inline."""
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(properties.get("PolicyDocument", {}))
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p.get("PolicyDocument", {}) for p in properties.get("Policies", [])]
        for document in documents:
            found += [(logical_id, statement) for statement in _as_list(document.get("Statement", []))]
    return found


def iam_findings(template: dict[str, Any]) -> tuple[int, list[str]]:
    statements = policy_statements(template)
    findings = []
    for logical_id, statement in statements:
        if statement.get("Effect", "Allow") != "Allow":
            continue
        actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            service = action.split(":", 1)[0].lower()
            if action == "*" or action.endswith(":*"):
                findings.append(f"{logical_id}: wildcard action {action}")
            elif "*" in action and service in DATA_SERVICES:
                findings.append(f"{logical_id}: wildcard action {action} on a data service")
        if "*" in _as_list(statement.get("Resource", [])):
            extra = sorted(set(actions) - SERVICE_WIDE_ACTIONS)
            if extra:
                findings.append(f"{logical_id}: Resource '*' for {extra}")
    return len(statements), findings


def template_environment(template: dict[str, Any]) -> dict[str, str]:
    """`function:variable` -> the value as text (intrinsics serialised, so a secret inside one is seen)."""
    found = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            found[f"{logical_id}:{name}"] = value if isinstance(value, str) else json.dumps(value)
    return found


def needles(stack_secrets: dict[str, dict[str, str]]) -> list[str]:
    values = secret_values(stack_secrets)
    return sorted(set(values) | {v.removeprefix("whsec_") for v in values if v.startswith("whsec_")})


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    started = time.monotonic()
    task = progress.task(f"{ID} {NAME}", total=3)
    from tests.infra.conftest import synthesize  # the infra tests' synth: cdk-nag runs inside it

    synthesis = synthesize(project_context(ROOT, SCORECARD_CONTEXT))
    progress.advance(task)
    failures: list[str] = []
    if synthesis.error is not None:
        failures.append(f"cdk-nag / synth: {synthesis.error[:1500]}")
    template = synthesis.template or {}
    statements, iam = iam_findings(template)
    failures += iam
    progress.advance(task)

    secrets = needles(stack.secrets)
    environments = template_environment(template)
    for function in stack.runtime.host.functions.values():
        for name, value in stack.runtime.host.worker_environment(function).items():
            environments[f"{function.name} (running):{name}"] = value
    in_environment = [
        f"a secret of source {_owner(stack.secrets, needle)} in {where}"
        for where, value in environments.items()
        for needle in secrets
        if needle in value
    ]
    log: Path = stack.lambda_log
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    in_log = [
        f"a secret of source {_owner(stack.secrets, needle)} in {log.name} ({text.count(needle)} times)"
        for needle in secrets
        if needle in text
    ]
    failures += in_environment + in_log
    progress.advance(task)

    result = RowResult(
        id=ID,
        name=NAME,
        seed=None,
        n=len(secrets),
        wall_s=round(time.monotonic() - started, 1),
        passed=False,
        expectation=(
            "cdk-nag 0 unacknowledged, 0 wildcard IAM actions on data resources, 0 secrets in environment "
            "variables or in the run's Lambda log"
        ),
    )
    result.counts = {
        "cdk_nag_unacknowledged": 0 if synthesis.error is None else "synth failed",
        "iam_statements_scanned": statements,
        "iam_findings": len(iam),
        "secrets_searched": len(secrets),
        "environment_variables_scanned": len(environments),
        "secrets_in_environment": len(in_environment),
        "log_lines_scanned": text.count("\n"),
        "secrets_in_log": len(in_log),
    }
    result.notes = [f"Lambda log of this run: {log}"]
    result.failures = failures[:30]
    result.passed = not failures and statements > 0 and text.count("\n") > 0
    return result


def _owner(stack_secrets: dict[str, dict[str, str]], needle: str) -> str:
    for source, entry in stack_secrets.items():
        if any(needle in value for value in entry.values()):
            return source
    return "?"
