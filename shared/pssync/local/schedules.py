"""Schedule rules with Lambda targets: moto stores them but never fires them, so the runtime does.

`Schedules.trigger(rule_logical_id_or_function)` invokes the target function once with a scheduled event
(what EventBridge sends), for tests and the CLI. `Schedules.start_ticker()` fires each rule at its rate in
a background thread; it is off unless asked for, so the demo and the tests see no surprise invocations.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pssync.local.intrinsics import ACCOUNT_ID, REGION
from pssync.local.lambda_host import LambdaHost

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class ScheduledTarget:
    rule_logical_id: str
    expression: str
    function_name: str

    @property
    def period_seconds(self) -> float | None:
        match = _RATE.match(self.expression)
        if match is None:
            return None  # cron(...) expressions are not ticked locally; trigger them explicitly
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


class Schedules:
    def __init__(self, targets: list[ScheduledTarget], host: LambdaHost, stop: threading.Event) -> None:
        self.targets = targets
        self._host = host
        self._stop = stop
        self._threads: list[threading.Thread] = []
        self.busy = threading.Event()

    def find(self, rule_or_function: str) -> ScheduledTarget:
        for target in self.targets:
            if rule_or_function in (target.rule_logical_id, target.function_name) or (
                target.rule_logical_id.startswith(rule_or_function)
            ):
                return target
        known = [t.rule_logical_id for t in self.targets]
        raise KeyError(f"no schedule rule or scheduled function {rule_or_function!r}; known: {known}")

    def trigger(self, rule_or_function: str) -> tuple[Any, bool]:
        """Invoke the scheduled function once, synchronously: (result or error document, errored)."""
        target = self.find(rule_or_function)
        self.busy.set()
        try:
            return self._host.invoke(target.function_name, scheduled_event(target.rule_logical_id))
        finally:
            self.busy.clear()

    def start_ticker(self, period_override_seconds: float | None = None) -> None:
        for target in self.targets:
            period = period_override_seconds or target.period_seconds
            if period is None:
                continue
            thread = threading.Thread(
                target=self._tick,
                args=(target, period),
                name=f"schedule-{target.rule_logical_id}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def _tick(self, target: ScheduledTarget, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.trigger(target.rule_logical_id)
            except Exception:  # keep ticking, as EventBridge would  # noqa: S112
                continue

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)
