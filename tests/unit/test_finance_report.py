"""The finance report over in-memory ports: a portfolio written by the real workflow steps (bench.report's
generator), measured as known at a cut-off, checked against the engine per contract (through
`contract show`'s balances), the rollforward identities, the RPO bands, escaping and the reconciliation slot.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bench.report import _renamed, add_engagement, book
from pssync.local import demo_scenario as demo
from pssync.model.contract import ContractTerms, Ratable, RecurringFee
from pssync.money import Money
from pssync.ops import contract_view
from pssync.ops.contract_view import Cutoff, LoggedCommand
from pssync.ops.finance_report.chart import nice_step, waterfall_svg
from pssync.ops.finance_report.exceptions import NO_CAUSE, open_exception
from pssync.ops.finance_report.gather import CHART_SERIES, build_report, exception_aging
from pssync.ops.finance_report.metrics import percentile
from pssync.ops.finance_report.model import FinanceReport
from pssync.ops.finance_report.reconciliation import NotReconciliationRows, rows_from_document
from pssync.ops.finance_report.render import reconciliation_section, render
from pssync.workflows.amendment import engine_versions
from tests.fakes import InMemoryVersionStore

GENERATED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
AS_OF = "2026-10-31"
HOSTILE = '<script>alert("owned")</script> & "Sons" <img src=x onerror=alert(1)>'
ENGAGEMENTS = 7  # EUR and USD, paid and unpaid, amended and not (bench.report.add_engagement)


class NoCommands:
    def logged_commands(self) -> Iterable[LoggedCommand]:
        return []


@pytest.fixture(scope="module")
def portfolio() -> tuple[InMemoryVersionStore, list[str]]:
    store = InMemoryVersionStore()
    ids = [add_engagement(store, n, HOSTILE if n == 3 else None) for n in range(ENGAGEMENTS)]
    return store, ids


@pytest.fixture(scope="module")
def report(portfolio: tuple[InMemoryVersionStore, list[str]]) -> FinanceReport:
    store, ids = portfolio
    return build_report(store, ids, Cutoff.parse(AS_OF, GENERATED), generated_at=GENERATED)


def test_balances_equal_the_engines_for_each_contract_as_contract_show_measures_them(
    portfolio: tuple[InMemoryVersionStore, list[str]], report: FinanceReport
) -> None:
    store, ids = portfolio
    cutoff = Cutoff.parse(AS_OF, GENERATED)
    expected: dict[str, dict[str, Money]] = {}
    for contract_id in ids:
        b = contract_view.show(store, NoCommands(), contract_id, cutoff).balances
        sums = expected.setdefault(b.currency, {})
        for name in (
            "recognised_to_date",
            "billed",
            "collected",
            "receivable",
            "contract_asset",
            "contract_liability",
        ):
            value = getattr(b, name) or Money.zero(b.currency)
            sums[name] = sums.get(name, Money.zero(b.currency)) + value
    assert sorted(expected) == [s.currency for s in report.sections] == ["EUR", "USD"]
    for section in report.sections:
        got = section.balances
        want = expected[section.currency]
        assert got.recognised_to_date == want["recognised_to_date"]
        assert got.billed_to_date == want["billed"]
        assert got.collected_to_date == want["collected"]
        assert got.receivable == want["receivable"]
        assert got.contract_asset == want["contract_asset"]
        assert got.contract_liability == want["contract_liability"]
    # The generator's facts, by hand: every engagement invoiced its first milestone, the even ones paid it.
    eur = next(s for s in report.sections if s.currency == "EUR")
    eur_ids = [n for n in range(ENGAGEMENTS) if n % 3 != 2]
    assert eur.balances.billed_to_date == Money.of(Decimal("80000.00") * len(eur_ids), "EUR")
    assert eur.balances.collected_to_date == Money.of(
        Decimal("80000.00") * sum(n % 2 == 0 for n in eur_ids), "EUR"
    )


def test_waterfall_series_table_and_lines_add_up_to_the_engines_lifetime_revenue(
    portfolio: tuple[InMemoryVersionStore, list[str]], report: FinanceReport
) -> None:
    store, ids = portfolio
    cutoff = Cutoff.parse(AS_OF, GENERATED)
    engine_total: dict[str, Decimal] = {}
    for contract_id in ids:
        known = contract_view.KnownAt(store, cutoff)
        versions = engine_versions(known, contract_id, len(known.history("contract", contract_id)))
        events = contract_view.delivery_facts(known, contract_id, versions[-1])
        result = contract_view.run_engine(versions, events, cutoff.on)
        assert result is not None
        currency = versions[-1].terms.currency
        engine_total[currency] = engine_total.get(currency, Decimal(0)) + sum(
            (row.total for row in result.waterfall() if row.contract_id == contract_id), Decimal(0)
        )
    for section in report.sections:
        assert section.waterfall_total.amount == engine_total[section.currency]
        assert sum(s.total.amount for s in section.waterfall) == section.waterfall_total.amount
        assert sum(line.total.amount for line in section.waterfall_lines) == section.waterfall_total.amount
        assert (
            sum(section.period_total(p.key).amount for p in section.periods) == section.waterfall_total.amount
        )
        assert len(section.waterfall) <= CHART_SERIES + 1
        assert [p.key for p in section.periods] == sorted(p.key for p in section.periods)
        assert all(p.status == "forecast" for p in section.periods if p.start > date(2026, 10, 31))


def test_rollforward_rolls_opening_plus_movements_to_closing_and_each_closing_opens_the_next_period(
    report: FinanceReport,
) -> None:
    for section in report.sections:
        rows = section.rollforward
        assert rows, section.currency
        for row in rows:
            assert row.receivable_moves() == row.closing_receivable
            assert row.net_position_moves() == row.closing_net_position()
        for before, after in itertools.pairwise(rows):
            assert after.opening_receivable == before.closing_receivable
            assert after.opening_contract_asset == before.closing_contract_asset
            assert after.opening_contract_liability == before.closing_contract_liability
        last = rows[-1]
        assert last.closing_receivable == section.balances.receivable
        assert last.closing_contract_liability == section.balances.contract_liability
        assert sum(r.revenue.amount for r in rows) == section.balances.recognised_to_date.amount


def _long_managed_service(n: int) -> ContractTerms:
    """The EU SOW with its managed service stretched to three years at 3,000 EUR a month."""
    base = demo.eu_terms()
    end = date(2029, 9, 30)
    obligations = [
        o.model_copy(update={"recognition": Ratable(start=date(2026, 10, 1), end=end)})
        if o.obligation_id == "MANAGED"
        else o
        for o in base.obligations
    ]
    billing = [
        b.model_copy(update={"end": end, "monthly_fee": Money.of("3000.00", "EUR")})
        if isinstance(b, RecurringFee)
        else b
        for b in base.billing
    ]
    return _renamed(
        base.model_copy(update={"obligations": obligations, "billing": billing, "end_date": end}), n
    )


def test_rpo_is_banded_by_when_the_schedule_expects_it_and_milestones_not_yet_dated_stand_apart() -> None:
    store = InMemoryVersionStore()
    terms = _long_managed_service(1)
    book(store, terms, datetime(2026, 7, 27, tzinfo=UTC))
    report = build_report(store, ["C-GEN-00001"], Cutoff.parse(AS_OF, GENERATED), generated_at=GENERATED)
    rpo = report.sections[0].rpo
    # 108,000 EUR over 36 months from 2026-10; October is recognised by 2026-10-31. November 2026 to
    # October 2027 is within 12 months, the next 12 are 13-24, and November 2028 to September 2029 after 24.
    assert rpo.within_12_months == Money.of("36000.00", "EUR")
    assert rpo.months_13_to_24 == Money.of("36000.00", "EUR")
    assert rpo.after_24_months == Money.of("33000.00", "EUR")
    # The three implementation milestones (240,000 EUR) have no date until accepted.
    assert rpo.timing_not_scheduled == Money.of("240000.00", "EUR")
    assert rpo.remaining.amount == sum(
        m.amount
        for m in (rpo.within_12_months, rpo.months_13_to_24, rpo.after_24_months, rpo.timing_not_scheduled)
    )
    assert rpo.exempt_obligations == 1  # the T&M advisory: the practical expedient


def test_as_of_hides_what_was_recorded_later(portfolio: tuple[InMemoryVersionStore, list[str]]) -> None:
    store, ids = portfolio
    before_invoices = build_report(store, ids, Cutoff.parse("2026-08-26", GENERATED), generated_at=GENERATED)
    for section in before_invoices.sections:
        assert section.balances.billed_to_date == Money.zero(section.currency).rounded(
            contract_view.ZERO_SCALE
        )
    before_booking = build_report(store, ids, Cutoff.parse("2026-07-26", GENERATED), generated_at=GENERATED)
    assert before_booking.sections == []


def test_business_metrics_come_from_the_stores(report: FinanceReport) -> None:
    metrics = {m.name: m for m in report.metrics}
    assert metrics["EngagementActivationSeconds"].samples == ENGAGEMENTS  # one revenue schedule per booking
    amended = sum(1 for n in range(ENGAGEMENTS) if n % 3 != 2 and n % 4 == 1)
    assert metrics["AmendmentPropagationLagSeconds"].samples == amended
    assert metrics["BillableTimeSynced"].value == f"100.0 % ({ENGAGEMENTS} of {ENGAGEMENTS})"
    # completed at 17:00, accepted and released when woken 21 days later (bench.report.accept_milestone)
    accepted = sum(1 for n in range(ENGAGEMENTS) if n % 2 == 0)
    assert metrics["MilestoneToInvoiceCycleSeconds"].samples == accepted
    assert metrics["MilestoneToInvoiceCycleSeconds"].value == "median 21.0 d, p95 21.0 d"
    assert all(m.basis for m in report.metrics)


def test_customer_names_are_text_never_markup(report: FinanceReport) -> None:
    page = render(report)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; &quot;Sons&quot;" in page
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert html.unescape(policy).startswith("default-src 'none';")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched at view time


def test_the_chart_draws_one_bar_segment_per_nonzero_series_period(report: FinanceReport) -> None:
    for section in report.sections:
        svg = waterfall_svg(section)
        bars = re.findall(r'<rect[^>]*class="bar[^"]*"[^>]*data-amount="([^"]+)"', svg)
        cells = [m for s in section.waterfall for m in s.amounts.values() if m.amount]
        assert len(bars) == len(cells) > 0
        assert sum(Decimal(b) for b in bars) == section.waterfall_total.amount


def test_axis_steps_are_one_two_or_five_times_a_power_of_ten() -> None:
    assert nice_step(Decimal(36000)) == Decimal(10000)
    assert nice_step(Decimal(9000)) == Decimal(2000)
    assert nice_step(Decimal("4.2")) == Decimal(1)
    assert nice_step(Decimal(0)) == Decimal(1)


def test_the_reconciliation_slot_shows_the_rows_it_is_given_escaped_in_their_own_columns() -> None:
    rows: list[dict[str, str | None]] = [
        {"contract_id": "C-1", "crm_value": "100.00", "erp_invoiced": "90.00", "variance": "10.00",
         "cause": "unbilled accepted milestone <M2>"},
        {"contract_id": "C-2", "crm_value": "50.00", "erp_invoiced": "50.00", "variance": "0.00",
         "cause": None, "note": "extra column"},
    ]  # fmt: skip
    html = reconciliation_section(rows)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert header == ["contract_id", "crm_value", "erp_invoiced", "variance", "cause", "note"]
    assert "unbilled accepted milestone &lt;M2&gt;" in html
    assert html.count("<tr>") == 3  # the header and one per row
    assert "Not connected" in reconciliation_section(None)
    assert "No reconciliation rows" in reconciliation_section([])


def _workflow_exception(step: str, error_type: str, contract_id: str) -> str:
    return json.dumps(
        {
            "event": {"event_id": f"evt-{contract_id}", "event_type": "TimeApproved", "data": {
                "contract": {"contract_id": contract_id}}},
            "failed_step": step,
            "error": {"Error": error_type,
                      "Cause": json.dumps({"errorType": error_type, "errorMessage": "no"})},
        }
    )  # fmt: skip


def test_open_exceptions_are_aged_by_stage_and_cause_oldest_first() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    unknown = "UnknownProject"
    parked = [
        open_exception("Exceptions", "m1", _workflow_exception("match_time_entry", unknown, "C-1"), {},
                       now - timedelta(hours=3), now),
        open_exception("Exceptions", "m2", _workflow_exception("match_time_entry", unknown, "C-2"), {},
                       now - timedelta(days=2), now),
        open_exception("InboxDlq", "m3", "{}", {"pssync-error": "ValidationError",
                       "pssync-reason": "bad_shape", "pssync-function": "start_provision"},
                       now - timedelta(minutes=5), now),
        open_exception("BusDlq", "m4", "not json", {}, None, now),
    ]  # fmt: skip
    assert (parked[0].stage, parked[0].cause, parked[0].contract_id) == (
        "match_time_entry",
        "UnknownProject",
        "C-1",
    )
    assert (parked[2].stage, parked[2].cause) == ("start_provision", "ValidationError, bad_shape")
    assert parked[3].cause == "not JSON" and parked[3].age_seconds is None
    aging = exception_aging(parked)
    assert [(a.stage, a.cause, a.count, a.oldest_seconds) for a in aging] == [
        ("match_time_entry", "UnknownProject", 2, 2 * 86400.0),
        ("start_provision", "ValidationError, bad_shape", 1, 300.0),
        ("BusDlq (consumer not recorded)", "not JSON", 1, None),
    ]
    crashed = open_exception("InboxDlq", "m5", json.dumps({"detail": {"event_id": "e"}}), {}, now, now)
    assert crashed.cause == NO_CAUSE
    by_id = json.dumps({"detail": {"event_id": "e", "data": {"contract_id": "C-7", "milestone_id": "M1"}}})
    assert open_exception("InboxDlq", "m6", by_id, {}, now, now).contract_id == "C-7"


def test_exceptions_and_metrics_appear_on_the_page(portfolio: tuple[InMemoryVersionStore, list[str]]) -> None:
    store, ids = portfolio
    now = GENERATED
    body = _workflow_exception("send_billable_time", "Boom", "C-GEN-00000")
    parked = [open_exception("Exceptions", "m1", body, {}, now - timedelta(hours=5), now)]
    report = build_report(store, ids, Cutoff.parse(AS_OF, now), generated_at=now, exceptions=parked)
    page = render(report)
    assert "Open exceptions (1)" in page and "send_billable_time" in page and "5.0 h" in page
    assert "ExceptionAge" in page and "median 5.0 h" in page


def test_percentile_is_a_measured_value() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0


def test_an_empty_portfolio_renders_a_page_that_says_so() -> None:
    report = build_report(InMemoryVersionStore(), [], Cutoff.parse(AS_OF, GENERATED), generated_at=GENERATED)
    page = render(report)
    assert "No contract recorded by the cut-off." in page and "None open." in page
    assert "Not connected" in page


def test_a_reconciliation_portfolio_document_becomes_flat_rows_with_dotted_columns() -> None:
    """Shaped like `pssync reconcile --format json` (a portfolio of engagements with nested sides)."""
    document = {
        "as_of": "2026-10-31T23:59:59.999999+00:00",
        "engagements": [
            {
                "contract_id": "C-1",
                "crm": {"contract_version": 2, "contract_value": {"amount": "378000.00", "currency": "EUR"}},
                "erp": {"invoiced_to_date": {"amount": "80000.00", "currency": "EUR"}},
                "billing_difference": {"amount": "-80000.00", "currency": "EUR"},
                "variances": [
                    {"cause": "unbilled_milestone", "detail": "M2 accepted, not invoiced"},
                    {"cause": "missing_version", "detail": "PSA holds v1"},
                ],
            }
        ],
    }
    [row] = rows_from_document(document)
    assert row == {
        "contract_id": "C-1",
        "crm.contract_version": 2,
        "crm.contract_value": "378000.00 EUR",
        "erp.invoiced_to_date": "80000.00 EUR",
        "billing_difference": "-80000.00 EUR",
        "variances": "unbilled_milestone: M2 accepted, not invoiced; missing_version: PSA holds v1",
    }
    assert rows_from_document([{"a": 1}]) == rows_from_document({"rows": [{"a": 1}]}) == [{"a": 1}]
    with pytest.raises(NotReconciliationRows):
        rows_from_document({"engagements": "none"})
