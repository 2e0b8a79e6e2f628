"""Process-wide adapters are built once, even when the first calls race on several threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from pssync.wiring import _once


def test_racing_first_calls_build_one_instance_per_argument() -> None:
    builds: list[str] = []
    all_waiting = threading.Barrier(4)

    @_once
    def build(name: str) -> object:
        builds.append(name)
        time.sleep(0.02)  # wide enough for an unguarded cache to let every racer build its own
        return object()

    def first_call(_: int) -> object:
        all_waiting.wait()
        return build("ingest")

    with ThreadPoolExecutor(max_workers=4) as pool:
        instances = list(pool.map(first_call, range(4)))
    assert builds == ["ingest"]
    assert all(instance is instances[0] for instance in instances)
    assert build("other") is not instances[0] and builds == ["ingest", "other"]


def test_ci_draws_the_same_hypothesis_examples_every_run() -> None:
    from hypothesis import settings

    from tests.conftest import HYPOTHESIS_PROFILE

    assert settings.default.derandomize is (HYPOTHESIS_PROFILE == "ci")
    assert settings.get_profile("ci").derandomize and settings.get_profile("ci").database is None
