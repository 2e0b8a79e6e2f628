"""One home per source system: verification, normalisation and the mapping of the vendor's records.

Webhook schemes are found by name and imported lazily: a function pays at cold start only for its own
vendor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from pssync.model.events import ClosedWonRecordType, ClosedWonSignalled, SourceSystem
from pssync.model.sources import SignatureScheme
from pssync.ports import JsonReader, RecordFetcher
from pssync.sources.base import InboundScheme
from pssync.sources.crm_terms import WonRecord

_SCHEME_CLASSES: dict[SignatureScheme, str] = {
    SignatureScheme.STANDARD_WEBHOOKS: "pssync.sources.standard_webhooks:StandardWebhooksScheme",
    SignatureScheme.HUBSPOT: "pssync.sources.hubspot:HubSpotScheme",
    SignatureScheme.JIRA: "pssync.sources.jira:JiraScheme",
    SignatureScheme.DATAVERSE: "pssync.sources.dataverse:DataverseScheme",
    SignatureScheme.SALESFORCE_OUTBOUND: "pssync.sources.salesforce.outbound:SalesforceOutboundScheme",
}


@cache
def scheme_for(name: SignatureScheme) -> InboundScheme:
    try:
        module_name, _, class_name = _SCHEME_CLASSES[name].partition(":")
    except KeyError:
        raise ValueError(f"scheme {name} has no HTTP endpoint") from None
    scheme: InboundScheme = getattr(importlib.import_module(module_name), class_name)()
    return scheme


def record_fetcher_for(system: SourceSystem, reader: JsonReader) -> RecordFetcher:
    """The CRM record fetcher of a source system, reading through `reader` (the vendor HTTP client)."""
    match system:
        case SourceSystem.HUBSPOT:
            from pssync.sources.hubspot import HubSpotRecordFetcher

            return HubSpotRecordFetcher(reader)
        case SourceSystem.SALESFORCE:
            from pssync.sources.salesforce.records import SalesforceRecordFetcher

            return SalesforceRecordFetcher(reader)
        case SourceSystem.DYNAMICS_365:
            from pssync.sources.dataverse import DataverseRecordFetcher

            return DataverseRecordFetcher(reader)
    raise ValueError(f"no CRM record fetcher for {system}")


WonRecordReader = Callable[[ClosedWonSignalled, RecordFetcher], WonRecord | None]


def won_record_reader_for(record_type: ClosedWonRecordType) -> WonRecordReader:
    """How the record behind a signal of this type is read as it is now (None: the deal is not won)."""
    if record_type == "hubspot-deal":
        from pssync.sources.hubspot import read_won_deal

        return read_won_deal
    if record_type == "salesforce-opportunity":
        from pssync.sources.salesforce.records import read_won_opportunity

        return read_won_opportunity
    from pssync.sources.dataverse import read_won_opportunity as read_won_dataverse_opportunity

    return read_won_dataverse_opportunity
