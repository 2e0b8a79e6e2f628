"""The engine run contract by contract (or shard by shard) against one portfolio frame.

A contract's figures depend on nothing of another contract except the frame every contract is computed
against: the periods (the horizon spans the whole scenario, so a contract's schedule has a line for every
period of the portfolio), as_of and its period, the period closes, and the header the reports read (FX
rates, functional currencies, FX policy). Given the same frame, any partition of the contracts into shards
gives the same outcomes, so the same schedule, journals and balances (tests/unit/revenue/
test_revenue_sharding.py); the close's Distributed Map relies on it.

Entry points:
- `frame_for(scenario, as_of)`: the frame of a whole, already validated scenario (engine functions).
- `frame_from_index(index, as_of)`: the frame from a file's pre-scan (scenario_stream.py), checked against the
  engine's own functions on every contract as it is run (`FrameCheck`).
- `run_shard(frame, shard)`: an EngineRun of the shard's contracts; `stream_runs(index, frame)`: one EngineRun
  per contract of a file, each dropped by the caller before the next is computed.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from pssync.revenue import engine
from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.knowledge import close_days, knowledge_cut_offs
from pssync.revenue.models import PeriodClose, Scenario
from pssync.revenue.periods import PeriodIndex, periods_covering
from pssync.revenue.scenario_stream import ScenarioIndex

# The header fields every shard is computed and reported with (FX, calendar, policies).
_HEADER_FIELDS = ("as_of", "calendar", "progress_rounding", "functional_currency", "fx_rates", "fx_policy")


@dataclass(slots=True)
class PortfolioFrame:
    header: Scenario  # calendar, policies, FX of the whole scenario
    as_of: date
    first: date
    last: date
    periods: PeriodIndex
    as_of_index: int
    closed_on: list[date | None]
    engine_frame: engine._Frame
    as_of_defaulted: bool  # as_of is the latest day a fact was recorded (neither given nor in the file)


def _frame(
    header: Scenario, closes: list[PeriodClose], as_of: date, first: date, last: date, as_of_defaulted: bool
) -> PortfolioFrame:
    periods = PeriodIndex(periods_covering(header.calendar, first, last))
    period_count = len(periods.periods)
    close_day = close_days(closes, periods, as_of)
    knowledge = knowledge_cut_offs(close_day, as_of.toordinal())
    engine_frame = engine._Frame(
        as_of,
        periods,
        knowledge,
        sorted(set(knowledge)),
        header.progress_rounding,
        array("q", [0] * period_count),
    )
    return PortfolioFrame(
        header=header,
        as_of=as_of,
        first=first,
        last=last,
        periods=periods,
        as_of_index=min(periods.index_of(as_of), period_count - 1),
        closed_on=[date.fromordinal(c) if c is not None else None for c in close_day],
        engine_frame=engine_frame,
        as_of_defaulted=as_of_defaulted,
    )


def frame_for(scenario: Scenario, as_of: date | None = None) -> PortfolioFrame:
    """The frame `engine.run(scenario, as_of)` computes every contract against."""
    defaulted = not (as_of or scenario.as_of)
    as_of = as_of or scenario.as_of or engine.default_as_of(scenario)
    first, last = engine._horizon(scenario, as_of)
    closes = [e for e in scenario.events if isinstance(e, PeriodClose)]
    return _frame(scenario, closes, as_of, first, last, defaulted)


def frame_from_index(index: ScenarioIndex, as_of: date | None = None) -> PortfolioFrame:
    header = index.header_scenario()
    horizon = index.horizon
    if horizon.first is None or horizon.last is None or horizon.latest_known is None:
        raise AssertionError("a scenario with a contract has a horizon")
    defaulted = not (as_of or header.as_of)
    as_of = as_of or header.as_of or horizon.latest_known
    closes = [e for e in header.events if isinstance(e, PeriodClose)]
    try:
        return _frame(header, closes, as_of, horizon.first, max(horizon.last, as_of), defaulted)
    except RevenueRuleError as error:
        raise _in_whole_file(error, [], index.close_indexes) from None


def run_shard(frame: PortfolioFrame, shard: Scenario) -> EngineRun:
    """The engine run of the shard's contracts against the portfolio frame (contract id order)."""
    with engine.gc_paused():
        versions, events, billing = engine._by_contract(shard)
        positions = engine.billing_positions(shard)
        outcomes: list[ContractOutcome] = []
        for contract_id in sorted(versions):
            outcome = engine._contract_outcome(
                frame.engine_frame,
                versions[contract_id],
                events.get(contract_id, []),
                billing.get(contract_id, []),
                positions,
            )
            if outcome is not None:  # None: not known yet at as_of
                outcomes.append(outcome)
    reported_with = shard.model_copy(update={name: getattr(frame.header, name) for name in _HEADER_FIELDS})
    return EngineRun(reported_with, frame.as_of, frame.periods, frame.as_of_index, frame.closed_on, outcomes)


