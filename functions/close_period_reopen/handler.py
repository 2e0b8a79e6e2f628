"""Step: reopen a locked period with its recorded reason; emit PeriodReopened."""

from typing import Any

from pssync.config import BusinessTableSettings, EventBusSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.ports import SystemClock
from pssync.wiring import publisher, version_store
from pssync.workflows import period_close


@lambda_handler(correlation_id_path="request.close_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = period_close.CloseState.model_validate(event)
    store = version_store(load_settings(BusinessTableSettings))
    reopened = period_close.reopen_period(state.request, store, SystemClock().now())
    publisher(load_settings(EventBusSettings)).publish([reopened])
    return {"event_id": reopened.event_id, "reopen_count": reopened.data.reopen_count}
