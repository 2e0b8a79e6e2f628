"""The stack the scorecard runs against: one source of every webhook scheme the local runtime serves."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

HUBSPOT_PORTAL = "62515"
HUBSPOT_OWN_APP = "2214790"
HUBSPOT_PUBLIC_URL = "https://hooks.pssync.example.com/webhooks/hubspot"
JIRA_SITE = "acme-consulting.atlassian.net"
DATAVERSE_ORG = "2f7a9c3e-6d1b-4b8e-9a55-0c3f1e2d4b6a"
SALESFORCE_ORG_15 = "00D5g000004ABCD"
SALESFORCE_INTEGRATION_USER = "0055g00000Int01AAA"

# Source names, one per webhook scheme (plus a second Standard Webhooks source for an ERP).
CRM = "crm"  # standard-webhooks, Salesforce Apex: bookings and amendments (R1, R5)
ERP = "erp"  # standard-webhooks, NetSuite: invoices and payments
PSA = "psa"  # standard-webhooks, Certinia: approved time (R2, R3)
HUBSPOT = "hubspot"
JIRA = "jira"
DATAVERSE = "dataverse"
SALESFORCE = "salesforce"  # salesforce-outbound (SOAP)

# CRM APIs are never reached by the scorecard (no accepted thin event is resolved); the hosts are the vendors'
# own, so a wrongly accepted forgery would show as a write and a failed read, never as a call to us.
SCORECARD_CONTEXT: dict[str, Any] = {
    "pssync:sources": [
        {"name": CRM, "scheme": "standard-webhooks", "system": "salesforce"},
        {"name": ERP, "scheme": "standard-webhooks", "system": "netsuite"},
        {"name": PSA, "scheme": "standard-webhooks", "system": "certinia"},
        {
            "name": HUBSPOT,
            "scheme": "hubspot",
            "system": "hubspot",
            "tenants": [HUBSPOT_PORTAL],
            "own_client_ids": [HUBSPOT_OWN_APP],
            "public_url": HUBSPOT_PUBLIC_URL,
            "crm_api": {"base_url": "https://api.hubapi.com", "token_secret_id": "pssync/dev/crm/hubspot"},
        },
        {"name": JIRA, "scheme": "jira", "system": "jira", "tenants": [JIRA_SITE]},
        {
            "name": DATAVERSE,
            "scheme": "dataverse",
            "system": "dynamics365",
            "tenants": [DATAVERSE_ORG],
            "crm_api": {
                "base_url": "https://org5a1b2c3d.crm4.dynamics.com",
                "token_secret_id": "pssync/dev/crm/dataverse",
            },
        },
        {
            "name": SALESFORCE,
            "scheme": "salesforce-outbound",
            "system": "salesforce",
            "tenants": [SALESFORCE_ORG_15],
            "own_client_ids": [SALESFORCE_INTEGRATION_USER],
            "crm_api": {
                "base_url": "https://contoso.my.salesforce.com",
                "token_secret_id": "pssync/dev/crm/salesforce",
            },
        },
    ],
}


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def fresh_secrets() -> dict[str, dict[str, str]]:
    """New secrets for every run (current and previous, as during a rotation), never the seed's: R8 greps
    the run's logs and the template for each of them."""
    token = secrets.token_urlsafe
    return {
        CRM: {"current": _whsec(), "previous": _whsec()},
        ERP: {"current": _whsec(), "previous": _whsec()},
        PSA: {"current": _whsec(), "previous": _whsec()},
        HUBSPOT: {"current": f"hs-{token(24)}", "previous": f"hs-{token(24)}"},
        JIRA: {"current": f"jira-{token(24)}", "previous": f"jira-{token(24)}"},
        DATAVERSE: {"current": f"dv-{token(24)}", "previous": f"dv-{token(24)}"},
        SALESFORCE: {"current": f"sf-{token(24)}", "previous": f"sf-{token(24)}"},
        f"{HUBSPOT}-crm-api": {"access_token": f"hs-tok-{token(24)}"},
        f"{DATAVERSE}-crm-api": {"access_token": f"dv-tok-{token(24)}"},
        f"{SALESFORCE}-crm-api": {"access_token": f"sf-tok-{token(24)}"},
    }


def write_secrets(path: Path) -> dict[str, dict[str, str]]:
    values = fresh_secrets()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def secret_values(stored: dict[str, dict[str, str]]) -> list[str]:
    """Every secret value the run used (signing secrets, keys, API tokens)."""
    return sorted({value for entry in stored.values() for value in entry.values() if value})
