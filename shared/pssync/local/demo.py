"""`make demo`: the seed's engagement over signed webhooks on the local runtime, then the evidence.

A quarter of a multi-country transformation programme (`pssync.local.demo_scenario`): two bookings in two
legal entities and currencies, approved time and expenses, milestones accepted explicitly and passively, a
change order and a stale copy of the old terms, invoices and payments, and three month-end closes per legal
entity. The report (build/demo/report.json) holds every delivery and its answer, every workflow execution,
the contract versions, what the PSA and the ERP were told, the revenue schedule, the balances per contract
and period, the closes, the business metrics the functions emitted, and the queues at the end.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore, StepFunctionsExecutions
from pssync.connectors.kantata import rate_differences
from pssync.connectors.kantata_plan import (
    RateCardPlan,
    field_differences,
    marker_of,
    story_marker,
    workspace_plan,
)
from pssync.local import demo_scenario as scenario
from pssync.local.runtime import LocalRuntime
from pssync.local.webhook_client import post_webhook, standard_webhook_headers
from pssync.model.commands import ConnectorCommand
from pssync.ports import VersionStore
from pssync.workflows import period_close
from pssync.workflows.amendment import engine_versions
from pssync.workflows.delivery_facts import delivery_events
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from pssync.workflows.receivables import balances_as_of

DEMO_CONTEXT = {"pssync:sources": scenario.DEMO_SOURCES}
FORGED_SECRET = "whsec_" + "Zm9yZ2VkLWtleS1mb3ItZGVtbw=="
CONTRACTS = (scenario.EU_CONTRACT, scenario.US_CONTRACT)
REQUESTED_BY = "demo:finance-controller"
Log = Callable[[str], None]


class DemoDriver:
    """Signs and posts the scenario's deliveries, waits for the runtime, runs the closes."""

    def __init__(self, runtime: LocalRuntime, log: Log) -> None:
        self.runtime = runtime
        self.log = log
        self.http = httpx.Client(timeout=30)
        self.deliveries: list[dict[str, Any]] = []
        self.closes: list[dict[str, Any]] = []
        self._bodies: dict[str, bytes] = {}  # a sender's retry sends the same body again
        # Only this run's metric lines count: the Lambda log outlives a runtime.
        self.log_offset = runtime.lambda_log_path.stat().st_size if runtime.lambda_log_path.exists() else 0

    def post(self, delivery: scenario.Delivery, *, attempt: str = "", secret: str | None = None) -> int:
        if delivery.delivery_id not in self._bodies:
            now = datetime.now(UTC).isoformat()
            data = {**delivery.data, **dict.fromkeys(delivery.stamped_now, now)}
            document = {"type": delivery.type, "timestamp": now, "data": data}
            self._bodies[delivery.delivery_id] = json.dumps(document).encode()
        body = self._bodies[delivery.delivery_id]
        signing = secret or self.runtime.signing_secrets[delivery.source]["current"]
        headers = standard_webhook_headers(signing, body, delivery_id=delivery.delivery_id)
        response = post_webhook(self.http, self.runtime.api.url, delivery.source, body, headers)
        self.deliveries.append(
            {
                "attempt": attempt or delivery.label,
                "source": delivery.source,
                "type": delivery.type,
                "status": response.status_code,
                "body": response.json(),
            }
        )
        return response.status_code

    def settle(self) -> None:
        self.runtime.wait_until_idle(timeout=180)

    def close(self, entity: str, period: str) -> dict[str, Any]:
        sfn = self.runtime.clients["stepfunctions"]
        (arn,) = [
            m["stateMachineArn"]
            for m in sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith("-close-period")
        ]
        executions = StepFunctionsExecutions(arn, sfn)
        document = period_close.request_input("close", entity, period, REQUESTED_BY)
        decision = period_close.submit_request(document, executions.status, executions.start)
        deadline = time.monotonic() + 180
        while (described := executions.describe(decision.name)) is None or described["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"close {entity} {period} still running after 180 s")
            time.sleep(0.2)
        output = json.loads(described.get("output") or "{}")
        state = period_close.period_states(_store(self.runtime).head(period_close.PERIOD, entity)).get(period)
        close = {
            "legal_entity": entity,
            "period": period,
            "execution": decision.name,
            "status": described["status"],
            "gate": output.get("gate"),
            "contracts": state.contracts if state else None,
            "shards": state.shards if state else None,
            "journals": [j.model_dump(mode="json") for j in state.journals] if state else [],
            "locked": state.locked if state else False,
        }
        self.closes.append(close)
        return close


def run_demo(runtime: LocalRuntime, log: Log = lambda _: None) -> dict[str, Any]:
    driver = DemoDriver(runtime, log)
    started = time.monotonic()
    eu_booking, us_booking = scenario.bookings()
    log("closed won: two SOWs booked, one delivery retried, one forged")
    driver.post(eu_booking)
    driver.post(eu_booking, attempt="same delivery again (sender retry)")
    driver.post(eu_booking, attempt="forged signature", secret=FORGED_SECRET)
    driver.post(us_booking)
    driver.settle()
    for month in scenario.months():
        log(f"{month.period}: {len(month.deliveries)} deliveries from the PSA and the ERP")
        # Delivery facts first, then what bills and pays them (an invoice after the release it bills).
        for phase in ("psa", "erp"):
            for delivery in month.deliveries:
                if delivery.source == phase:
                    driver.post(delivery)
            driver.settle()
        if month.period == "2026-09":
            log("2026-09: change order 1, then a stale copy of the original terms")
            driver.post(scenario.change_order())
            driver.settle()
            driver.post(scenario.stale_copy())
            driver.settle()
        for entity in scenario.ENTITIES:
            close = driver.close(entity, month.period)
            log(f"{month.period} close {entity}: {close['status']}, {close['contracts']} contracts")
    report = collect_report(runtime, driver)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    return report


# --- the evidence ------------------------------------------------------------------------------------------


def _store(runtime: LocalRuntime) -> VersionStore:
    return DynamoDBVersionStore(runtime.function_env("BUSINESS_TABLE_NAME"), runtime.clients["dynamodb"])


def _contract_versions(store: VersionStore, contract_id: str) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "caused_by_event_id": v.caused_by_event_id,
            "recorded_at": v.recorded_at,
            "source_version": v.body.get("source_version"),
            "transaction_price": v.body["terms"]["transaction_price"],
            "obligations": [o["obligation_id"] for o in v.body["terms"]["obligations"]],
            "webhook": (v.body.get("lineage") or {}).get("raw_payload_ref"),
        }
        for v in store.history(CONTRACT, contract_id)
    ]


