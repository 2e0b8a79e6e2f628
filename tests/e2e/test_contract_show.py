"""End to end: `pssync contract show` against the session's local runtime, as an operator runs it (its own
process, AWS_ENDPOINT_URL pointing at the moto endpoint, tables found by name)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pssync.model import examples
from tests.e2e.conftest import ROOT, Driver

pytestmark = pytest.mark.e2e

CONTRACT_ID = "E2E-SHOW"
PROJECT_ID = f"P-{CONTRACT_ID}"
PSSYNC = Path(sys.executable).parent / "pssync"  # the console script of this environment
HANG_GUARD_SECONDS = 300  # a stuck process fails the test instead of the session; not a timing assertion


def _amendment() -> bytes:
    document = copy.deepcopy(examples.contract_amended_webhook())
    contract = document["data"]["contract"]  # type: ignore[index]
    contract["contract_id"] = CONTRACT_ID
    contract["project"]["project_id"] = PROJECT_ID
    return json.dumps(document).encode()


def test_show_lists_both_versions_and_the_psa_and_erp_commands(driver: Driver) -> None:
    booked = driver.post(driver.body_for(CONTRACT_ID), "msg_e2e_show_book")
    assert booked.status_code == 202, booked.text
    driver.runtime.wait_until_idle()
    amended = driver.post(_amendment(), "msg_e2e_show_co1")
    assert amended.status_code == 202, amended.text
    driver.runtime.wait_until_idle()

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": driver.runtime.moto_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
    }
    for name in ("PSSYNC_BUSINESS_TABLE", "PSSYNC_DELIVERY_LOG_TABLE"):
        env.pop(name, None)  # found by name, as on a deployed stack
    run = subprocess.run(  # noqa: S603 - our own console script, fixed argv
        [str(PSSYNC), "contract", "show", CONTRACT_ID, "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    view = json.loads(run.stdout)

    assert [(v["version"], v["caused_by_event_id"]) for v in view["versions"]] == [
        (1, booked.json()["event_id"]),
        (2, amended.json()["event_id"]),
    ]
    assert view["versions"][1]["changes"]["added_obligations"] == ["ADVISORY"]
    commands = sorted((c["target"], c["operation"], c["idempotency_key"]) for c in view["deliveries"])
    assert commands == [
        ("erp", "upsert_billing_schedule", f"billing-schedule:{CONTRACT_ID}:v1"),
        ("erp", "upsert_billing_schedule", f"billing-schedule:{CONTRACT_ID}:v2"),
        ("psa", "upsert_project", f"project:{PROJECT_ID}:contract-v1"),
        ("psa", "upsert_project", f"project:{PROJECT_ID}:contract-v2"),
    ]
    assert view["revenue_schedule"][-1]["contract_version"] == 2
