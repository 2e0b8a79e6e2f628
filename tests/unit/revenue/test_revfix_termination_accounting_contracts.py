"""A termination settles each accounting contract on its own (IFRS 15.105), unless the scenario states that
the parties settle net (a right of set-off, IAS 32.42 / ASC 210-20-45-1).

IFRS 15 IE Example 5 case A numbers: 120 products at 100 (`GOODS`), 60 delivered in February and 30 in
March, billed 5,000 in February and unpaid; on 1 March 30 more at their SSP of 95, a separate contract
`GOODS/m2`, billed 2,850 in advance and paid. The customer cancels the whole arrangement from 1 April.
- GOODS earned 9,000, billed 5,000: 5,000 receivable kept and 4,000 still to invoice;
- GOODS/m2 earned nothing and was paid 2,850: a refund liability of 2,850.
Settled as one contract, the refund would vanish into "1,150 still to invoice".
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from revenue_builders import EXAMPLE_5_BILLING, EXAMPLE_5_SEPARATE, D, contract, obligation

from pssync.revenue import (
    Concession,
    Invoice,
    ModificationFacts,
    NetSettlement,
    Payment,
    Scenario,
    Termination,
    UnitsDelivered,
    UnitsPattern,
    run_scenario,
)
from pssync.revenue.result import TerminationLine

SEPARATE = EXAMPLE_5_SEPARATE
SETTLEMENT = (
    "receivable_kept",
    "still_to_invoice",
    "invoices_to_credit",
    "refund_liability",
)
BILLING = EXAMPLE_5_BILLING


def _cancelled(
    billing: list[Invoice | Payment],
    *,
    termination: Termination,
    concession: Concession | None = None,
    more_delivered: int = 0,
    ended_on: date = date(2024, 4, 1),
    deliveries: list[UnitsDelivered] | None = None,
) -> Scenario:
    products = obligation("products", 12_000, UnitsPattern(total_units=D(120)))
    more = obligation("more", 2_850, UnitsPattern(total_units=D(30)))
    original = contract("GOODS", [products], 12_000)
    amended = contract("GOODS", [products, more], 14_850, version=2, effective=date(2024, 3, 1))
    ended = contract(
        "GOODS",
        [],
        9_000,
        version=3,
        effective=ended_on,
        termination=termination,
        modification=ModificationFacts(concession=concession) if concession else None,
    )
    if deliveries is None:
        deliveries = [
            UnitsDelivered(
                id="d1", contract_id="GOODS", obligation_id="products", on=date(2024, 2, 15), units=D(60)
            ),
            UnitsDelivered(
                id="d2", contract_id="GOODS", obligation_id="products", on=date(2024, 3, 15), units=D(30)
            ),
        ]
        if more_delivered:
            deliveries.append(
                UnitsDelivered(
                    id="d3",
                    contract_id="GOODS",
                    obligation_id="more",
                    on=date(2024, 3, 20),
                    units=D(more_delivered),
                )
            )
    return Scenario(
        contracts=[original, amended, ended], events=[*deliveries, *billing], as_of=date(2024, 4, 30)
    )


def _by_account(lines: list[TerminationLine]) -> dict[str | None, tuple[Decimal, ...]]:
    return {line.accounting_contract: tuple(getattr(line, n) for n in SETTLEMENT) for line in lines}


CANCELLED = Termination(reason="customer cancelled the whole arrangement")


def test_each_accounting_contract_settles_on_its_own() -> None:
    result = run_scenario(_cancelled(BILLING, termination=CANCELLED))

    lines = result.terminations()
    assert _by_account(lines) == {
        "GOODS": (D("5000.00"), D("4000.00"), 0, 0),
        SEPARATE: (0, 0, 0, D("2850.00")),
    }
    assert {(line.contract_id, line.contract_version, line.terminated_on) for line in lines} == {
        ("GOODS", 3, date(2024, 4, 1))
    }
    separate = next(line for line in lines if line.accounting_contract == SEPARATE)
    assert (separate.revenue_recognised, separate.billed, separate.paid) == (0, D("2850.00"), D("2850.00"))
    assert "net_settlement_basis" not in separate.model_dump_json()


def test_a_stated_net_settlement_gives_one_line_for_the_contract() -> None:
    net = Termination(
        reason="customer cancelled the whole arrangement",
        net_settlement=NetSettlement(basis="termination agreement of 28 March: one net amount settles both"),
    )
    [line] = run_scenario(_cancelled(BILLING, termination=net)).terminations()

    assert line.accounting_contract is None
    assert line.net_settlement_basis is not None and "28 March" in line.net_settlement_basis
    assert (line.revenue_recognised, line.billed, line.paid) == (D("9000.00"), D("7850.00"), D("2850.00"))
    # the advance paid for the added goods covers part of what is still to invoice for the delivered ones
    assert tuple(getattr(line, n) for n in SETTLEMENT) == (D("5000.00"), D("1150.00"), 0, 0)


def test_a_payment_naming_no_accounting_contract_settles_the_original() -> None:
    """The default owner of a bill is the contract itself, in a settlement as everywhere: the 2,850 paid
    without a name reduces what is still to invoice on GOODS, and GOODS/m2's bill stays unpaid."""
    unnamed = [*BILLING[:2], Payment(id="pay", contract_id="GOODS", on=date(2024, 3, 10), amount=D(2_850))]
    lines = run_scenario(_cancelled(unnamed, termination=CANCELLED)).terminations()

    assert _by_account(lines) == {
        "GOODS": (D("2150.00"), D("4000.00"), 0, 0),
        SEPARATE: (0, 0, D("2850.00"), 0),
    }


