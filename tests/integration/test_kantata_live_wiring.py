"""The delivery path every workflow step uses (`wiring.deliver`) with the PSA selected `live` / `dual`:
Kantata OX from its token secret (read through one cache per container), against the Kantata OX stand-in
(test equipment) over HTTP, moto for AWS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pssync import wiring
from pssync.config import DeliveryLogSettings
from pssync.errors import TransientDownstreamError
from pssync.local.standins.kantata import KantataStandIn
from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import ContractTerms
from pssync.workflows.provision import provision_project_command
from tests.integration.conftest import AwsWorld

TOKEN = "stand-in-token"  # a test token
UNREACHABLE = "https://kantata.invalid"  # the settings' host, which a secret's base_url overrides


def project_command(terms: ContractTerms, version: int) -> ConnectorCommand:
    return provision_project_command(examples.contract_booked(), terms, version)


class RunningStandIn(KantataStandIn):
    url = ""


@pytest.fixture
def stand_in() -> Iterator[RunningStandIn]:
    server = RunningStandIn(TOKEN)
    server.url = server.start()
    yield server
    server.stop()


def configure(
    aws: AwsWorld,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    secret: dict[str, Any] | str,
    base_url: str = UNREACHABLE,
) -> str:
    name = f"pssync/test/psa/kantata-{uuid.uuid4().hex[:8]}"  # a new container's worth of caches
    value = secret if isinstance(secret, str) else json.dumps(secret)
    arn = str(aws.clients["secretsmanager"].create_secret(Name=name, SecretString=value)["ARN"])
    for key, setting in {
        "DELIVERY_LOG_TABLE_NAME": "delivery-log",
        "PSA_CONNECTOR": mode,
        "KANTATA_SECRET_ID": arn,
        "KANTATA_PSA_BASE_URL": base_url,
    }.items():
        monkeypatch.setenv(key, setting)
    return arn


def count_secret_reads() -> list[str]:
    """GetSecretValue calls made from now on by the wiring's Secrets Manager client."""
    calls: list[str] = []
    wiring.client("secretsmanager").meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("GetSecretValue")
    )
    return calls


@pytest.mark.parametrize("mode", ["live", "dual"])
def test_a_live_psa_writes_the_workspace_to_kantata_then_records_the_delivery(
    aws: AwsWorld, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    configure(aws, monkeypatch, mode, {"access_token": TOKEN, "base_url": stand_in.url})
    command = project_command(examples.transformation_programme(), 1)
    assert wiring.deliver(command).newly_recorded
    reads = count_secret_reads()
    again = wiring.deliver(command)  # a step's retry: the same workspace, updated, not duplicated
    assert not again.newly_recorded
    assert reads == []  # the token comes from the container's cache, not from Secrets Manager again
    held = stand_in.holdings()
    [workspace] = held["workspaces"]
    assert workspace["price_in_cents"] == examples.transformation_programme().transaction_price.minor_units
    [reference] = held["external_references"]
    assert reference["service_model_ref"] == command.external_id
    log = wiring.delivery_log(DeliveryLogSettings(delivery_log_table_name="delivery-log"))
    assert [c.idempotency_key for c in log.all_commands()] == [command.idempotency_key]
    read_backs = [path for method, path in stand_in.ox.requests if method == "GET" and "/workspaces/" in path]
    assert len(read_backs) == (2 if mode == "dual" else 0)  # dual reads back after each write


def test_without_a_base_url_in_the_secret_the_settings_host_is_used(
    aws: AwsWorld, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(aws, monkeypatch, "live", {"access_token": TOKEN}, base_url=stand_in.url)
    wiring.deliver(project_command(examples.transformation_programme(), 1))
    assert len(stand_in.holdings()["workspaces"]) == 1


def test_an_older_version_is_refused_before_kantata_is_called(
    aws: AwsWorld, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(aws, monkeypatch, "live", {"access_token": TOKEN, "base_url": stand_in.url})
    amended = examples.change_order_terms()
    wiring.deliver(project_command(amended, 2))
    requests = len(stand_in.ox.requests)
    wiring.deliver(project_command(examples.transformation_programme(), 1))  # a late, older version
    assert len(stand_in.ox.requests) == requests
    [workspace] = stand_in.holdings()["workspaces"]
    assert workspace["price_in_cents"] == amended.transaction_price.minor_units


def test_a_secret_still_holding_its_placeholder_fails_closed_and_writes_nothing(
    aws: AwsWorld, stand_in: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(aws, monkeypatch, "live", "x9-random-placeholder", base_url=stand_in.url)
    with pytest.raises(TransientDownstreamError, match="unavailable or not set"):
        wiring.deliver(project_command(examples.transformation_programme(), 1))
    assert stand_in.ox.requests == []
    log = wiring.delivery_log(DeliveryLogSettings(delivery_log_table_name="delivery-log"))
    assert log.all_commands() == []
