"""Cutover per target in the CDK context: the ERP live on NetSuite (secret, mapping, concurrency table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.cutover import parse_cutover, parse_netsuite
from tests.infra.conftest import Synthesis, cfn_lint_output, synthesize
from tests.infra.cutover_template import (
    connector_senders,
    resources_of,
    secret_readers,
    sender_roles,
    vendor_secret,
    vendor_secrets,
)
from tests.infra.test_infra_template import (
    Resources,
    as_list,
    identity_policy_statements,
    of_type,
    ref_target,
)

pytestmark = pytest.mark.infra

MAPPING = {
    "subsidiaries": {"NL01": "3", "US01": "1"},
    "currencies": {"EUR": "4", "USD": "1"},
    "items": {"milestone": "501", "time": "510", "expense": "520"},
    "accounts": {"1200": "119", "4000": "54"},
}
LIVE_ERP = {
    "pssync:cutover": {"erp": "live"},
    "pssync:netsuite": {"mapping": MAPPING, "concurrency_limit": 4},
}


@pytest.fixture(scope="module")
def live_synthesis() -> Synthesis:
    return synthesize(LIVE_ERP)


@pytest.fixture(scope="module")
def live(live_synthesis: Synthesis) -> Resources:
    return resources_of(live_synthesis)


def senders(resources: Resources) -> dict[str, dict[str, Any]]:
    return connector_senders(resources, "ERP_CONNECTOR")


def netsuite_secret(resources: Resources) -> str:
    return vendor_secret(resources, "NetSuite")


def test_the_live_erp_stack_passes_cdk_nag_and_cfn_lint(live_synthesis: Synthesis, tmp_path: Path) -> None:
    assert live_synthesis.error is None, live_synthesis.error
    assert live_synthesis.template is not None
    assert cfn_lint_output(live_synthesis.template, tmp_path) is None


def test_every_erp_sender_runs_live_with_the_secret_arn_and_mapping_never_the_secret(live: Resources) -> None:
    secret_id = netsuite_secret(live)
    assert live[secret_id]["Properties"]["Name"] == "pssync/dev/erp/netsuite"
    found = senders(live)
    assert len(found) >= 5  # billing schedule, time, expenses, milestone invoice, close journals
    for logical_id, fn in found.items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["ERP_CONNECTOR"] == "live", logical_id
        assert ref_target(env["NETSUITE_SECRET_ID"]) == secret_id, logical_id  # the ARN (a Ref), no value
        assert json.loads(env["NETSUITE_MAPPING"]) == MAPPING
        assert env["NETSUITE_CONCURRENCY_LIMIT"] == "4"
        assert ref_target(env["CONCURRENCY_TABLE_NAME"]) is not None
        assert not any("private_key" in str(v) for v in env.values())


def test_get_secret_value_is_granted_on_the_netsuite_secret_only_and_only_to_erp_senders(
    live: Resources,
) -> None:
    assert secret_readers(live, netsuite_secret(live)) == sender_roles(senders(live))


def test_the_concurrency_table_is_leased_by_erp_senders_only(live: Resources) -> None:
    (table_id,) = [i for i in of_type(live, "AWS::DynamoDB::Table") if "Concurrency" in i]
    assert [k["AttributeName"] for k in live[table_id]["Properties"]["KeySchema"]] == ["pk", "sk"]
    policies = of_type(live, "AWS::IAM::Policy")
    leasers = {
        ref_target(role)
        for policy_id, statement in identity_policy_statements(live)
        if table_id in {ref_target(r) for r in as_list(statement["Resource"])}
        for role in policies[policy_id]["Properties"]["Roles"]
    }
    assert leasers == sender_roles(senders(live))


def test_an_existing_secret_is_imported_by_arn_not_created() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:netsuite-prod-AbCdEf"
    config = parse_netsuite({"mapping": MAPPING, "secret_arn": arn})
    assert config is not None and config.secret_arn == arn


def test_the_default_stays_shadow_with_no_vendor_secret(resources: Resources) -> None:
    assert all(
        fn["Properties"]["Environment"]["Variables"]["ERP_CONNECTOR"] == "shadow"
        for fn in senders(resources).values()
    )
    assert not vendor_secrets(resources, "NetSuite")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"erp": "livee"}, "unknown mode 'livee'"),
        ({"crm": "live"}, "unknown system"),
    ],
)
def test_a_bad_cutover_context_is_refused(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cutover(context)


def test_a_live_erp_without_a_mapping_fails_the_synth_with_its_reason() -> None:
    # A live PSA is selectable (Kantata): tests/infra/test_kantata_cutover_infra.py.
    with pytest.raises(Exception, match="needs pssync:netsuite"):
        synthesize({"pssync:cutover": {"erp": "dual"}})
