"""`pssync close`: request a period close or a reopen, and see how a close went.

Uses the standard AWS configuration; against the local runtime set AWS_ENDPOINT_URL to the moto endpoint
`pssync local up` prints. The close state machine is found by name (`*-close-period`) unless
`--state-machine-arn` (or PSSYNC_CLOSE_STATE_MACHINE_ARN) names it.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from pssync.errors import BusinessRuleViolation

close_app = typer.Typer(
    no_args_is_help=True,
    help="Period close per legal entity: request, reopen (with a reason), status. Uses the standard AWS "
    "configuration; against the local runtime set AWS_ENDPOINT_URL to the moto endpoint.",
)
console = Console()
STATE_MACHINE_SUFFIX = "-close-period"

EntityOption = Annotated[str, typer.Option("--entity", help="Legal entity code, e.g. NL01")]
PeriodOption = Annotated[str, typer.Option("--period", help="Period YYYY-MM")]
StateMachineOption = Annotated[
    str | None,
    typer.Option(
        "--state-machine-arn",
        envvar="PSSYNC_CLOSE_STATE_MACHINE_ARN",
        help="The close state machine; found by its name (*-close-period) when omitted",
    ),
]
WaitOption = Annotated[bool, typer.Option(help="Wait for the execution to finish and print its outcome")]


def _executions(state_machine_arn: str | None) -> Any:
    import boto3

    from pssync.adapters.aws import StepFunctionsExecutions

    sfn = boto3.client("stepfunctions")
    if state_machine_arn is None:
        found = [
            m["stateMachineArn"]
            for page in sfn.get_paginator("list_state_machines").paginate()
            for m in page["stateMachines"]
            if m["name"].endswith(STATE_MACHINE_SUFFIX)
        ]
        if len(found) != 1:
            console.print(
                f"[red]cannot tell which close state machine to use (found: {', '.join(found) or 'none'}); "
                "pass --state-machine-arn[/]"
            )
            raise typer.Exit(2)
        state_machine_arn = found[0]
    return StepFunctionsExecutions(state_machine_arn, sfn)


def _caller() -> str:
    """Who asked: the STS identity (recorded with overrides and reopens), else the local user."""
    try:
        import boto3

        return str(boto3.client("sts").get_caller_identity()["Arn"])
    except Exception:  # no STS locally (moto has no STS in the runtime): the OS user is what we know
        return f"local:{getpass.getuser()}"


def _submit(
    action: Literal["close", "reopen"],
    entity: str,
    period: str,
    state_machine_arn: str | None,
    wait: bool,
    *,
    override_reason: str | None = None,
    reason: str | None = None,
) -> None:
    from pssync.workflows import period_close

    try:
        document = period_close.request_input(
            action, entity, period, _caller(), override_reason=override_reason, reason=reason
        )
        period_close.CloseRequest.model_validate(
            {**document, "close_id": "check", "requested_at": "2000-01-01T00:00:00Z"}
        )
    except (BusinessRuleViolation, ValueError) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    executions = _executions(state_machine_arn)
    decision = period_close.submit_request(document, executions.status, executions.start)
    verb = (
        "started" if decision.start else f"already {decision.status.lower() if decision.status else 'there'}"
    )
    console.print(f"{action} {entity} {period}: execution [bold]{decision.name}[/] {verb}")
    if wait:
        _print_outcome(executions, decision.name)


def _print_outcome(executions: Any, name: str) -> None:
    while (described := executions.describe(name))["status"] == "RUNNING":
        time.sleep(1)
    if described["status"] != "SUCCEEDED":
        console.print(f"[red]{described['status']}[/]: {described.get('error')}: {described.get('cause')}")
        raise typer.Exit(1)
    output = json.loads(described["output"])
    if "reopened" in output:
        console.print(f"reopened (reopen number {output['reopened']['reopen_count']})")
        return
    if output.get("gate", {}).get("outcome") == "already_closed":
        console.print("the period was locked already: nothing posted")
        return
    table = Table(
        title=f"{name}: {output['lock']['contracts']} contracts in {output['plan']['shards']} shards"
    )
    for column in ("gate: open exceptions", "overridden by", "period version", "PeriodClosed event"):
        table.add_column(column)
    override = output["gate"].get("override") or {}
    table.add_row(
        str(output["gate"]["open_exceptions"]),
        f"{override.get('requested_by')}: {override.get('reason')}" if override else "",
        str(output["lock"]["period_version"]),
        output["lock"]["event_id"],
    )
    console.print(table)


@close_app.command("request")
def close_request(
    entity: EntityOption,
    period: PeriodOption,
    override_reason: Annotated[
        str | None, typer.Option(help="Close despite open exceptions for the period; recorded with the close")
    ] = None,
    state_machine_arn: StateMachineOption = None,
    wait: WaitOption = False,
) -> None:
    """Request the close of a period; a duplicate request finds the running or finished close."""
    _submit("close", entity, period, state_machine_arn, wait, override_reason=override_reason)


@close_app.command("reopen")
def close_reopen(
    entity: EntityOption,
    period: PeriodOption,
    reason: Annotated[str, typer.Option(help="Why the locked period is reopened (recorded, required)")],
    state_machine_arn: StateMachineOption = None,
    wait: WaitOption = False,
) -> None:
    """Reopen a locked period with a reason; the next close posts only adjustments."""
    _submit("reopen", entity, period, state_machine_arn, wait, reason=reason)


@close_app.command("status")
def close_status(
    entity: EntityOption, period: PeriodOption, state_machine_arn: StateMachineOption = None
) -> None:
    """Every close and reopen execution of the period, in order."""
    from pssync.workflows import period_close

    executions = _executions(state_machine_arn)
    table = Table(title=f"{entity} {period}")
    for column in ("attempt", "action", "execution", "status"):
        table.add_column(column)
    attempt = 1
    while True:
        row = None
        for action in ("close", "reopen"):
            name = period_close.execution_name(entity, period, attempt, action)
            status = executions.status(name)
            if status is not None:
                row = (str(attempt), action, name, status)
        if row is None:
            break
        table.add_row(*row)
        attempt += 1
    console.print(table)
