"""The delivery path every workflow step uses (`wiring.deliver`) with the ERP selected `live` / `dual`:
NetSuite from its secret (read once), behind the account's lease slots, against the stand-in (moto for
AWS)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from pssync import wiring
from pssync.config import DeliveryLogSettings
from pssync.connectors.cutover import CutoverConnector
from pssync.errors import PssyncError
from pssync.local.standins.netsuite import NetSuiteStandIn
from tests.integration.conftest import AwsWorld
from tests.integration.test_netsuite_lease_limiter import create_table
from tests.integration.test_netsuite_standin_contract import (
    MAPPING,
    PRIVATE_KEY,
    PUBLIC_KEY,
    billing_schedule,
)


@pytest.fixture
def standin() -> Iterator[NetSuiteStandIn]:
    server = NetSuiteStandIn(public_key_pem=PUBLIC_KEY)
    server.start()
    yield server
    server.stop()


def configure_live(
    aws: AwsWorld, standin: NetSuiteStandIn, monkeypatch: pytest.MonkeyPatch, mode: str
) -> str:
    secret_id = f"pssync/test/erp/netsuite-{uuid.uuid4().hex[:8]}"  # a new container's worth of caches
    arn = aws.clients["secretsmanager"].create_secret(
        Name=secret_id,
        SecretString=json.dumps(
            {
                "account_id": standin.account_id,
                "client_id": standin.client_id,
                "certificate_id": standin.certificate_id,
                "private_key_pem": PRIVATE_KEY,
                "rest_domain": standin.base_url,
            }
        ),
    )["ARN"]
    create_table(aws.clients["dynamodb"])
    mapping = {
        name: dict(getattr(MAPPING, name)) for name in ("subsidiaries", "currencies", "items", "accounts")
    }
    for key, value in {
        "DELIVERY_LOG_TABLE_NAME": "delivery-log",
        "ERP_CONNECTOR": mode,
        "NETSUITE_SECRET_ID": arn,
        "NETSUITE_MAPPING": json.dumps(mapping),
        "CONCURRENCY_TABLE_NAME": "concurrency",
        "NETSUITE_CONCURRENCY_LIMIT": "3",
    }.items():
        monkeypatch.setenv(key, value)
    return arn


@pytest.mark.parametrize("mode", ["live", "dual"])
def test_a_live_erp_writes_to_netsuite_then_records_the_delivery(
    aws: AwsWorld, standin: NetSuiteStandIn, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    configure_live(aws, standin, monkeypatch, mode)
    receipt = wiring.deliver(billing_schedule(1))
    assert receipt.newly_recorded
    again = wiring.deliver(billing_schedule(1))  # a step's retry: the same record, updated, not duplicated
    assert not again.newly_recorded
    held = standin.holdings()
    assert list(held["records"]["salesOrder"]) == ["C-2026-0412"]
    assert held["counters"]["tokens_issued"] == 1  # the secret and the token: once per container
    log = wiring.delivery_log(DeliveryLogSettings(delivery_log_table_name="delivery-log"))
    assert [c.idempotency_key for c in log.all_commands()] == [billing_schedule(1).idempotency_key]
    if mode == "dual":
        assert held["counters"]["reads"] == 2  # read back after each write and compared with the shadow


def test_an_older_version_is_refused_before_netsuite_is_called(
    aws: AwsWorld, standin: NetSuiteStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_live(aws, standin, monkeypatch, "live")
    wiring.deliver(billing_schedule(2))
    writes = standin.holdings()["counters"]["writes"]
    wiring.deliver(billing_schedule(1))
    assert standin.holdings()["counters"]["writes"] == writes
    assert "v2" in standin.holdings()["records"]["salesOrder"]["C-2026-0412"]["memo"]


def test_the_erp_and_the_psa_live_without_their_settings_are_configuration_errors(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("NETSUITE_SECRET_ID", "NETSUITE_MAPPING", "CONCURRENCY_TABLE_NAME", "KANTATA_SECRET_ID"):
        monkeypatch.delenv(key, raising=False)
    settings = DeliveryLogSettings(delivery_log_table_name="log", erp_connector="live", psa_connector="live")
    from pssync.model.commands import Target

    with pytest.raises(PssyncError, match="NETSUITE_SECRET_ID, NETSUITE_MAPPING not configured") as erp:
        wiring.connector_for("live", settings, Target.ERP)
    with pytest.raises(PssyncError, match="KANTATA_SECRET_ID not configured") as psa:
        wiring.connector_for("live", settings, Target.PSA)
    assert erp.value.code == psa.value.code == "configuration"
    assert isinstance(wiring.connector_for("shadow", settings, Target.PSA), CutoverConnector)
