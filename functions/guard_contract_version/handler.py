"""Step: refuse stale or duplicate amendments (older source version than the recorded head)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.wiring import version_store
from pssync.workflows import amendment


@workflow_step
def handler(payload: AmendmentPayload) -> amendment.VersionGuard:
    return amendment.guard_contract_version(
        payload.event, version_store(load_settings(BusinessTableSettings))
    )
