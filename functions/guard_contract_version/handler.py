"""Step: refuse stale or duplicate amendments (older source version than the recorded head)."""

from pssync.adapters.wiring import version_store
from pssync.config import BusinessTableSettings, load_settings
from pssync.lambda_support import AmendmentPayload, workflow_step
from pssync.workflows import amendment


@workflow_step
def handler(payload: AmendmentPayload) -> amendment.VersionGuard:
    return amendment.guard_contract_version(
        payload.event, version_store(load_settings(BusinessTableSettings))
    )
