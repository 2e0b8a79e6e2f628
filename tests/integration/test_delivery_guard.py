"""The never-regress guard on the delivery path every workflow uses (`wiring.deliver`), against moto."""

from __future__ import annotations

from pssync.adapters.aws import DynamoDBDeliveryLog
from pssync.config import DeliveryLogSettings, load_settings
from pssync.connectors.cutover import RefusedCommand
from pssync.model import examples
from pssync.model.commands import Target
from pssync.wiring import connector_for, deliver
from pssync.workflows.provision import billing_schedule_command
from tests.integration.conftest import AwsWorld


def test_an_older_contract_version_is_refused_recorded_and_never_sent_after_a_newer_one(
    aws: AwsWorld,
) -> None:
    booked = examples.contract_booked()
    amended = examples.contract_amended()
    v1 = billing_schedule_command(booked, booked.data.contract, 1)
    v2 = billing_schedule_command(amended, amended.data.contract, 2)

    assert deliver(v2).newly_recorded
    # A DLQ replay of the booking arrives after the amendment: v1 must not overwrite what the ERP holds.
    settings = load_settings(DeliveryLogSettings)
    refused = connector_for(settings.erp_connector, settings).send(v1, "2026-11-30T10:00:00+00:00")
    assert isinstance(refused, RefusedCommand)
    assert (refused.refused_version, refused.held_version) == (1, 2)
    assert deliver(v1).newly_recorded is False  # again: still refused, nothing new

    log = DynamoDBDeliveryLog("delivery-log", aws.clients["dynamodb"])
    assert [c.idempotency_key for c in log.commands_for(Target.ERP, v1.external_id)] == [v2.idempotency_key]
    assert [c.idempotency_key for c in log.all_commands()] == [v2.idempotency_key]
    refusals = aws.clients["dynamodb"].scan(TableName="delivery-log")["Items"]
    assert sorted(i["sk"]["S"] for i in refusals) == sorted(
        [v2.idempotency_key, "refused#" + v1.idempotency_key, "held#" + v1.operation]
    )
    assert deliver(v2).newly_recorded is False  # the held version itself is a duplicate, not a refusal