def _revenue_schedule(store: VersionStore, contract_id: str) -> dict[str, Any] | None:
    head = store.head(REVENUE_SCHEDULE, contract_id)
    if head is None:
        return None
    schedule = head.body["schedule"]
    by_period: dict[str, dict[str, str]] = defaultdict(dict)
    for line in schedule["lines"]:
        by_period[line["period"]][line["obligation_id"]] = line["amount"]["amount"]
    return {
        "version": head.version,
        "contract_version": head.body["contract_version"],
        "currency": schedule["currency"],
        "allocations": {k: v["amount"] for k, v in schedule["allocations"].items()},
        "unscheduled": {k: v["amount"] for k, v in schedule["unscheduled"].items()},
        "by_period": dict(sorted(by_period.items())),
    }


def _balances(store: VersionStore, contract_id: str) -> dict[str, Any]:
    """Per close period: what the engine says, from every recorded fact dated up to the period's end."""
    head = store.head(CONTRACT, contract_id)
    if head is None:
        return {}
    versions = engine_versions(store, contract_id, head.version)
    events = delivery_events(store, contract_id, versions[-1])
    result = {}
    for period in scenario.CLOSE_PERIODS:
        balances = balances_as_of(versions, events, period_close.period_end(period))
        result[period] = {
            name: getattr(balances, name).amount.__str__()
            for name in (
                "recognised_to_date",
                "billed_to_date",
                "collected_to_date",
                "receivable",
                "contract_asset",
                "contract_liability",
            )
        }
    return result


