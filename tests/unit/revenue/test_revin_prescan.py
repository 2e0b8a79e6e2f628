"""The pre-scan (scenario_stream.index_scenario) reads the same elements and horizon however the file is laid
out, matches the engine's own horizon and default as_of, and reports text that is not JSON as the standard
decoder does."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bench.revenue import portfolio_json
from pssync.revenue import engine
from pssync.revenue.models import Scenario
from pssync.revenue.scenario_stream import ScenarioIndex, Spans, index_scenario


def _reference() -> dict[str, Any]:
    """Four reference contracts plus the dated facts the pre-scan reads in each of its two ways."""
    document: dict[str, Any] = json.loads(portfolio_json(4))
    first, last = document["contracts"][0], document["contracts"][-1]
    first["recorded_on"] = "2025-02-03"  # known late: the latest day known, so the default as_of
    first["obligations"].append(
        {"id": "option", "ssp": "10.00", "pattern": {"kind": "material_right", "expires_on": "2031-05-31"}}
    )
    last["obligations"][3]["pattern"]["satisfied_on"] = "2024-03-01"
    # Not the canonical date text: the pre-scan's own reading refuses it, pydantic's reads it.
    last["effective_date"] = "2023-01-01T00:00:00"
    return document


def _layouts(document: dict[str, Any]) -> dict[str, str]:
    compact = json.dumps(document, separators=(",", ":"))
    return {
        "compact": compact,
        "indented": json.dumps(document, indent=2),
        "tabs and CRLF": json.dumps(document, indent="\t").replace("\n", "\r\n"),
        "spaces around commas": re.sub(r",(?=[\[{\"])", " ,  ", compact)
        .replace("[", "[ ")
        .replace("]", " ]"),
    }


def _spans(spans: Spans) -> list[tuple[int, int]]:
    return [spans[i] for i in range(len(spans))]


def _read(index: ScenarioIndex) -> dict[str, Any]:
    return {
        "header": {key: json.loads(index.raw(span)) for key, span in index.header.items()},
        "contracts": [
            json.loads(index.raw(index.contract_spans[i])) for i in range(len(index.contract_spans))
        ],
        "events": [json.loads(index.raw(index.event_spans[i])) for i in range(len(index.event_spans))],
        "by_contract": {k: (v.versions, v.events) for k, v in index.by_contract.items()},
        "closes": index.close_indexes,
        "horizon": (index.horizon.first, index.horizon.last, index.horizon.latest_known),
    }


def test_every_layout_of_the_file_gives_the_same_index() -> None:
    layouts = _layouts(_reference())
    compact = _read(index_scenario(layouts["compact"]))

    for name, text in layouts.items():
        assert " " in text or name == "compact"
        assert _read(index_scenario(text)) == compact, name


def test_the_pre_scan_horizon_is_the_engines() -> None:
    text = json.dumps(_reference())
    scenario = Scenario.model_validate_json(text)
    horizon = index_scenario(text).horizon
    latest_known = engine.default_as_of(scenario)

    assert horizon.latest_known == latest_known
    assert (horizon.first, max(horizon.last or latest_known, latest_known)) == engine._horizon(
        scenario, latest_known
    )
    assert str(horizon.last) == "2031-05-31"


_CLOSE = '{"type": "period_close", "id": "close-1", "on": "2023-02-03", "period": "2023-01"}'


@pytest.mark.parametrize(
    "text",
    [
        '{"contracts": [,]}',
        f'{{"events": [{_CLOSE}, ',
        '{"contracts": [',
        '{"schema_version": }',
        f'{{"events": [{_CLOSE} , nope]}}',
    ],
)
def test_text_that_is_not_json_is_reported_where_the_standard_decoder_stops(text: str) -> None:
    """JSONDecoder.raw_decode's message and offset for the value the walker was reading."""
    with pytest.raises(json.JSONDecodeError) as refused:
        index_scenario(text)

    start = refused.value.pos
    with pytest.raises(json.JSONDecodeError) as standard:
        json.JSONDecoder().raw_decode(text, start)
    assert (refused.value.msg, refused.value.pos) == (standard.value.msg, standard.value.pos)
    assert refused.value.msg == "Expecting value"
