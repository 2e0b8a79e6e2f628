"""End to end: a milestone-billed contract booked over a signed webhook, then the PSA's milestones.

The passive acceptance timer is a Step Functions Wait state; moto's interpreter runs in this process (the
session runtime's moto server is a thread here), so the test drives the runtime's wait clock. Every wait
below is a hang guard, never a timing assertion.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.local.wait_clock import WAIT_CLOCK, install_wait_clock
from pssync.workflows.milestones import MILESTONE_LEDGER
from pssync.workflows.provision import REVENUE_SCHEDULE
from tests.e2e.conftest import PSA_SOURCE, Driver

pytestmark = pytest.mark.e2e

HANG_GUARD_SECONDS = 180
IMPL_ALLOCATED = Decimal("273103.45")


@pytest.fixture(scope="module", autouse=True)
def wait_clock(driver: Driver) -> Iterator[None]:
    """Idempotent: a no-op once the runtime installs the clock itself."""
    install_wait_clock()
    yield
    WAIT_CLOCK.reset()


def _stores(driver: Driver) -> tuple[DynamoDBVersionStore, DynamoDBDeliveryLog]:
    ddb = driver.runtime.clients["dynamodb"]
    return (
        DynamoDBVersionStore(driver.runtime.function_env("BUSINESS_TABLE_NAME"), ddb),
        DynamoDBDeliveryLog(driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb),
    )


def _milestone(contract_id: str, milestone_id: str, completed_on: date, **data: Any) -> bytes:
    document = {
        "milestone_id": milestone_id,
        "project_id": f"P-{contract_id}",
        "completed_on": completed_on.isoformat(),
        **data,
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"type": "milestone.completed", "timestamp": now, "data": document}).encode()


def _post(driver: Driver, body: bytes, delivery_id: str) -> str:
    response = driver.post(body, delivery_id, source=PSA_SOURCE)
    assert response.status_code == 202, response.text
    return str(response.json()["event_id"])


def _execution(driver: Driver, event_id: str, *, until: set[str]) -> dict[str, Any]:
    """The event's one execution once its status is in `until`."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        found = driver.executions_for(event_id)
        if found and found[0]["status"] in until:
            [execution] = found
            return execution
        time.sleep(0.1)
    raise TimeoutError(f"no execution for {event_id} reached {until}")


def _output(driver: Driver, execution: dict[str, Any]) -> dict[str, Any]:
    sfn = driver.runtime.clients["stepfunctions"]
    return json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])  # type: ignore[no-any-return]


