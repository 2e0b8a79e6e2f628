"""Contract tests: the real NetSuiteConnector over HTTP against the NetSuite stand-in (test equipment).

The stand-in verifies the JWT assertion, keeps records by external id and answers NetSuite's documented
status codes and error bodies, so these tests count records, not calls: no duplicate is ever created and
every command ends delivered or with a typed error carrying its cause.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pssync.connectors.http_policy import CallPolicy
from pssync.connectors.limiter import InProcessLimiter, LimitedConnector
from pssync.connectors.netsuite import (
    NETSUITE_WRITES,
    NetSuiteConnector,
    NetSuiteCredentials,
    NetSuiteMapping,
    NetSuiteTokens,
    netsuite_http,
)
from pssync.errors import (
    BusinessRuleViolation,
    PssyncError,
    TransientDownstreamError,
    VendorAuthRefused,
    VendorRejected,
)
from pssync.local.standins.netsuite import Fault, FaultPlan, NetSuiteStandIn, new_certificate_key
from pssync.model import examples
from pssync.model.commands import ConnectorCommand, Target
from pssync.workflows import provision

PRIVATE_KEY, PUBLIC_KEY = new_certificate_key()
MAPPING = NetSuiteMapping(
    subsidiaries={"NL01": "3", "US01": "1"},
    currencies={"EUR": "4", "USD": "1"},
    items={
        "milestone": "501",
        "instalment": "502",
        "managed_service": "503",
        "time": "510",
        "expense": "520",
    },
    accounts={"1200": "119", "2400": "221", "4000": "54"},
)
CUSTOMER = {"customer_id": "CUST-0099", "name": "Fabrikam BV", "country": "NL", "external_ids": {}}


@dataclass
class Rig:
    standin: NetSuiteStandIn
    connector: NetSuiteConnector
    tokens: NetSuiteTokens
    waits: list[float]


def credentials(standin: NetSuiteStandIn, private_key: str = PRIVATE_KEY) -> NetSuiteCredentials:
    return NetSuiteCredentials(
        account_id=standin.account_id,
        client_id=standin.client_id,
        certificate_id=standin.certificate_id,
        private_key_pem=private_key,
        rest_domain=standin.base_url,
    )


def rig(standin: NetSuiteStandIn, policy: CallPolicy = NETSUITE_WRITES, sleep: bool = False) -> Rig:
    waits: list[float] = []

    def record_wait(seconds: float) -> None:
        waits.append(seconds)

    creds = credentials(standin)
    tokens = NetSuiteTokens(creds)
    options: dict[str, Any] = {} if sleep else {"sleep": record_wait}
    http = netsuite_http(creds, tokens, policy, rng=lambda: 0.5, **options)
    return Rig(standin, NetSuiteConnector(http, tokens, MAPPING), tokens, waits)


@pytest.fixture
def standin() -> Iterator[NetSuiteStandIn]:
    server = NetSuiteStandIn(public_key_pem=PUBLIC_KEY)
    server.start()
    yield server
    server.stop()


def billing_schedule(version: int = 1) -> ConnectorCommand:
    booked = examples.contract_booked()
    return provision.billing_schedule_command(booked, booked.data.contract, version)


def time_entry(n: int) -> ConnectorCommand:
    """Shaped like pssync.workflows.time_approval's billable time command."""
    entry = f"TE-{n:05d}"
    return ConnectorCommand(
        target=Target.ERP,
        operation="upsert_billable_time",
        external_id=entry,
        idempotency_key=f"time:{entry}:v1",
        payload={
            "legal_entity": "NL01",
            "currency": "EUR",
            "customer": CUSTOMER,
            "project_id": f"P-{n % 7:03d}",
            "person_id": f"EMP-{n % 5}",
            "time_entry_id": entry,
            "work_date": "2026-09-01",
            "hours": "7.5",
            "rate": {"amount": "180.00", "currency": "EUR"},
            "role": "consultant",
        },
        caused_by_event_id=f"evt-{entry}",
        correlation_id="corr-1",
    )


def count(standin: NetSuiteStandIn, record_type: str) -> int:
    return len(standin.holdings()["records"].get(record_type, {}))


# --- authentication ----------------------------------------------------------------------------------


def test_a_verified_assertion_gets_one_token_that_serves_the_whole_batch(standin: NetSuiteStandIn) -> None:
    r = rig(standin)
    for n in range(5):
        r.connector.send(time_entry(n), "t")
    counters = standin.holdings()["counters"]
    assert counters["tokens_issued"] == 1 and counters["writes"] == 15
    assert count(standin, "timeBill") == 5 and count(standin, "customer") == 1


def test_an_assertion_signed_with_another_key_is_refused_as_an_auth_failure(standin: NetSuiteStandIn) -> None:
    other_key, _ = new_certificate_key()
    creds = credentials(standin, other_key)
    tokens = NetSuiteTokens(creds)
    connector = NetSuiteConnector(netsuite_http(creds, tokens), tokens, MAPPING)
    with pytest.raises(VendorAuthRefused, match="invalid_grant"):
        connector.send(time_entry(1), "t")
    assert standin.holdings()["records"] == {}


