"""`pssync revrec run` on the samples, and its refusal of bad scenarios (exit 2, no partial output)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from pssync.revenue import Scenario, scenario_json_schema
from pssync.revenue.cli import revrec_app

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "samples" / "revrec"
runner = CliRunner()


def _run_json(path: Path, *extra: str) -> dict[str, object]:
    outcome = runner.invoke(revrec_app, ["run", str(path), "--format", "json", *extra])
    assert outcome.exit_code == 0, outcome.output
    report: dict[str, object] = json.loads(outcome.stdout)
    return report


def _by_year(report: dict[str, object]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in report["waterfall"]:  # type: ignore[attr-defined]
        for period, amount in row["amounts"].items():
            totals[period[:4]] = totals.get(period[:4], Decimal(0)) + Decimal(amount)
    return totals


def test_example_7_sample_gives_70k_a_year_after_the_modification() -> None:
    report = _run_json(SAMPLES / "ifrs15-example7-services-modification.json")

    assert _by_year(report) == {
        "2020": Decimal("100000.00"),
        "2021": Decimal("100000.00"),
        "2022": Decimal("70000.00"),
        "2023": Decimal("70000.00"),
        "2024": Decimal("70000.00"),
        "2025": Decimal("70000.00"),
    }
    [modification] = report["modifications"]  # type: ignore[misc]
    assert modification["treatment"] == "prospective"
    assert modification["causing_event_id"] == "evt-amendment-1"


def test_example_7_sample_as_of_end_of_year_3_shows_rpo_and_deferred_revenue() -> None:
    report = _run_json(SAMPLES / "ifrs15-example7-services-modification.json", "--as-of", "2022-12-31")

    [rpo] = report["rpo"]  # type: ignore[misc]
    assert (rpo["remaining"], rpo["within_12_months"], rpo["months_13_to_24"], rpo["after_24_months"]) == (
        "210000.00",
        "70000.00",
        "70000.00",
        "70000.00",
    )
    last = report["rollforward"][-1]  # type: ignore[index]
    # billed 280,000 by then against 270,000 recognised: 10,000 deferred; 80,000 of year-3 fee unpaid
    assert (last["closing_contract_liability"], last["closing_receivable"]) == ("10000.00", "80000.00")


def test_professional_services_sample_figures() -> None:
    report = _run_json(SAMPLES / "professional-services-engagement.json")
    schedule = report["schedule"]

    january = [line for line in schedule if line["period"] == "2025-01"]  # type: ignore[attr-defined]
    by_obligation = {line["obligation_id"]: line for line in january}
    assert by_obligation["licence"]["amount"] == "105882.35"  # 300,000 x 120/340 at transfer
    assert by_obligation["licence"]["causing_event_id"] == "evt-licence-key-delivered"
    assert by_obligation["implementation"]["amount"] == "22058.83"  # 25 % of 88,235.30
    assert by_obligation["managed-service"]["amount"] == "4411.76"  # 105,882.35 / 24
    april = next(
        line
        for line in schedule  # type: ignore[attr-defined]
        if line["period"] == "2025-04" and line["obligation_id"] == "implementation"
    )
    # The late March cost (recorded after March closed) lands in April as an adjustment: 10 % of 88,235.30.
    assert (april["adjustment"], april["status"]) == ("8823.53", "closed")
    [modification] = report["modifications"]  # type: ignore[misc]
    assert modification["treatment"] == "prospective"
    [rpo] = report["rpo"]  # type: ignore[misc]
    # 370,000 - 235,294.12 recognised before July = 134,705.88 over 30 months, 6 of them done by December
    assert (rpo["remaining"], rpo["within_12_months"]) == ("107764.70", "53882.35")
    balances = report["rollforward"][-1]  # type: ignore[index]
    assert (balances["closing_receivable"], balances["closing_contract_liability"]) == (
        "80000.00",
        "17764.70",
    )
    for entry in report["journals"]:  # type: ignore[attr-defined]
        debit = sum(Decimal(line["debit"]) for line in entry["lines"])
        credit = sum(Decimal(line["credit"]) for line in entry["lines"])
        assert debit == credit


def test_table_format_renders_the_sections() -> None:
    outcome = runner.invoke(revrec_app, ["run", str(SAMPLES / "professional-services-engagement.json")])

    assert outcome.exit_code == 0
    for heading in ("Allocation", "Modifications", "Remaining performance obligations", "Contract balances"):
        assert heading in outcome.stdout
    assert "132352.94 USD" in outcome.stdout


def test_invalid_scenario_names_the_field_and_prints_nothing_on_stdout(tmp_path: Path) -> None:
    data = json.loads((SAMPLES / "professional-services-engagement.json").read_text())
    data["contracts"][0]["obligations"][1]["pattern"]["estimate_at_completion"] = "-5"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))

    outcome = runner.invoke(revrec_app, ["run", str(bad), "--format", "json"])

    assert outcome.exit_code == 2
    assert outcome.stdout == ""
    assert "contracts[0].obligations[1].pattern.input_cost.estimate_at_completion" in outcome.stderr


def test_rule_refusal_exits_2_with_the_field(tmp_path: Path) -> None:
    data = json.loads((SAMPLES / "ifrs15-example7-services-modification.json").read_text())
    data["contracts"][0]["obligations"][0]["ssp"] = None
    data["contracts"][0]["obligations"][0]["ssp_range"] = {"low": "1", "high": "2"}
    bad = tmp_path / "residual.json"
    bad.write_text(json.dumps(data))

    outcome = runner.invoke(revrec_app, ["run", str(bad)])

    assert outcome.exit_code == 2
    assert outcome.stdout == ""
    assert "contracts[0].obligations[0].ssp_range" in outcome.stderr
    assert "residual approach not appropriate" in outcome.stderr


def test_samples_validate_against_the_published_schema_model() -> None:
    schema = scenario_json_schema()
    assert schema["$id"].endswith("revrec-scenario.v1.json")
    assert {"contracts", "events", "calendar"} <= set(schema["properties"])
    for sample in SAMPLES.glob("*.json"):
        Scenario.model_validate_json(sample.read_text())


def test_float_amounts_and_broken_json_are_refused_by_name(tmp_path: Path) -> None:
    data = json.loads((SAMPLES / "ifrs15-example7-services-modification.json").read_text())
    data["contracts"][0]["fixed_price"] = 300000.5
    floats = tmp_path / "floats.json"
    floats.write_text(json.dumps(data))
    broken = tmp_path / "broken.json"
    broken.write_text('{"contracts": [')

    refused = runner.invoke(revrec_app, ["run", str(floats)])
    unreadable = runner.invoke(revrec_app, ["run", str(broken)])

    assert refused.exit_code == 2 and refused.stdout == ""
    assert (
        "contracts[0].fixed_price: Value error, amounts must be given as strings or integers"
        in refused.stderr
    )
    assert unreadable.exit_code == 2 and "Invalid JSON" in unreadable.stderr
