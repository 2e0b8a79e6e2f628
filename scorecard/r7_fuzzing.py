"""R7 API fuzzing and stateful test: (a) schemathesis from the webhook API's OpenAPI document against the
running local runtime: 0 server errors, responses conform; (b) a hypothesis RuleBasedStateMachine of
deliver / duplicate / reorder / crash / replay / expire (scorecard/r7_stateful.py): 0 invariant violations.

(a) The document is `pssync.openapi.openapi_document()` (the one checked in under events/openapi/). Cases
are generated in schemathesis' positive mode (bodies that match the schema) and negative mode (bodies,
headers and paths that do not), half each; the `source` path parameter is one of the configured sources
in most cases (so a case reaches each scheme's verification) and anything the schema allows otherwise.
Checks on every response: not a server error, a status the document lists, its content type and schema,
its headers, and a negative case is refused (4xx). Not checked: `positive_data_acceptance` (a case that
matches the schema is still unsigned: refusing it with 401 is the API's contract) and response times (no
timed assertion). Each failing check is counted, its first examples kept.

(b) runs in-process (real IngestService and workflow steps over the fakes of tests/fakes.py), not on the
local runtime: a state machine run is dozens of deliveries and workflow executions, and the runtime
executes 10-15 Lambda invocations a second; the row says so in its notes.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from pssync.openapi import openapi_document
from scorecard import context as ctx
from scorecard import r7_stateful
from scorecard.harness import RowResult, Stack
from scorecard.progress import Progress

ID = "R7"
NAME = "API fuzzing and stateful test"
FULL_N = 2_000  # schemathesis cases; the state machine runs N / 10 examples of up to STEPS steps
QUICK_N = 120
STEPS = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
SOURCES = [ctx.CRM, ctx.ERP, ctx.HUBSPOT, ctx.JIRA, ctx.DATAVERSE, ctx.SALESFORCE]
REQUEST_TIMEOUT_S = 60.0  # a hang guard, not a timing assertion


def fuzz(stack: Stack, n: int, seed: int, progress: Progress) -> dict[str, Any]:
    schema = schemathesis.openapi.from_dict(openapi_document())
    schema.config.update(base_url=stack.runtime.api.url)
    [operation] = [result.ok() for result in schema.get_all_operations()]
    statuses: Counter[int] = Counter()
    by_mode: dict[str, Counter[int]] = {}
    failed_checks: Counter[str] = Counter()
    examples: list[str] = []
    transport_errors = 0
    task = progress.task(f"{ID} schemathesis", total=n)
    session = httpx.Client(timeout=REQUEST_TIMEOUT_S)

    def campaign(mode: GenerationMode, count: int) -> None:
        strategy = st.one_of(
            *(operation.as_strategy(generation_mode=mode, path_parameters={"source": s}) for s in SOURCES),
            operation.as_strategy(generation_mode=mode),
        )
        seen = by_mode.setdefault(mode.value, Counter())
        sent = 0

        @given(case=strategy)
        @settings(
            max_examples=count,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        def send(case: Any) -> None:
            nonlocal sent, transport_errors
            if sent >= count:
                return
            sent += 1
            progress.advance(task)
            kwargs = case.as_transport_kwargs(base_url=stack.runtime.api.url)
            try:
                response = session.request(
                    kwargs["method"],
                    kwargs["url"],
                    headers=kwargs.get("headers"),
                    params=kwargs.get("params"),
                    content=_content(kwargs),
                )
            except httpx.TransportError as error:
                transport_errors += 1
                if len(examples) < 20:
                    examples.append(f"no answer: {error!r} for {case.method} {case.formatted_path}")
                return
            statuses[response.status_code] += 1
            seen[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, FailureGroup) as failure:  # one failed check, or several
                for inner in getattr(failure, "exceptions", [failure]):
                    failed_checks[type(inner).__name__] += 1
                    if len(examples) < 20:
                        examples.append(
                            f"{mode.value}: {case.method} {case.formatted_path} answered "
                            f"{response.status_code}: {str(inner).splitlines()[0][:240]}"
                        )

        hypothesis_seed(seed)(send)
        send()

    campaign(GenerationMode.POSITIVE, n - n // 2)
    campaign(GenerationMode.NEGATIVE, n // 2)
    session.close()
    return {
        "requests": sum(statuses.values()),
        "server_errors": sum(c for status, c in statuses.items() if status >= 500),
        "failed_checks": sum(failed_checks.values()),
        "no_answer": transport_errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "by_mode": {mode: {str(k): v for k, v in sorted(c.items())} for mode, c in by_mode.items()},
        "by_check": dict(failed_checks),
        "examples": examples,
    }


def _content(kwargs: dict[str, Any]) -> Any:
    """The body as schemathesis serialised it (json= / data= / content=) for httpx."""
    if "json" in kwargs:
        import json

        return json.dumps(kwargs["json"]).encode()
    for key in ("content", "data"):
        if key in kwargs and kwargs[key] is not None:
            value = kwargs[key]
            return value.encode() if isinstance(value, str) else value
    return None


def run(stack: Stack, n: int, seed: int, progress: Progress) -> RowResult:
    started = time.monotonic()
    api = fuzz(stack, n, seed, progress)
    api_s = time.monotonic() - started
    stateful_started = time.monotonic()
    examples = max(10, n // 10)
    stats, violation, error = r7_stateful.run(seed, examples, STEPS, secret=stack.secret(ctx.CRM))
    stateful_s = time.monotonic() - stateful_started

    result = RowResult(
        id=ID,
        name=NAME,
        seed=seed,
        n=n,
        wall_s=round(time.monotonic() - started, 1),
        passed=False,
        expectation=(
            "schemathesis (positive and negative cases from the OpenAPI document, on the local runtime): "
            "0 server errors, every response conforms; the stateful test: 0 invariant violations"
        ),
    )
    steps = sum(stats.steps.values())
    result.counts = {
        "api_requests": api["requests"],
        "api_server_errors": api["server_errors"],
        "api_failed_checks": api["failed_checks"],
        "api_no_answer": api["no_answer"],
        "stateful_runs": stats.runs,
        "stateful_steps": steps,
        "invariant_violations": 0 if violation is None else 1,
        "stateful_errors": 0 if error is None else 1,
        "api_s": round(api_s, 1),
        "stateful_s": round(stateful_s, 1),
        "statuses": api["statuses"],
        "by_mode": api["by_mode"],
        "by_check": api["by_check"],
        "by_rule": dict(sorted(stats.steps.items())),
    }
    result.notes.append(
        f"The stateful test ran in-process (real IngestService and workflow steps over tests/fakes.py), "
        f"not on the local runtime: {stats.runs} runs, {steps} steps, up to {STEPS} steps a run, no "
        "shrinking (a violation is reported as found)."
    )
    result.failures = list(api["examples"])
    if violation is not None:
        result.failures.append("invariant violated: " + violation[:3000])
    if error is not None:
        result.failures.append("a step raised: " + error[:3000])
    result.passed = (
        api["requests"] == n
        and api["server_errors"] == 0
        and api["failed_checks"] == 0
        and api["no_answer"] == 0
        and violation is None
        and error is None
        and stats.runs >= examples
    )
    return result
