"""Inbound schemes by name. Imported lazily: a function pays at cold start only for its own vendor."""

from __future__ import annotations

import importlib
from functools import cache

from pssync.ingest.schemes.base import InboundScheme
from pssync.ingest.sources import SignatureScheme

_SCHEME_CLASSES: dict[SignatureScheme, str] = {
    SignatureScheme.STANDARD_WEBHOOKS: "pssync.ingest.schemes.standard_webhooks:StandardWebhooksScheme",
    SignatureScheme.HUBSPOT: "pssync.ingest.schemes.hubspot:HubSpotScheme",
    SignatureScheme.JIRA: "pssync.ingest.schemes.jira:JiraScheme",
    SignatureScheme.DATAVERSE: "pssync.ingest.schemes.dataverse:DataverseScheme",
    SignatureScheme.SALESFORCE_OUTBOUND: "pssync.ingest.schemes.salesforce_outbound:SalesforceOutboundScheme",
}


@cache
def scheme_for(name: SignatureScheme) -> InboundScheme:
    try:
        module_name, _, class_name = _SCHEME_CLASSES[name].partition(":")
    except KeyError:
        raise ValueError(f"scheme {name} has no HTTP endpoint") from None
    scheme: InboundScheme = getattr(importlib.import_module(module_name), class_name)()
    return scheme
