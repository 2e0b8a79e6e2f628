"""X-Ray is always on at service level (API stage, state machines, Lambda's own segments); handlers run the
Powertools Tracer only with `pssync:tracing=sdk`, because it costs every cold start."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra import runtime
from tests.infra.conftest import synthesize

pytestmark = pytest.mark.infra


def _functions(template: dict[str, Any]) -> list[dict[str, Any]]:
    kind = "AWS::Lambda::Function"
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_service_tracing_by_default_and_no_tracer_in_handlers(template: Template) -> None:
    functions = _functions(template.to_json())
    assert functions and all(f["TracingConfig"]["Mode"] == "Active" for f in functions)
    assert all(runtime.TRACING_ENV not in f["Environment"]["Variables"] for f in functions)


def test_sdk_tracing_runs_the_tracer_in_every_handler() -> None:
    synthesis = synthesize({runtime.TRACING_CONTEXT_KEY: "sdk"})
    assert synthesis.template is not None, synthesis.error
    functions = _functions(synthesis.template)
    assert functions and all(
        f["Environment"]["Variables"][runtime.TRACING_ENV] == "active" for f in functions
    )


def test_an_unknown_tracing_mode_is_refused_at_synth() -> None:
    with pytest.raises(ValueError, match="pssync:tracing"):
        synthesize({runtime.TRACING_CONTEXT_KEY: "sometimes"})
