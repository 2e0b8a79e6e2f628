"""Builds and synthesises the CDK app once per test session (jsii start-up dominates the cost)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


def synthesize(context: dict[str, Any] | None = None) -> Synthesis:
    app = build_app(bundle=False, stage=STAGE, context=context)
    try:
        assembly = app.synth()
    except RuntimeError as error:  # jsii surfaces cdk-nag's ValidationFailed as RuntimeError
        return Synthesis(app=app, template=None, error=f"{error}\n{_validation_report(error)}")
    return Synthesis(app=app, template=assembly.get_stack_by_name(f"pssync-{STAGE}").template, error=None)


def cfn_lint_output(template: dict[str, Any], directory: Path) -> str | None:
    """cfn-lint's report when it finds errors, None when clean (CDK output always carries W3005
    redundant-DependsOn warnings; only errors fail)."""
    template_file = directory / "pssync.template.json"
    template_file.write_text(json.dumps(template))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(  # noqa: S603 - fixed argv
        [str(cfn_lint), "--non-zero-exit-code", "error", str(template_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if result.returncode == 0 else result.stdout + result.stderr


@pytest.fixture(scope="session")
def synthesis() -> Synthesis:
    return synthesize()


@pytest.fixture(scope="session")
def template(synthesis: Synthesis) -> Template:
    if synthesis.template is None:
        pytest.fail(f"synth failed, see test_cdk_nag_has_no_unacknowledged_findings:\n{synthesis.error}")
    return Template.from_json(synthesis.template)


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]
