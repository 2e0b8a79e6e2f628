"""Event Relay (partner bus -> buffer -> relay Lambda -> bus -> workflow) and the Kantata poller (schedule ->
poller -> Kantata API -> bus) on the local runtime.

They need the stack synthesized with an Event Relay and a Kantata source, i.e. a LocalRuntime of its own:
moto's backends are process-global, so it runs in a subprocess (relay_and_poller_scenario.py) and the
tests assert on the JSON document it prints. (Named apart from tests/integration/test_relay_and_poller.py:
the test folders are not packages, so basenames must differ.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.full_context import FULL_CONTEXT

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "tests.e2e.relay_and_poller_scenario"
CLOSED_WON_EVENT_UUID = "9a7e1c2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("relay-and-poller")
    # Not the session runtime's AWS_* / MOTO_* settings: the subprocess starts its own moto server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env["PSSYNC_LOCAL_SECRETS_FILE"] = str(workdir / "secrets.json")
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", SCENARIO, str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard only: the scenario takes ~1 min, longer on a loaded machine
        check=False,
    )
    assert completed.returncode == 0, f"scenario failed:\n{completed.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["secrets_file"] = json.loads((workdir / "secrets.json").read_text())
    return result


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail_type"] for e in events]


def _unmatched_time(scenario: dict[str, Any]) -> int:
    """Polled Kantata time names workspaces no booked contract plans: each is an `unknown_project`
    exception of apply-approved-time (for review), and nothing else may fail."""
    return sum(1 for e in scenario["published"] if e["detail_type"] == "TimeApproved")


def _no_work_stuck(queues: dict[str, int], exceptions: int) -> None:
    assert queues, queues
    for name, depth in queues.items():
        assert depth == (exceptions if "ExceptionsQueue" in name else 0), queues  # no DLQ holds anything


def test_the_scenario_runs_cleanly(scenario: dict[str, Any]) -> None:
    failed = scenario["failed_invocations"]
    assert all("MatchTimeEntry" in f["function"] for f in failed), failed
    assert {f["error_type"] for f in failed} == {"BusinessRuleViolation"}
    assert len(failed) == _unmatched_time(scenario) > 0
    schedules = scenario["schedules"]
    # The poller's schedule once, beside the stack's own (daily reconciliation, exception aging).
    assert sum(rule.startswith("KantataPollerSchedule") for rule in schedules) == 1, schedules
    stacks_own = sorted(rule for rule in schedules if not rule.startswith("KantataPollerSchedule"))
    expected = ("ReconciliationDailyReconciliation", "ReconciliationExceptionAgingEvery15Minutes")
    assert len(stacks_own) == 2, schedules
    assert all(rule.startswith(prefix) for rule, prefix in zip(stacks_own, expected, strict=True)), schedules
    _no_work_stuck(scenario["relay"]["queues"], 0)
    _no_work_stuck(scenario["kantata"]["queues"], _unmatched_time(scenario))


def test_a_relayed_closed_won_platform_event_activates_the_engagement(scenario: dict[str, Any]) -> None:
    relay = scenario["relay"]
    assert relay["put"] == [{"failed": 0}] * 3
    booked, activated = relay["booked"]
    assert (booked["detail_type"], booked["source"]) == ("ContractBooked", "pssync.ingest")
    assert (booked["source_name"], booked["source_event_id"]) == ("sf-relay", CLOSED_WON_EVENT_UUID)
    assert booked["data"]["contract"]["contract_id"] == "C-2026-0412"
    # The platform event is thin: the terms were read from the opportunity with the relay's CRM token.
    token = scenario["secrets_file"]["sf-relay"]["access_token"]
    assert relay["crm_calls"][0] == {
        "path": "/services/data/v62.0/sobjects/Opportunity/0065g00000XyZ01AAB",
        "authorization": f"Bearer {token}",
    }
    assert relay["executions"] == [{"name": f"ContractBooked-{booked['event_id']}", "status": "SUCCEEDED"}]
    assert relay["contract_versions"] == [{"version": 1, "caused_by_event_id": booked["event_id"]}]
    assert activated["detail_type"] == "EngagementActivated"
    assert activated["data"]["contract_id"] == "C-2026-0412"


def test_a_redelivered_relay_event_books_nothing_new(scenario: dict[str, Any]) -> None:
    relay = scenario["relay"]
    assert relay["after_redelivery"] == []
    assert len(relay["executions"]) == 1 and len(relay["contract_versions"]) == 1


def test_our_own_cdc_write_coming_back_produces_nothing(scenario: dict[str, Any]) -> None:
    own_write = scenario["relay"]["own_write"]
    assert own_write["invocations"] == [{"errored": False, "error_type": None}]  # read, and dropped
    assert own_write["published"] == []
    assert own_write["new_executions"] == 0


def test_a_scheduled_kantata_poll_publishes_time_approved_and_moves_the_cursor(
    scenario: dict[str, Any],
) -> None:
    first, _ = scenario["kantata"]["polls"]
    [polled] = first["result"]["polled"]
    assert (polled["source"], polled["read"], polled["published"], polled["duplicates"]) == ("psa", 2, 2, 0)
    assert _types(first["published"]) == ["TimeApproved", "TimeApproved"]
    assert [(e["source_event_id"], e["data"]["approved"]) for e in first["published"]] == [
        ("5001", True),
        ("5002", True),
    ]
    assert {e["data"]["project_id"] for e in first["published"]} == {"P-C-2026-0412"}
    assert first["published"][0]["data"]["hours"] == "1.5"
    assert first["published"][0]["data"]["rate"] == {"amount": "150.00", "currency": "EUR"}
    assert (first["cursor"], first["cursor_version"]) == ("2026-11-20T10:16:02+00:00", 1)
    call = scenario["kantata"]["api_calls"][0]
    assert call["authorization"] == f"Bearer {scenario['secrets_file']['psa']['access_token']}"
    assert call["event_types"] == "time_entry:created,time_entry:updated,time_entry:deleted"


def test_an_overlapping_second_poll_publishes_no_duplicates(scenario: dict[str, Any]) -> None:
    _, second = scenario["kantata"]["polls"]
    [polled] = second["result"]["polled"]
    assert (polled["read"], polled["published"], polled["duplicates"]) == (2, 1, 1)
    # 5002 was in both pages: only the deletion of 9001 (5003) is new.
    assert [(e["source_event_id"], e["data"]["approved"]) for e in second["published"]] == [("5003", False)]
    assert (second["cursor"], second["cursor_version"]) == ("2026-11-20T11:00:03+00:00", 2)
    # The second read starts the overlap window (10 minutes by default) before the cursor.
    assert "overlap_minutes" not in FULL_CONTEXT["pssync:kantata"]
    assert scenario["kantata"]["api_calls"][1]["created_after"] == "2026-11-20T10:06:02Z"
    time_approved = [e for e in scenario["published"] if e["detail_type"] == "TimeApproved"]
    assert len(time_approved) == len({e["event_id"] for e in time_approved}) == 3


def test_a_hubspot_closed_won_batch_is_answered_at_once_then_booked_and_activated(
    scenario: dict[str, Any],
) -> None:
    hubspot = scenario["hubspot"]
    assert hubspot["status"] == 202
    assert [e["event_type"] for e in hubspot["answered"]["events"]] == ["ClosedWonSignalled"] * 2
    published = hubspot["published"]
    signals = [e for e in published if e["detail_type"] == "ClosedWonSignalled"]
    booked = [e for e in published if e["detail_type"] == "ContractBooked"]
    activated = [e for e in published if e["detail_type"] == "EngagementActivated"]
    # The own write in the batch (sourceId = our app) and the amount change are not signalled.
    assert sorted(e["source_event_id"] for e in signals) == sorted(e["source_event_id"] for e in booked)
    assert sorted(e["data"]["contract"]["contract_id"] for e in booked) == ["C-2026-0912", "C-2026-0913"]
    assert len(signals) == len(activated) == 2
    assert sorted(e["status"] for e in hubspot["executions"]) == ["SUCCEEDED", "SUCCEEDED"]
    assert sorted(c["path"].rpartition("/")[2] for c in hubspot["crm_calls"]) == [
        "18472934001",
        "18472934002",
    ]
    assert {c["authorization"] for c in hubspot["crm_calls"]} == {f"Bearer {hubspot['crm_token']}"}
    _no_work_stuck(hubspot["queues"], _unmatched_time(scenario))
