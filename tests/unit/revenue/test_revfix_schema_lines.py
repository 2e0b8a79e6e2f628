"""Every part of issue 11 a scenario states has its line in the published scenario schema
(events/schemas/revrec-scenario.v1.json), and the schema's advice agrees with what the engine does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pssync.revenue import scenario_json_schema

PUBLISHED = Path(__file__).resolve().parents[3] / "events" / "schemas" / "revrec-scenario.v1.json"

# (definition, property or None for the definition itself, words its description must hold)
LINES = [
    ("Concession", None, ["already transferred", "revenue"]),  # item 2
    ("ModificationFacts", None, ["whatever SSPs the existing obligations restate"]),  # items 3 and 9
    ("PerformanceObligation", None, ["never decides the classification"]),  # items 3 and 9
    ("RoyaltyReported", None, ["B63", "running total"]),  # items 4 and 8
    ("ContractCost", None, ["one-year expedient"]),  # item 5
    ("CostsToProvideEstimate", None, ["impairment"]),  # item 5
    ("RebillablePattern", None, ["principal", "agent"]),  # item 6
    ("MaterialRightPattern", None, ["B39", "expires_on"]),  # item 6
    ("Termination", None, ["accounting contract", "net_settlement"]),  # items 6 and 7
    ("NetSettlement", None, ["set-off", "15.105"]),  # item 7
    ("CalendarSpec", None, ["week_53_years"]),  # item 6
    ("Invoice", "accounting_contract", ["<contract_id>/m<version>", "dated before", "refused"]),  # 7, 9
    ("Payment", "accounting_contract", ["<contract_id>/m<version>", "dated before", "refused"]),  # 7, 9
]


def _description(schema: dict[str, Any], definition: str, prop: str | None) -> str:
    node = schema["$defs"][definition]
    if prop is not None:
        node = node["properties"][prop]
    return str(node.get("description", ""))


@pytest.mark.parametrize(("definition", "prop", "words"), LINES, ids=[f"{d}.{p or ''}" for d, p, _ in LINES])
def test_the_published_schema_states_it(definition: str, prop: str | None, words: list[str]) -> None:
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))

    text = _description(published, definition, prop)
    assert all(word in text for word in words), text
    assert text == _description(scenario_json_schema(), definition, prop)  # and it is what the models say
