"""`make demo`, the main job, end to end: its own local runtime in a subprocess, then its report checked.

The demo plays a quarter of the seed's engagement over signed webhooks (see pssync.local.demo_scenario);
this test holds it to what the report promises: every workflow succeeded, nothing unscheduled, every
queue empty, six locked closes with balanced journals, and the facts the scenario was built to show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pssync.local import demo_scenario as scenario

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("demo") / "report.json"
    # Not the session runtime's AWS_* / MOTO_* settings: the demo starts its own moto server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    completed = subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-c", "from pssync.cli import main; main()", "demo", "--report", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a performance target
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_every_workflow_succeeded_and_nothing_is_left_anywhere(report: dict[str, Any]) -> None:
    by_workflow = Counter(e["workflow"].rstrip("0123456789ABCDEF") for e in report["executions"])
    assert {e["status"] for e in report["executions"]} == {"SUCCEEDED"}
    assert by_workflow == {
        "ProvisionEngagementStateMachine": 2,
        "PropagateAmendmentStateMachine": 2,  # the change order, and its stale copy (ignored)
        "ApplyApprovedTimeStateMachine": 6,
        "ApplyApprovedExpenseStateMachine": 3,
        "AcceptMilestoneStateMachine": 6,
        "ApplyReceivablesStateMachine": 5,
        "pssync-dev-close-period": 6,
    }
    assert all(q["visible"] + q["in_flight"] == 0 for q in report["queues"])
    assert report["metrics"]["ExceptionAgeSeconds"]["count"] == 0


def test_a_retry_changes_nothing_a_forgery_is_refused_and_the_stale_copy_is_ignored(
    report: dict[str, Any],
) -> None:
    answers = {d["attempt"]: d["status"] for d in report["deliveries"]}
    assert answers["same delivery again (sender retry)"] == 202
    assert answers["forged signature"] == 401
    assert {d["status"] for d in report["deliveries"] if d["attempt"] != "forged signature"} == {202}
    versions = report["contract_versions"][scenario.EU_CONTRACT]
    assert [(v["version"], v["transaction_price"]["amount"]) for v in versions] == [
        (1, "348000.00"),
        (2, "378000.00"),  # change order 1; the stale copy of the original terms made no version 3
    ]
    assert all(v["webhook"] for v in versions)  # each version names the webhook behind it


def test_every_obligation_is_scheduled_and_milestones_recognise_their_contractual_value(
    report: dict[str, Any],
) -> None:
    eu, us = (report["revenue_schedule"][c] for c in (scenario.EU_CONTRACT, scenario.US_CONTRACT))
    assert eu["unscheduled"] == {} and us["unscheduled"] == {}
    # M1 accepted in August: its 80,000.00 (one third of the implementation), with August's T&M hours.
    assert eu["by_period"]["2026-08"] == {"IMPL": "80000.00", "ADVISORY": "2580.00"}
    # The US pilot was accepted passively (5 business days after 28 August: 4 September).
    assert us["by_period"]["2026-09"]["ROLLOUT"] == "45000.00"
    # Over its life the fixed-price part earns exactly the amended price; T&M earns on top of it.
    fixed = sum(Decimal(a) for lines in eu["by_period"].values() for o, a in lines.items() if o != "ADVISORY")
    assert fixed == Decimal("378000.00")


def test_six_closes_locked_with_balanced_journals_and_balances_per_period(report: dict[str, Any]) -> None:
    closes = {(c["legal_entity"], c["period"]): c for c in report["closes"]}
    assert set(closes) == {(e, p) for e in scenario.ENTITIES for p in scenario.CLOSE_PERIODS}
    for close in closes.values():
        assert close["locked"] and close["contracts"] == 1
        assert close["journals"] and all(j["debits"] == j["credits"] for j in close["journals"])
    balances = report["balances"][scenario.EU_CONTRACT]
    # End of September: M1 invoiced and paid, so nothing receivable; recognised beyond billing is an asset.
    september = balances["2026-09"]
    assert (september["billed_to_date"], september["collected_to_date"], september["receivable"]) == (
        "80000.00",
        "80000.00",
        "0.00",
    )
    assert Decimal(september["contract_asset"]) == Decimal(september["recognised_to_date"]) - Decimal(
        "80000.00"
    )


def test_the_business_metrics_were_emitted(report: dict[str, Any]) -> None:
    metrics = report["metrics"]
    for name, count in {
        "EngagementActivationSeconds": 2,
        "AmendmentPropagationLagSeconds": 1,
        "BillableTimeSynced": 6,
        "ApprovedExpenseSynced": 3,
        "MilestonesInvoiced": 6,
        "PeriodClosed": 6,
    }.items():
        assert metrics[name]["count"] == count, name
    # Stamped at sending: activation and propagation measure pssync, seconds, not the replayed months.
    assert 0 < metrics["EngagementActivationSeconds"]["max"] < 600
    assert 0 < metrics["AmendmentPropagationLagSeconds"]["max"] < 600
