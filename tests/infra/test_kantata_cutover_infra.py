"""Cutover per target in the CDK context: the PSA live on Kantata OX (its token secret, its API host)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.constructs.cutover import KANTATA_DEFAULT_BASE_URL, parse_kantata_psa
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

SANDBOX = "https://sandbox.kantata.example"
LIVE_PSA = {"pssync:cutover": {"psa": "live"}, "pssync:kantata-psa": {"base_url": SANDBOX}}


@pytest.fixture(scope="module")
def live_synthesis() -> Synthesis:
    return synthesize(LIVE_PSA)


@pytest.fixture(scope="module")
def live(live_synthesis: Synthesis) -> Resources:
    return resources_of(live_synthesis)


def psa_senders(resources: Resources) -> dict[str, dict[str, Any]]:
    return connector_senders(resources, "PSA_CONNECTOR")


def kantata_secret(resources: Resources) -> str:
    return vendor_secret(resources, "Kantata")


def test_the_live_psa_stack_passes_cdk_nag_and_cfn_lint(live_synthesis: Synthesis, tmp_path: Path) -> None:
    assert live_synthesis.error is None, live_synthesis.error
    assert live_synthesis.template is not None
    assert cfn_lint_output(live_synthesis.template, tmp_path) is None


def test_every_psa_sender_runs_live_with_the_secret_arn_and_host_never_the_token(live: Resources) -> None:
    secret_id = kantata_secret(live)
    assert live[secret_id]["Properties"]["Name"] == "pssync/dev/psa/kantata"
    assert "GenerateSecretString" in live[secret_id]["Properties"]  # a placeholder, no token in the template
    found = psa_senders(live)
    assert found  # the provision step sends the project to the PSA
    for logical_id, fn in found.items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["PSA_CONNECTOR"] == "live", logical_id
        assert ref_target(env["KANTATA_SECRET_ID"]) == secret_id, logical_id  # the ARN (a Ref), no value
        assert env["KANTATA_PSA_BASE_URL"] == SANDBOX
        assert not any("access_token" in str(v) for v in env.values())
        assert env.get("ERP_CONNECTOR", "shadow") == "shadow"  # one target cut over, not both
        assert "NETSUITE_SECRET_ID" not in env


def test_get_secret_value_is_granted_on_the_kantata_secret_only_and_only_to_psa_senders(
    live: Resources,
) -> None:
    assert secret_readers(live, kantata_secret(live)) == sender_roles(psa_senders(live))


def test_a_live_psa_adds_no_concurrency_table(live: Resources) -> None:
    # Kantata publishes no concurrency limit; its 429 + Retry-After is waited out by the client.
    assert not [i for i in of_type(live, "AWS::DynamoDB::Table") if "Concurrency" in i]


def test_the_default_stays_shadow_with_no_kantata_secret(resources: Resources) -> None:
    senders = psa_senders(resources)
    assert senders
    for fn in senders.values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["PSA_CONNECTOR"] == "shadow"
        assert "KANTATA_SECRET_ID" not in env
    assert not vendor_secrets(resources, "Kantata")


def test_the_kantata_psa_context_defaults_to_kantatas_host_and_imports_an_existing_secret() -> None:
    assert parse_kantata_psa(None).base_url == KANTATA_DEFAULT_BASE_URL
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kantata-prod-AbCdEf"
    config = parse_kantata_psa({"secret_arn": arn, "base_url": SANDBOX + "/"})
    assert config.secret_arn == arn and config.base_url == SANDBOX


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"base_url": "http://api.mavenlink.com"}, "must be an https:// URL"),
        ({"secret_arn": "kantata-token"}, "must be a Secrets Manager ARN"),
        ({"token": "x"}, "unknown key"),
    ],
)
def test_a_bad_kantata_psa_context_is_refused(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_kantata_psa(context)


def test_an_imported_secret_is_granted_by_its_arn_and_dual_mode_is_selectable() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kantata-prod-AbCdEf"
    synthesis = synthesize({"pssync:cutover": {"psa": "dual"}, "pssync:kantata-psa": {"secret_arn": arn}})
    assert synthesis.template is not None, synthesis.error
    resources = dict(synthesis.template["Resources"])
    assert not vendor_secrets(resources, "Kantata")
    for fn in psa_senders(resources).values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["PSA_CONNECTOR"] == "dual" and env["KANTATA_SECRET_ID"] == arn
        assert env["KANTATA_PSA_BASE_URL"] == KANTATA_DEFAULT_BASE_URL
    granted = [
        statement
        for _, statement in identity_policy_statements(resources)
        if arn in as_list(statement["Resource"])
    ]
    assert granted and all(as_list(s["Action"]) == ["secretsmanager:GetSecretValue"] for s in granted)
