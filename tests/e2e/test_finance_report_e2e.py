"""End to end: `pssync report` against the session's local runtime, as an operator runs it (its own
process, AWS_ENDPOINT_URL pointing at the moto endpoint, the business table found by name), then the page
opened in headless chromium: the chart is drawn, the totals equal the engine's for every contract the
runtime holds (as `contract show` measures them), the customer's hostile name is text, nothing is logged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pssync.adapters.aws import DynamoDBAggregateHeads, DynamoDBVersionStore
from pssync.cli.contract import BUSINESS_TABLE_FRAGMENT, find_table
from pssync.money import Money
from pssync.ops import contract_view
from pssync.ops.contract_view import Cutoff, LoggedCommand
from pssync.workflows.provision import CONTRACT
from tests.e2e.conftest import ROOT, Driver
from tests.integration.test_finance_report_browser import CHROMIUM, _chromium, _console_messages, _Dom

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(CHROMIUM is None, reason="run scripts/ensure-chromium")]

CONTRACT_ID = "E2E-REPORT"
HOSTILE = "<script>alert(1)</script> Retail GmbH"
# The example booking starts on 2027-01-04: measure within its first half-year, so there is revenue to draw.
# Versions recorded today count (recorded before the cut-off).
AS_OF = "2027-06-30"
HANG_GUARD_SECONDS = 300  # a stuck process fails the test instead of the session; not a timing assertion


class NoCommands:
    def logged_commands(self) -> Iterable[LoggedCommand]:
        return []


def test_report_of_the_local_runtime_opens_in_a_browser_with_the_engines_totals(
    driver: Driver, tmp_path: Path
) -> None:
    customer = {"customer_id": "CUST-E2E-REPORT", "name": HOSTILE, "country": "DE"}
    booked = driver.post(driver.body_for(CONTRACT_ID, customer=customer), "msg_e2e_report_book")
    assert booked.status_code == 202, booked.text
    driver.runtime.wait_until_idle()

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": driver.runtime.moto_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
    }
    env.pop("PSSYNC_BUSINESS_TABLE", None)  # found by name, as on a deployed stack
    page = tmp_path / "report.html"
    run = subprocess.run(  # noqa: S603 - this environment's python, our own module, fixed argv
        [sys.executable, "-m", "pssync.cli.report", "--out", str(page), "--as-of", AS_OF],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stderr + run.stdout

    browser = _chromium(tmp_path, page, "--dump-dom")
    dom = _Dom()
    dom.feed(browser.stdout)
    assert _console_messages(browser.stderr) == []
    assert dom.charts >= 1 and dom.bars
    assert dom.scripts == 0 and HOSTILE in "".join(dom.text)

    # Every contract the runtime holds, measured as `contract show` measures it, summed per currency.
    dynamodb = driver.runtime.clients["dynamodb"]
    table = find_table(dynamodb, BUSINESS_TABLE_FRAGMENT)
    store = DynamoDBVersionStore(table, dynamodb)
    cutoff = Cutoff.parse(AS_OF, datetime.now(UTC))
    recognised: dict[str, Money] = {}
    for head in DynamoDBAggregateHeads(table, dynamodb).heads(CONTRACT):
        b = contract_view.show(store, NoCommands(), head.aggregate_id, cutoff).balances
        recognised[b.currency] = recognised.get(b.currency, Money.zero(b.currency)) + b.recognised_to_date
    assert CONTRACT_ID in "".join(dom.text)
    for currency, money in recognised.items():
        [shown] = dom.figures[("recognised_to_date", currency)]
        assert Decimal(shown.replace(",", "")) == money.amount, currency