def _timer_of(driver: Driver, event_id: str) -> datetime:
    """The instant the event's execution waits for, once it has entered the Wait state."""
    sfn = driver.runtime.clients["stepfunctions"]
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        for execution in driver.executions_for(event_id):
            for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]:
                details = event.get("stateEnteredEventDetails", {})
                if details.get("name") == "WaitForAcceptance":
                    fires_at = json.loads(details["input"])["milestone"]["timer_fires_at"]
                    return datetime.strptime(fires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        time.sleep(0.1)
    raise TimeoutError(f"the execution of {event_id} never started waiting")


def _releases(driver: Driver, contract_id: str) -> list[str]:
    _, log = _stores(driver)
    return sorted(
        c.payload["milestone_id"]
        for c in log.all_commands()
        if c.operation == "release_milestone_invoice" and c.payload["contract_id"] == contract_id
    )


def _impl(driver: Driver, contract_id: str) -> tuple[list[str], Decimal]:
    """IMPL's scheduled periods and its unscheduled amount in the current revenue schedule."""
    store, _ = _stores(driver)
    head = store.head(REVENUE_SCHEDULE, contract_id)
    assert head is not None
    schedule = head.body["schedule"]
    periods = [ln["period"] for ln in schedule["lines"] if ln["obligation_id"] == "IMPL"]
    unscheduled = schedule["unscheduled"].get("IMPL")
    return periods, Decimal(unscheduled["amount"]) if unscheduled else Decimal(0)


def test_explicit_acceptance_releases_the_invoice_once_and_schedules_the_milestones_revenue(
    driver: Driver,
) -> None:
    contract_id = "E2E-MS-EXPLICIT"
    assert driver.post(driver.body_for(contract_id), "msg_e2e_ms_explicit_book").status_code == 202
    driver.runtime.wait_until_idle()
    assert _impl(driver, contract_id) == ([], IMPL_ALLOCATED)  # allocated, never scheduled

    accepted = _milestone(
        contract_id, "M1-DISCOVERY", date(2027, 2, 10), acceptance="explicit", accepted_on="2027-02-15"
    )
    event_id = _post(driver, accepted, "msg_e2e_ms_M1_accepted")
    execution = _execution(driver, event_id, until={"SUCCEEDED", "FAILED"})
    assert execution["status"] == "SUCCEEDED"
    output = _output(driver, execution)
    assert (output["milestone"]["acceptance"], output["release"]["sent"]) == ("explicit", True)
    assert _releases(driver, contract_id) == ["M1-DISCOVERY"]
    periods, unscheduled = _impl(driver, contract_id)
    assert periods == ["2027-02"] and Decimal(0) < unscheduled < IMPL_ALLOCATED

    # The same delivery again (the PSA retries): deduplicated at the webhook; nothing changes.
    driver.runtime.wait_until_idle()
    before = driver.snapshot()
    assert _post(driver, accepted, "msg_e2e_ms_M1_accepted") == event_id
    driver.runtime.wait_until_idle()
    assert driver.snapshot() == before
    # The same acceptance under a new delivery id: a new execution that releases nothing again.
    again = _post(driver, accepted, "msg_e2e_ms_M1_accepted_again")
    repeat = _execution(driver, again, until={"SUCCEEDED", "FAILED"})
    assert (
        repeat["status"] == "SUCCEEDED"
        and _output(driver, repeat)["milestone"]["outcome"] == "accepted_before"
    )
    assert _releases(driver, contract_id) == ["M1-DISCOVERY"]
    assert _impl(driver, contract_id) == (periods, unscheduled)


def test_the_passive_acceptance_timer_fires_and_a_rejection_before_it_cancels_it(driver: Driver) -> None:
    contract_id = "E2E-MS-TIMER"
    assert driver.post(driver.body_for(contract_id), "msg_e2e_ms_timer_book").status_code == 202
    driver.runtime.wait_until_idle()
    today = datetime.now(UTC).date()  # completed today: 10 business days to object, in the future
    try:
        passive = _post(driver, _milestone(contract_id, "M2-DESIGN", today), "msg_e2e_ms_M2_done")
        cancelled = _post(driver, _milestone(contract_id, "M3-GOLIVE", today), "msg_e2e_ms_M3_done")
        fires_at = max(_timer_of(driver, passive), _timer_of(driver, cancelled))
        assert fires_at > WAIT_CLOCK.now()  # both executions are waiting: the timers are running

        rejection = _milestone(contract_id, "M3-GOLIVE", today, acceptance="rejected", reason="defects")
        rejected = _execution(driver, _post(driver, rejection, "msg_e2e_ms_M3_rejected"), until={"SUCCEEDED"})
        assert _output(driver, rejected)["milestone"]["outcome"] == "rejected"
        assert _releases(driver, contract_id) == []  # nothing released while the timers wait

        WAIT_CLOCK.advance_to(fires_at + timedelta(seconds=1))  # the objection period ends
        driver.runtime.wait_until_idle()
    finally:  # whatever failed above, leave no timer running for the session's other tests
        WAIT_CLOCK.advance(timedelta(days=400))
        driver.runtime.wait_until_idle()

    fired = _output(driver, _execution(driver, passive, until={"SUCCEEDED"}))
    assert (fired["milestone"]["outcome"], fired["milestone"]["acceptance"]) == ("accepted", "passive")
    assert fired["invoiced"]["acceptance"] == "passive"
    stood_down = _output(driver, _execution(driver, cancelled, until={"SUCCEEDED"}))
    assert stood_down["milestone"]["outcome"] == "cancelled" and "release" not in stood_down
    assert _releases(driver, contract_id) == ["M2-DESIGN"]
    store, _ = _stores(driver)
    kinds = [(v.body["milestone_id"], v.body["kind"]) for v in store.history(MILESTONE_LEDGER, contract_id)]
    assert sorted(kinds) == sorted(
        [
            ("M2-DESIGN", "completed"),
            ("M3-GOLIVE", "completed"),
            ("M3-GOLIVE", "rejected"),
            ("M2-DESIGN", "accepted"),
            ("M2-DESIGN", "released"),
        ]
    )
    periods, unscheduled = _impl(driver, contract_id)
    assert len(periods) == 1 and Decimal(0) < unscheduled < IMPL_ALLOCATED
