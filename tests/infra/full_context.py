"""A context with every optional source kind: Event Relay partner bus, Kantata poller, CRM APIs, HubSpot."""

from __future__ import annotations

from typing import Any

RELAY_ORG_ID = "00D5g000004SxYzEAK"
PARTNER_EVENT_SOURCE = f"aws.partner/salesforce.com/{RELAY_ORG_ID}/0YLabc"

FULL_CONTEXT: dict[str, Any] = {
    "pssync:sources": [
        {"name": "crm", "scheme": "standard-webhooks", "system": "salesforce"},
        {
            "name": "sf-relay",
            "scheme": "salesforce-event-relay",
            "system": "salesforce",
            "tenants": [RELAY_ORG_ID],
            "own_client_ids": ["pssync-int"],
            "crm_api": {
                "base_url": "https://example.my.salesforce.com",
                "token_secret_id": "pssync/dev/crm/sf-relay",
            },
        },
        {"name": "psa", "scheme": "kantata-poll", "system": "kantata", "tenants": ["12345"]},
        {
            "name": "hubspot",
            "scheme": "hubspot",
            "system": "hubspot",
            "tenants": ["62515"],
            "own_client_ids": ["2214790"],
            "public_url": "https://hooks.example.com/webhooks/hubspot",
            "crm_api": {"base_url": "https://api.hubapi.com", "token_secret_id": "pssync/dev/crm/hubspot"},
        },
    ],
    "pssync:salesforce_event_relay": [PARTNER_EVENT_SOURCE],
    "pssync:kantata": {"schedule_minutes": 1, "currency": "EUR"},
}
