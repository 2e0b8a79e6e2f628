"""Period close rules without AWS: gate, plan, balanced journals, idempotency, reopen and adjustments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from bench.close import seed_portfolio
from pssync.errors import BusinessRuleViolation
from pssync.model.events import JournalTotal
from pssync.money import Money
from pssync.workflows import period_close as pc
from pssync.workflows.provision import CONTRACT, PROJECT
from tests.fakes import (
    InMemoryAggregateHeads,
    InMemoryJsonObjects,
    InMemoryVersionStore,
    RecordingDelivery,
)

ENTITY = "NL01"
PERIOD = "2027-01"
CLOSED_AT = datetime(2027, 2, 2, 9, 0, tzinfo=UTC)


def request(action: str = "close", attempt: int = 1, **changes: Any) -> pc.CloseRequest:
    values: dict[str, Any] = {
        "action": action,
        "legal_entity": ENTITY,
        "period": PERIOD,
        "requested_by": "controller@example.com",
        "close_id": pc.execution_name(ENTITY, PERIOD, attempt, action),
        "requested_at": datetime(2027, 2, 2, 8, 59, tzinfo=UTC),
        **changes,
    }
    return pc.CloseRequest.model_validate(values)


def fact(entity: str | None, on: date | None, event_id: str = "e-1") -> pc.ExceptionFact:
    return pc.ExceptionFact(
        event_id=event_id,
        event_type="TimeApproved",
        legal_entities=frozenset([entity] if entity else []),
        on=on,
    )


def close_all(
    store: InMemoryVersionStore, ids: list[str], req: pc.CloseRequest, deliver: RecordingDelivery
) -> pc.ShardSummary:
    return pc.close_shard(req, 1, ids, store, deliver, CLOSED_AT)


def lock(store: InMemoryVersionStore, req: pc.CloseRequest, summary: pc.ShardSummary) -> pc.LockResult:
    result, _ = pc.lock_period(
        req, pc.GateResult(outcome="proceed", open_exceptions=0), [summary], store, CLOSED_AT
    )
    return result


# --- gate -------------------------------------------------------------------------------------------


def test_open_exceptions_of_the_entity_in_the_period_block_the_close() -> None:
    with pytest.raises(BusinessRuleViolation) as refused:
        pc.gate(request(), None, [fact(ENTITY, date(2027, 1, 20), "e-blocking")])
    assert refused.value.code == "open_exceptions"
    assert "e-blocking" in str(refused.value)


def test_an_override_reason_lets_the_close_proceed_and_is_recorded_with_the_count() -> None:
    req = request(override_reason="known FX issue, corrected in February")
    result = pc.gate(req, None, [fact(ENTITY, date(2027, 1, 20)), fact(ENTITY, date(2027, 1, 31), "e-2")])
    assert result.outcome == "proceed"
    assert result.override == pc.PeriodOverride(
        reason="known FX issue, corrected in February", exceptions=2, requested_by="controller@example.com"
    )


def test_exceptions_of_other_entities_or_dates_or_no_contract_do_not_block() -> None:
    result = pc.gate(
        request(),
        None,
        [
            fact("DE02", date(2027, 1, 20)),
            fact(ENTITY, date(2027, 2, 1)),
            fact(ENTITY, date(2026, 12, 31)),
            fact(None, date(2027, 1, 5)),
        ],
    )
    assert (result.outcome, result.open_exceptions, result.unattributed, result.override) == (
        "proceed",
        0,
        1,
        None,
    )


def test_a_locked_period_is_closed_already() -> None:
    state = pc.PeriodState(
        status="locked", close_id="x", closed_on=date(2027, 2, 2), contracts=1, shards=1, journals=[]
    )
    assert pc.gate(request(), state, [fact(ENTITY, date(2027, 1, 20))]).outcome == "already_closed"


def test_an_exception_finds_its_entity_through_the_project_index() -> None:
    store = InMemoryVersionStore()
    [contract_id] = seed_portfolio(store, 1, ENTITY, seed=1)
    store.append(
        PROJECT,
        f"P-{contract_id}",
        expected_version=0,
        body={"contract_ids": [contract_id]},
        caused_by_event_id="b",
        correlation_id="b",
        recorded_at="2027-01-01",
    )
    record = {
        "workflow": "apply-approved-time",
        "failed_step": "RecordBillableTime",
        "event": {
            "event_id": "time-1",
            "event_type": "TimeApproved",
            "occurred_at": "2027-02-03T10:00:00Z",
            "data": {"project_id": f"P-{contract_id}", "work_date": "2027-01-28"},
        },
    }
    found = pc.exception_fact(json.dumps(record), store)
    assert (found.legal_entities, found.on, found.event_id) == (
        frozenset({ENTITY}),
        date(2027, 1, 28),
        "time-1",
    )
    unknown = pc.exception_fact(json.dumps({"detail": {"data": {"project_id": "P-NONE"}}}), store)
    assert unknown.legal_entities == frozenset()


# --- plan -------------------------------------------------------------------------------------------


def test_the_plan_streams_only_the_entitys_contracts_into_fixed_size_shards() -> None:
    store = InMemoryVersionStore()
    ours = seed_portfolio(store, 7, ENTITY, seed=2)
    seed_portfolio(store, 3, "DE02", seed=3)
    objects = InMemoryJsonObjects()
    plan = pc.plan_close(
        request(), InMemoryAggregateHeads(store).heads(CONTRACT), objects.put_json, "b", size=3
    )
    assert (plan.contracts, plan.shards) == (7, 3)
    manifest = objects.get_json(plan.manifest_key)
    assert [m["shard"] for m in manifest] == [1, 2, 3]
    shards = [objects.get_json(m["key"]) for m in manifest]
    assert [len(s) for s in shards] == [3, 3, 1]
    assert sorted(c for s in shards for c in s) == sorted(ours)


# --- journals ---------------------------------------------------------------------------------------


def test_journal_lines_balance_and_an_unbalanced_entry_is_refused() -> None:
    lines = pc.journal_lines({"contract_asset": Decimal("100.10"), "revenue": Decimal("-100.10")}, "EUR")
    assert lines == [
        {"account": "contract_asset", "debit": "100.10", "credit": "0.00"},
        {"account": "revenue", "debit": "0.00", "credit": "100.10"},
    ]
    pc.check_balanced(lines, "EUR", "test")
    with pytest.raises(BusinessRuleViolation) as refused:
        pc.check_balanced([*lines, {"account": "cash", "debit": "0.01", "credit": "0.00"}], "EUR", "test")
    assert refused.value.code == "journal_unbalanced"
    with pytest.raises(BusinessRuleViolation):  # finer than the currency allows
        pc.check_balanced(
            [
                {"account": "cash", "debit": "1.005", "credit": "0.00"},
                {"account": "revenue", "debit": "0.00", "credit": "1.005"},
            ],
            "EUR",
            "test",
        )


def test_only_the_difference_is_posted() -> None:
    target = {"contract_asset": Decimal("120.00"), "revenue": Decimal("-120.00")}
    posted = {"contract_asset": Decimal("100.00"), "revenue": Decimal("-100.00")}
    assert pc.difference(target, posted) == {"contract_asset": Decimal("20.00"), "revenue": Decimal("-20.00")}
    assert not any(pc.difference(target, target).values())


def test_idempotency_keys_name_contract_period_and_kind() -> None:
    assert pc.journal_kind(0) == "recognition"
    assert pc.journal_kind(2) == "adjustment-2"
    assert pc.journal_idempotency_key("C-1", PERIOD, "adjustment-1") == "journal:C-1:2027-01:adjustment-1"


def test_a_close_posts_one_balanced_entry_per_contract_and_a_replayed_shard_posts_nothing() -> None:
    store = InMemoryVersionStore()
    ids = seed_portfolio(store, 4, ENTITY, seed=4)
    deliver = RecordingDelivery()
    first = close_all(store, ids, request(), deliver)
    assert (first.contracts, first.posted, first.replayed) == (4, 4, 0)
    commands = list(deliver.log.commands.values())
    assert sorted(c.external_id for c in commands) == sorted(f"{ENTITY}/{c}/{PERIOD}" for c in ids)
    for command in commands:
        pc.check_balanced(command.payload["lines"], command.payload["currency"], command.idempotency_key)
        assert command.idempotency_key.endswith(":2027-01:recognition")
    replay = close_all(store, ids, request(), deliver)
    assert (replay.posted, replay.replayed) == (4, 4)
    assert replay.by_currency == first.by_currency
    assert len(deliver.log.commands) == 4
    assert all(len(store.history(pc.CLOSE_LEDGER, c)) == 1 for c in ids)


def test_after_a_reopen_the_next_close_posts_only_an_adjustment_for_what_changed() -> None:
    store = InMemoryVersionStore()
    ids = seed_portfolio(store, 3, ENTITY, seed=5)
    deliver = RecordingDelivery()
    lock(store, request(), close_all(store, ids, request(), deliver))
    pc.reopen_period(request("reopen", attempt=2, reason="late price correction"), store, CLOSED_AT)

    changed = ids[0]
    head = store.head(CONTRACT, changed)
    assert head is not None
    terms = head.body["terms"]
    price = Decimal(terms["transaction_price"]["amount"])
    terms["transaction_price"]["amount"] = str(price * 2)
    terms["obligations"][0]["standalone_selling_price"]["amount"] = str(price * 2)
    terms["billing"][0]["monthly_fee"]["amount"] = str(
        Decimal(terms["billing"][0]["monthly_fee"]["amount"]) * 2
    )
    store.append(
        CONTRACT,
        changed,
        expected_version=1,
        body={
            "terms": terms,
            "effective_date": "2027-01-01",
            "modification": {"override": "cumulative_catch_up", "rationale": "price correction"},
        },
        caused_by_event_id="amend-1",
        correlation_id="amend-1",
        recorded_at="2027-02-03T00:00:00+00:00",
    )
    reclose = request(attempt=3)
    summary = close_all(store, ids, reclose, deliver)
    assert summary.posted == 1
    adjustments = [c for c in deliver.log.commands.values() if c.payload["kind"] != "recognition"]
    [adjustment] = adjustments
    assert adjustment.idempotency_key == f"journal:{changed}:{PERIOD}:adjustment-1"
    [original] = [
        c
        for c in deliver.log.commands.values()
        if c.external_id == adjustment.external_id and c is not adjustment
    ]
    original_revenue = next(line for line in original.payload["lines"] if line["account"] == "revenue")
    added_revenue = next(line for line in adjustment.payload["lines"] if line["account"] == "revenue")
    assert Decimal(added_revenue["credit"]) == Decimal(original_revenue["credit"])  # January doubled
    pc.check_balanced(adjustment.payload["lines"], adjustment.payload["currency"], "adjustment")
    ledger = store.history(pc.CLOSE_LEDGER, changed)
    assert [v.body["kind"] for v in ledger] == ["recognition", "adjustment-1"]  # the first is untouched
    assert len(deliver.log.commands) == 4


def test_a_reclose_with_nothing_changed_posts_nothing() -> None:
    store = InMemoryVersionStore()
    ids = seed_portfolio(store, 2, ENTITY, seed=6)
    deliver = RecordingDelivery()
    lock(store, request(), close_all(store, ids, request(), deliver))
    pc.reopen_period(request("reopen", attempt=2, reason="check"), store, CLOSED_AT)
    summary = close_all(store, ids, request(attempt=3), deliver)
    assert (summary.posted, len(deliver.log.commands)) == (0, 2)


# --- lock and reopen --------------------------------------------------------------------------------


def test_lock_records_the_close_once_and_emits_period_closed_with_journal_totals() -> None:
    store = InMemoryVersionStore()
    summary = pc.ShardSummary(
        shard=1,
        contracts=2,
        posted=2,
        replayed=0,
        by_currency={"EUR": pc.CurrencyTotals(entries=2, debits=Decimal("30.00"), credits=Decimal("30.00"))},
    )
    override = pc.PeriodOverride(reason="accepted", exceptions=1, requested_by="cfo")
    gate = pc.GateResult(outcome="proceed", open_exceptions=1, override=override)
    first, closed = pc.lock_period(request(override_reason="accepted"), gate, [summary], store, CLOSED_AT)
    again, closed_again = pc.lock_period(
        request(override_reason="accepted"), gate, [summary], store, CLOSED_AT
    )
    assert (first.newly_locked, again.newly_locked, again.period_version) == (
        True,
        False,
        first.period_version,
    )
    assert closed.event_id == closed_again.event_id
    assert closed.data.journals == [
        JournalTotal(currency="EUR", entries=2, debits=Decimal("30.00"), credits=Decimal("30.00"))
    ]
    assert (closed.data.exceptions_overridden, closed.data.override_reason) == (1, "accepted")
    assert closed.data.deferred_revenue_variance == []
    state = pc.period_states(store.head(pc.PERIOD, ENTITY))[PERIOD]
    assert state.locked and state.override == override


def test_deferred_revenue_variance_is_ours_minus_the_erps_per_reported_currency() -> None:
    ours = {"EUR": Decimal("1000.00"), "USD": Decimal("5.00")}
    assert pc.deferred_revenue_variance(ours, None) == []
    assert pc.deferred_revenue_variance(ours, {"EUR": Money.of("990.00", "EUR")}) == [
        Money.of("10.00", "EUR")
    ]


def test_reopen_needs_a_reason_a_locked_period_and_no_later_locked_period() -> None:
    store = InMemoryVersionStore()
    with pytest.raises(BusinessRuleViolation) as not_locked:
        pc.reopen_period(request("reopen", reason="why"), store, CLOSED_AT)
    assert not_locked.value.code == "period_not_locked"
    with pytest.raises(BusinessRuleViolation) as no_reason:
        pc.reopen_period(request("reopen"), store, CLOSED_AT)
    assert no_reason.value.code == "reopen_reason_missing"

    empty = pc.ShardSummary(shard=1, contracts=0, posted=0, replayed=0, by_currency={})
    lock(store, request(), empty)
    february = request(period="2027-02", close_id="NL01-2027-02-a1-close")
    lock(store, february, empty)
    with pytest.raises(BusinessRuleViolation) as later:
        pc.reopen_period(request("reopen", attempt=2, reason="why"), store, CLOSED_AT)
    assert later.value.code == "later_period_locked"

    reopened = pc.reopen_period(
        request("reopen", period="2027-02", close_id="NL01-2027-02-a2-reopen", reason="late invoice"),
        store,
        CLOSED_AT,
    )
    replayed = pc.reopen_period(
        request("reopen", period="2027-02", close_id="NL01-2027-02-a2-reopen", reason="late invoice"),
        store,
        CLOSED_AT,
    )
    assert (reopened.data.reason, reopened.data.reopen_count, reopened.event_id) == (
        "late invoice",
        1,
        replayed.event_id,
    )
    assert not pc.period_states(store.head(pc.PERIOD, ENTITY))["2027-02"].locked


# --- requests ---------------------------------------------------------------------------------------


def test_a_duplicate_request_finds_the_running_or_finished_execution_and_a_reopen_moves_on() -> None:
    statuses: dict[str, str] = {}
    first = pc.decide_request(ENTITY, PERIOD, "close", statuses.get)
    assert (first.name, first.start) == ("NL01-2027-01-a1-close", True)
    statuses[first.name] = "RUNNING"
    assert pc.decide_request(ENTITY, PERIOD, "close", statuses.get).start is False
    statuses[first.name] = "SUCCEEDED"
    duplicate = pc.decide_request(ENTITY, PERIOD, "close", statuses.get)
    assert (duplicate.name, duplicate.start, duplicate.status) == (first.name, False, "SUCCEEDED")
    reopen = pc.decide_request(ENTITY, PERIOD, "reopen", statuses.get)
    assert (reopen.name, reopen.start) == ("NL01-2027-01-a2-reopen", True)
    statuses[reopen.name] = "SUCCEEDED"
    assert pc.decide_request(ENTITY, PERIOD, "close", statuses.get).name == "NL01-2027-01-a3-close"


def test_a_blocked_close_is_retried_under_the_next_attempt() -> None:
    statuses = {"NL01-2027-01-a1-close": "FAILED"}
    retry = pc.decide_request(ENTITY, PERIOD, "close", statuses.get)
    assert (retry.name, retry.start, retry.attempt) == ("NL01-2027-01-a2-close", True, 2)


def test_request_input_refuses_a_reopen_without_reason_and_the_schedule_closes_last_month() -> None:
    with pytest.raises(BusinessRuleViolation):
        pc.request_input("reopen", ENTITY, PERIOD, "me", reason="  ")
    assert pc.previous_period(date(2027, 1, 1)) == "2026-12"
    assert pc.period_end("2028-02") == date(2028, 2, 29)


def test_a_missing_shard_result_never_locks_the_period() -> None:
    objects = InMemoryJsonObjects()
    summary = pc.ShardSummary(shard=1, contracts=1, posted=1, replayed=0, by_currency={})
    objects.put_json(pc.shard_result_key("c-1", 1), summary.model_dump(mode="json"))
    assert pc.shard_summaries(objects, "c-1", 1) == [summary]
    with pytest.raises(BusinessRuleViolation) as missing:
        pc.shard_summaries(objects, "c-1", 2)
    assert missing.value.code == "shard_results_missing"