def test_a_token_expiring_mid_batch_is_refreshed_and_nothing_is_lost(standin: NetSuiteStandIn) -> None:
    r = rig(standin)
    standin.faults.add(Fault("expire_token", method="PUT", path_contains="timeBill/eid:TE-00003"))
    for n in range(6):
        r.connector.send(time_entry(n), "t")
    counters = standin.holdings()["counters"]
    assert counters["tokens_issued"] == 2 and counters["unauthorised"] == 1
    assert count(standin, "timeBill") == 6


# --- retries: 429, 5xx, timeouts, lost responses -----------------------------------------------------


def test_429_with_retry_after_is_waited_out_then_written_once(standin: NetSuiteStandIn) -> None:
    r = rig(standin)
    standin.faults.add(Fault("429", method="PUT", path_contains="salesOrder", retry_after=3))
    r.connector.send(billing_schedule(), "t")
    assert r.waits == [3.0]
    assert count(standin, "salesOrder") == 1
    assert standin.holdings()["counters"]["fault_429"] == 1


def test_5xx_is_retried_with_backoff_and_written_once(standin: NetSuiteStandIn) -> None:
    r = rig(standin)
    standin.faults.add(Fault("503", method="PUT", path_contains="job", times=2))
    r.connector.send(billing_schedule(), "t")
    assert len(r.waits) == 2 and count(standin, "job") == 1 and count(standin, "salesOrder") == 1


def test_5xx_until_attempts_run_out_ends_transient_and_a_later_send_completes(
    standin: NetSuiteStandIn,
) -> None:
    r = rig(standin)
    standin.faults.add(
        Fault("503", method="PUT", path_contains="salesOrder", times=NETSUITE_WRITES.max_attempts)
    )
    with pytest.raises(TransientDownstreamError) as failed:
        r.connector.send(billing_schedule(), "t")
    assert "HTTP 503" in str(failed.value)
    r.connector.send(billing_schedule(), "t")  # the workflow step's retry
    assert count(standin, "salesOrder") == 1 and count(standin, "job") == 1


def test_a_timed_out_write_is_retried_onto_the_same_record(standin: NetSuiteStandIn) -> None:
    r = rig(standin, CallPolicy(timeout_seconds=0.3, deadline_seconds=30.0, max_attempts=3))
    standin.faults.add(Fault("timeout", method="PUT", path_contains="salesOrder", seconds=1.0))
    r.connector.send(billing_schedule(), "t")
    assert len(r.waits) == 1  # one retry after the timeout
    assert count(standin, "salesOrder") == 1
    assert r.connector.mismatches(billing_schedule()) == []


def test_a_write_whose_response_is_lost_is_found_by_external_id_not_duplicated(
    standin: NetSuiteStandIn,
) -> None:
    r = rig(standin)
    standin.faults.add(Fault("lose_response", method="PUT", path_contains="salesOrder"))
    r.connector.send(billing_schedule(), "t")
    held = standin.holdings()["records"]["salesOrder"]
    assert len(held) == 1
    (order,) = held.values()
    assert len(order["revisions"]) == 2  # the lost write and its retry: one record, updated twice
    assert r.connector.mismatches(billing_schedule()) == []


# --- a batch with partial failures -------------------------------------------------------------------


def test_partial_failures_in_a_batch_end_each_command_delivered_or_with_its_cause(
    standin: NetSuiteStandIn,
) -> None:
    r = rig(standin)
    standin.faults.add(Fault("reject", method="PUT", path_contains="timeBill/eid:TE-00002"))
    standin.faults.add(Fault("503", method="PUT", path_contains="timeBill/eid:TE-00004", times=4))
    unmapped = time_entry(6).model_copy(update={"payload": {**time_entry(6).payload, "legal_entity": "XX99"}})
    batch = [time_entry(n) for n in range(6)] + [unmapped, time_entry(7)]
    outcomes: dict[str, str] = {}
    for command in batch:
        try:
            r.connector.send(command, "t")
            outcomes[command.external_id] = "delivered"
        except VendorRejected as rejected:
            outcomes[command.external_id] = f"rejected:{rejected.vendor_code}"
        except BusinessRuleViolation as violation:
            outcomes[command.external_id] = f"business:{violation.code}"
        except TransientDownstreamError:
            outcomes[command.external_id] = "transient"
    assert outcomes == {
        "TE-00000": "delivered",
        "TE-00001": "delivered",
        "TE-00002": "rejected:USER_ERROR",
        "TE-00003": "delivered",
        "TE-00004": "transient",
        "TE-00005": "delivered",
        "TE-00006": "business:netsuite_mapping_missing",
        "TE-00007": "delivered",
    }
    held = set(standin.holdings()["records"]["timeBill"])
    assert held == {k for k, v in outcomes.items() if v == "delivered"}
    # The failed ones, retried once their cause is gone, are written once, beside the others.
    for command in (time_entry(2), time_entry(4)):
        r.connector.send(command, "t")
    assert count(standin, "timeBill") == 7


