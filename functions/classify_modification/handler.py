"""Step: separate contract, prospective, cumulative catch-up or mixed, from the facts of the amendment."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.wiring import version_store
from pssync.workflows import amendment


@workflow_step
def handler(payload: AmendmentPayload) -> amendment.Classification:
    store = version_store(load_settings(BusinessTableSettings))
    return amendment.classify_modification(store, payload.require_contract())
