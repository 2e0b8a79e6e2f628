"""The Kantata OX stand-in's request handling (no sockets): Kantata's documented shapes and refusals."""

from __future__ import annotations

import json
from typing import Any

from pssync.local.standins.kantata import Fault, KantataFaults, KantataOX

TOKEN = "t-1"  # a test token
AUTH = {"authorization": f"Bearer {TOKEN}"}


def call(ox: KantataOX, method: str, target: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    status, headers, raw = ox.handle(method, target, AUTH, json.dumps(body).encode() if body else b"")
    assert headers["X-Stand-In"] == "kantata"
    return status, json.loads(raw) if raw else None


def workspace(ox: KantataOX, title: str = "Build", description: str = "") -> str:
    status, answer = call(
        ox,
        "POST",
        "/api/v1/workspaces.json",
        {"workspace": {"title": title, "description": description, "creator_role": "maven"}},
    )
    assert status == 200
    return str(answer["results"][0]["id"])


def test_lists_page_with_kantatas_count_results_and_meta() -> None:
    ox = KantataOX(TOKEN)
    workspace_id = workspace(ox)
    for n in range(250):
        call(ox, "POST", "/api/v1/stories.json", {"story": {"title": f"s{n}", "workspace_id": workspace_id}})
    status, first = call(ox, "GET", f"/api/v1/stories.json?workspace_id={workspace_id}&per_page=200&page=1")
    _, second = call(ox, "GET", f"/api/v1/stories.json?workspace_id={workspace_id}&per_page=200&page=2")
    assert status == 200
    assert (first["count"], len(first["results"]), len(second["results"])) == (250, 200, 50)
    assert first["meta"]["page_count"] == 2
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(set(ids)) == 250 and all(i in {**first["stories"], **second["stories"]} for i in ids)


def test_description_search_and_external_reference_filters() -> None:
    ox = KantataOX(TOKEN)
    ours = workspace(ox, description="pssync project P-1\nContract C-1 v1")
    workspace(ox, description="someone else's project")
    _, found = call(ox, "GET", "/api/v1/workspaces.json?search=description:'pssync project P-1'")
    assert [r["id"] for r in found["results"]] == [ours]
    reference = {
        "subject_type": "Workspace",
        "subject_id": int(ours),
        "service_name": "pssync",
        "service_model": "project",
        "service_model_ref": "P-1",
    }
    call(ox, "POST", "/api/v1/external_references/create_or_update.json", {"external_reference": reference})
    call(ox, "POST", "/api/v1/external_references/create_or_update.json", {"external_reference": reference})
    _, refs = call(ox, "GET", "/api/v1/external_references.json?subject_type=Workspace&service_model_ref=P-1")
    assert refs["count"] == 1  # create_or_update: the second call updated the first
    status, refused = call(ox, "GET", "/api/v1/external_references.json?service_model_ref=P-1")
    assert status == 422 and refused["errors"][0]["type"] == "validation"


def test_refusals_are_kantata_error_bodies_and_change_nothing() -> None:
    ox = KantataOX(TOKEN)
    workspace_id = workspace(ox)
    cases = [
        ("POST", "/api/v1/workspaces.json", {"workspace": {"title": "x"}}, 422),  # no creator_role
        ("PUT", f"/api/v1/workspaces/{workspace_id}.json", {"workspace": {"currency": "XXX"}}, 422),
        ("PUT", f"/api/v1/workspaces/{workspace_id}.json", {"workspace": {"price_in_cents": "12.5"}}, 422),
        ("POST", "/api/v1/stories.json", {"story": {"title": "x", "workspace_id": "999"}}, 422),
        (
            "POST",
            "/api/v1/stories.json",
            {"story": {"title": "x", "workspace_id": workspace_id, "story_type": "epic"}},
            422,
        ),
        ("GET", "/api/v1/workspaces/999.json", None, 404),
    ]
    before = ox.holdings()
    for method, path, body, expected in cases:
        status, answer = call(ox, method, path, body)
        assert status == expected, (method, path)
        assert answer["errors"][0]["message"]
    assert ox.holdings() == before


def test_a_wrong_token_is_401_and_faults_answer_in_order() -> None:
    ox = KantataOX(TOKEN, faults=KantataFaults([Fault("GET", "/workspaces.json", status=429, retry_after=4)]))
    status, headers, _ = ox.handle("GET", "/api/v1/workspaces.json", {"authorization": "Bearer nope"}, b"")
    assert (status, headers["X-Stand-In"]) == (401, "kantata")
    status, headers, _ = ox.handle("GET", "/api/v1/workspaces.json", AUTH, b"")
    assert (status, headers["Retry-After"]) == (429, "4")
    assert ox.handle("GET", "/api/v1/workspaces.json", AUTH, b"")[0] == 200


def test_deleting_a_story_takes_its_sub_tasks() -> None:
    ox = KantataOX(TOKEN)
    workspace_id = workspace(ox)
    _, parent = call(
        ox, "POST", "/api/v1/stories.json", {"story": {"title": "p", "workspace_id": workspace_id}}
    )
    parent_id = parent["results"][0]["id"]
    call(
        ox,
        "POST",
        "/api/v1/stories.json",
        {"story": {"title": "c", "workspace_id": workspace_id, "parent_id": int(parent_id)}},
    )
    assert call(ox, "DELETE", f"/api/v1/stories/{parent_id}.json")[0] == 204
    assert ox.stories == {}
