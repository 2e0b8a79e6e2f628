"""Kantata rate cards over real HTTP: the connector against the Kantata OX stand-in on 127.0.0.1.

The stand-in is test equipment (its answers carry `X-Stand-In: kantata`); the connector talks to it as to
api.mavenlink.com, with the role mapping a deployment keeps in its Kantata secret (`role_ids`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from pssync.connectors.cutover import DUAL, CutoverConnector
from pssync.connectors.kantata import KantataConnector, kantata_psa_http
from pssync.connectors.kantata_plan import UnmappedRole
from pssync.local.demo import kantata_check
from pssync.local.standins.kantata import DEFAULT_ROLES, Fault, KantataFaults, KantataStandIn
from pssync.model import examples
from pssync.model.contract import ContractTerms, RateCardLine, TimeAndMaterialsBilling
from pssync.money import Money
from tests.fakes import InMemoryDeliveryLog
from tests.integration.test_kantata_standin import project_command

TOKEN = "stand-in-token"  # a test token
TERMS = examples.delivery_programme()  # T&M: consultant 150.00, architect 210.00 EUR; starts 2027-01-04


def with_rates(terms: ContractTerms, **rates: str) -> ContractTerms:
    card = [RateCardLine(role=role, hourly_rate=Money.of(rate, "EUR")) for role, rate in rates.items()]
    billing = [
        term.model_copy(update={"rate_card": card}) if isinstance(term, TimeAndMaterialsBilling) else term
        for term in terms.billing
    ]
    return terms.model_copy(update={"billing": billing})


@pytest.fixture
def stand_in() -> Iterator[tuple[KantataStandIn, str]]:
    server = KantataStandIn(TOKEN, faults=KantataFaults())
    server.ox.today = lambda: date(2027, 3, 1)
    base_url = server.start()
    try:
        yield server, base_url
    finally:
        server.stop()


def kantata(base_url: str) -> KantataConnector:
    # The mapping read per command, as from the secret's cache.
    return KantataConnector(
        kantata_psa_http(base_url, lambda: TOKEN), lambda: {"role_ids": DEFAULT_ROLES}["role_ids"]
    )


def test_provision_lost_answers_and_an_amendment_leave_one_rate_card_holding_the_head_rates(
    stand_in: tuple[KantataStandIn, str],
) -> None:
    server, base_url = stand_in
    # The rate card's create and its first row are applied, but their answers never come back.
    server.faults.add(Fault("POST", "/rate_cards.json", status=502, apply_first=True))
    server.faults.add(
        Fault("PUT", f"/rate_card_table_rows/{DEFAULT_ROLES['consultant']}.json", 503, None, True)
    )
    connector = kantata(base_url)
    v1 = project_command(TERMS, 1)
    connector.send(v1, "2027-02-01T10:00:00Z")
    v2 = project_command(with_rates(TERMS, consultant="165.00", architect="210.00"), 2)
    connector.send(v2, "2027-03-01T10:00:00Z")
    connector.send(v2, "2027-03-01T10:05:00Z")  # a redelivery
    assert server.faults.injected == 2
    assert len(server.ox.rate_card_sets) == len(server.rate_cards) == 1
    assert sorted(v["effective_date"] for v in server.ox.rate_card_set_versions.values()) == [
        "2027-02-01",
        "2027-03-01",
    ]
    assert connector.mismatches(v2) == []
    log = [v1.model_dump(mode="json"), v2.model_dump(mode="json")]
    assert kantata_check(log, server.holdings()) == []
    connector.close()


def test_an_unmapped_role_writes_nothing_and_read_back_reports_a_rate_edited_in_kantata(
    stand_in: tuple[KantataStandIn, str],
) -> None:
    server, base_url = stand_in
    connector = kantata(base_url)
    with pytest.raises(UnmappedRole):
        connector.send(
            project_command(with_rates(TERMS, **{"data scientist": "230.00"}), 1), "2027-02-01T10:00:00Z"
        )
    assert server.ox.requests == []
    dual = CutoverConnector(DUAL, InMemoryDeliveryLog(), connector)
    command = project_command(TERMS, 1)
    dual.send(command, "2027-02-01T10:00:00Z")
    [version] = server.ox.rate_card_set_versions.values()
    server.ox.rate_card_rows[(version["id"], DEFAULT_ROLES["architect"])] = {"EUR": 20000}  # edited by hand
    [found] = [m for m in connector.mismatches(command) if m.startswith("rate card")]
    assert (
        found
        == f"rate card {TERMS.project.project_id} architect: rate (wrote 210.00 EUR/h, holds 200.00 EUR/h)"
    )
    held = server.holdings()
    assert kantata_check([command.model_dump(mode="json")], held) == [found]
    connector.close()