def business_metrics(lambda_log: Path, offset: int = 0) -> dict[str, dict[str, float]]:
    """Every metric the functions emitted (Embedded Metric Format lines in the Lambda log, from `offset`)."""
    values: dict[str, list[float]] = defaultdict(list)
    if lambda_log.exists():
        with lambda_log.open("rb") as log_file:
            log_file.seek(offset)
            text = log_file.read().decode("utf-8", "replace")
        for line in text.splitlines():
            start = line.find('{"_aws"')
            if start < 0:
                continue
            try:
                document = json.loads(line[start:])
            except ValueError:
                continue
            for directive in document["_aws"].get("CloudWatchMetrics", []):
                for metric in directive.get("Metrics", []):
                    value = document.get(metric["Name"])
                    for item in value if isinstance(value, list) else [value]:
                        if isinstance(item, int | float):
                            values[metric["Name"]].append(float(item))
    return {
        name: {
            "count": len(found),
            "sum": round(sum(found), 3),
            "p50": round(statistics.median(found), 3),
            "max": round(max(found), 3),
        }
        for name, found in sorted(values.items())
    }


def exception_ages(runtime: LocalRuntime) -> dict[str, float]:
    """Exception aging: how long the messages left in the dead-letter and exception stores have waited."""
    sqs = runtime.clients["sqs"]
    now_ms = time.time() * 1000
    ages: list[float] = []
    for queue in runtime.queue_depths():
        if queue.role == "inbox" or queue.visible == 0:  # dead-letter and exception stores only
            continue
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        peeked = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["SentTimestamp"]
        )
        ages += [(now_ms - int(m["Attributes"]["SentTimestamp"])) / 1000 for m in peeked.get("Messages", [])]
    return {"count": len(ages), "max": round(max(ages), 1) if ages else 0.0}


def _classifications(runtime: LocalRuntime) -> list[dict[str, Any]]:
    """The modification treatment each amendment execution decided (its ClassifyModification result)."""
    sfn = runtime.clients["stepfunctions"]
    found = []
    for execution in runtime.executions():
        if not execution["name"].startswith("ContractAmended") or execution["status"] != "SUCCEEDED":
            continue
        output = json.loads(
            sfn.describe_execution(executionArn=execution["executionArn"]).get("output") or "{}"
        )
        if "classification" in output:
            found.append(
                {
                    "execution": execution["name"],
                    "contract_version": output["contract"]["version"],
                    **output["classification"],
                }
            )
    return found


def collect_report(runtime: LocalRuntime, driver: DemoDriver) -> dict[str, Any]:
    store = _store(runtime)
    log = DynamoDBDeliveryLog(runtime.function_env("DELIVERY_LOG_TABLE_NAME"), runtime.clients["dynamodb"])
    commands = [c.model_dump(mode="json") for c in log.all_commands()]
    queues = [d.__dict__ for d in runtime.queue_depths()]
    executions = [
        {
            "name": e["name"],
            "workflow": e["stateMachineArn"].rsplit(":", 1)[-1],
            "status": e["status"],
            "started": e["startDate"].isoformat(),
            "stopped": e["stopDate"].isoformat() if e.get("stopDate") else None,
        }
        for e in runtime.executions()
    ]
    metrics = business_metrics(runtime.lambda_log_path, driver.log_offset)
    metrics["ExceptionAgeSeconds"] = exception_ages(runtime)
    erp_commands = [c for c in commands if c["target"] == "erp"]
    psa_commands = [c for c in commands if c["target"] == "psa"]
    return {
        "targets": {
            "erp": runtime.function_env("ERP_CONNECTOR"),
            "psa": runtime.function_env("PSA_CONNECTOR"),
        },
        "stand_ins": stand_in_evidence(runtime, erp_commands, psa_commands),
        "aws_calls": sum(runtime.aws_calls().values()),
        "deliveries": driver.deliveries,
        "executions": executions,
        "contract_versions": {c: _contract_versions(store, c) for c in CONTRACTS},
        "modifications": _classifications(runtime),
        "commands": {
            "psa": psa_commands,
            "erp": erp_commands,
        },
        "revenue_schedule": {c: _revenue_schedule(store, c) for c in CONTRACTS},
        "balances": {c: _balances(store, c) for c in CONTRACTS},
        "closes": driver.closes,
        "metrics": metrics,
        "queues": queues,
        "as_of": date.today().isoformat(),
    }


