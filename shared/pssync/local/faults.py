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
- `times`: how many matching calls of the invocation get the fault (default 1).

An armed directive that matches no call leaves the invocation alone (the container reports which ones
fired in nothing but its behaviour: the host records the directive it sent, `FaultLog`). Nothing here is
used unless a plan is set: `LambdaHost.fault_plan` is None by default.

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


# --- the runtime's side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injected:
    function: str
    key: str
    directive: Directive


@dataclass
class KeyedFaults:
    """A fault plan: for each key (a delivery id, an event id) the directives its next invocations get,
    one per invocation, in order; the log says what was sent where. `key_of(function, event)` finds the key
    (None: not ours). Thread-safe: the host invokes from many threads."""

    key_of: Callable[[str, Any], str | None]
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
            directive = pending.pop(0)
            self.log.append(Injected(function, key, directive))
            return directive

    def sent_to(self, key: str) -> int:
        """How many directives were handed to invocations of `key` so far."""
        with self._lock:
            return sum(1 for injected in self.log if injected.key == key)

    def pending(self) -> int:
        with self._lock:
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
