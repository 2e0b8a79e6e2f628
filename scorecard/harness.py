"""The scorecard's harness: one local runtime with every webhook scheme, what rows send, what they read back.

A row is a function `run(stack, quick, seed) -> RowResult`. The runtime is started once for all rows
(moto's backends are process-global: a second runtime in this process would share their state).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pssync.local.runtime import LocalRuntime
from scorecard.context import SCORECARD_CONTEXT, write_secrets
from scorecard.senders import ROOT, Request

CAPTURE_RULE = "scorecard-capture-all"
CAPTURE_QUEUE = "scorecard-capture"
IDLE_POLL_S = 0.5


@dataclass
class RowResult:
    id: str
    name: str
    seed: int | None
    n: int
    wall_s: float
    passed: bool | None  # None: not implemented
    counts: dict[str, Any] = field(default_factory=dict)
    expectation: str = ""
    failures: list[str] = field(default_factory=list)  # the first examples of what went wrong
    notes: list[str] = field(default_factory=list)
    status: str = ""  # passed | failed | not implemented

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["status"] = self.status or (
            "not implemented" if self.passed is None else "passed" if self.passed else "failed"
        )
        return document


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds so far: this process (moto, pollers, API server, the rows' senders) and the Lambda
    containers (the fork server and its workers, live and exited)."""

    runtime_s: float
    containers_s: float

    @classmethod
    def now(cls) -> CpuTimes:
        return cls(time.process_time(), _descendants_cpu_s(os.getpid()))

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.runtime_s - other.runtime_s, self.containers_s - other.containers_s)


