"""A scenario file read contract by contract: a pre-scan indexes it, then each contract is validated alone.

`Scenario.model_validate_json` of a whole portfolio builds every contract, obligation and event at once
(10,000 reference contracts: about 4 s and most of the peak memory). Here a pre-scan walks the top-level
object with the standard library's C decoder (`json.JSONDecoder.raw_decode`, element by element: each
element is decoded to a small dict, read for the few facts the run needs across contracts, then dropped) and
keeps only the text span of each element. Each contract's versions and events are then validated as one
small scenario (the same pydantic models, so the same rules and messages), run, written and dropped.

What the pre-scan reads across contracts (the only cross-contract state of the engine):
- the period horizon: earliest start to latest dated fact of any contract or event (`engine._horizon`);
- the default as_of: the latest day any fact was recorded (`engine.default_as_of`);
- period closes, the calendar, policies, functional currencies and FX rates (the header);
- event ids unique across the scenario and events naming a known contract (`Scenario._references`).
`streaming.py` checks the pre-scan's horizon and as_of against the engine's own functions on every validated
contract, so a pre-scan that drifted from the engine fails loudly instead of shifting periods.

Error paths name the position in the whole file (contracts[1234].fixed_price), as the whole-file parse does.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pssync.revenue.models import (
    ContractDocument,
    Event,
    MaterialRightPattern,
    PeriodClose,
    PointInTimePattern,
    RatablePattern,
    RevenueContract,
    Scenario,
)

# What the pre-scan keeps of each element (the decoded dict is dropped at once):
_ContractFact = tuple[
    str, date, date | None, list[date], list[date]
]  # id, effective, recorded, starts, dates
_EventFact = tuple[str, str, str | None, date, date | None]  # type, id, contract id, on, recorded
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_INDEXED_PATH = re.compile(r"\b(contracts|events)\[(\d+)\]")
_EVENT = TypeAdapter(Event)


class ScenarioInvalid(ValueError):
    """The scenario file is not a valid scenario; `problems` are (field path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


class StreamingUnsupported(Exception):
    """The file's shape is outside what the pre-scan reads (e.g. the top level is not an object): the caller
    falls back to the whole-file parse, whose messages say what is wrong."""


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(scenario)"


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    return [(field_path(tuple(d["loc"])), d["msg"]) for d in error.errors(include_url=False)]


@dataclass(slots=True)
class Horizon:
    """The facts of the cross-contract frame, accumulated element by element."""

    first: date | None = None
    last: date | None = None
    latest_known: date | None = None  # the default as_of

    def dated(self, day: date) -> None:
        self.last = day if self.last is None or day > self.last else self.last

    def started(self, day: date) -> None:
        self.first = day if self.first is None or day < self.first else self.first

    def known(self, day: date) -> None:
        self.latest_known = day if self.latest_known is None or day > self.latest_known else self.latest_known


class Spans:
    """(start, end) offsets of the elements of one array, in two integer arrays: 16 bytes an element, where a
    list of tuples takes about 100 (it matters at 100,000 contracts and their events)."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: array[int] = array("q")
        self.ends: array[int] = array("q")

    def append(self, span: tuple[int, int]) -> None:
        self.starts.append(span[0])
        self.ends.append(span[1])

    def __getitem__(self, index: int) -> tuple[int, int]:
        return self.starts[index], self.ends[index]

    def __len__(self) -> int:
        return len(self.starts)


@dataclass(slots=True)
class ContractSpans:
    versions: list[int] = field(default_factory=list)  # indexes into contracts[]
    events: list[int] = field(default_factory=list)  # indexes into events[]


@dataclass(slots=True)
class ScenarioIndex:
    """Where each element of the file is, grouped by contract, plus the header and the horizon."""

    text: str
    header: dict[str, tuple[int, int]]  # top-level key -> span of its raw value (not contracts / events)
    contract_spans: Spans
    event_spans: Spans
    by_contract: dict[str, ContractSpans]
    close_indexes: list[int]  # events[] positions of period closes
    horizon: Horizon
    # A scenario of header defaults the contracts' scenarios are copied from (built by the first one): this
    # run's own, so nothing of it outlives the run.
    defaults: Scenario | None = None

    def raw(self, span: tuple[int, int]) -> str:
        return self.text[span[0] : span[1]]

    def header_scenario(self) -> Scenario:
        """The header validated as a scenario holding the first contract version and the period closes."""
        parts = [f'"{key}":{self.raw(span)}' for key, span in self.header.items()]
        contracts = self.raw(self.contract_spans[0])
        events = ",".join(self.raw(self.event_spans[i]) for i in self.close_indexes)
        document = "{" + ",".join([*parts, f'"contracts":[{contracts}]', f'"events":[{events}]']) + "}"
        try:
            return Scenario.model_validate_json(document)
        except ValidationError as error:
            raise ScenarioInvalid(
                [(self.global_path(path, [0], self.close_indexes), m) for path, m in _problems(error)]
            ) from None

    def contract_ids(self) -> list[str]:
        return sorted(self.by_contract)

    def contract_scenario(self, contract_id: str) -> tuple[Scenario, ContractSpans]:
        """One contract's versions and events validated as a scenario (header fields left at defaults)."""
        spans = self.by_contract[contract_id]
        contracts = ",".join(self.raw(self.contract_spans[i]) for i in spans.versions)
        events = ",".join(self.raw(self.event_spans[i]) for i in spans.events)
        text = f'{{"contracts":[{contracts}],"events":[{events}]}}'
        try:
            document = ContractDocument.model_validate_json(text)
        except ValidationError as error:
            raise ScenarioInvalid(
                [(self.global_path(p, spans.versions, spans.events), m) for p, m in _problems(error)]
            ) from None
        # ContractDocument ran every rule Scenario runs on these two fields (the same field types and the same
        # check_references), so the copy holds a scenario as validated, with the header's default values.
        if self.defaults is None:
            self.defaults = Scenario(contracts=document.contracts)
        update = {"contracts": document.contracts, "events": document.events}
        return self.defaults.model_copy(update=update), spans

    @staticmethod
    def global_path(path: str, versions: list[int], events: list[int]) -> str:
        """contracts[j] / events[j] of a contract's own scenario as the position in the whole file."""

        def whole(match: re.Match[str]) -> str:
            positions = versions if match.group(1) == "contracts" else events
            j = int(match.group(2))
            return f"{match.group(1)}[{positions[j] if j < len(positions) else j}]"

        return _INDEXED_PATH.sub(whole, path)


# --- the pre-scan -----------------------------------------------------------------------------------------


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder()

    def skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.text, pos)
        return match.end() if match else pos

    def expect(self, pos: int, char: str) -> int:
        pos = self.skip(pos)
        if self.text[pos : pos + 1] != char:
            raise StreamingUnsupported(f"expected {char!r} at offset {pos}")
        return pos + 1

    def value(self, pos: int) -> tuple[Any, int, int]:
        """(decoded value, start, end) of the JSON value at pos."""
        start = self.skip(pos)
        decoded, end = self.decoder.raw_decode(self.text, start)
        return decoded, start, end

    def array(self, pos: int) -> Iterator[tuple[Any, int, int]]:
        pos = self.expect(pos, "[")
        pos = self.skip(pos)
        if self.text[pos : pos + 1] == "]":
            self.end = pos + 1
            return
        while True:
            decoded, start, end = self.value(pos)
            yield decoded, start, end
            pos = self.skip(end)
            char = self.text[pos : pos + 1]
            if char == "]":
                self.end = pos + 1
                return
            if char != ",":
                raise StreamingUnsupported(f"expected ',' or ']' at offset {pos}")
            pos += 1


