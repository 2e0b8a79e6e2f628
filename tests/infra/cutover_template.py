"""Template readers shared by the per-target cutover tests (NetSuite ERP, Kantata PSA)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synthesis
from tests.infra.test_infra_template import (
    Resources,
    as_list,
    identity_policy_statements,
    of_type,
    ref_target,
)


def resources_of(synthesis: Synthesis) -> Resources:
    """The synthesized stack's resources; a failed synth fails the test with its reason."""
    if synthesis.template is None:
        pytest.fail(f"synth failed:\n{synthesis.error}")
    return dict(synthesis.template["Resources"])


def connector_senders(resources: Resources, connector_variable: str) -> dict[str, dict[str, Any]]:
    """Functions that send to one target, by logical id: their environment names its connector
    (`ERP_CONNECTOR`, `PSA_CONNECTOR`)."""
    return {
        logical_id: fn
        for logical_id, fn in of_type(resources, "AWS::Lambda::Function").items()
        if connector_variable in fn["Properties"].get("Environment", {}).get("Variables", {})
    }


def vendor_secrets(resources: Resources, vendor: str) -> list[str]:
    """Logical ids of the Secrets Manager secrets the stack creates for a vendor."""
    return [i for i in of_type(resources, "AWS::SecretsManager::Secret") if vendor in i]


def vendor_secret(resources: Resources, vendor: str) -> str:
    (secret_id,) = vendor_secrets(resources, vendor)
    return secret_id


def secret_readers(resources: Resources, secret_id: str) -> set[str | None]:
    """Roles granted GetSecretValue on the secret; every statement naming it must grant that action on
    that secret alone."""
    policies = of_type(resources, "AWS::IAM::Policy")
    readers: set[str | None] = set()
    for policy_id, statement in identity_policy_statements(resources):
        if secret_id not in {ref_target(r) for r in as_list(statement["Resource"])}:
            continue
        assert {ref_target(r) for r in as_list(statement["Resource"])} == {secret_id}, policy_id
        assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"], policy_id
        readers.update(ref_target(role) for role in policies[policy_id]["Properties"]["Roles"])
    return readers


def sender_roles(senders: dict[str, dict[str, Any]]) -> set[str | None]:
    return {ref_target(fn["Properties"]["Role"]) for fn in senders.values()}
