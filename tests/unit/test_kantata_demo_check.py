"""The demo's check that the Kantata OX stand-in holds exactly what the delivery log says was delivered.

Holdings come from the real connector writing into the stand-in's request handling (respx, no sockets)."""

from __future__ import annotations

import copy
from typing import Any

from pssync.local.demo import kantata_check
from pssync.model import examples
from tests.unit.test_kantata_connector import Fake, connector, fake, project_command

__all__ = ["fake"]  # the respx-backed stand-in core, a fixture

V1 = project_command(examples.transformation_programme(), 1)
V2 = project_command(examples.change_order_terms(), 2)
LOG = [V1.model_dump(mode="json"), V2.model_dump(mode="json")]


def written(fake: Fake, *commands: Any) -> dict[str, Any]:
    kantata, _ = connector()
    for command in commands:
        kantata.send(command, "2026-11-30T08:00:00Z")
    kantata.close()
    return fake.ox.holdings()


def test_kantata_holding_the_head_version_once_matches_the_log(fake: Fake) -> None:
    assert kantata_check(LOG, written(fake, V1, V2)) == []


def test_a_workspace_left_at_an_older_version_is_reported_with_what_differs(fake: Fake) -> None:
    found = kantata_check(LOG, written(fake, V1))
    where = f"workspace {V2.external_id} v2"
    assert any(f.startswith(f"{where}: price_in_cents") for f in found), found
    assert any(f.startswith(f"{where}: description") for f in found), found  # still says contract v1


def test_a_duplicated_workspace_or_story_is_reported(fake: Fake) -> None:
    holdings = written(fake, V1, V2)
    twice = copy.deepcopy(holdings)
    twice["workspaces"].append({**twice["workspaces"][0], "id": "999"})
    assert kantata_check(LOG, twice) == [f"Kantata holds 2 workspaces for project {V2.external_id}, not 1"]
    story_twice = copy.deepcopy(holdings)
    story_twice["stories"].append({**story_twice["stories"][0], "id": "998"})
    [found] = kantata_check(LOG, story_twice)
    assert "held 2 times" in found


def test_what_the_log_never_delivered_is_reported(fake: Fake) -> None:
    found = kantata_check([], written(fake, V1))
    assert any(f.startswith("Kantata holds workspaces the log never delivered") for f in found), found
    assert any(f.startswith("Kantata holds a reference the log never delivered") for f in found), found


def test_a_story_moved_under_another_parent_is_reported(fake: Fake) -> None:
    holdings = written(fake, V1, V2)
    child = next(s for s in holdings["stories"] if s.get("parent_id"))
    child["parent_id"] = None
    [found] = kantata_check(LOG, holdings)
    assert "not under" in found