@pytest.mark.parametrize(
    ("named", "expected_refund"),
    [(["more"], D("1925.00")), (["products"], D("1425.00"))],
)
def test_a_credit_on_termination_lands_on_the_accounting_contract_of_the_obligations_it_names(
    named: list[str], expected_refund: Decimal
) -> None:
    """15 of the 30 added units were delivered (1,425 earned); a 500 credit on termination."""
    credit = Concession(amount=D(500), reason="late deliveries", obligation_ids=named)
    lines = run_scenario(
        _cancelled(BILLING, termination=CANCELLED, concession=credit, more_delivered=15)
    ).terminations()

    separate = next(line for line in lines if line.accounting_contract == SEPARATE)
    assert separate.refund_liability == expected_refund
    original = next(line for line in lines if line.accounting_contract == "GOODS")
    assert original.revenue_recognised == (D("8500.00") if named == ["products"] else D("9000.00"))


def test_an_empty_net_settlement_basis_is_invalid() -> None:
    with pytest.raises(ValidationError):
        NetSettlement(basis="")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bills=st.lists(
        st.tuples(
            st.sampled_from(["invoice", "payment"]),
            st.sampled_from([None, SEPARATE]),
            st.integers(0, 60),  # days from 1 March
            st.integers(1, 500_000),  # minor units
        ),
        max_size=6,
    ),
    delivered=st.lists(st.tuples(st.sampled_from(["products", "more"]), st.integers(0, 60)), max_size=5),
    ended_after=st.integers(1, 60),
)
def test_settlements_per_accounting_contract_reconcile_with_their_own_balances(
    bills: list[tuple[str, str | None, int, int]],
    delivered: list[tuple[str, int]],
    ended_after: int,
) -> None:
    """Every accounting contract's settlement reconciles with its own revenue, payments and rollforward:
    revenue - paid = receivable kept + still to invoice - refund; and, when it is billed at least as much as
    paid, refund + to credit - still to invoice = its closing contract liability - contract asset. The lines
    add up to the contract, and settling separately never owes back less than settling net."""
    march = date(2024, 3, 1)
    billing: list[Invoice | Payment] = [
        (Invoice if kind == "invoice" else Payment)(
            id=f"b{n}",
            contract_id="GOODS",
            accounting_contract=named,
            on=march + timedelta(days=offset),
            amount=Decimal(units) / 100,
        )
        for n, (kind, named, offset, units) in enumerate(bills)
    ]
    deliveries = [
        UnitsDelivered(
            id=f"d{n}", contract_id="GOODS", obligation_id=oid, on=march + timedelta(days=day), units=D(1)
        )
        for n, (oid, day) in enumerate(delivered)
    ]
    ended_on = march + timedelta(days=ended_after)
    scenario = _cancelled(billing, termination=CANCELLED, ended_on=ended_on, deliveries=deliveries)
    result = run_scenario(scenario)
    lines = result.terminations()

    assert [line.accounting_contract for line in lines] == ["GOODS", SEPARATE]
    closing = {}
    for roll in result.rollforward():
        closing[roll.accounting_contract] = roll  # the last movement up to as_of
    for line in lines:
        assert line.receivable_kept + line.still_to_invoice - line.refund_liability == (
            line.revenue_recognised - line.paid
        )
        roll_line = closing.get(line.accounting_contract)
        net_position = (
            roll_line.closing_contract_liability - roll_line.closing_contract_asset if roll_line else 0
        )
        if line.billed >= line.paid:
            assert line.refund_liability + line.invoices_to_credit - line.still_to_invoice == net_position
    assert sum(line.revenue_recognised for line in lines) == result.recognised_to_date("GOODS")
    net = Termination(reason="cancelled", net_settlement=NetSettlement(basis="one net amount"))
    [whole] = run_scenario(
        _cancelled(billing, termination=net, ended_on=ended_on, deliveries=deliveries)
    ).terminations()
    assert (whole.billed, whole.paid) == (sum(x.billed for x in lines), sum(x.paid for x in lines))
    assert sum(line.refund_liability for line in lines) >= whole.refund_liability
