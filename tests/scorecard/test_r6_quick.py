"""R6 alone at its CI size, on a local runtime of its own (`python -m scorecard --quick --only R6`).

The all-rows run (test_scorecard_quick.py) checks R6 too, but only after every other row; this one checks
what R6's 2026-11-30 fix is about in about a minute and a half: every event's kill is attributed to the
invocation that reached its fault point (reported from inside the container), not inferred from counts.
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


@pytest.fixture(scope="module")
def r6(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("r6")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}  # its own moto server
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "scorecard",
            "--quick",
            "--quiet",
            "--only",
            "R6",
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
        timeout=1200,  # a hang guard only: the machine is shared
        check=False,
    )
    [row] = json.loads((workdir / "reports" / "scorecard.json").read_text())
    row["fired"] = (workdir / "run" / "r6-faults-fired.jsonl").read_text().splitlines()
    return dict(row)


def test_r6_passes_with_every_event_killed_once_at_its_fault_point(r6: dict[str, Any]) -> None:
    counts = r6["counts"]
    assert r6["status"] == "passed", r6["failures"]
    assert counts["events"] == 6 and set(counts["by_phase"]) and len(counts["by_phase"]) == 6
    assert counts["faults_injected"] == counts["killed_at_fault_point"] == counts["events"]
    assert counts["faults_sent"] == counts["events"] + counts["armed_answered_before_fault"]
    assert counts["handlers_killed"] == (
        counts["killed_at_fault_point"]
        + counts["killed_armed_before_fault_point"]
        + counts["killed_without_fault"]
    )
    assert counts["answered_502"] >= counts["events"]
    assert counts["applied_once"] == counts["completed_records"] == counts["events"]
    assert counts["applied_twice"] == counts["not_applied"] == counts["inprogress_records_left"] == 0
    assert counts["dead_lettered"] == 0


def test_r6_each_fault_report_names_one_event_and_one_invocation(r6: dict[str, Any]) -> None:
    reports = [json.loads(line) for line in r6["fired"]]
    assert len(reports) == r6["counts"]["events"]
    assert len({r["key"] for r in reports}) == len({r["request_id"] for r in reports}) == len(reports)
    assert all(r["label"].startswith("R6 hang ") for r in reports)
