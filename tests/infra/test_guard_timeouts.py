"""The functions that send NetSuite commands and the NetSuite call policy agree on time.

A live ERP sender's timeout holds one whole command (every call of it shares NETSUITE_COMMAND_SECONDS)
and the reserve kept after it; a stack where they disagree does not synthesise.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from infra.constructs.cutover import (
    ERP_SENDER_MIN_TIMEOUT_SECONDS,
    CutoverConfig,
    NetSuiteConfig,
    VendorTargets,
)
from pssync.connectors.netsuite import NETSUITE_COMMAND_SECONDS, NETSUITE_WRITES
from tests.infra.conftest import Synthesis, synthesize
from tests.infra.test_netsuite_cutover_infra import LIVE_ERP, MAPPING, senders

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def live_erp() -> Synthesis:
    return synthesize(LIVE_ERP)


def test_every_live_erp_sender_has_time_for_a_whole_netsuite_command(live_erp: Synthesis) -> None:
    assert live_erp.template is not None, live_erp.error
    found = senders(live_erp.template["Resources"])
    assert len(found) >= 5  # billing schedule, time, expenses, milestone invoice, close journals
    needed = NETSUITE_COMMAND_SECONDS + NETSUITE_WRITES.invocation_reserve_seconds
    assert needed == ERP_SENDER_MIN_TIMEOUT_SECONDS
    assert NETSUITE_WRITES.deadline_seconds <= NETSUITE_COMMAND_SECONDS  # one call fits its command
    for logical_id, function in found.items():
        assert function["Properties"]["Environment"]["Variables"]["ERP_CONNECTOR"] == "live"
        assert function["Properties"]["Timeout"] >= needed, logical_id


def _stack_with_an_erp_sender(timeout_seconds: int, erp_mode: str) -> cdk.App:
    """A stack whose one function is given the ERP as infra/constructs/functions.py gives it."""
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "TimeoutCheck")
    targets = VendorTargets(
        stack,
        "VendorTargets",
        stage="dev",
        cutover=CutoverConfig(erp=erp_mode),
        netsuite=NetSuiteConfig(mapping=MAPPING),
    )
    environment = targets.environment({"ERP_CONNECTOR": "shadow", "DELIVERY_LOG_TABLE_NAME": "log"})
    sender = lambda_.Function(
        stack,
        "SendsToNetSuite",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="handler.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
        timeout=cdk.Duration.seconds(timeout_seconds),
        environment=environment,
    )
    assert sender.role is not None
    targets.grant(sender.role, environment)
    return app


@pytest.mark.parametrize("mode", ["live", "dual"])
def test_a_sender_whose_timeout_is_shorter_than_a_command_fails_the_synth(mode: str) -> None:
    short = int(ERP_SENDER_MIN_TIMEOUT_SECONDS) - 1
    with pytest.raises(RuntimeError) as failed:
        _stack_with_an_erp_sender(short, mode).synth()
    message: Any = str(failed.value)
    assert "TimeoutCheck/SendsToNetSuite" in message and "NETSUITE_COMMAND_SECONDS" in message


def test_a_sender_with_time_for_a_command_synthesises() -> None:
    assert _stack_with_an_erp_sender(int(ERP_SENDER_MIN_TIMEOUT_SECONDS) + 1, "live").synth().stacks
