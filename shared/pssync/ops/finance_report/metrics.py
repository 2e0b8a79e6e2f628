"""The seed's business metrics, computed from what the business table holds (not from CloudWatch), so the
report shows them for any cut-off and on the local runtime too. Each metric states its basis: the stored
instants differ from the emitted metric's where the event's own time is not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median

from pssync.observability import BusinessMetric
from pssync.ops.finance_report.model import Metric, OpenException
from pssync.ports import StoredVersion, VersionStore
from pssync.workflows.milestones import MILESTONE_LEDGER
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from pssync.workflows.time_approval import TIME_LEDGER


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _seconds_between(earlier: str, later: str) -> float:
    return (_instant(later) - _instant(earlier)).total_seconds()


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: every value shown is one that was measured)."""
    ordered = sorted(values)
    rank = max(int(-(-share * len(ordered) // 1)), 1)  # ceil(share * n), at least the first
    return ordered[min(rank, len(ordered)) - 1]


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _spread(name: str, samples: list[float], basis: str) -> Metric:
    if not samples:
        return Metric(name=name, value="no samples", unit="seconds", samples=0, basis=basis)
    value = f"median {duration(median(samples))}, p95 {duration(percentile(samples, 0.95))}"
    return Metric(name=name, value=value, unit="seconds", samples=len(samples), basis=basis)


@dataclass
class MetricSamples:
    """Samples collected contract by contract (through the same as-of view the figures are read with)."""

    activation: list[float] = field(default_factory=list)
    propagation: list[float] = field(default_factory=list)
    billable_lines: int = 0
    billable_synced: int = 0
    milestone_cycles: list[float] = field(default_factory=list)

    def add(self, known: VersionStore, contract_id: str) -> None:
        contracts = known.history(CONTRACT, contract_id)
        schedules = known.history(REVENUE_SCHEDULE, contract_id)
        for version in contracts:
            first_schedule = next(
                (s for s in schedules if int(s.body["contract_version"]) == version.version), None
            )
            if first_schedule is None:
                continue  # still propagating (or parked) at the cut-off
            lag = _seconds_between(version.recorded_at, first_schedule.recorded_at)
            (self.activation if version.version == 1 else self.propagation).append(lag)
        self._time(known.history(TIME_LEDGER, contract_id))
        self.milestone_cycles += [
            float(v.body["cycle_seconds"])
            for v in known.history(MILESTONE_LEDGER, contract_id)
            if v.body.get("kind") == "released" and v.body.get("cycle_seconds") is not None
        ]

    def _time(self, ledger: list[StoredVersion]) -> None:
        billable = {v.version for v in ledger if v.body.get("kind") == "line" and v.body.get("billing_term")}
        sent = {int(v.body["line_version"]) for v in ledger if v.body.get("kind") == "sent"}
        self.billable_lines += len(billable)
        self.billable_synced += len(billable & sent)

    def metrics(self, exceptions: Sequence[OpenException]) -> list[Metric]:
        synced = (
            f"{100 * self.billable_synced / self.billable_lines:.1f} % ({self.billable_synced} of "
            f"{self.billable_lines})"
            if self.billable_lines
            else "no billable time"
        )
        ages = [e.age_seconds for e in exceptions if e.age_seconds is not None]
        return [
            _spread(
                BusinessMetric.ACTIVATION_TIME.value,
                self.activation,
                "contract version 1 recorded -> its revenue schedule recorded (the last step after the PSA "
                "project and ERP billing schedule); the emitted metric starts at the CRM's closed-won "
                "instant, which the store does not keep",
            ),
            _spread(
                BusinessMetric.AMENDMENT_PROPAGATION_LAG.value,
                self.propagation,
                "contract version N > 1 recorded -> the revenue schedule remeasured on it recorded",
            ),
            Metric(
                name=BusinessMetric.BILLABLE_TIME_SYNCED.value,
                value=synced,
                unit="percent",
                samples=self.billable_lines,
                basis="approved billable time lines in the time ledger that have a 'sent' version (the ERP "
                "was told); a line without one is still in flight or parked",
            ),
            _spread(
                BusinessMetric.MILESTONE_TO_INVOICE_CYCLE.value,
                self.milestone_cycles,
                "milestone completed in the PSA -> invoice released, as the milestone ledger recorded it",
            ),
            Metric(
                name=BusinessMetric.DEFERRED_REVENUE_VARIANCE.value,
                value="see the reconciliation section",
                unit="currency",
                samples=0,
                basis="needs the ERP's deferred revenue: pssync's side is the contract liability above",
            ),
            _spread(
                "ExceptionAge",
                ages,
                "open messages in the exceptions queue and dead-letter queues, since SQS first received "
                "them; "
                "by stage and cause in the exceptions section",
            ),
        ]