# What each ERP operation writes to NetSuite, by record type (pssync.connectors.netsuite.record_writes).
_TRANSACTION_TYPES = {
    "upsert_billing_schedule": "salesOrder",
    "upsert_billable_time": "timeBill",
    "upsert_rebillable_expense": "charge",
    "release_milestone_invoice": "invoice",
    "post_journal_entry": "journalEntry",
}
_MEMO_VERSION = re.compile(r"pssync contract (?P<contract>\S+) v(?P<version>\d+)$")


def expected_netsuite_records(erp_commands: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The records (type -> external ids) NetSuite must hold after the delivery log's ERP commands."""
    expected: dict[str, set[str]] = defaultdict(set)
    for command in erp_commands:
        payload, operation = command["payload"], command["operation"]
        record_type = _TRANSACTION_TYPES[operation]
        if operation == "post_journal_entry":
            expected[record_type].add(f"{command['external_id']}/{payload['kind']}")
            continue
        expected[record_type].add(command["external_id"])
        expected["job"].add(payload["project_id"])
        customer = payload["customer"]
        if not customer.get("external_ids", {}).get("netsuite"):  # one NetSuite holds already: referenced
            expected["customer"].add(customer["customer_id"])
    return dict(expected)


def netsuite_check(erp_commands: list[dict[str, Any]], holdings: dict[str, Any]) -> list[str]:
    """Differences between what the NetSuite stand-in holds and what the delivery log says was delivered:
    every record once (customers, projects, transactions by external id), one billing schedule write per
    contract version, every journal balanced. Empty when they agree."""
    found: list[str] = []
    held: dict[str, dict[str, Any]] = holdings["records"]
    expected = expected_netsuite_records(erp_commands)
    for record_type in sorted(set(expected) | set(held)):
        want, have = expected.get(record_type, set()), set(held.get(record_type, {}))
        if want - have:
            found.append(f"NetSuite lacks {record_type} {sorted(want - have)}")
        if have - want:
            found.append(f"NetSuite holds {record_type} the log never delivered: {sorted(have - want)}")
    delivered_versions: dict[str, set[int]] = defaultdict(set)
    for command in erp_commands:
        if command["operation"] == "upsert_billing_schedule":
            delivered_versions[command["external_id"]].add(int(command["payload"]["contract_version"]))
    for contract, versions in delivered_versions.items():
        order = held.get("salesOrder", {}).get(contract, {})
        written = {int(m["version"]) for r in order.get("revisions", []) if (m := _MEMO_VERSION.match(r))}
        if written != versions:
            found.append(
                f"salesOrder {contract}: versions written {sorted(written)}, delivered {sorted(versions)}"
            )
        head = _MEMO_VERSION.match(str(order.get("memo", "")))
        if head is None or int(head["version"]) != max(versions):
            found.append(f"salesOrder {contract} does not hold v{max(versions)}")
    for external_id, journal in held.get("journalEntry", {}).items():
        lines = journal.get("line", {}).get("items", [])
        debits = sum(Decimal(str(line.get("debit", 0))) for line in lines)
        credits = sum(Decimal(str(line.get("credit", 0))) for line in lines)
        if debits != credits:
            found.append(f"journalEntry {external_id} does not balance: Dr {debits} Cr {credits}")
    return found


def kantata_check(
    psa_commands: list[dict[str, Any]],
    holdings: dict[str, Any],
    role_ids: Mapping[str, Any] | None = None,
) -> list[str]:
    """Differences between what the Kantata OX stand-in holds and what the delivery log says was delivered:
    one workspace per project holding the head version's fields (budget, dates) and phases, one external
    reference each, no story twice, nothing the log never delivered; and per T&M project one rate card
    set, whose latest published version holds the head version's rate per role, linked to the workspace.
    `role_ids` is the deployment's role mapping (the stand-in account's roles by name unless given).
    Empty when they agree."""
    mapping = role_ids if role_ids is not None else {r["name"]: r["id"] for r in holdings.get("roles", [])}
    heads: dict[str, ConnectorCommand] = {}
    for raw in psa_commands:
        command = ConnectorCommand.model_validate(raw)
        head = heads.get(command.external_id)
        if head is None or _version(command) > _version(head):
            heads[command.external_id] = command
    plans = {project_id: workspace_plan(command, mapping) for project_id, command in heads.items()}
    found: list[str] = []
    workspaces_by_marker: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for workspace in holdings["workspaces"]:
        workspaces_by_marker[marker_of(workspace.get("description"))].append(workspace)
    planned_markers = {plan.marker for plan in plans.values()}
    for marker, workspaces in sorted(workspaces_by_marker.items(), key=lambda m: str(m[0])):
        if marker not in planned_markers:
            ids = sorted(str(w["id"]) for w in workspaces)
            found.append(f"Kantata holds workspaces the log never delivered ({marker or 'no marker'}): {ids}")
    ours = [r for r in holdings["external_references"] if r.get("service_name") == "pssync"]
    for reference in ours:
        if reference.get("service_model_ref") not in plans:
            found.append(
                f"Kantata holds a reference the log never delivered: {reference.get('service_model_ref')}"
            )
    for project_id, plan in sorted(plans.items()):
        workspaces = workspaces_by_marker.get(plan.marker, [])
        if len(workspaces) != 1:
            found.append(f"Kantata holds {len(workspaces)} workspaces for project {project_id}, not 1")
            continue
        workspace_id = str(workspaces[0]["id"])
        found += field_differences(
            plan.fields, workspaces[0], f"workspace {project_id} v{plan.contract_version}"
        )
        referenced = sorted(
            str(r["subject_id"])
            for r in ours
            if r.get("service_model_ref") == project_id and r.get("subject_type") == "Workspace"
        )
        if referenced != [workspace_id]:
            found.append(
                f"project {project_id}: references to workspaces {referenced}, not [{workspace_id!r}]"
            )
        stories: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for story in holdings["stories"]:
            marker = marker_of(story.get("description"))
            if str(story.get("workspace_id")) == workspace_id and marker is not None:
                stories[marker].append(story)
        planned = {story.marker: story for story in plan.stories}
        for marker, held in sorted(stories.items()):
            if len(held) > 1:
                found.append(f"workspace {project_id}: story {marker!r} held {len(held)} times")
            if marker not in planned:
                found.append(f"workspace {project_id}: story {marker!r} is not in v{plan.contract_version}")
        for marker, story in planned.items():
            if marker not in stories:
                found.append(f"workspace {project_id}: lacks story {marker!r}")
                continue
            held_story = stories[marker][0]
            found += field_differences(story.fields, held_story, f"workspace {project_id} story {story.key}")
            parent = stories.get(story_marker(story.parent_key)) if story.parent_key else None
            parent_id = str(parent[0]["id"]) if parent else None
            if (str(held_story["parent_id"]) if held_story.get("parent_id") else None) != parent_id:
                found.append(f"workspace {project_id} story {story.key}: not under {story.parent_key}")
        if plan.rate_card is not None:
            found += _kantata_rate_card_check(plan.rate_card, workspaces[0], holdings, ours)
    planned_titles = {plan.rate_card.title for plan in plans.values() if plan.rate_card is not None}
    for rate_card_set in holdings.get("rate_card_sets", []):
        title = str(rate_card_set.get("title"))
        if marker_of(title) is not None and title not in planned_titles:
            found.append(f"Kantata holds a rate card set the log never delivered: {title!r}")
    return found


def _kantata_rate_card_check(
    rates: RateCardPlan, workspace: dict[str, Any], holdings: dict[str, Any], ours: list[dict[str, Any]]
) -> list[str]:
    """One set titled for the project, one card in its currency referenced once and linked to the
    workspace, and the latest published version holding exactly the head version's rates."""
    where = f"rate card {rates.reference}"
    sets = [s for s in holdings.get("rate_card_sets", []) if s.get("title") == rates.title]
    if len(sets) != 1:
        return [f"Kantata holds {len(sets)} rate card sets for project {rates.reference}, not 1"]
    set_id = str(sets[0]["id"])
    cards = [c for c in holdings.get("rate_cards", []) if str(c.get("rate_card_set_id")) == set_id]
    if [c.get("currency") for c in cards] != [rates.currency]:
        return [f"{where}: cards in {[c.get('currency') for c in cards]}, not [{rates.currency!r}]"]
    card_id = str(cards[0]["id"])
    found = []
    referenced = sorted(
        str(r["subject_id"])
        for r in ours
        if r.get("service_model_ref") == rates.reference and r.get("subject_type") == "RateCard"
    )
    if referenced != [card_id]:
        found.append(f"{where}: references to rate cards {referenced}, not [{card_id!r}]")
    if str(workspace.get("rate_card_id")) != card_id:
        found.append(
            f"workspace {rates.reference}: rate_card_id {workspace.get('rate_card_id')!r}, not {card_id!r}"
        )
    versions = [
        v for v in holdings.get("rate_card_set_versions", []) if str(v.get("rate_card_set_id")) == set_id
    ]
    current = max(
        (v for v in versions if v.get("active")), key=lambda v: str(v["effective_date"]), default=None
    )
    if current is None:
        return [*found, f"{where}: no published version"]
    held: dict[str, int] = {}
    for row in holdings.get("rate_card_table_rows", []):
        if str(row.get("rate_card_set_version_id")) == str(current["id"]):
            for rate in row.get("rates", []):
                if rate.get("currency") == rates.currency:
                    held[str(row["role_id"])] = int(rate["rate"])
    return found + rate_differences(rates, held, where)


def _version(command: ConnectorCommand) -> int:
    return int(command.payload["contract_version"])


def stand_in_evidence(
    runtime: LocalRuntime, erp_commands: list[dict[str, Any]], psa_commands: list[dict[str, Any]]
) -> dict[str, Any]:
    """The stand-ins' holdings and the checks against the delivery log (only with `--targets live`)."""
    holdings = runtime.stand_in_holdings()
    evidence: dict[str, Any] = {"holdings": holdings} if holdings else {}
    if "netsuite" in holdings:
        records = holdings["netsuite"]["records"]
        evidence["netsuite_records"] = {t: len(r) for t, r in sorted(records.items())}
        evidence["netsuite_check"] = netsuite_check(erp_commands, holdings["netsuite"])
    if "kantata" in holdings:
        kantata = holdings["kantata"]
        evidence["kantata_records"] = {kind: len(kantata[kind]) for kind in sorted(kantata)}
        # Vendor calls, by method: what a PSA command costs (the stand-in logs every request it answers).
        calls = Counter(method for method, _ in runtime.stand_ins["kantata"].ox.requests)
        evidence["kantata_requests"] = dict(sorted(calls.items()))
        evidence["kantata_check"] = kantata_check(psa_commands, kantata)
    return evidence


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")


def problems(report: dict[str, Any]) -> list[str]:
    """What makes the demo fail: an execution that did not succeed, an obligation left unscheduled, work left
    in a queue, a close that did not lock."""
    found = [
        f"execution {e['name']}: {e['status']}" for e in report["executions"] if e["status"] != "SUCCEEDED"
    ]
    for contract, schedule in report["revenue_schedule"].items():
        if schedule is None:
            found.append(f"{contract}: no revenue schedule")
        elif schedule["unscheduled"]:
            found.append(f"{contract}: unscheduled {schedule['unscheduled']}")
    found += [
        f"queue {q['name']} holds {q['visible'] + q['in_flight']}"
        for q in report["queues"]
        if q["visible"] + q["in_flight"]
    ]
    found += [
        f"close {c['legal_entity']} {c['period']}: {c['status']}" for c in report["closes"] if not c["locked"]
    ]
    found += report.get("stand_ins", {}).get("netsuite_check", [])
    found += report.get("stand_ins", {}).get("kantata_check", [])
    return found


def print_report(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    table = Table(title="Webhook deliveries")
    for column in ("delivery", "source", "HTTP"):
        table.add_column(column)
    for d in report["deliveries"]:
        table.add_row(d["attempt"], d["source"], str(d["status"]))
    console.print(table)

    for contract, versions in report["contract_versions"].items():
        table = Table(title=f"{contract}: contract versions")
        for column in ("version", "transaction price", "obligations", "source version"):
            table.add_column(column)
        for v in versions:
            price = v["transaction_price"]
            table.add_row(
                str(v["version"]),
                f"{price['amount']} {price['currency']}",
                ", ".join(v["obligations"]),
                v["source_version"] or "",
            )
        console.print(table)

    for contract, schedule in report["revenue_schedule"].items():
        if schedule is None:
            continue
        obligations = sorted({o for lines in schedule["by_period"].values() for o in lines})
        table = Table(title=f"{contract}: revenue schedule v{schedule['version']} ({schedule['currency']})")
        table.add_column("period")
        for o in obligations:
            table.add_column(o, justify="right")
        for period, lines in schedule["by_period"].items():
            table.add_row(period, *(lines.get(o, "") for o in obligations))
        table.add_row(
            "unscheduled", *(schedule["unscheduled"].get(o, "0") for o in obligations), style="bold"
        )
        console.print(table)

    table = Table(title="Balances per contract at each period end (revenue engine)")
    for column in (
        "contract",
        "period",
        "recognised",
        "billed",
        "collected",
        "receivable",
        "asset",
        "liability",
    ):
        table.add_column(column, justify="right")
    for contract, periods in report["balances"].items():
        for period, b in periods.items():
            table.add_row(
                contract, period, b["recognised_to_date"], b["billed_to_date"], b["collected_to_date"],
                b["receivable"], b["contract_asset"], b["contract_liability"],
            )  # fmt: skip
    console.print(table)

    table = Table(title="Period closes")
    for column in ("entity", "period", "status", "contracts", "shards", "journals", "locked"):
        table.add_column(column)
    for c in report["closes"]:
        table.add_row(
            c["legal_entity"], c["period"], c["status"], str(c["contracts"]), str(c["shards"]),
            ", ".join(f"{j['currency']} Dr {j['debits']} = Cr {j['credits']}" for j in c["journals"]),
            str(c["locked"]),
        )  # fmt: skip
    console.print(table)

    table = Table(title="Business metrics emitted")
    for column in ("metric", "count", "p50", "max"):
        table.add_column(column)
    for name, m in report["metrics"].items():
        table.add_row(name, str(m.get("count")), str(m.get("p50", "")), str(m.get("max")))
    console.print(table)

    evidence = report.get("stand_ins") or {}
    if "netsuite_check" in evidence:
        netsuite = evidence["holdings"]["netsuite"]
        table = Table(title=f"NetSuite stand-in (test equipment), account {netsuite['account_id']}")
        for column in ("record type", "records held"):
            table.add_column(column)
        for record_type, held in evidence["netsuite_records"].items():
            table.add_row(record_type, str(held))
        counters = netsuite["counters"]
        table.add_row("requests / 429 / max in flight", f"{counters['requests']} / {counters['throttled']} / "
                      f"{counters['max_in_flight']} (limit {netsuite['concurrency_limit']})")  # fmt: skip
        verdict = (
            "matches the delivery log" if not evidence["netsuite_check"] else "DIFFERS from the delivery log"
        )
        table.add_row("check", verdict)
        console.print(table)
    if "kantata_check" in evidence:
        table = Table(title="Kantata OX stand-in (test equipment)")
        for column in ("held", "count"):
            table.add_column(column)
        for kind, held in evidence["kantata_records"].items():
            table.add_row(kind, str(held))
        for method, count in evidence.get("kantata_requests", {}).items():
            table.add_row(f"{method} requests", str(count))
        verdict = (
            "matches the delivery log" if not evidence["kantata_check"] else "DIFFERS from the delivery log"
        )
        table.add_row("check", verdict)
        console.print(table)

    by_status: dict[str, int] = defaultdict(int)
    for e in report["executions"]:
        by_status[f"{e['workflow']} {e['status']}"] += 1
    table = Table(title="Workflow executions")
    for column in ("workflow", "executions"):
        table.add_column(column)
    for key, count in sorted(by_status.items()):
        table.add_row(key, str(count))
    console.print(table)
