"""Step: publish 'contract balances updated', one event per contract the document touched."""

from pssync.config import EventBusSettings, load_settings
from pssync.handlers.receivable_payloads import ReceivablePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import publisher
from pssync.workflows import receivables


@workflow_step
def handler(payload: ReceivablePayload) -> dict[str, list[str]]:
    updated = receivables.contract_balances_updated(
        payload.event, payload.require_recorded(), payload.require_balances(), SystemClock().now()
    )
    publisher(load_settings(EventBusSettings)).publish(updated)
    return {"event_ids": [e.event_id for e in updated]}
