"""The one handler stack: every function uses it; correlation id, cold-start metric, Tracer only when on."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from pssync.handlers import stack
from pssync.observability import logger

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
STACK_DECORATORS = {"lambda_handler", "workflow_step"}


@dataclass
class Context:
    function_name: str = "fn"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:fn"
    aws_request_id: str = "req-1"


def _decorators(handler_file: Path) -> set[str]:
    tree = ast.parse(handler_file.read_text())
    [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
    names = set()
    for decorator in handler.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(target.id if isinstance(target, ast.Name) else ast.unparse(target))
    return names


@pytest.mark.parametrize(
    "folder", sorted(p.name for p in FUNCTIONS.iterdir() if (p / "handler.py").is_file())
)
def test_every_function_uses_the_one_stack_and_nothing_else(folder: str) -> None:
    assert _decorators(FUNCTIONS / folder / "handler.py") in ({"lambda_handler"}, {"workflow_step"})


def test_correlation_id_comes_from_the_trigger_and_the_cold_start_is_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str | None] = []

    @stack.lambda_handler(correlation_id_path="event.correlation_id")
    def handler(event: dict[str, Any], context: Any) -> str:
        seen.append(logger.get_correlation_id())
        return "ok"

    cold_start.is_cold_start = True
    assert handler({"event": {"correlation_id": "corr-42"}}, Context()) == "ok"
    assert seen == ["corr-42"]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for doc in metrics for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert "ColdStart" in names


def test_the_tracer_wraps_handlers_only_when_tracing_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    wrapped: list[str] = []

    class FakeTracer:
        def capture_lambda_handler(self, handler: Any, capture_response: bool) -> Any:
            wrapped.append(handler.__name__)
            return handler

    monkeypatch.setattr(stack, "_tracer", FakeTracer)

    def handler(event: dict[str, Any], context: Any) -> None:
        return None

    monkeypatch.delenv(stack.TRACING_ENV, raising=False)
    stack.lambda_handler()(handler)
    assert wrapped == []
    monkeypatch.setenv(stack.TRACING_ENV, "active")
    stack.lambda_handler()(handler)
    assert wrapped == ["handler"]


def test_an_exception_escaping_a_handler_is_logged_with_its_type_before_the_runtime_sees_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @stack.lambda_handler()
    def handler(event: dict[str, Any], context: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(RecursionError):
        handler({}, Context())
    [record] = [r for r in caplog.records if r.getMessage() == "invocation failed"]
    assert record.levelname == "ERROR" and record.error == "RecursionError" and record.exc_info
