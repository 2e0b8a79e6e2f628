"""The CI size of every implemented scorecard row (issue 12), on a local runtime of its own.

The scorecard needs a stack with every webhook scheme configured, i.e. a LocalRuntime of its own: moto's
backends are process-global, so it runs in a subprocess (`python -m scorecard --quick`, all rows on one
runtime) and the tests assert on the scorecard.json it writes. Fixed seed, small N; the full N is
`make scorecard`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEED = 12
IMPLEMENTED = ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8")


@pytest.fixture(scope="module")
def scorecard(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("scorecard")
    # Not the session runtime's AWS_* / MOTO_* settings: the subprocess starts its own moto server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "scorecard",
            "--quick",
            "--quiet",
            "--seed",
            str(SEED),
            "--out",
            str(workdir / "reports"),
            "--workdir",
            str(workdir / "run"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a hang guard only: other sessions load this 2-core machine at times (900 s was hit)
        check=False,
    )
    rows = json.loads((workdir / "reports" / "scorecard.json").read_text())
    return {
        "returncode": completed.returncode,
        "stderr": completed.stderr[-4000:],
        "rows": {row["id"]: row for row in rows},
        "markdown": (workdir / "reports" / "scorecard.md").read_text(),
        "secrets": json.loads((workdir / "run" / "secrets.json").read_text()),
        # R6: one line per fault that fired, written from inside the container that reached its point
        "r6_fired": [
            json.loads(line) for line in (workdir / "run" / "r6-faults-fired.jsonl").read_text().splitlines()
        ],
    }


def _row(scorecard: dict[str, Any], row_id: str) -> dict[str, Any]:
    row: dict[str, Any] = scorecard["rows"][row_id]
    assert row["status"] == "passed", json.dumps(row, indent=1)[:6000]
    assert row["seed"] in (SEED, None) and row["wall_s"] > 0
    return row


def test_every_implemented_row_passes_and_the_run_exits_0(scorecard: dict[str, Any]) -> None:
    failed = {k: r["failures"] for k, r in scorecard["rows"].items() if r["status"] == "failed"}
    assert not failed, failed
    assert scorecard["returncode"] == 0, scorecard["stderr"]


def test_r4_every_forged_request_is_4xx_with_nothing_written(scorecard: dict[str, Any]) -> None:
    row = _row(scorecard, "R4")
    counts = row["counts"]
    assert row["n"] == counts["requests"] >= 150
    assert counts["answered_4xx"] == row["n"] and counts["answered_5xx"] == 0 and counts["writes"] == 0
    assert counts["lambda_errors"] == 0
    # not vacuous: the unmutated requests are accepted, and every scheme and kind of mutation was tried
    accepted, total = counts["controls_accepted"].split("/")
    assert accepted == total == "10"
    assert set(counts["by_source"]) == {"crm", "erp", "hubspot", "jira", "dataverse", "salesforce"}
    assert len(counts["by_mutation"]) == 25


def test_r1_no_duplicate_is_applied_twice(scorecard: dict[str, Any]) -> None:
    counts = _row(scorecard, "R1")["counts"]
    assert counts["applied_once"] == counts["events"] >= 30
    assert counts["applied_twice"] == counts["not_applied"] == counts["dead_lettered"] == 0
    assert counts["deliveries"] >= 3 * counts["events"] and 0 < counts["concurrent_events"] < counts["events"]


def test_r5_out_of_order_amendments_converge_on_the_newest(scorecard: dict[str, Any]) -> None:
    counts = _row(scorecard, "R5")["counts"]
    assert counts["head_is_newest"] == counts["revenue_at_head_version"] == counts["entities"] >= 10
    assert counts["versions_stored_twice"] == counts["stored_out_of_order"] == 0
    assert counts["exceptions"] == counts["dead_lettered"] == 0
    assert set(counts["workflows"]) == {"SUCCEEDED"}
    assert counts["deliveries"] > counts["entities"] * counts["versions_per_entity"]  # duplicates were sent


def test_r8_static_checks_and_no_secret_anywhere(scorecard: dict[str, Any]) -> None:
    counts = _row(scorecard, "R8")["counts"]
    assert counts["cdk_nag_unacknowledged"] == counts["iam_findings"] == 0
    assert counts["secrets_in_environment"] == counts["secrets_in_log"] == 0
    assert counts["secrets_searched"] >= 15 and counts["log_lines_scanned"] > 0


def test_r6_a_handler_killed_past_its_timeout_leaves_nothing_stuck_and_is_applied_once(
    scorecard: dict[str, Any],
) -> None:
    counts = _row(scorecard, "R6")["counts"]
    assert counts["events"] >= 6
    # every event's first delivery was really killed, at each of the six points
    assert counts["faults_injected"] == counts["killed_at_fault_point"] == counts["events"]
    assert counts["faults_sent"] == counts["events"] + counts["armed_answered_before_fault"]
    assert counts["handlers_killed"] == (
        counts["killed_at_fault_point"]
        + counts["killed_armed_before_fault_point"]
        + counts["killed_without_fault"]
    )
    # each kill is the invocation that reported its fault firing (by request id), one per event
    fired = scorecard["r6_fired"]
    assert len(fired) == counts["events"]
    assert len({r["key"] for r in fired}) == len({r["request_id"] for r in fired}) == len(fired)
    assert all(r["label"].startswith("R6 hang ") for r in fired)
    assert counts["answered_502"] >= counts["events"]
    assert set(counts["by_phase"]) and all(p["events"] >= 1 for p in counts["by_phase"].values())
    assert all(p["applied_once"] == p["events"] for p in counts["by_phase"].values())
    # the in-progress record of a killed handler expired with it: retries saw 409, then it was applied once.
    # Not asserted per phase: at the CI size a phase has one event, and whether its retry lands inside the
    # 8 s between the record's write and its expiry depends on the machine's load (it missed at load 30).
    assert counts["answered_409_while_held"] > 0
    assert counts["applied_once"] == counts["completed_records"] == counts["events"]
    assert counts["applied_twice"] == counts["not_applied"] == counts["inprogress_records_left"] == 0
    assert counts["dead_lettered"] == 0


def test_r7_fuzzing_finds_no_server_error_and_the_state_machine_no_violation(
    scorecard: dict[str, Any],
) -> None:
    row = _row(scorecard, "R7")
    counts = row["counts"]
    assert counts["api_requests"] == row["n"] >= 100
    assert counts["api_server_errors"] == counts["api_failed_checks"] == counts["api_no_answer"] == 0
    assert set(counts["by_mode"]) == {"positive", "negative"}
    assert all(400 <= int(status) < 500 for status in counts["statuses"])
    # the stateful test exercised every kind of step
    assert counts["invariant_violations"] == counts["stateful_errors"] == 0
    assert counts["stateful_runs"] >= 10
    rules = counts["by_rule"]
    for rule in ("book", "amend", "deliver", "duplicate", "expire", "process", "crash", "replay"):
        assert rules.get(rule, 0) > 0, rules
    assert rules.get("deliver reordered", 0) > 0


def test_r2_injected_faults_lose_nothing_and_apply_nothing_twice(scorecard: dict[str, Any]) -> None:
    row = _row(scorecard, "R2")
    counts = row["counts"]
    assert counts["events"] == row["n"] == counts["bookings"] + counts["time_entries"] >= 16
    assert counts["bookings"] > 0 and counts["time_entries"] > 0
    # not vacuous: every fault handed to a container fired, some were retried away, some parked the event
    # (a time entry whose booking was parked never reaches its own fault: it is parked too)
    assert counts["faults_fired"] == counts["faults_injected"] >= 3 and counts["events_with_fault"] >= 4
    assert counts["faults_injected"] + counts["faults_not_reached"] >= counts["events_with_fault"]
    assert counts["parked_with_cause"] > 0 and counts["applied_once"] > 0
    assert counts["applied_once"] + counts["parked_with_cause"] == counts["events"]
    assert counts["applied_twice"] == counts["lost"] == 0
    assert counts["dead_letter_messages"] >= counts["parked_with_cause"]
    assert (
        sum(sum(outcomes.values()) for outcomes in counts["by_fault"].values()) == counts["events_with_fault"]
    )


def test_r3_replaying_every_store_applies_every_event_once_and_empties_the_stores(
    scorecard: dict[str, Any],
) -> None:
    r2 = _row(scorecard, "R2")["counts"]
    row = _row(scorecard, "R3")
    counts = row["counts"]
    assert row["n"] == counts["events"] == r2["events"]
    assert counts["replayed"] >= r2["parked_with_cause"] > 0
    assert counts["applied_once"] == counts["events"] and counts["applied_pct"] == 100.0
    assert counts["applied_twice"] == counts["not_applied"] == counts["replay_errors"] == 0
    assert counts["messages_left_in_stores"] == 0


def test_every_row_is_implemented(scorecard: dict[str, Any]) -> None:
    assert set(scorecard["rows"]) == set(IMPLEMENTED)
    assert all(row["status"] != "not implemented" for row in scorecard["rows"].values())
    assert "| *not implemented* |" not in scorecard["markdown"]


def test_the_report_quotes_no_secret(scorecard: dict[str, Any]) -> None:
    text = scorecard["markdown"] + json.dumps(scorecard["rows"])
    for entry in scorecard["secrets"].values():
        for value in entry.values():
            assert value not in text