def _descendants_cpu_s(pid: int) -> float:
    """utime+stime of every live descendant, plus what each has reaped of its own exited children (Linux
    /proc; 0 elsewhere). A container the fork server has reaped counts through the fork server."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    pending = [pid]
    seen = set()
    while pending:
        parent = pending.pop()
        if parent in seen:
            continue
        seen.add(parent)
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in children:
                try:
                    stat = Path(f"/proc/{child}/stat").read_text()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
                total += sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime
                pending.append(int(child))
    return total


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class Stack:
    """The running runtime plus what the rows need: signed sending, snapshots, a capture of the bus."""

    def __init__(self, runtime: LocalRuntime, secrets: dict[str, dict[str, str]], lambda_log: Path) -> None:
        self.runtime = runtime
        self.secrets = secrets
        self.lambda_log = lambda_log
        self.http = httpx.Client(
            timeout=60, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )
        self._capture_lock = threading.Lock()
        self.captured: list[dict[str, Any]] = []  # every event published on the pssync bus, in drain order
        self.shared: dict[str, Any] = {}  # what a row leaves for a later one (R2's events for R3), by row id
        self._sqs = runtime.clients["sqs"]
        self._install_capture()

    # --- sending -------------------------------------------------------------------------------

    def secret(self, source: str) -> str:
        return self.secrets[source]["current"]

    def send(self, request: Request) -> Answer:
        # Not httpx's own Content-Type: only the headers the request lists (a missing one stays missing).
        try:
            response = self.http.request(
                request.method,
                self.runtime.api.url + request.target(),
                content=request.body if request.method != "HEAD" else None,
                headers=request.headers,
            )
        except httpx.TransportError as error:  # a reset or a timeout: no answer at all (status 0)
            return Answer(0, repr(error).encode())
        return Answer(response.status_code, response.content)

    # --- observation ---------------------------------------------------------------------------

    def _install_capture(self) -> None:
        """A rule of our own on the pssync bus to a queue of our own: every delivery the bus makes."""
        events = self.runtime.clients["events"]
        bus = self.runtime.function_env("EVENT_BUS_NAME")
        self.capture_url = self._sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.capture_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name=CAPTURE_RULE, EventBusName=bus, EventPattern=json.dumps({"source": [{"exists": True}]})
        )
        events.put_targets(Rule=CAPTURE_RULE, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])

    def drain_capture(self) -> list[dict[str, Any]]:
        """The events published since the last drain; kept in `captured` for every row."""
        with self._capture_lock:
            new: list[dict[str, Any]] = []
            while True:
                messages = self._sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get(
                    "Messages", []
                )
                if not messages:
                    break
                for message in messages:
                    new.append(json.loads(message["Body"]))
                self._sqs.delete_message_batch(
                    QueueUrl=self.capture_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
            self.captured.extend(new)
            return new

    def capture_depth(self) -> int:
        return self._queue_backlog(self.capture_url)

    def table_counts(self) -> dict[str, int]:
        ddb = self.runtime.clients["dynamodb"]
        counts = {}
        for name in self.runtime.resources.tables.values():
            total = 0
            for page in ddb.get_paginator("scan").paginate(TableName=name, Select="COUNT"):
                total += int(page["Count"])
            counts[name] = total
        return counts

    def object_counts(self) -> dict[str, int]:
        s3 = self.runtime.clients["s3"]
        counts = {}
        for name in self.runtime.resources.buckets.values():
            total = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                total += int(page.get("KeyCount", 0))
            counts[name] = total
        return counts

    def execution_count(self) -> int:
        sfn = self.runtime.clients["stepfunctions"]
        total = 0
        for arn in self.runtime.resources.state_machines.values():
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                total += len(page["executions"])
        return total

    def snapshot(self) -> dict[str, Any]:
        """What a request could have written: items, objects, queued messages, executions, bus deliveries."""
        return {
            "dynamodb_items": self.table_counts(),
            "s3_objects": self.object_counts(),
            "sqs_messages": {q.name: q.visible + q.in_flight for q in self.runtime.queue_depths()},
            "executions": self.execution_count(),
            "bus_deliveries": self.capture_depth(),
        }

    def running_executions(self) -> int:
        sfn = self.runtime.clients["stepfunctions"]
        total = 0
        for arn in self.runtime.resources.state_machines.values():
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=arn, statusFilter="RUNNING"
            ):
                total += len(page["executions"])
        return total

    def wait_idle(self, timeout: float = 600.0, settle: float = 1.0, inboxes: tuple[str, ...] = ()) -> None:
        """Until the inboxes (those whose name holds one of `inboxes`, default all) are drained and no
        execution runs, for `settle` seconds in a row. A row names its own inboxes, so a queue still
        retrying what an earlier row left (a failure it reported) does not hold it up. Polled once a
        second, reading only those inboxes: every poll is served by the runtime the row is measuring."""
        urls = [
            m.queue_url
            for m in self.runtime.resources.mappings
            if not inboxes or any(part in m.queue_url.rsplit("/", 1)[-1] for part in inboxes)
        ]
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = any(self._queue_backlog(url) for url in urls) or self.running_executions()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(IDLE_POLL_S)
        raise TimeoutError(f"local runtime still busy after {timeout} s")

    def _queue_backlog(self, url: str) -> int:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def wait_for_execution(self, machine_arn: str, name: str, timeout: float = 900.0) -> None:
        """Until the execution `name` of the state machine has ended (or `timeout`, a hang guard: a row's
        checks report an execution that never ended). Not started yet is waited for too: its event may
        still be between the bus and the inbox's starter. The runtime wakes the wait when the interpreter
        ends the execution: polling DescribeExecution from every job cost the runtime 13 % of its CPU."""
        arn = machine_arn.replace(":stateMachine:", ":execution:") + ":" + name
        self.runtime.wait_for_execution(arn, timeout=timeout)

    def state_machine_arn(self, fragment: str) -> str:
        matches = [
            arn for logical, arn in self.runtime.resources.state_machines.items() if fragment in logical
        ]
        if len(matches) != 1:
            raise LookupError(
                f"{len(matches)} state machines match {fragment!r}: {self.runtime.resources.state_machines}"
            )
        return matches[0]

    def executions_of(self, fragment: str) -> list[dict[str, Any]]:
        sfn = self.runtime.clients["stepfunctions"]
        found: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.state_machine_arn(fragment)
        ):
            found.extend(page["executions"])
        return found

    def queue_messages(self, role: str) -> int:
        return sum(d.visible + d.in_flight for d in self.runtime.queue_depths() if d.role == role)


@contextmanager
def running_stack(workdir: Path | None = None, *, retry_time_scale: float = 0.01) -> Iterator[Stack]:
    """A LocalRuntime built with SCORECARD_CONTEXT, fresh secrets and a Lambda log of its own."""
    workdir = workdir or ROOT / "build" / "scorecard"
    workdir.mkdir(parents=True, exist_ok=True)
    secrets_file = workdir / "secrets.json"
    lambda_log = workdir / "lambda.log"
    lambda_log.write_text("")  # this run's log only: R8 greps it
    write_secrets(secrets_file)  # fresh for every run; the runtime reads them into local_secrets
    runtime = LocalRuntime(
        ROOT,
        retry_time_scale=retry_time_scale,
        secrets_file=secrets_file,
        lambda_log=lambda_log,
        context=SCORECARD_CONTEXT,
    )
    with runtime:
        stack = Stack(runtime, runtime.local_secrets, lambda_log)
        try:
            yield stack
        finally:
            stack.http.close()
