"""`pssync reconcile` through typer's CliRunner against moto: the unit tests' portfolio in DynamoDB, the
tables named or found by name, table and JSON output, a bad option refused before anything is read."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pssync.cli.reconcile import reconcile_app
from tests.integration.conftest import AwsWorld
from tests.integration.test_reconciliation_handlers import _copy
from tests.unit.test_reconciliation import DELIVERY, TRANSFORMATION, Plant, build_portfolio

TABLES = ("--business-table", "business", "--delivery-log-table", "delivery-log")
RUNNER = CliRunner()


@pytest.fixture
def planted(aws: AwsWorld) -> AwsWorld:
    store, log = build_portfolio(Plant(psa_misses_amendment=True, m2_accepted_not_released=True))
    _copy(aws, store.versions, log)
    return aws


def test_json_lists_every_engagement_side_by_side_with_the_planted_variances(planted: AwsWorld) -> None:
    result = RUNNER.invoke(reconcile_app, [*TABLES, "--as-of", "2027-12-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["measured_on"] == "2027-12-31"
    assert document["above_tolerance"] == [TRANSFORMATION, DELIVERY]
    by_contract = {e["contract_id"]: e for e in document["engagements"]}
    delivery = by_contract[DELIVERY]
    assert (delivery["crm"]["contract_version"], delivery["psa"]["contract_version"]) == (2, 1)
    assert [(v["cause"], v["system"]) for v in delivery["variances"]] == [("version_not_received", "psa")]
    transformation = by_contract[TRANSFORMATION]
    assert [(v["cause"], v["amount"]) for v in transformation["variances"]] == [
        ("unbilled_milestone", {"amount": "-92000.00", "currency": "EUR"})
    ]


def test_one_contract_as_a_table_as_of_before_the_amendment_and_after_it(
    planted: AwsWorld,
) -> None:
    result = RUNNER.invoke(
        reconcile_app, [*TABLES, "--contract", DELIVERY, "--as-of", "2027-05-31"], env={"COLUMNS": "240"}
    )
    assert result.exit_code == 0, result.output
    assert DELIVERY in result.stdout and TRANSFORMATION not in result.stdout
    assert "No variance." in result.stdout  # v1 everywhere by the end of May

    later = RUNNER.invoke(
        reconcile_app, [*TABLES, "--contract", DELIVERY, "--as-of", "2027-12-31"], env={"COLUMNS": "240"}
    )
    assert later.exit_code == 0, later.output
    assert "version_not_received" in later.stdout and "v2 / v1 / v2 / v2" in later.stdout


def test_an_unknown_contract_exits_non_zero_and_bad_options_are_refused(planted: AwsWorld) -> None:
    unknown = RUNNER.invoke(reconcile_app, [*TABLES, "--contract", "C-NOBODY"])
    assert unknown.exit_code == 1 and "C-NOBODY not reconciled" in unknown.stdout
    bad_tolerance = RUNNER.invoke(reconcile_app, [*TABLES, "--tolerance", '{"EUR": "-1"}'])
    assert bad_tolerance.exit_code == 2 and "negative" in bad_tolerance.output
    bad_date = RUNNER.invoke(reconcile_app, [*TABLES, "--as-of", "31/12/2027"])
    assert bad_date.exit_code == 2 and "--as-of" in bad_date.output
