"""End to end on the local runtime: a contract booked and amended over signed webhooks, then the
reconciliation function run for it and the exception-aging schedule fired as EventBridge would, and
`pssync reconcile` read against the moto endpoint. Skipped while the stack does not compose the
Reconciliation construct."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from pssync.cli.reconcile import reconcile_app
from pssync.model import examples
from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e

CONTRACT_ID = "E2E-RECON"
RECONCILE_RULE = "ReconciliationDailyReconciliation"
AGING_RULE = "ReconciliationExceptionAgingEvery15Minutes"


def _amendment() -> bytes:
    document = copy.deepcopy(examples.contract_amended_webhook())
    contract = document["data"]["contract"]  # type: ignore[index]
    contract["contract_id"] = CONTRACT_ID
    contract["project"]["project_id"] = f"P-{CONTRACT_ID}"
    return json.dumps(document).encode()


@pytest.fixture
def reconciling(driver: Driver) -> Driver:
    try:
        driver.runtime.schedules.find(RECONCILE_RULE)
    except KeyError:
        pytest.skip("the stack does not compose the Reconciliation construct yet (infra/stack.py)")
    return driver


def test_a_booked_and_amended_contract_reconciles_clean_locally(
    reconciling: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = reconciling
    assert driver.post(driver.body_for(CONTRACT_ID), "msg_e2e_recon_book").status_code == 202
    driver.runtime.wait_until_idle()
    assert driver.post(_amendment(), "msg_e2e_recon_co1").status_code == 202
    driver.runtime.wait_until_idle()

    # Only this contract: other tests' contracts may hold variances, and their exception records would
    # land on the session's shared exceptions queue.
    reconciler = driver.runtime.schedules.find(RECONCILE_RULE).function_name
    run, errored = driver.runtime.host.invoke(reconciler, {"contract_ids": [CONTRACT_ID]})
    assert not errored, run
    assert (run["engagements"], run["exceptions_sent"]) == (1, [])
    aging = driver.runtime.trigger_schedule(AGING_RULE)
    assert set(aging) == {"groups", "open_exceptions"}

    for key, value in {
        "AWS_ENDPOINT_URL": driver.runtime.moto_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
    }.items():
        monkeypatch.setenv(key, value)
    # The amendment is effective in 2027: measure after it, as known now.
    as_of = max(datetime.now(UTC).date().isoformat(), "2027-12-31")
    result = CliRunner().invoke(
        reconcile_app, ["--contract", CONTRACT_ID, "--as-of", as_of, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    [engagement] = json.loads(result.stdout)["engagements"]
    assert engagement["variances"] == []
    versions = (
        engagement["crm"]["contract_version"],
        engagement["psa"]["contract_version"],
        engagement["erp"]["billing_schedule_version"],
        engagement["pssync"]["revenue_schedule_contract_version"],
    )
    assert versions == (2, 2, 2, 2)
