"""End to end: a HubSpot deal changed after it was booked amends its contract through propagate-amendment.

The stack needs a HubSpot source whose CRM API is a stand-in on 127.0.0.1, i.e. a LocalRuntime of its
own: moto's backends are process-global, so the scenario runs in a subprocess (this module, run as
`python -m tests.e2e.test_local_crm_amendments <workdir>`) and the tests assert on the JSON document it prints
as the last line of stdout. The stand-in answers the deal as the test last set it.

1. the deal closes won (signed HubSpot webhook): booked, provisioned, contract v1;
2. the SOW terms and the amount change (two property-change events in one delivery), the same delivery
   is posted twice: one ContractAmended, propagated into contract v2;
3. only the owner changes: the owner's property-change event is acknowledged without an event; a
   contract-terms event whose read shows only the owner and description changed publishes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "tests.e2e.test_local_crm_amendments"
DEAL = "18472934001"
CONTRACT_ID = "E2E-CRM-AMEND"
PORTAL = 62515
PUBLIC_URL = "https://hooks.example.com/webhooks/hubspot"


# --- the scenario (runs in the subprocess) --------------------------------------------------------


def _context(hubspot_api_url: str) -> dict[str, Any]:
    return {
        "pssync:sources": [
            {
                "name": "hubspot",
                "scheme": "hubspot",
                "system": "hubspot",
                "tenants": [str(PORTAL)],
                "own_client_ids": ["2214790"],
                "public_url": PUBLIC_URL,
                "crm_api": {"base_url": hubspot_api_url, "token_secret_id": "pssync/dev/crm/hubspot"},
            }
        ]
    }


def _deal(**properties: Any) -> dict[str, Any]:
    from pssync.model import examples
    from tests.unit.ingest.sources_kit import hubspot_deal

    terms = examples.transformation_programme()
    terms = terms.model_copy(
        update={
            "contract_id": CONTRACT_ID,
            "project": terms.project.model_copy(update={"project_id": f"P-{CONTRACT_ID}"}),
        }
    )
    deal = hubspot_deal(DEAL, CONTRACT_ID)
    deal["properties"]["pssync_contract_json"] = terms.model_dump_json()
    deal["properties"].update(properties)
    return deal


def _change_order_json() -> str:
    from pssync.model import examples

    terms = examples.change_order_terms()
    return terms.model_copy(
        update={
            "contract_id": CONTRACT_ID,
            "project": terms.project.model_copy(update={"project_id": f"P-{CONTRACT_ID}"}),
        }
    ).model_dump_json()


def _stamp(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class _Sender:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.secret = runtime.local_secrets["hubspot"]["current"]
        self.next_event_id = 1480915001

    def events(self, *changes: tuple[str, str, int]) -> bytes:
        body = []
        for prop, value, occurred_at in changes:
            body.append(
                {
                    "eventId": self.next_event_id,
                    "subscriptionId": 2870341,
                    "portalId": PORTAL,
                    "appId": 1160452,
                    "occurredAt": occurred_at,
                    "subscriptionType": "deal.propertyChange",
                    "attemptNumber": 0,
                    "objectId": int(DEAL),
                    "propertyName": prop,
                    "propertyValue": value,
                    "changeSource": "CRM_UI",
                    "sourceId": "userId:4811120",
                }
            )
            self.next_event_id += 1
        return json.dumps(body).encode()

    def post(self, body: bytes) -> dict[str, Any]:
        from tests.unit.ingest.sources_kit import hubspot_v3

        timestamp = int(time.time() * 1000)
        response = httpx.post(
            f"{self.runtime.api.url}/webhooks/hubspot",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-HubSpot-Signature-v3": hubspot_v3(self.secret, "POST", PUBLIC_URL, body, timestamp),
                "X-HubSpot-Request-Timestamp": str(timestamp),
            },
            timeout=30,
        )
        self.runtime.wait_until_idle()
        return {"status": response.status_code, "body": response.json()}


def main(workdir: Path) -> dict[str, Any]:
    from pssync.adapters.aws import DynamoDBVersionStore
    from pssync.local.runtime import LocalRuntime
    from pssync.workflows.provision import CONTRACT
    from tests.e2e.http_standin import StandIn, preferred_port
    from tests.e2e.relay_and_poller_scenario import Capture

    current = {"deal": _deal()}
    with ExitStack() as stack:
        hubspot_api = stack.enter_context(StandIn("hubspot", preferred_port(ROOT, 3)))
        deals = hubspot_api.route("GET", f"^/crm/v3/objects/deals/{DEAL}$", lambda _: (200, current["deal"]))
        runtime = stack.enter_context(
            LocalRuntime(
                ROOT,
                context=_context(hubspot_api.url),
                retry_time_scale=0.01,
                secrets_file=workdir / "secrets.json",
                lambda_log=workdir / "lambda.log",
            )
        )
        capture = Capture(runtime)
        store = DynamoDBVersionStore(runtime.function_env("BUSINESS_TABLE_NAME"), runtime.clients["dynamodb"])
        sender = _Sender(runtime)

        def published() -> list[dict[str, Any]]:
            return [
                {"detail_type": e["detail-type"], "event_id": e["detail"]["event_id"], "detail": e["detail"]}
                for e in capture.drain()
            ]

        def versions() -> list[dict[str, Any]]:
            return [
                {
                    "version": v.version,
                    "price": v.body["terms"]["transaction_price"]["amount"],
                    "source_version": v.body.get("source_version"),
                    "caused_by": v.caused_by_event_id,
                }
                for v in store.history(CONTRACT, CONTRACT_ID)
            ]

        won_at = int(time.time() * 1000)
        booking = {"answer": sender.post(sender.events(("dealstage", "closedwon", won_at)))}
        booking.update(published=published(), versions=versions())

        changed_at = won_at + 60_000
        current["deal"] = _deal(
            amount="426000.00",
            pssync_contract_json=_change_order_json(),
            hs_lastmodifieddate=_stamp(changed_at),
        )
        change = sender.events(
            ("amount", "426000.00", changed_at), ("pssync_contract_json", "{}", changed_at)
        )
        amendment = {"answers": [sender.post(change), sender.post(change)]}
        amendment.update(published=published(), versions=versions())

        owner_at = changed_at + 60_000
        current["deal"] = _deal(
            amount="426000.00",
            pssync_contract_json=_change_order_json(),
            hubspot_owner_id="4811187",
            description="renewal expected in Q3",
            hs_lastmodifieddate=_stamp(owner_at),
        )
        executions_before = len(runtime.executions())
        reads_before = len(deals.calls)
        owner = {
            "owner_answer": sender.post(sender.events(("hubspot_owner_id", "4811187", owner_at))),
            "reads_after_owner_event": len(deals.calls) - reads_before,
            "terms_answer": sender.post(sender.events(("pssync_contract_json", "{}", owner_at))),
            "reads_after_terms_event": len(deals.calls) - reads_before,
        }
        owner.update(
            published=published(),
            versions=versions(),
            new_executions=len(runtime.executions()) - executions_before,
        )
        return {
            "booking": booking,
            "amendment": amendment,
            "owner": owner,
            "executions": [{"name": e["name"], "status": e["status"]} for e in runtime.executions()],
            "queues": {q.name: q.visible + q.in_flight for q in runtime.queue_depths()},
            "unmatched": [f"{r.method} {r.path}" for r in hubspot_api.unmatched],
            "failed_invocations": [
                {"function": r.function, "error_type": r.error_type}
                for r in runtime.host.invocations
                if r.errored
            ],
        }


# --- the tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("crm-amendments")
    # Not the session runtime's AWS_* / MOTO_* settings: the subprocess starts its own moto server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env["PSSYNC_LOCAL_SECRETS_FILE"] = str(workdir / "secrets.json")
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", SCENARIO, str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: a synth and a runtime start, then three short steps
        check=False,
    )
    assert completed.returncode == 0, f"scenario failed:\n{completed.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _types(published: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail_type"] for e in published)


def test_the_scenario_runs_cleanly(scenario: dict[str, Any]) -> None:
    assert scenario["unmatched"] == [] and scenario["failed_invocations"] == []
    assert {e["status"] for e in scenario["executions"]} == {"SUCCEEDED"}
    assert [name for name, depth in scenario["queues"].items() if depth] == []  # no DLQ, no exception


def test_a_hubspot_change_on_a_booked_won_deal_is_propagated_as_version_2_once(
    scenario: dict[str, Any],
) -> None:
    booking = scenario["booking"]
    assert _types(booking["published"]) == ["ClosedWonSignalled", "ContractBooked", "EngagementActivated"]
    assert [v["version"] for v in booking["versions"]] == [1]

    amendment = scenario["amendment"]
    first, second = amendment["answers"]
    assert first["status"] == second["status"] == 202
    assert [e["event_type"] for e in first["body"]["events"]] == ["ClosedWonSignalled"]  # one per deal
    assert second["body"]["duplicate"] is True
    assert _types(amendment["published"]) == ["AmendmentPropagated", "ClosedWonSignalled", "ContractAmended"]
    [amended] = [e for e in amendment["published"] if e["detail_type"] == "ContractAmended"]
    [propagated] = [e for e in amendment["published"] if e["detail_type"] == "AmendmentPropagated"]
    assert propagated["detail"]["causation_id"] == amended["event_id"]
    assert propagated["detail"]["data"]["contract_version"] == 2
    v1, v2 = amendment["versions"]
    assert (v1["price"], v2["price"]) == ("396000.00", "426000.00")
    assert v2["caused_by"] == amended["event_id"]
    assert v2["source_version"] == amended["detail"]["source_version"]  # hs_lastmodifieddate
    assert [e for e in scenario["executions"] if amended["event_id"] in e["name"]] != []


def test_an_owner_change_leads_to_nothing(scenario: dict[str, Any]) -> None:
    owner = scenario["owner"]
    assert owner["owner_answer"]["status"] == 202 and owner["owner_answer"]["body"]["events"] == []
    assert owner["reads_after_owner_event"] == 0  # not even a read of the deal
    # A contract-terms event whose read shows only owner and description changed: diffed, nothing published.
    assert owner["reads_after_terms_event"] == 1
    assert _types(owner["published"]) == ["ClosedWonSignalled"]
    assert [v["version"] for v in owner["versions"]] == [1, 2] and owner["new_executions"] == 0


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), default=str))
