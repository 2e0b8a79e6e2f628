"""The local runtime's Lambda containers: isolation, timeouts, concurrency, errors, logs and shutdown.

A probe function written to a temporary functions folder, hosted without moto: what a handler sees and
what the host reports are what Lambda would show.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pssync.local.lambda_host import HostedFunction, LambdaHost

pytestmark = pytest.mark.e2e

PROBE = """
import os
import time


class OrderRejected(Exception):
    pass


def handler(event, context):
    action = event["action"]
    if action == "env":
        return dict(os.environ)
    if action == "pid":
        return os.getpid()
    if action == "remaining":
        first = context.get_remaining_time_in_millis()
        time.sleep(0.3)
        return [first, context.get_remaining_time_in_millis()]
    if action == "sleep":
        started = time.time()
        time.sleep(event["seconds"])
        return {"pid": os.getpid(), "started": started, "ended": time.time()}
    if action == "raise":
        raise OrderRejected("the order is closed")
    if action == "print":
        print(event["line"])
        return None
    if action == "exit":
        os._exit(3)
    if action == "not-json":
        return {1, 2}
    raise ValueError(action)
"""


@pytest.fixture(scope="module")
def functions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("functions")
    (root / "probe").mkdir()
    (root / "probe" / "handler.py").write_text(textwrap.dedent(PROBE))
    (root / "broken").mkdir()
    (root / "broken" / "handler.py").write_text("import pssync_no_such_module\n")
    return root


@pytest.fixture(scope="module", params=["forkserver", "spawn"])
def start_method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def host(functions_dir: Path, start_method: str) -> Iterator[LambdaHost]:
    lambda_host = LambdaHost(
        functions_dir,
        {"AWS_REGION": "us-east-1", "BASE_ONLY": "base"},
        log_path=functions_dir / "lambda.log",
        start_method=start_method,
    )
    yield lambda_host
    lambda_host.close()


def _register(host: LambdaHost, name: str, **options: Any) -> HostedFunction:
    function = HostedFunction(
        name=name,
        folder=options.pop("folder", "probe"),
        handler="handler.handler",
        environment=options.pop("environment", {}),
        **options,
    )
    host.register(function)
    return function


def _max_overlap(runs: list[dict[str, float]]) -> int:
    edges = sorted([(r["started"], 1) for r in runs] + [(r["ended"], -1) for r in runs])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_a_container_sees_exactly_its_functions_environment_and_this_process_never_does(
    host: LambdaHost,
) -> None:
    one = _register(host, "env-one", environment={"PROBE_SETTING": "one", "POWERTOOLS_LOG_LEVEL": "DEBUG"})
    _register(host, "env-two", environment={"OTHER_SETTING": "two"})
    seen, errored = host.invoke("env-one", {"action": "env"})
    assert not errored
    assert seen == host.worker_environment(one)
    assert (seen["PROBE_SETTING"], seen["BASE_ONLY"], seen["AWS_LAMBDA_FUNCTION_NAME"]) == (
        "one",
        "base",
        "env-one",
    )
    other, _ = host.invoke("env-two", {"action": "env"})
    assert "PROBE_SETTING" not in other and other["OTHER_SETTING"] == "two"
    assert "PROBE_SETTING" not in os.environ and "OTHER_SETTING" not in os.environ


def test_the_remaining_time_counts_down_from_the_functions_timeout(host: LambdaHost) -> None:
    _register(host, "countdown", timeout_seconds=7)
    (first, second), errored = host.invoke("countdown", {"action": "remaining"})
    assert not errored
    assert 2000 < first <= 7000  # from this function's 7 s, however late a loaded machine starts it
    assert second <= first - 250


def test_a_handler_past_its_timeout_is_reported_as_lambda_does_and_its_container_replaced(
    host: LambdaHost,
) -> None:
    _register(host, "slow", timeout_seconds=1)
    before, _ = host.invoke("slow", {"action": "pid"})
    started = time.monotonic()
    error, errored = host.invoke("slow", {"action": "sleep", "seconds": 30})
    assert errored and time.monotonic() - started < 20  # killed at 1 s, long before the 30 s sleep ends
    assert (error["errorType"], error["errorMessage"]) == (
        "Sandbox.Timedout",
        "Task timed out after 1.00 seconds",
    )
    assert host.invocations[-1].error_type == "Sandbox.Timedout"
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)  # killed (and reaped by the fork server)
    after, errored = host.invoke("slow", {"action": "pid"})
    assert not errored and after != before


def test_a_burst_runs_in_parallel_containers_up_to_the_reserved_concurrency(host: LambdaHost) -> None:
    _register(host, "burst")  # no ReservedConcurrentExecutions: the local default, 4
    _register(host, "reserved-one", reserved_concurrency=1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(
            pool.map(lambda _: host.invoke("burst", {"action": "sleep", "seconds": 1.0})[0], range(8))
        )
        serial = list(
            pool.map(lambda _: host.invoke("reserved-one", {"action": "sleep", "seconds": 0.2})[0], range(3))
        )
    assert len({r["pid"] for r in runs}) == 4
    assert [s.function for s in host.worker_starts].count("burst") == 4
    assert _max_overlap(runs) == 4
    assert len({r["pid"] for r in serial}) == 1 and _max_overlap(serial) == 1


def test_errors_keep_the_names_step_functions_matches_on(host: LambdaHost) -> None:
    _register(host, "failing")
    _register(host, "broken", folder="broken")
    error, errored = host.invoke("failing", {"action": "raise"})
    assert errored
    assert (error["errorType"], error["errorMessage"]) == ("OrderRejected", "the order is closed")
    assert error["stackTrace"] and isinstance(error["stackTrace"], list)
    error, errored = host.invoke("broken", {"action": "pid"})
    assert errored and error["errorType"] == "Runtime.ImportModuleError"
    assert "pssync_no_such_module" in error["errorMessage"]
    error, errored = host.invoke("failing", {"action": "not-json"})
    assert errored and error["errorType"] == "Runtime.MarshalError"
    error, errored = host.invoke("failing", {"action": "exit"})
    assert errored and error["errorType"] == "Runtime.ExitError"
    assert host.invoke("failing", {"action": "pid"})[1] is False  # a fresh container serves the next one


def test_container_output_goes_to_the_lambda_log_file(host: LambdaHost, functions_dir: Path) -> None:
    _register(host, "printer")
    host.invoke("printer", {"action": "print", "line": "hello from a container"})
    host.invoke("printer", {"action": "raise"})
    log = (functions_dir / "lambda.log").read_text()
    assert "hello from a container" in log
    assert "[ERROR] OrderRejected: the order is closed" in log


def test_close_stops_every_container_and_the_fork_server(functions_dir: Path, start_method: str) -> None:
    host = LambdaHost(
        functions_dir,
        {"AWS_REGION": "us-east-1"},
        log_path=functions_dir / "lambda.log",
        start_method=start_method,
    )
    _register(host, "closing")
    with ThreadPoolExecutor(max_workers=3) as pool:
        pids = set(
            pool.map(
                lambda _: host.invoke("closing", {"action": "sleep", "seconds": 0.3})[0]["pid"], range(3)
            )
        )
    assert len(pids) == 3
    host.close()
    assert host.stopped
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="shut down"):
        host.invoke("closing", {"action": "pid"})
