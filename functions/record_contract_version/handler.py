"""Step: contract version 1, appended once with a conditional write."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import StepPayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import provision


@workflow_step
def handler(payload: StepPayload) -> provision.RecordedContract:
    store = version_store(load_settings(BusinessTableSettings))
    return provision.record_contract_version(payload.event, store, SystemClock().now())