class FrameCheck:
    """Holds the pre-scan's frame to the engine's own horizon and default as_of, contract by contract.

    Each contract's horizon must lie inside the frame; at the end the contracts' (and closes') extremes must
    be the frame's. A pre-scan that drifted from the engine (a new dated pattern, say) then fails the run
    instead of shifting periods or as_of."""

    def __init__(self, frame: PortfolioFrame) -> None:
        self.frame = frame
        closes = [e for e in frame.header.events if isinstance(e, PeriodClose)]
        self.first: date | None = None
        self.last = max([frame.as_of, *(c.on for c in closes)])
        self.latest_known: date | None = max((c.known_from for c in closes), default=None)

    def contract(self, shard: Scenario) -> None:
        first, last = engine._horizon(shard, self.frame.as_of)
        known = engine.default_as_of(shard)
        if first < self.frame.first or last > self.frame.last:
            raise RuntimeError(
                f"pre-scan horizon {self.frame.first}..{self.frame.last} does not hold contract "
                f"{shard.contracts[0].contract_id} ({first}..{last}): the pre-scan drifted from the engine"
            )
        self.first = first if self.first is None else min(self.first, first)
        self.last = max(self.last, last)
        self.latest_known = known if self.latest_known is None else max(self.latest_known, known)

    def extremes(self) -> tuple[date | None, date, date | None]:
        return self.first, self.last, self.latest_known

    def merge(self, first: date | None, last: date, latest_known: date | None) -> None:
        """Fold in what another process's check saw of its contracts."""
        if first is not None:
            self.first = first if self.first is None else min(self.first, first)
        self.last = max(self.last, last)
        if latest_known is not None:
            self.latest_known = (
                latest_known if self.latest_known is None else max(self.latest_known, latest_known)
            )

    def finish(self) -> None:
        frame = self.frame
        if (self.first, self.last) != (frame.first, frame.last) or (
            frame.as_of_defaulted and self.latest_known != frame.as_of
        ):
            raise RuntimeError(
                f"pre-scan frame {frame.first}..{frame.last} as of {frame.as_of} differs from the engine's "
                f"{self.first}..{self.last} as of {self.latest_known}: the pre-scan drifted from the engine"
            )


def stream_runs(
    index: ScenarioIndex, frame: PortfolioFrame, contract_ids: list[str], check: FrameCheck
) -> Iterator[EngineRun]:
    """One EngineRun per contract (give them in id order for the whole run's order), each contract's horizon
    held to the frame by `check`; the caller calls check.finish() once every contract of the file has run."""
    for contract_id in contract_ids:
        shard, spans = index.contract_scenario(contract_id)
        check.contract(shard)
        try:
            run = run_shard(frame, shard)
        except RevenueRuleError as error:
            raise _in_whole_file(error, spans.versions, spans.events) from None
        yield run


def _in_whole_file(error: RevenueRuleError, versions: list[int], events: list[int]) -> RevenueRuleError:
    """The error with contracts[j] / events[j] of a shard renamed to their position in the whole file."""
    field = ScenarioIndex.global_path(error.field, versions, events) if error.field else None
    return RevenueRuleError(ScenarioIndex.global_path(error.reason, versions, events), field)
