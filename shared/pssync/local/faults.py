"""Fault injection for the local runtime that crosses into the Lambda containers, at the AWS SDK boundary.

Handlers run in worker processes, so a mock in the runtime's process cannot reach them. Instead the host
asks its `fault_plan` (a callable set by a test or the scorecard, in the runtime's process) about every
invocation, before a container is chosen: `plan(function_name, event)` returns a directive or None. A
directive travels with the event to the container, which arms it for that one invocation only: the
handler's AWS SDK calls go through `botocore.client.BaseClient._make_api_call`, patched once per container,
and the first call the directive matches gets the fault. A directive is a JSON object:

- `service` / `operation`: the botocore service name (`dynamodb`, `events`, `s3`, `secretsmanager`, ...) and
  the operation (`PutItem`, `PutEvents`, ...); `params`: top-level parameters that must be equal
  (`{"TableName": ...}`); `contains`: strings that must all occur in the call's parameters (JSON);
- `when`: `before` the call is made (nothing sent) or `after` it succeeded (its side effect is done);
- `action`: `hang` (sleep until the host kills the container past the function's timeout: the handler
  never returns), `error` (raise a botocore `ClientError` with `code`, `status` and `message`: what the SDK
  raises once its own retries are exhausted), `timeout` (raise botocore's `ReadTimeoutError`: no answer
  in time) or `exit` (the container process dies at once: a crash, reported as `Runtime.ExitError`);
- `times`: how many matching calls of the invocation get the fault (default 1);
- `report_to`: a file the container appends one JSON line to when the fault fires, before it acts
  (`{"key", "request_id", "label", "pid"}`): the host stamps `request_id`, `KeyedFaults` stamps `key`.

A directive is handed out when an invocation arrives, before it has a container; the handler may reach the
matching call much later (a cold start after a kill, a busy pool) or never (an earlier answer, a kill
before that point). So "sent" says nothing about the handler's state: whoever needs to know that the
fault point was reached reads the reports (`KeyedFaults.fired`), not the plan's log. Nothing here is used
unless a plan is set: `LambdaHost.fault_plan` is None by default.

The worker side imports botocore only when a directive arrives (containers preload it anyway).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Directive = dict[str, Any]
FaultPlan = Callable[[str, Any], Directive | None]  # (function name, event) -> directive for this invoke

ACTIONS = ("hang", "error", "timeout", "exit")
HANG_SECONDS = 3600.0  # far past any function timeout: the host kills the container first


# --- the container's side --------------------------------------------------------------------------------

_armed: Directive | None = None
_remaining = 0
_installed = False


def arm(directive: Directive) -> None:
    """Arms `directive` for the invocation about to run in this container (worker process)."""
    global _armed, _remaining
    if directive.get("action") not in ACTIONS:
        raise ValueError(f"unknown fault action {directive.get('action')!r}; one of {ACTIONS}")
    _install()
    _armed = directive
    _remaining = int(directive.get("times", 1))


def disarm() -> None:
    global _armed, _remaining
    _armed = None
    _remaining = 0


def matches(directive: Directive, service: str, operation: str, params: dict[str, Any]) -> bool:
    if directive.get("service") not in (None, service) or directive.get("operation") not in (None, operation):
        return False
    for name, value in (directive.get("params") or {}).items():
        if params.get(name) != value:
            return False
    wanted = directive.get("contains") or []
    if wanted:
        text = json.dumps(params, default=str)
        return all(part in text for part in wanted)
    return True


def _install() -> None:
    global _installed
    if _installed:
        return
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        global _remaining
        directive = _armed
        if (
            directive is None
            or _remaining <= 0
            or not matches(directive, self.meta.service_model.service_name, operation_name, api_params)
        ):
            return original(self, operation_name, api_params)
        _remaining -= 1
        if directive.get("when", "before") == "before":
            _act(directive, operation_name)
        result = original(self, operation_name, api_params)
        _act(directive, operation_name)
        return result

    BaseClient._make_api_call = _make_api_call
    _installed = True


def _act(directive: Directive, operation_name: str) -> None:
    action = directive["action"]
    label = (
        directive.get("label") or f"{directive['action']} {directive.get('when', 'before')} {operation_name}"
    )
    sys.stderr.write(f"[FAULT] injected: {label}\n")
    sys.stderr.flush()
    report_fired(directive, label)
    if action == "hang":
        time.sleep(HANG_SECONDS)
    elif action == "exit":
        sys.stdout.flush()
        os._exit(1)
    elif action == "timeout":
        from botocore.exceptions import ReadTimeoutError

        raise ReadTimeoutError(endpoint_url=f"injected://{operation_name}")
    else:
        from botocore.exceptions import ClientError

        status = int(directive.get("status", 500))
        raise ClientError(
            {
                "Error": {
                    "Code": str(directive.get("code", "InternalServerError")),
                    "Message": str(directive.get("message", "injected fault")),
                },
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            operation_name,
        )


def report_fired(directive: Directive, label: str) -> None:
    """One line in the directive's `report_to` file, if it names one: written before the fault acts (a hang
    never returns, an exit never flushes), as one O_APPEND write so containers never interleave lines."""
    path = directive.get("report_to")
    if not path:
        return
    line = json.dumps(
        {
            "key": directive.get("key"),
            "request_id": directive.get("request_id"),
            "label": label,
            "pid": os.getpid(),
        }
    )
    descriptor = os.open(str(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


# --- the runtime's side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injected:
    function: str
    key: str
    directive: Directive


@dataclass(frozen=True)
class Fired:
    """A fault that fired in a container: the matching call was reached (read from `report_to`)."""

    key: str
    request_id: str
    label: str
    pid: int


@dataclass
class KeyedFaults:
    """A fault plan: for each key (a delivery id, an event id) the directives its next invocations get,
    one per invocation, in order; the log says what was sent where. `key_of(function, event)` finds the key
    (None: not ours). With `report_to`, every directive sent asks its container to report when it fires:
    `fired(key)`. Thread-safe: the host invokes from many threads."""

    key_of: Callable[[str, Any], str | None]
    report_to: Path | None = None
    queued: dict[str, list[Directive]] = field(default_factory=dict)
    log: list[Injected] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, *directives: Directive) -> None:
        with self._lock:
            self.queued.setdefault(key, []).extend(directives)

    def __call__(self, function: str, event: Any) -> Directive | None:
        key = self.key_of(function, event)
        if key is None:
            return None
        with self._lock:
            pending = self.queued.get(key)
            if not pending:
                return None
            directive = {**pending.pop(0), "key": key}
            if self.report_to is not None:
                directive["report_to"] = str(self.report_to)
            self.log.append(Injected(function, key, directive))
            return directive

    def sent_to(self, key: str) -> int:
        """How many directives were handed to invocations of `key` so far (not: how many fired)."""
        with self._lock:
            return sum(1 for injected in self.log if injected.key == key)

    def fired(self, key: str | None = None) -> list[Fired]:
        """The faults of `key` (default: every key) whose containers reported reaching the matching call."""
        if self.report_to is None:
            raise ValueError("this plan was made without report_to: its containers report nothing")
        try:
            text = self.report_to.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        found = []
        for line in text.split("\n")[:-1]:  # complete lines only: the last may still be being written
            document = json.loads(line)
            if key is None or document["key"] == key:
                found.append(
                    Fired(document["key"], str(document["request_id"]), document["label"], document["pid"])
                )
        return found

    def pending(self, key: str | None = None) -> int:
        """Directives not handed out yet, for `key` or in all."""
        with self._lock:
            if key is not None:
                return len(self.queued.get(key, []))
            return sum(len(v) for v in self.queued.values())


def proxy_header(event: Any, name: str) -> str | None:
    """A header of an API Gateway proxy event, case-insensitively (None if absent or not such an event)."""
    if not isinstance(event, dict):
        return None
    wanted = name.lower()
    for header, value in (event.get("headers") or {}).items():
        if str(header).lower() == wanted:
            return str(value)
    return None
