"""Cutover modes (shadow, dual, live) and the never-regress guard, with in-memory ports."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from pssync.config import DeliveryLogSettings, load_settings
from pssync.connectors.cutover import (
    CUTOVER_MODES,
    CutoverConnector,
    CutoverMismatch,
    RefusedCommand,
    command_version,
    held_version,
)
from pssync.errors import PssyncError, TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.ports import RecordedCommand
from tests.fakes import InMemoryDeliveryLog
from tests.unit.test_netsuite_connector import FakeNetSuite, billing_schedule, connector, journal, netsuite

__all__ = ["netsuite"]  # the respx NetSuite fixture, shared with the connector's tests


@dataclass
class FakeLive:
    """A live target that keeps what it was sent; `held_differently` is what a read-back would report."""

    sent: list[ConnectorCommand] = field(default_factory=list)
    held_differently: list[str] = field(default_factory=list)
    failure: Exception | None = None

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        if self.failure is not None:
            raise self.failure
        self.sent.append(command)
        return RecordedCommand(command=command, first_time=True)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        return list(self.held_differently)


def psa_project(version: int) -> ConnectorCommand:
    return ConnectorCommand(
        target=Target.PSA,
        operation="upsert_project",
        external_id="P-CONTOSO-0412",
        idempotency_key=f"project:P-CONTOSO-0412:contract-v{version}",
        payload={"project_id": "P-CONTOSO-0412"},
        caused_by_event_id=f"evt-v{version}",
        correlation_id="corr",
    )


# --- versions ----------------------------------------------------------------------------------------


def test_a_command_names_its_contract_version_in_its_payload_or_its_key() -> None:
    assert command_version(billing_schedule(3)) == 3
    assert command_version(psa_project(2)) == 2
    assert command_version(journal("original")) is None  # journals are per period, not per version


def test_the_held_version_is_the_newest_of_the_same_record_and_operation() -> None:
    history = [billing_schedule(1), billing_schedule(4), billing_schedule(2), psa_project(9)]
    assert held_version(billing_schedule(3), history) == 4
    assert held_version(billing_schedule(3), [psa_project(9)]) is None


# --- the never-regress guard -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", CUTOVER_MODES)
def test_an_older_version_is_refused_recorded_and_never_written(mode: str) -> None:
    history, live = InMemoryDeliveryLog(), FakeLive()
    target = CutoverConnector(mode, history, live)
    target.send(billing_schedule(2), "t1")
    written_before = list(live.sent)

    late = target.send(billing_schedule(1), "t2")  # e.g. a replayed dead letter of version 1

    assert isinstance(late, RefusedCommand)
    assert (late.refused_version, late.held_version, late.first_time) == (1, 2, False)
    assert "erp:billing-schedule:C-2026-0412:v1" not in history.commands
    assert history.refusals == {"erp:billing-schedule:C-2026-0412:v1": 2}
    assert live.sent == written_before


def test_a_redelivery_of_the_held_version_is_a_duplicate_not_a_refusal() -> None:
    history = InMemoryDeliveryLog()
    target = CutoverConnector("shadow", history)
    assert target.send(billing_schedule(2), "t1").first_time
    again = target.send(billing_schedule(2), "t2")
    assert not isinstance(again, RefusedCommand) and not again.first_time
    assert history.refusals == {}


def test_a_newer_version_passes_the_guard() -> None:
    history = InMemoryDeliveryLog()
    target = CutoverConnector("shadow", history)
    target.send(billing_schedule(1), "t1")
    assert target.send(billing_schedule(2), "t2").first_time
    assert len(history.commands) == 2


def test_unversioned_commands_are_not_guarded() -> None:
    history = InMemoryDeliveryLog()
    target = CutoverConnector("shadow", history)
    assert target.send(journal("original"), "t1").first_time
    assert target.send(journal("adjustment-1"), "t2").first_time
    assert history.refusals == {}


# --- modes -------------------------------------------------------------------------------------------


def test_shadow_records_and_writes_nothing() -> None:
    history = InMemoryDeliveryLog()
    recorded = CutoverConnector("shadow", history).send(billing_schedule(1), "t")
    assert recorded.first_time and list(history.commands) == ["erp:billing-schedule:C-2026-0412:v1"]


def test_live_writes_first_and_records_what_was_delivered() -> None:
    history, live = InMemoryDeliveryLog(), FakeLive()
    recorded = CutoverConnector("live", history, live).send(billing_schedule(1), "t")
    assert recorded.first_time and live.sent == [billing_schedule(1)]
    assert list(history.commands) == ["erp:billing-schedule:C-2026-0412:v1"]


def test_a_failed_live_write_records_nothing_so_the_retry_writes_again() -> None:
    history, live = InMemoryDeliveryLog(), FakeLive(failure=TransientDownstreamError("netsuite: HTTP 503"))
    target = CutoverConnector("live", history, live)
    with pytest.raises(TransientDownstreamError):
        target.send(billing_schedule(1), "t1")
    assert history.commands == {}
    live.failure = None
    assert target.send(billing_schedule(1), "t2").first_time and live.sent == [billing_schedule(1)]


def test_dual_records_writes_and_finds_no_difference() -> None:
    history, live = InMemoryDeliveryLog(), FakeLive()
    recorded = CutoverConnector("dual", history, live).send(billing_schedule(1), "t")
    assert recorded.first_time and live.sent == [billing_schedule(1)]
    assert list(history.commands) == ["erp:billing-schedule:C-2026-0412:v1"]


def test_dual_raises_the_differences_between_the_target_and_the_shadow() -> None:
    history, live = InMemoryDeliveryLog(), FakeLive(held_differently=["salesOrder/C-2026-0412: currency"])
    with pytest.raises(CutoverMismatch) as mismatch:
        CutoverConnector("dual", history, live).send(billing_schedule(1), "t")
    assert mismatch.value.code == "cutover_mismatch"
    assert mismatch.value.mismatches == ["salesOrder/C-2026-0412: currency"]
    assert "erp:billing-schedule:C-2026-0412:v1" in history.commands  # the shadow still holds the command


def test_dual_reports_a_command_the_shadow_recorded_differently_under_the_same_key() -> None:
    history, live = InMemoryDeliveryLog(), FakeLive()
    earlier = billing_schedule(1)
    history.record(earlier.model_copy(update={"payload": {**earlier.payload, "currency": "USD"}}), "t0")
    with pytest.raises(CutoverMismatch, match="shadow recorded a different command"):
        CutoverConnector("dual", history, live).send(earlier, "t1")


def test_dual_against_netsuite_finds_nothing_when_it_holds_what_the_shadow_recorded(
    netsuite: FakeNetSuite,
) -> None:
    history = InMemoryDeliveryLog()
    assert CutoverConnector("dual", history, connector()[0]).send(billing_schedule(1), "t").first_time
    assert ("salesOrder", "C-2026-0412") in netsuite.records


def test_dual_against_netsuite_reports_a_line_changed_on_the_netsuite_side(netsuite: FakeNetSuite) -> None:
    ns, _ = connector()
    write = ns.send

    def write_then_netsuite_edits(command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        result = write(command, recorded_at)
        # e.g. a NetSuite workflow on the record rewrites a line right after our upsert
        netsuite.records[("salesOrder", "C-2026-0412")]["item"]["items"][0]["amount"] = 1.0
        return result

    ns.send = write_then_netsuite_edits  # type: ignore[method-assign]
    with pytest.raises(CutoverMismatch) as mismatch:
        CutoverConnector("dual", InMemoryDeliveryLog(), ns).send(billing_schedule(1), "t")
    assert mismatch.value.mismatches == ["salesOrder/C-2026-0412: item[0].amount"]


# --- configuration -----------------------------------------------------------------------------------


def test_an_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(PssyncError) as error:
        CutoverConnector("canary", InMemoryDeliveryLog())
    assert error.value.code == "configuration"
    with pytest.raises(PssyncError, match="needs a live connector"):
        CutoverConnector("live", InMemoryDeliveryLog())


def test_an_unknown_mode_in_the_settings_fails_at_load() -> None:
    environ = {"DELIVERY_LOG_TABLE_NAME": "log", "ERP_CONNECTOR": "livee"}
    with pytest.raises(ValidationError, match="unknown cutover mode 'livee'"):
        load_settings(DeliveryLogSettings, environ)
    assert load_settings(DeliveryLogSettings, {**environ, "ERP_CONNECTOR": "dual"}).erp_connector == "dual"


@pytest.mark.parametrize("mode", ["dual", "live"])
@pytest.mark.parametrize(
    ("target", "missing"),
    [
        (Target.ERP, "NETSUITE_SECRET_ID, NETSUITE_MAPPING not configured (CDK context pssync:netsuite)"),
        (Target.PSA, "KANTATA_SECRET_ID not configured (CDK context pssync:kantata-psa)"),
    ],
)
def test_dual_and_live_without_their_vendor_settings_are_configuration_errors_naming_them(
    mode: str, target: Target, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pssync.wiring import connector_for

    for variable in ("NETSUITE_SECRET_ID", "NETSUITE_MAPPING", "KANTATA_SECRET_ID"):
        monkeypatch.delenv(variable, raising=False)
    settings = DeliveryLogSettings(delivery_log_table_name="log", erp_connector=mode, psa_connector=mode)
    with pytest.raises(PssyncError, match=re.escape(missing)) as error:
        connector_for(mode, settings, target)
    assert error.value.code == "configuration"
    assert f"cutover mode {mode!r} for the {target}" in str(error.value)


def test_the_netsuite_connector_is_built_from_its_secret_and_mapping(
    netsuite: FakeNetSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import boto3
    from moto import mock_aws

    from pssync import wiring
    from tests.unit.test_netsuite_connector import CREDENTIALS, MAPPING

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "NETSUITE_SECRET_ID": "pssync/netsuite/wiring-test",
        "NETSUITE_MAPPING": json.dumps(
            {
                name: dict(getattr(MAPPING, name))
                for name in ("subsidiaries", "currencies", "items", "accounts")
            }
        ),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="pssync/netsuite/wiring-test",
            SecretString=json.dumps(
                {
                    "account_id": CREDENTIALS.account_id,
                    "client_id": CREDENTIALS.client_id,
                    "certificate_id": CREDENTIALS.certificate_id,
                    "private_key_pem": CREDENTIALS.private_key_pem,
                }
            ),
        )
        erp = wiring.netsuite_connector()
        assert wiring.netsuite_connector() is erp  # one per container: one token cache
        erp.send(billing_schedule(1), "t")
    assert ("salesOrder", "C-2026-0412") in netsuite.records and len(netsuite.assertions) == 1
