"""The streamed run validates each contract as a `ContractDocument` (no header) and copies a scenario of
header defaults around it: the same scenario, and the same refusals, as validating it as a `Scenario`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from bench.revenue import portfolio_json
from pssync.revenue.models import ContractDocument, Scenario
from pssync.revenue.scenario_stream import ScenarioInvalid, index_scenario

Document = dict[str, Any]


def _one_contract() -> Document:
    """The first reference contract's versions and events, as the stream slices them."""
    whole = json.loads(portfolio_json(2))
    owner = whole["contracts"][0]["contract_id"]
    return {
        "contracts": [c for c in whole["contracts"] if c["contract_id"] == owner],
        "events": [e for e in whole["events"] if e.get("contract_id") == owner],
    }


def _set(path: str, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(path: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return change


def _duplicate_version(document: Document) -> None:
    document["contracts"].append(copy.deepcopy(document["contracts"][0]))


def _duplicate_event(document: Document) -> None:
    document["events"].append(copy.deepcopy(document["events"][0]))


def _second_currency(document: Document) -> None:
    document["contracts"][1]["currency"] = "EUR"


def _duplicate_obligation(document: Document) -> None:
    obligations = document["contracts"][0]["obligations"]
    obligations.append(copy.deepcopy(obligations[0]))


REFUSALS: dict[str, Callable[[Document], None]] = {
    "float amount": _set("contracts.0.fixed_price", 10.5),
    "unknown currency": _set("contracts.0.currency", "XXQ"),
    "negative ssp": _set("contracts.0.obligations.0.ssp", "-1"),
    "end before start": _set("contracts.0.obligations.0.pattern.end", "2020-01-01"),
    "unknown pattern": _set("contracts.0.obligations.0.pattern.kind", "someday"),
    "missing field": _delete("contracts.0.legal_entity"),
    "extra field": _set("contracts.0.colour", "blue"),
    "version 0": _set("contracts.0.version", 0),
    "not a date": _set("events.0.on", "2023-02-30"),
    "unknown event type": _set("events.0.type", "rumour"),
    "unknown obligation": _set("events.0.obligation_id", "nothing"),
    "percent over 100": _set("events.1.percent_complete", "101"),
    "duplicate version": _duplicate_version,
    "duplicate event id": _duplicate_event,
    "two currencies": _second_currency,
    "duplicate obligation": _duplicate_obligation,
    "no contract": _set("contracts", []),
    "contracts not a list": _set("contracts", {}),
}


def _errors(error: ValidationError) -> list[tuple[Any, ...]]:
    return [(d["type"], d["loc"], d["msg"]) for d in error.errors(include_url=False)]


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_a_contract_document_refuses_what_a_scenario_refuses_with_the_same_errors(name: str) -> None:
    document = _one_contract()
    REFUSALS[name](document)
    text = json.dumps(document)

    with pytest.raises(ValidationError) as as_scenario:
        Scenario.model_validate_json(text)
    with pytest.raises(ValidationError) as as_document:
        ContractDocument.model_validate_json(text)

    assert _errors(as_document.value) == _errors(as_scenario.value)


def test_the_streamed_contract_scenario_equals_the_one_validated_as_a_scenario() -> None:
    text = portfolio_json(12).decode()
    index = index_scenario(text)
    whole = json.loads(text)

    for contract_id in index.contract_ids():
        streamed, spans = index.contract_scenario(contract_id)
        alone = Scenario.model_validate_json(
            json.dumps(
                {
                    "contracts": [whole["contracts"][i] for i in spans.versions],
                    "events": [whole["events"][i] for i in spans.events],
                }
            )
        )

        assert streamed == alone
        assert streamed.model_fields_set == alone.model_fields_set
        assert streamed.calendar == Scenario.model_fields["calendar"].default


def test_a_streamed_contract_refused_names_its_place_in_the_whole_file() -> None:
    whole = json.loads(portfolio_json(3))
    whole["contracts"][-1]["fixed_price"] = 1.5
    index = index_scenario(json.dumps(whole))
    last = whole["contracts"][-1]["contract_id"]

    with pytest.raises(ScenarioInvalid) as refused:
        index.contract_scenario(last)

    position = len(whole["contracts"]) - 1
    assert refused.value.problems == [
        (
            f"contracts[{position}].fixed_price",
            "Value error, amounts must be given as strings or integers, never floats",
        )
    ]
