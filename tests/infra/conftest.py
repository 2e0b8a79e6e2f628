"""Builds and synthesises the CDK app once per test session (jsii start-up dominates the cost)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.app import build_app

STAGE = "dev"


@dataclass(frozen=True)
class Synthesis:
    app: cdk.App
    template: dict[str, Any] | None
    error: str | None


def _validation_report(error: Exception) -> str:
    """The message names the report file; its content says which finding on which resource."""
    match = re.search(r"found in: (\S+validation-report\.json)", str(error))
    if match and Path(match.group(1)).is_file():
        return Path(match.group(1)).read_text()
    return ""


@pytest.fixture(scope="session")
def synthesis() -> Synthesis:
    app = build_app(bundle=False, stage=STAGE)
    try:
        assembly = app.synth()
    except RuntimeError as error:  # jsii surfaces cdk-nag's ValidationFailed as RuntimeError
        return Synthesis(app=app, template=None, error=f"{error}\n{_validation_report(error)}")
    return Synthesis(app=app, template=assembly.get_stack_by_name(f"pssync-{STAGE}").template, error=None)


@pytest.fixture(scope="session")
def template(synthesis: Synthesis) -> Template:
    if synthesis.template is None:
        pytest.fail(f"synth failed, see test_cdk_nag_has_no_unacknowledged_findings:\n{synthesis.error}")
    return Template.from_json(synthesis.template)


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]
