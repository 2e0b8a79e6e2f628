"""Generated portfolios for the streaming and sharding tests (a hypothesis strategy of scenario documents).

Several contracts in three currencies (JPY has no minor unit) under two legal entities, one of them reporting
in EUR from rates (so functional amounts and fx_rounding lines appear); ratable, point-in-time and progress
obligations, material rights that lapse or not, point-in-time obligations satisfied by an event or by the
contract's own date; a second version (a modification) for some, sometimes recorded late; invoices and
payments, some recorded late; period closes with facts recorded after them (adjustments); as_of given or
defaulted; now and then a 4-4-5 calendar. Contract versions and events are shuffled in
the file, so a contract's elements are scattered as they may be in a real file.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

BASE = date(2024, 1, 1)
CURRENCIES = ("USD", "EUR", "JPY")
FX_RATES = [
    {"base": "USD", "quote": "EUR", "on": "2023-01-01", "rate": "0.9"},
    {"base": "USD", "quote": "EUR", "on": "2024-07-01", "rate": "0.93"},
    {"base": "JPY", "quote": "EUR", "on": "2023-01-01", "rate": "0.0061"},
]


def _day(offset: int) -> str:
    return str(BASE + timedelta(days=offset))


@st.composite
def _contract(draw: st.DrawFn, contract_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    currency = draw(st.sampled_from(CURRENCIES))
    start = draw(st.integers(0, 200))
    obligations: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["ratable", "point", "progress", "material_right"]))
        ssp = draw(st.integers(1, 90_000))
        oid = f"o{number}"
        if kind == "ratable":
            length = draw(st.integers(20, 500))
            basis = draw(st.sampled_from(["daily", "period"]))
            pattern = {"kind": "ratable", "start": _day(start), "end": _day(start + length), "basis": basis}
        elif kind == "material_right":  # lapses (revenue on expires_on, a dated fact of the horizon) or not
            expires = draw(st.none() | st.integers(0, 700))
            pattern = {"kind": "material_right"}
            if expires is not None:
                pattern["expires_on"] = _day(start + expires)
        elif kind == "point":
            pattern = {"kind": "point_in_time"}
            satisfied = draw(st.sampled_from(["event", "pattern", "neither"]))
            if satisfied == "pattern":  # stated in the contract rather than by an event
                pattern["satisfied_on"] = _day(start + draw(st.integers(0, 600)))
            elif satisfied == "event":
                on = start + draw(st.integers(0, 300))
                events.append(_obligation_event(contract_id, oid, "satisfied", on, draw(st.integers(0, 60))))
        else:
            pattern = {"kind": "output_progress"}
            percent = 0
            for step in range(draw(st.integers(0, 3))):
                percent = min(100, percent + draw(st.integers(5, 60)))
                on = start + 30 * (step + 1) + draw(st.integers(0, 20))
                event = _obligation_event(contract_id, oid, "progress", on, draw(st.integers(0, 60)), step)
                events.append({**event, "percent_complete": str(percent)})
        obligations.append({"id": oid, "ssp": str(ssp), "pattern": pattern})
    price = draw(st.integers(1, 250_000))
    common = {"contract_id": contract_id, "legal_entity": draw(st.sampled_from(["LE-US", "LE-DE"]))}
    versions = [
        {
            **common,
            "version": 1,
            "currency": currency,
            "effective_date": _day(start),
            "causing_event_id": f"{contract_id}-won",
            "fixed_price": str(price),
            "obligations": obligations,
        }
    ]
    if draw(st.booleans()):
        amended = start + draw(st.integers(1, 300))
        versions.append(
            {
                **versions[0],
                "version": 2,
                "effective_date": _day(amended),
                "causing_event_id": f"{contract_id}-amended",
                "fixed_price": str(price + draw(st.integers(0, 50_000))),
            }
        )
        if draw(st.booleans()):  # recorded after it took effect: moves the default as_of, may land late
            versions[1]["recorded_on"] = _day(amended + draw(st.integers(0, 90)))
    for number in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["invoice", "payment"]))
        on = start + draw(st.integers(0, 400))
        amount = str(draw(st.integers(1, 60_000)))
        billing = {
            "type": kind,
            "id": f"{contract_id}-{kind}-{number}",
            "contract_id": contract_id,
            "on": _day(on),
            "amount": amount,
        }
        if draw(st.integers(0, 3)) == 0:
            billing["recorded_on"] = _day(on + draw(st.integers(0, 60)))
        events.append(billing)
    return versions, events


def _obligation_event(
    contract_id: str, oid: str, kind: str, on: int, recorded_late_by: int, step: int = 0
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "id": f"{contract_id}-{oid}-{kind}-{step}",
        "contract_id": contract_id,
        "obligation_id": oid,
        "on": _day(on),
    }
    if recorded_late_by > 25:  # often recorded after the close of its period: lands as an adjustment
        event["recorded_on"] = _day(on + recorded_late_by)
    return event


@st.composite
def portfolios(draw: st.DrawFn, max_contracts: int = 6) -> dict[str, Any]:
    """A scenario document (decoded JSON) of 1..max_contracts contracts."""
    count = draw(st.integers(1, max_contracts))
    contracts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i in range(count):
        versions, contract_events = draw(_contract(f"K{i:03d}"))
        contracts.extend(versions)
        events.extend(contract_events)
    # Now and then fiscal periods (4-4-5 weeks from 31 December 2023: FY2024-P01 ends 27 January): keys and
    # boundaries other than calendar months. Closes name the calendar's periods, so they are not refused.
    fiscal = draw(st.integers(0, 4)) == 0
    for month in sorted(draw(st.sets(st.integers(1, 9), min_size=1, max_size=2))):
        period_end = date(2024, month + 1, 28)
        events.append(
            {
                "type": "period_close",
                "id": f"close-{month}",
                "on": str(period_end + timedelta(days=draw(st.integers(5, 20)))),
                "period": f"FY2024-P{month + 1:02d}" if fiscal else f"2024-{month + 1:02d}",
            }
        )
    contracts = draw(st.permutations(contracts))
    events = draw(st.permutations(events))
    document: dict[str, Any] = {
        "schema_version": "1",
        "functional_currency": {"LE-DE": "EUR"},
        "fx_rates": FX_RATES,
        "contracts": contracts,
        "events": events,
    }
    if draw(st.booleans()):
        document["as_of"] = _day(draw(st.integers(60, 500)))
    if fiscal:
        document["calendar"] = {"kind": "4-4-5", "fiscal_year_start": "2023-12-31"}
    return document


def as_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1)
