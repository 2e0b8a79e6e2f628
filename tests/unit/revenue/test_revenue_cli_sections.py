"""`pssync revrec run` prints contract costs and terminations when a scenario has them, per accounting
contract balances, and the refund liability of a terminated contract in place of a contract liability."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from revenue_builders import D, contract, ratable
from typer.testing import CliRunner

from pssync.revenue import ContractCost, Invoice, Payment, Scenario, Termination
from pssync.revenue.cli import revrec_app

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "samples" / "revrec"
runner = CliRunner()


def _cancelled_support_with_a_commission(tmp_path: Path) -> Path:
    """12,000 of support for 2024, billed and paid 6,000 in January, cancelled from 1 April (3,000 earned):
    3,000 is owed back. A 1,200 sales commission was paid when it was won."""
    original = contract("SUP", [ratable("support", 12_000, date(2024, 1, 1), date(2024, 12, 31))], 12_000)
    cancelled = contract(
        "SUP", [], 3_000, version=2, effective=date(2024, 4, 1), termination=Termination(reason="cancelled")
    )
    events = [
        Invoice(id="inv", contract_id="SUP", on=date(2024, 1, 1), amount=D(6_000)),
        Payment(id="pay", contract_id="SUP", on=date(2024, 1, 15), amount=D(6_000)),
        ContractCost(id="commission", contract_id="SUP", on=date(2024, 1, 1), amount=D(1_200), kind="obtain"),
    ]
    scenario = Scenario(contracts=[original, cancelled], events=events, as_of=date(2024, 6, 30))
    path = tmp_path / "cancelled.json"
    path.write_text(scenario.model_dump_json(), encoding="utf-8")
    return path


def test_json_adds_contract_costs_and_the_termination_settlement(tmp_path: Path) -> None:
    outcome = runner.invoke(
        revrec_app, ["run", str(_cancelled_support_with_a_commission(tmp_path)), "--format", "json"]
    )

    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    [termination] = report["terminations"]
    assert (termination["contract_id"], termination["refund_liability"]) == ("SUP", "3000.00")
    assert {line["cost_id"] for line in report["contract_costs"]} == {"commission"}


def test_table_shows_the_refund_liability_in_place_of_a_contract_liability(tmp_path: Path) -> None:
    outcome = runner.invoke(revrec_app, ["run", str(_cancelled_support_with_a_commission(tmp_path))])

    assert outcome.exit_code == 0, outcome.output
    text = outcome.stdout
    assert "Contract costs" in text and "commission" in text
    assert "Terminations: settlement at as of" in text
    [balance_row] = [
        line for line in text.splitlines() if line.startswith("│ SUP") and "2024-" in line and "│ -" in line
    ]
    cells = [cell.strip() for cell in balance_row.strip("│ ").split("│")]
    # contract, accounting contract, period, receivable, asset, liability, refund liability
    assert cells[5:] == ["-", "3000.00"]


def test_scenarios_without_costs_or_terminations_print_no_such_sections() -> None:
    outcome = runner.invoke(
        revrec_app, ["run", str(SAMPLES / "professional-services-engagement.json"), "--format", "json"]
    )

    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    assert "contract_costs" not in report and "terminations" not in report
