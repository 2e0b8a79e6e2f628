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
from collections.abc import Callable
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
_ContractFact = tuple[str, date, date, date]  # id, first day, last dated day, day known
_EventFact = tuple[str, str, str | None, date, date]  # type, id, contract id, on, day known
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE_CHARS = " \t\n\r"
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
        # The C scanner JSONDecoder.raw_decode wraps, called directly: one Python frame less an element
        # (typeshed does not declare the attribute every JSONDecoder sets in __init__).
        decoder = json.JSONDecoder()
        self.scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]

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
        try:
            decoded, end = self.scan(self.text, start)
        except StopIteration as error:  # as JSONDecoder.raw_decode reports it
            raise json.JSONDecodeError("Expecting value", self.text, error.value) from None
        return decoded, start, end

    def array(self, pos: int, fold: Callable[[int, Any, int, int], None]) -> int:
        """fold(position, decoded element, start, end) for each element of the array at pos; returns the
        offset after the array. Whitespace is looked for with the regular expression only where there is
        some (generated files have none between elements)."""
        text, scan = self.text, self.scan
        pos = self.skip(self.expect(pos, "["))
        if text[pos : pos + 1] == "]":
            return pos + 1
        position = 0
        while True:
            if text[pos : pos + 1] in _WHITESPACE_CHARS:
                pos = self.skip(pos)
            try:
                decoded, end = scan(text, pos)
            except StopIteration as error:  # as JSONDecoder.raw_decode reports it
                raise json.JSONDecodeError("Expecting value", text, error.value) from None
            fold(position, decoded, pos, end)
            position += 1
            char = text[end : end + 1]
            if char in _WHITESPACE_CHARS:
                end = self.skip(end)
                char = text[end : end + 1]
            if char == "]":
                return end + 1
            if char != ",":
                raise StreamingUnsupported(f"expected ',' or ']' at offset {end}")
            pos = end + 1


def index_scenario(text: str) -> ScenarioIndex:
    """Walk the top-level object once. Raises json.JSONDecodeError for text that is not JSON, ScenarioInvalid
    for a cross-contract rule broken (duplicate event id, event of an unknown contract, no contract),
    StreamingUnsupported for a shape the walker does not read."""
    walker = _Walker(text)
    pos = walker.expect(0, "{")
    header: dict[str, tuple[int, int]] = {}
    collected = _Collected(text)
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
        # Each element's facts are folded in at once: nothing of the decoded element outlives that step.
        if key == "contracts":
            pos = walker.array(pos, collected.contract)
        elif key == "events":
            pos = walker.array(pos, collected.event)
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
    return collected.index(header)


def _contract_fact(decoded: Any, index: int, text: str, start: int, end: int) -> _ContractFact:
    try:
        effective = date.fromisoformat(decoded["effective_date"])
        first = last = effective
        for obligation in decoded["obligations"]:
            pattern = obligation["pattern"]
            kind = pattern["kind"]
            if kind == "ratable":
                first = min(first, date.fromisoformat(pattern["start"]))
                last = max(last, date.fromisoformat(pattern["end"]))
            elif kind == "point_in_time" and pattern.get("satisfied_on"):
                last = max(last, date.fromisoformat(pattern["satisfied_on"]))
            elif kind == "material_right" and pattern.get("expires_on"):
                last = max(
                    last, date.fromisoformat(pattern["expires_on"])
                )  # it lapses then: revenue that day
        recorded = decoded.get("recorded_on")
        contract_id = decoded["contract_id"]
        if not isinstance(contract_id, str):
            raise TypeError(contract_id)
        return contract_id, first, last, date.fromisoformat(recorded) if recorded is not None else effective
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
    first = last = contract.effective_date
    for obligation in contract.obligations:
        pattern = obligation.pattern
        if isinstance(pattern, RatablePattern):
            first, last = min(first, pattern.start), max(last, pattern.end)
        elif isinstance(pattern, PointInTimePattern) and pattern.satisfied_on:
            last = max(last, pattern.satisfied_on)
        elif isinstance(pattern, MaterialRightPattern) and pattern.expires_on:
            last = max(last, pattern.expires_on)
    return contract.contract_id, first, last, contract.known_from


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
        on = date.fromisoformat(decoded["on"])
        return kind, event_id, contract_id, on, date.fromisoformat(recorded) if recorded is not None else on
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
            event.known_from,
        )


class _Collected:
    """The horizon, the spans, the grouping by contract and the cross-contract checks, element by element."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.horizon = Horizon()
        self.contract_spans, self.event_spans = Spans(), Spans()
        self.by_contract: dict[str, ContractSpans] = {}
        self.close_indexes: list[int] = []
        self.seen_ids: set[str] = set()
        self.problems: list[tuple[str, str]] = []

    def contract(self, index: int, decoded: Any, start: int, end: int) -> None:
        contract_id, first, last, known = _contract_fact(decoded, index, self.text, start, end)
        spans = self.by_contract.get(contract_id)
        if spans is None:
            spans = self.by_contract[contract_id] = ContractSpans()
        spans.versions.append(index)
        self.contract_spans.starts.append(start)
        self.contract_spans.ends.append(end)
        horizon = self.horizon
        if horizon.first is None or first < horizon.first:
            horizon.first = first
        self._dated(last, known)

    def event(self, index: int, decoded: Any, start: int, end: int) -> None:
        kind, event_id, owner, on, known = _event_fact(decoded, index, self.text, start, end)
        self.event_spans.starts.append(start)
        self.event_spans.ends.append(end)
        if event_id in self.seen_ids:
            self.problems.append((f"events[{index}].id", f"duplicate event id {event_id}"))
        self.seen_ids.add(event_id)
        self._dated(on, known)
        if kind == "period_close":
            self.close_indexes.append(index)
        elif owner is None:
            self.problems.append((f"events[{index}].contract_id", "unknown contract None"))
        else:  # grouped even before its contract is seen: events may come first in the file
            spans = self.by_contract.get(owner)
            if spans is None:
                spans = self.by_contract[owner] = ContractSpans()
            spans.events.append(index)

    def _dated(self, last: date, known: date) -> None:
        horizon = self.horizon
        if horizon.last is None or last > horizon.last:
            horizon.last = last
        if horizon.latest_known is None or known > horizon.latest_known:
            horizon.latest_known = known

    def index(self, header: dict[str, tuple[int, int]]) -> ScenarioIndex:
        if not self.contract_spans:
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
            self.text,
            header,
            self.contract_spans,
            self.event_spans,
            self.by_contract,
            self.close_indexes,
            self.horizon,
        )


def _position(problem: tuple[str, str]) -> tuple[int, str]:
    match = _INDEXED_PATH.search(problem[0])
    return (int(match.group(2)) if match else -1, problem[0])
