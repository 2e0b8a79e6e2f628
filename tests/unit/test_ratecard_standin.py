"""The Kantata OX stand-in's rate card endpoints (test equipment): status codes and error bodies as Kantata
documents them, without sockets (`KantataOX.handle`)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from pssync.local.standins.kantata import DEFAULT_ROLES, KantataOX

TOKEN = "stand-in-token"  # a test token
API = "/api/v1"
CONSULTANT = DEFAULT_ROLES["consultant"]


class Client:
    def __init__(self, today: date = date(2027, 3, 1)) -> None:
        self.ox = KantataOX(TOKEN, today=lambda: today)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        status, headers, raw = self.ox.handle(
            method,
            API + path,
            {"authorization": f"Bearer {TOKEN}"},
            json.dumps(body).encode() if body is not None else b"",
        )
        assert headers["X-Stand-In"] == "kantata"  # labelled as test equipment in every answer
        return status, json.loads(raw) if raw else {}

    def created(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        status, document = self.call("POST", path, body)
        assert status == 200, document
        [ref] = document["results"]
        return dict(document[key][ref["id"]])

    def rate_card(self, effective: str = "2027-02-01", currency: str = "EUR") -> tuple[str, str, str]:
        """A set, a version and a card: (set id, version id, card id)."""
        rate_set = self.created("/rate_card_sets.json", {"rate_card_set": {"title": "T"}}, "rate_card_sets")
        version = self.created(
            "/rate_card_set_versions.json",
            {"rate_card_set_version": {"rate_card_set_id": int(rate_set["id"]), "effective_date": effective}},
            "rate_card_set_versions",
        )
        card = self.created(
            "/rate_cards.json",
            {"rate_card": {"rate_card_set_version_id": int(version["id"]), "currency": currency}},
            "rate_cards",
        )
        return rate_set["id"], version["id"], card["id"]

    def put_row(self, version_id: str, role_id: str, rate: int, currency: str = "EUR") -> tuple[int, Any]:
        body = {"rate_card_table_row": {"rates": [{"currency": currency, "rate": rate}]}}
        return self.call(
            "PUT", f"/rate_card_set_versions/{version_id}/rate_card_table_rows/{role_id}.json", body
        )


def refused(answer: tuple[int, dict[str, Any]], status: int, words: str) -> bool:
    code, body = answer
    [error] = body["errors"]
    return code == status and error["type"] == "validation" and words in error["message"]


def test_a_rate_card_set_title_is_unique_on_the_account() -> None:
    client = Client()
    client.rate_card()
    assert refused(
        client.call("POST", "/rate_card_sets.json", {"rate_card_set": {"title": "t"}}), 422, "taken"
    )
    assert refused(
        client.call("POST", "/rate_card_sets.json", {"rate_card_set": {"title": " "}}), 422, "blank"
    )


def test_one_version_per_effective_date_and_a_clone_copies_the_rows() -> None:
    client = Client()
    set_id, version_id, _ = client.rate_card()
    assert client.put_row(version_id, CONSULTANT, 15000)[0] == 200
    same_day = {"rate_card_set_version": {"rate_card_set_id": int(set_id), "effective_date": "2027-02-01"}}
    assert refused(client.call("POST", "/rate_card_set_versions.json", same_day), 422, "already been taken")
    later = {"rate_card_set_version": {"rate_card_set_id": int(set_id), "effective_date": "2027-04-01"}}
    clone = client.created(
        f"/rate_card_set_versions.json?clone_id={version_id}", later, "rate_card_set_versions"
    )
    status, rows = client.call("GET", f"/rate_card_set_versions/{clone['id']}/rate_card_table_rows.json")
    assert status == 200
    [row] = rows["rate_card_table_rows"].values()
    assert row["id"] == f"{clone['id']}:{CONSULTANT}"
    assert row["rates"] == [{"currency": "EUR", "rate": 15000}]


def test_publishing_is_once_and_a_version_in_effect_is_immutable() -> None:
    client = Client(today=date(2027, 3, 1))
    _, version_id, _ = client.rate_card(effective="2027-02-01")
    assert client.call("PUT", f"/rate_card_set_versions/{version_id}/publish.json", {})[0] == 200
    assert refused(
        client.call("PUT", f"/rate_card_set_versions/{version_id}/publish.json", {}), 422, "already"
    )
    assert refused(client.put_row(version_id, CONSULTANT, 16000), 422, "effective date is in the future")


def test_a_published_version_not_yet_in_effect_can_be_edited() -> None:
    client = Client(today=date(2027, 3, 1))
    _, version_id, _ = client.rate_card(effective="2027-06-01")
    client.call("PUT", f"/rate_card_set_versions/{version_id}/publish.json", {})
    assert client.put_row(version_id, CONSULTANT, 16000)[0] == 200
    assert client.ox.rate_card_rows[(version_id, CONSULTANT)] == {"EUR": 16000}


@pytest.mark.parametrize(
    ("role_id", "rate", "currency", "words"),
    [
        ("9999", 15000, "EUR", "Role 9999 must exist"),
        (CONSULTANT, 15000, "USD", "no rate card in 'USD'"),
        (CONSULTANT, -1, "EUR", "whole number"),
    ],
)
def test_a_row_is_refused_for_an_unknown_role_a_currency_without_card_or_a_bad_rate(
    role_id: str, rate: int, currency: str, words: str
) -> None:
    client = Client()
    _, version_id, _ = client.rate_card()
    assert refused(client.put_row(version_id, role_id, rate, currency), 422, words)
    assert client.ox.rate_card_rows == {}


def test_a_row_put_twice_is_one_row_and_delete_removes_it() -> None:
    client = Client()
    _, version_id, _ = client.rate_card()
    client.put_row(version_id, CONSULTANT, 15000)
    client.put_row(version_id, CONSULTANT, 15500)
    assert client.ox.rate_card_rows == {(version_id, CONSULTANT): {"EUR": 15500}}
    path = f"/rate_card_set_versions/{version_id}/rate_card_table_rows/{CONSULTANT}.json"
    assert client.call("DELETE", path)[0] == 204
    assert client.call("DELETE", path)[0] == 404


def test_one_card_per_currency_in_a_set_found_by_set_and_currency() -> None:
    client = Client()
    set_id, version_id, card_id = client.rate_card()
    again = {"rate_card": {"rate_card_set_version_id": int(version_id), "currency": "EUR"}}
    assert refused(client.call("POST", "/rate_cards.json", again), 422, "already been taken")
    status, found = client.call("GET", f"/rate_cards.json?rate_card_set_id={set_id}&currencies=EUR,GBP")
    assert status == 200 and list(found["rate_cards"]) == [card_id]
    assert client.call("GET", "/rate_cards/424242.json")[0] == 404


def test_a_workspace_takes_only_an_existing_rate_card_in_its_currency() -> None:
    client = Client()
    _, _, card_id = client.rate_card(currency="EUR")
    base = {"title": "W", "creator_role": "maven", "currency": "USD"}
    missing = client.call("POST", "/workspaces.json", {"workspace": {**base, "rate_card_id": 424242}})
    assert refused(missing, 422, "Rate card must exist")
    other = client.call("POST", "/workspaces.json", {"workspace": {**base, "rate_card_id": int(card_id)}})
    assert refused(other, 422, "currency must match")
    workspace = client.created(
        "/workspaces.json",
        {"workspace": {**base, "currency": "EUR", "rate_card_id": int(card_id)}},
        "workspaces",
    )
    assert workspace["rate_card_id"] == card_id
    assert client.ox.workspaces.keys() == {workspace["id"]}  # the refused creates left nothing behind


def test_the_account_roles_are_listed_and_a_rate_card_can_carry_our_reference() -> None:
    client = Client()
    status, roles = client.call("GET", "/roles.json")
    assert status == 200 and {r["name"] for r in roles["roles"].values()} == set(DEFAULT_ROLES)
    assert client.ox.role_ids() == DEFAULT_ROLES
    _, _, card_id = client.rate_card()
    reference = {
        "subject_type": "RateCard",
        "subject_id": int(card_id),
        "service_name": "pssync",
        "service_model": "project_rate_card",
        "service_model_ref": "P-1",
    }
    assert (
        client.call("POST", "/external_references/create_or_update.json", {"external_reference": reference})[
            0
        ]
        == 200
    )
    query = "subject_type=RateCard&service_name=pssync&service_model=project_rate_card&service_model_ref=P-1"
    _, found = client.call("GET", f"/external_references.json?{query}")
    assert [r["subject_id"] for r in found["external_references"].values()] == [card_id]