def index_scenario(text: str) -> ScenarioIndex:
    """Walk the top-level object once. Raises json.JSONDecodeError for text that is not JSON, ScenarioInvalid
    for a cross-contract rule broken (duplicate event id, event of an unknown contract, no contract),
    StreamingUnsupported for a shape the walker does not read."""
    walker = _Walker(text)
    pos = walker.expect(0, "{")
    header: dict[str, tuple[int, int]] = {}
    contract_spans, event_spans = Spans(), Spans()
    collected = _Collected()
    seen_keys: set[str] = set()
    pos = walker.skip(pos)
    if text[pos : pos + 1] == "}":
        raise StreamingUnsupported("empty scenario")
    while True:
        key, _, end = walker.value(pos)
        if not isinstance(key, str) or key in seen_keys:
            raise StreamingUnsupported("object keys must be distinct strings")
        seen_keys.add(key)
        pos = walker.expect(end, ":")
        if key in ("contracts", "events"):
            is_contracts = key == "contracts"
            spans = contract_spans if is_contracts else event_spans
            for decoded, start, end in walker.array(pos):
                # Its facts are folded in at once: nothing of the decoded element outlives this step.
                if is_contracts:
                    collected.contract(len(spans), _contract_fact(decoded, len(spans), text, start, end))
                else:
                    collected.event(len(spans), _event_fact(decoded, len(spans), text, start, end))
                spans.append((start, end))
            pos = walker.end
        else:
            _, start, end = walker.value(pos)
            header[key] = (start, end)
            pos = end
        pos = walker.skip(pos)
        char = text[pos : pos + 1]
        if char == "}":
            break
        if char != ",":
            raise StreamingUnsupported(f"expected ',' or '}}' at offset {pos}")
        pos += 1
    if text[walker.skip(pos + 1) :]:
        raise StreamingUnsupported("trailing data after the scenario object")
    return collected.index(text, header, contract_spans, event_spans)


