"""The role mapping from the Kantata secret (`role_ids`) on the delivery path every workflow step uses
(`wiring.deliver`), against the Kantata OX stand-in (test equipment) over HTTP, moto for AWS."""

from __future__ import annotations

import pytest

from pssync import wiring
from pssync.config import DeliveryLogSettings
from pssync.connectors.kantata_plan import UnmappedRole
from pssync.local.standins.kantata import DEFAULT_ROLES
from pssync.model import examples
from tests.integration.conftest import AwsWorld
from tests.integration.test_kantata_live_wiring import (
    TOKEN,
    RunningStandIn,
    configure,
    project_command,
    stand_in,
)

__all__ = ["stand_in"]  # the running Kantata stand-in, a fixture

TERMS = examples.delivery_programme()  # bills consultant and architect time


def test_the_secrets_role_ids_put_each_rate_on_its_kantata_role(
    aws: AwsWorld, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = {"access_token": TOKEN, "base_url": stand_in.url, "role_ids": DEFAULT_ROLES}
    configure(aws, monkeypatch, "dual", secret)
    assert wiring.deliver(project_command(TERMS, 1)).newly_recorded
    held = stand_in.holdings()
    [card] = held["rate_cards"]
    [workspace] = held["workspaces"]
    assert workspace["rate_card_id"] == card["id"]
    rows = {str(row["role_id"]): row["rates"] for row in held["rate_card_table_rows"]}
    assert rows == {
        DEFAULT_ROLES["consultant"]: [{"currency": "EUR", "rate": 15000}],
        DEFAULT_ROLES["architect"]: [{"currency": "EUR", "rate": 21000}],
    }


def test_without_a_mapping_for_a_billed_role_the_command_is_refused_and_nothing_is_written(
    aws: AwsWorld, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = {"access_token": TOKEN, "base_url": stand_in.url, "role_ids": {"consultant": "501"}}
    configure(aws, monkeypatch, "live", secret)
    with pytest.raises(UnmappedRole, match="'architect'"):
        wiring.deliver(project_command(TERMS, 1))
    assert stand_in.ox.requests == []
    log = wiring.delivery_log(DeliveryLogSettings(delivery_log_table_name="delivery-log"))
    assert log.all_commands() == []
