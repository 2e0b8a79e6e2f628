"""The Kantata connector against the Kantata OX stand-in over real HTTP on 127.0.0.1.

The stand-in is test equipment (it says so in every answer's `X-Stand-In` header); the connector talks
to it exactly as to api.mavenlink.com.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from pssync.connectors.cutover import DUAL, CutoverConnector, RefusedCommand
from pssync.connectors.kantata import KantataConnector, kantata_psa_http
from pssync.connectors.kantata_plan import workspace_plan
from pssync.errors import VendorAuthRefused
from pssync.local.standins.kantata import DEFAULT_ROLES, Fault, KantataFaults, KantataStandIn
from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import ContractTerms
from pssync.workflows import provision
from pssync.workflows.provision import project_plan_fields
from tests.fakes import InMemoryDeliveryLog

TOKEN = "stand-in-token"  # a test token


def project_command(terms: ContractTerms, version: int) -> ConnectorCommand:
    booked = examples.contract_booked()
    base = provision.provision_project_command(booked, terms, version)
    return base.model_copy(update={"payload": {**base.payload, **project_plan_fields(terms)}})


@pytest.fixture
def stand_in() -> Iterator[tuple[KantataStandIn, str]]:
    server = KantataStandIn(TOKEN, faults=KantataFaults())
    base_url = server.start()
    try:
        yield server, base_url
    finally:
        server.stop()


def test_a_provision_then_an_amendment_leaves_one_workspace_with_the_amended_budget_and_phases(
    stand_in: tuple[KantataStandIn, str],
) -> None:
    server, base_url = stand_in
    kantata = KantataConnector(kantata_psa_http(base_url, lambda: TOKEN), DEFAULT_ROLES)
    original, amended = examples.transformation_programme(), examples.change_order_terms()
    server.faults.add(Fault("POST", "/workspaces.json", status=504, apply_first=True))  # answer lost
    kantata.send(project_command(original, 1), "2026-11-30T08:00:00Z")
    kantata.send(project_command(amended, 2), "2027-06-10T14:30:00Z")
    kantata.send(project_command(amended, 2), "2027-06-10T14:31:00Z")  # a redelivery
    held = server.holdings()
    assert json.loads(json.dumps(held)) == held
    [workspace] = held["workspaces"]
    assert workspace["price_in_cents"] == amended.transaction_price.minor_units
    assert workspace["currency"] == amended.currency
    phases = sorted(
        s["title"] for s in held["stories"] if s["story_type"] == "task" and s["parent_id"] is None
    )
    assert phases == sorted(w.name for w in amended.project.wbs if w.parent_code is None)
    [reference] = held["external_references"]
    assert reference["subject_id"] == workspace["id"]
    assert kantata.mismatches(project_command(amended, 2)) == []
    kantata.close()


def test_every_answer_is_labelled_and_a_wrong_token_is_refused(stand_in: tuple[KantataStandIn, str]) -> None:
    server, base_url = stand_in
    answer = httpx.get(f"{base_url}/api/v1/workspaces.json", headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401
    assert answer.headers["X-Stand-In"] == "kantata"
    assert answer.json()["errors"][0]["type"] == "authentication"
    kantata = KantataConnector(kantata_psa_http(base_url, lambda: "wrong"), DEFAULT_ROLES)
    with pytest.raises(VendorAuthRefused):
        kantata.send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert server.workspaces == {}


def test_the_rate_limit_answers_429_with_retry_after_and_the_connector_waits_it_out() -> None:
    server = KantataStandIn(TOKEN, requests_per_second=4)
    base_url = server.start()
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    try:
        kantata = KantataConnector(kantata_psa_http(base_url, lambda: TOKEN, sleep=wait), DEFAULT_ROLES)
        kantata.send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
        assert waits and all(w == 1.0 for w in waits)  # the stand-in's Retry-After, honoured
        assert len(server.workspaces) == 1
    finally:
        server.stop()


def test_dual_cutover_through_the_stand_in_refuses_a_late_older_version_and_repairs_drift(
    stand_in: tuple[KantataStandIn, str],
) -> None:
    server, base_url = stand_in
    log = InMemoryDeliveryLog()
    kantata = KantataConnector(kantata_psa_http(base_url, lambda: TOKEN), DEFAULT_ROLES)
    dual = CutoverConnector(DUAL, log, kantata)
    original, amended = examples.transformation_programme(), examples.change_order_terms()
    dual.send(project_command(original, 1), "2026-11-30T08:00:00Z")
    dual.send(project_command(amended, 2), "2027-06-10T14:30:00Z")
    late = dual.send(project_command(original, 1), "2027-06-10T14:35:00Z")  # a replayed dead letter
    assert isinstance(late, RefusedCommand) and late.held_version == 2
    [workspace] = server.workspaces.values()
    assert workspace["price_in_cents"] == amended.transaction_price.minor_units
    workspace["price_in_cents"] = 0  # a project lead zeroes the budget in Kantata
    assert any("price_in_cents" in m for m in kantata.mismatches(project_command(amended, 2)))
    dual.send(project_command(amended, 2), "2027-06-10T14:40:00Z")  # a redelivery writes, then compares
    [workspace] = server.workspaces.values()
    assert workspace["price_in_cents"] == amended.transaction_price.minor_units
    assert len(server.stories) == len(workspace_plan(project_command(amended, 2), DEFAULT_ROLES).stories)