def _contract_fact(decoded: Any, index: int, text: str, start: int, end: int) -> _ContractFact:
    try:
        starts: list[date] = []
        dated: list[date] = []
        for obligation in decoded["obligations"]:
            pattern = obligation["pattern"]
            if pattern["kind"] == "ratable":
                starts.append(date.fromisoformat(pattern["start"]))
                dated.append(date.fromisoformat(pattern["end"]))
            elif pattern["kind"] == "point_in_time" and pattern.get("satisfied_on"):
                dated.append(date.fromisoformat(pattern["satisfied_on"]))
            elif pattern["kind"] == "material_right" and pattern.get("expires_on"):
                dated.append(date.fromisoformat(pattern["expires_on"]))  # it lapses then: revenue that day
        recorded = decoded.get("recorded_on")
        contract_id = decoded["contract_id"]
        if not isinstance(contract_id, str):
            raise TypeError(contract_id)
        return (
            contract_id,
            date.fromisoformat(decoded["effective_date"]),
            date.fromisoformat(recorded) if recorded is not None else None,
            starts,
            dated,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        # Not in the canonical shape: the element's own validation names the problem, or, when pydantic
        # reads it (it is laxer: e.g. a datetime at midnight for a date), its validated values are used.
        try:
            contract = RevenueContract.model_validate_json(text[start:end])
        except ValidationError as error:
            raise ScenarioInvalid(
                [
                    (f"contracts[{index}].{p}" if p != "(scenario)" else f"contracts[{index}]", m)
                    for p, m in _problems(error)
                ]
            ) from None
        return _validated_contract_fact(contract)


def _validated_contract_fact(contract: RevenueContract) -> _ContractFact:
    starts, dated = [], []
    for obligation in contract.obligations:
        pattern = obligation.pattern
        if isinstance(pattern, RatablePattern):
            starts.append(pattern.start)
            dated.append(pattern.end)
        elif isinstance(pattern, PointInTimePattern) and pattern.satisfied_on:
            dated.append(pattern.satisfied_on)
        elif isinstance(pattern, MaterialRightPattern) and pattern.expires_on:
            dated.append(pattern.expires_on)
    return (contract.contract_id, contract.effective_date, contract.recorded_on, starts, dated)


def _event_fact(decoded: Any, index: int, text: str, start: int, end: int) -> _EventFact:
    try:
        kind, event_id = decoded["type"], decoded["id"]
        contract_id = None if kind == "period_close" else decoded["contract_id"]
        recorded = decoded.get("recorded_on")
        if (
            not isinstance(kind, str)
            or not isinstance(event_id, str)
            or not isinstance(contract_id, str | None)
        ):
            raise TypeError(kind)
        return (
            kind,
            event_id,
            contract_id,
            date.fromisoformat(decoded["on"]),
            date.fromisoformat(recorded) if recorded is not None else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        try:
            event = _EVENT.validate_json(text[start:end])
        except ValidationError as error:
            raise ScenarioInvalid(
                [
                    (f"events[{index}].{p}" if p != "(scenario)" else f"events[{index}]", m)
                    for p, m in _problems(error)
                ]
            ) from None
        return (
            event.type,
            event.id,
            None if isinstance(event, PeriodClose) else event.contract_id,
            event.on,
            event.recorded_on,
        )


class _Collected:
    """The horizon, the grouping by contract and the cross-contract checks, element by element."""

    def __init__(self) -> None:
        self.horizon = Horizon()
        self.by_contract: dict[str, ContractSpans] = {}
        self.close_indexes: list[int] = []
        self.seen_ids: set[str] = set()
        self.problems: list[tuple[str, str]] = []

    def contract(self, index: int, fact: _ContractFact) -> None:
        contract_id, effective, recorded, starts, dated = fact
        self.by_contract.setdefault(contract_id, ContractSpans()).versions.append(index)
        horizon = self.horizon
        horizon.started(effective)
        horizon.dated(effective)
        horizon.known(recorded or effective)
        for day in starts:
            horizon.started(day)
        for day in dated:
            horizon.dated(day)

    def event(self, index: int, fact: _EventFact) -> None:
        kind, event_id, owner, on, recorded = fact
        if event_id in self.seen_ids:
            self.problems.append((f"events[{index}].id", f"duplicate event id {event_id}"))
        self.seen_ids.add(event_id)
        self.horizon.dated(on)
        self.horizon.known(recorded or on)
        if kind == "period_close":
            self.close_indexes.append(index)
        elif owner is None:
            self.problems.append((f"events[{index}].contract_id", "unknown contract None"))
        else:  # grouped even before its contract is seen: events may come first in the file
            self.by_contract.setdefault(owner, ContractSpans()).events.append(index)

    def index(
        self, text: str, header: dict[str, tuple[int, int]], contract_spans: Spans, event_spans: Spans
    ) -> ScenarioIndex:
        if not contract_spans:
            raise ScenarioInvalid([("contracts", "List should have at least 1 item after validation, not 0")])
        problems = list(self.problems)
        for contract_id, spans in self.by_contract.items():
            if not spans.versions:
                problems.extend(
                    (f"events[{i}].contract_id", f"unknown contract {contract_id}") for i in spans.events
                )
        if problems:
            raise ScenarioInvalid(sorted(problems, key=_position))
        self.seen_ids.clear()
        return ScenarioIndex(
            text, header, contract_spans, event_spans, self.by_contract, self.close_indexes, self.horizon
        )


def _position(problem: tuple[str, str]) -> tuple[int, str]:
    match = _INDEXED_PATH.search(problem[0])
    return (int(match.group(2)) if match else -1, problem[0])
