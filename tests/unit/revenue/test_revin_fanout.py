"""`write_report` across processes: shard 0 in the calling process, the others forked, parts appended.

The byte equality of any number of workers with one process is test_revenue_stream.py's and
test_revenue_sharding.py's; here: the append of the parts (kernel copy and its fallback), a refusal in the
shard the calling process runs, the collector state left behind, and the CLI's default number of workers.
"""

from __future__ import annotations

import errno
import gc
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.revenue import portfolio_json
from pssync.revenue import RevenueRuleError, stream
from pssync.revenue import cli as revenue_cli
from pssync.revenue.stream import available_cores, write_report

_PART = bytes(range(256)) * 4099  # not a multiple of any step below, nor of the 1 MiB buffer


def _files(tmp_path: Path) -> tuple[Path, Path]:
    source, target = tmp_path / "part", tmp_path / "joined"
    source.write_bytes(_PART)
    target.write_bytes(b"header\n")
    return source, target


def test_a_part_is_appended_after_what_the_joined_file_holds(tmp_path: Path) -> None:
    source, target = _files(tmp_path)

    stream._append(source, target)
    stream._append(source, target)

    assert target.read_bytes() == b"header\n" + _PART + _PART


def test_a_kernel_copy_in_small_steps_still_appends_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.copy_file_range
    steps: list[int] = []

    def small_steps(src: int, dst: int, count: int) -> int:
        copied = real(src, dst, min(count, 1000))
        steps.append(copied)
        return copied

    monkeypatch.setattr(os, "copy_file_range", small_steps)
    source, target = _files(tmp_path)

    stream._append(source, target)

    assert target.read_bytes() == b"header\n" + _PART
    assert len(steps) > 1


@pytest.mark.parametrize("copied_first", [0, 5000])
def test_a_kernel_copy_that_stops_early_is_finished_through_a_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copied_first: int
) -> None:
    """A file system may copy part of a file and then report 0 (nothing more it can do in the kernel)."""
    real = os.copy_file_range
    calls: list[int] = []

    def stops(src: int, dst: int, count: int) -> int:
        calls.append(count)
        return real(src, dst, copied_first) if len(calls) == 1 and copied_first else 0

    monkeypatch.setattr(os, "copy_file_range", stops)
    source, target = _files(tmp_path)

    stream._append(source, target)

    assert target.read_bytes() == b"header\n" + _PART


def test_a_kernel_copy_the_file_system_refuses_falls_back_to_a_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(src: int, dst: int, count: int) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refused)
    source, target = _files(tmp_path)

    stream._append(source, target)

    assert target.read_bytes() == b"header\n" + _PART


def test_a_kernel_copy_failing_half_way_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.copy_file_range
    calls: list[int] = []

    def fails_second(src: int, dst: int, count: int) -> int:
        calls.append(count)
        if len(calls) == 1:
            return real(src, dst, 1000)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "copy_file_range", fails_second)
    source, target = _files(tmp_path)

    with pytest.raises(OSError) as failed:
        stream._append(source, target)

    assert failed.value.errno == errno.EIO


def test_a_refusal_in_the_shard_this_process_runs_is_raised_and_leaves_no_file(tmp_path: Path) -> None:
    document: dict[str, Any] = json.loads(portfolio_json(6))
    document["events"].append(
        {"type": "payment", "id": "early", "contract_id": "C000000", "on": "2022-12-01", "amount": "10.00"}
    )

    with pytest.raises(RevenueRuleError) as refused:
        write_report(json.dumps(document), "csv", tmp_path / "r.csv", workers=2, min_shard=1)

    assert refused.value.field == f"events[{len(document['events']) - 1}].on"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("caller_froze", [False, True])
def test_the_collector_is_left_as_the_caller_left_it(
    tmp_path: Path, workers: int, caller_froze: bool
) -> None:
    """write_report freezes the heap while contracts run and unfreezes it after, unless the caller had frozen
    objects itself (which it then leaves frozen). The freeze count is not compared: a frozen object freed by
    its reference count leaves the permanent generation, so the count may fall while a run goes on. Whether
    the caller's objects are still frozen is read from a sentinel (gc.get_objects leaves frozen ones out)."""
    sentinel: list[object] = [object()]
    if caller_froze:
        gc.freeze()
    try:
        summary = write_report(
            portfolio_json(4).decode(), "csv", tmp_path / "r.csv", workers=workers, min_shard=1
        )
        frozen_after = gc.get_freeze_count()
        sentinel_frozen = not any(tracked is sentinel for tracked in gc.get_objects())
    finally:
        gc.unfreeze()

    assert summary.workers == workers
    assert sentinel_frozen is caller_froze
    assert (frozen_after > 0) is caller_froze


def test_available_cores_is_the_affinity_of_this_process() -> None:
    assert available_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cores", "given", "expected"),
    [
        (3, [], 3),
        (3, ["--workers", "1"], 1),
        (3, ["--workers", "2"], 2),
        (16, [], 4),
        (16, ["--workers", "6"], 6),
    ],
)
def test_revrec_run_uses_the_available_cores_up_to_four_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, given: list[str], expected: int
) -> None:
    asked: list[int] = []
    real = revenue_cli.write_report

    def recording(*args: Any, workers: int, **kwargs: Any) -> stream.ReportSummary:
        asked.append(workers)
        return real(*args, workers=workers, **kwargs)

    monkeypatch.setattr(revenue_cli, "available_cores", lambda: cores)
    monkeypatch.setattr(revenue_cli, "write_report", recording)
    scenario = tmp_path / "portfolio.json"
    scenario.write_bytes(portfolio_json(3))

    outcome = CliRunner().invoke(
        revenue_cli.revrec_app,
        ["run", str(scenario), "--format", "csv", "--out", str(tmp_path / "r.csv"), *given],
    )

    assert outcome.exit_code == 0, outcome.output
    assert asked == [expected]
    assert (tmp_path / "r.csv").read_text().count("\n") > 1
