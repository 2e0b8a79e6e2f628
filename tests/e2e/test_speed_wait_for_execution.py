"""LocalRuntime.wait_for_execution: woken by the interpreter when the workflow ends, with the API's status."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e

HANG_GUARD_S = 600  # the workflow's end is awaited up to this long; never a measurement


def _provision_execution_arn(driver: Driver, event_id: str) -> str:
    [machine] = [
        arn for logical, arn in driver.runtime.resources.state_machines.items() if "Provision" in logical
    ]
    return machine.replace(":stateMachine:", ":execution:") + f":ContractBooked-{event_id}"


def test_speed_wait_for_execution_returns_the_end_status_of_a_booking_s_workflow(driver: Driver) -> None:
    response = driver.post(driver.body_for("E2E-SPEED-WAIT"), "msg_e2e_speed_wait")
    assert response.status_code == 202
    arn = _provision_execution_arn(driver, response.json()["event_id"])

    status = driver.runtime.wait_for_execution(arn, timeout=HANG_GUARD_S)

    described = driver.runtime.clients["stepfunctions"].describe_execution(executionArn=arn)
    assert status == described["status"] == "SUCCEEDED"
    assert driver.runtime.execution_ends.has_ended(arn)  # the interpreter's signal, not a poll, woke it


def test_speed_wait_for_an_execution_that_never_starts_gives_none(driver: Driver) -> None:
    arn = _provision_execution_arn(driver, "no-such-event")

    assert driver.runtime.wait_for_execution(arn, timeout=0) is None
    assert not driver.runtime.execution_ends.has_ended(arn)