def test_a_journal_that_does_not_balance_is_refused_with_netsuites_code(standin: NetSuiteStandIn) -> None:
    r = rig(standin)
    journal = ConnectorCommand(
        target=Target.ERP,
        operation="post_journal_entry",
        external_id="NL01/C-1/2026-09",
        idempotency_key="journal:C-1:2026-09:recognition",
        payload={
            "legal_entity": "NL01",
            "contract_id": "C-1",
            "period": "2026-09",
            "posting_date": "2026-09-30",
            "kind": "recognition",
            "currency": "EUR",
            "lines": [
                {"account": "1200", "debit": "100.00", "credit": "0.00"},
                {"account": "4000", "debit": "0.00", "credit": "99.99"},
            ],
        },
        caused_by_event_id="close-1",
        correlation_id="close-1",
    )
    with pytest.raises(VendorRejected) as rejected:
        r.connector.send(journal, "t")
    assert rejected.value.vendor_code == "USER_ERROR"
    assert count(standin, "journalEntry") == 0


# --- the account's concurrency limit -----------------------------------------------------------------


def _send_concurrently(connector: Any, commands: list[ConnectorCommand], workers: int) -> list[BaseException]:
    errors: list[BaseException] = []
    pending = list(commands)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                command = pending.pop()
            try:
                connector.send(command, "t")
            except BaseException as error:  # collected for the assertion
                with lock:
                    errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # hang guard only
    return errors


def test_more_requests_in_flight_than_the_limit_get_429_and_the_limiter_prevents_them() -> None:
    standin = NetSuiteStandIn(public_key_pem=PUBLIC_KEY, concurrency_limit=2, service_time_seconds=0.05)
    standin.start()
    try:
        unlimited = rig(standin)
        errors = _send_concurrently(unlimited.connector, [time_entry(n) for n in range(24)], workers=6)
        throttled_without = standin.holdings()["counters"]["throttled"]
        # Without a limiter the account answers 429s, and retries that do not wait (waits are recorded
        # here, not slept) run out: those commands fail, to be retried by their workflow step.
        assert throttled_without > 0
        assert all(isinstance(e, TransientDownstreamError) and "HTTP 429" in str(e) for e in errors)

        limited = rig(standin)
        limiter = InProcessLimiter(limit=2)
        guarded = LimitedConnector(limited.connector, limiter, "netsuite#" + standin.account_id)
        errors = _send_concurrently(guarded, [time_entry(n) for n in range(100, 124)], workers=6)
        counters = standin.holdings()["counters"]
        assert not errors and counters["throttled"] == throttled_without  # not one more 429
        assert limiter.max_in_use == 2
        held = set(standin.holdings()["records"]["timeBill"])
        assert {f"TE-{n:05d}" for n in range(100, 124)} <= held
    finally:
        standin.stop()


# --- retries per 1,000 commands with 10 % injected 429 / 5xx -----------------------------------------


def retries_under_faults(commands: int, rate: float = 0.10, seed: int = 7) -> dict[str, Any]:
    """Send `commands` billable-time commands through a stand-in that faults `rate` of its record
    requests with 429 or 503; count the retries (requests beyond the writes) and what was written."""
    standin = NetSuiteStandIn(
        public_key_pem=PUBLIC_KEY,
        fault_plan=FaultPlan(random_rate=rate, random_kinds=("429", "503"), seed=seed),
    )
    standin.start()
    try:
        r = rig(standin)
        failed = 0
        for n in range(commands):
            try:
                r.connector.send(time_entry(n), "t")
            except PssyncError:
                failed += 1  # the workflow step would retry it: counted, then sent again
                r.connector.send(time_entry(n), "t")
        counters = standin.holdings()["counters"]
        return {
            "commands": commands,
            "requests": counters["requests"],
            "writes": counters["writes"],
            "retries": counters["requests"] - counters["writes"],
            "retries_per_1000_commands": round(
                1000 * (counters["requests"] - counters["writes"]) / commands, 1
            ),
            "faults": counters["fault_429"] + counters["fault_503"],
            "commands_failed_after_all_attempts": failed,
            "time_bills_held": count(standin, "timeBill"),
            "waited_seconds": round(sum(r.waits), 1),
        }
    finally:
        standin.stop()


def test_under_ten_percent_injected_faults_every_command_is_written_exactly_once() -> None:
    figures = retries_under_faults(200)
    assert figures["time_bills_held"] == 200
    assert figures["faults"] == figures["retries"] > 0


if __name__ == "__main__":  # the measured figure: python -m tests.integration.test_netsuite_standin_contract
    import json

    print(json.dumps(retries_under_faults(1000), indent=2))
