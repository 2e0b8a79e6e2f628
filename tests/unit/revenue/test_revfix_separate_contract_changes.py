"""A later version of a contract with a separate-contract modification (IFRS 15.20) changes the accounting
contract it touches, never the other's price.

IFRS 15 IE Example 5 case A numbers: 120 products for 12,000 (`GOODS`); on 1 March 30 more at their SSP of
95 each, 2,850, a separate contract `GOODS/m2`. Then on 1 April:
- the original gets 10 extra units at a discount (not at SSP, so a prospective modification of GOODS):
  GOODS/m2 keeps its 2,850;
- or the added order is cut to 20 units for 950 less and 5 bonus units at 300 are added to it (GOODS/m2
  alone changes): GOODS keeps its 12,000, GOODS/m2 is 2,200 and owns the bonus units.
Until this fix both were assessed over every remaining obligation of both contracts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from revenue_builders import D, contract, obligation

from pssync.revenue import (
    Invoice,
    Scenario,
    UnitsDelivered,
    UnitsPattern,
    run_scenario,
)
from pssync.revenue.result import RevenueResult

PRODUCTS = obligation("products", 12_000, UnitsPattern(total_units=D(120)))
MORE = obligation("more", 2_850, UnitsPattern(total_units=D(30)))
V1 = contract("GOODS", [PRODUCTS], 12_000)
V2 = contract("GOODS", [PRODUCTS, MORE], 14_850, version=2, effective=date(2024, 3, 1))
APRIL = date(2024, 4, 1)


def _delivered(*items: tuple[str, int, date]) -> list[UnitsDelivered]:
    return [
        UnitsDelivered(id=f"d{n}", contract_id="GOODS", obligation_id=oid, on=on, units=D(units))
        for n, (oid, units, on) in enumerate(items)
    ]


def _by_account(result: RevenueResult) -> dict[str, Decimal]:
    outcome = result.contract("GOODS")
    return {
        account.id: sum((result.recognised_to_date("GOODS", o) for o in account.obligations), Decimal(0))
        for account in outcome.accounting
    }


def test_discounted_goods_added_to_the_original_leave_the_separate_contracts_price_alone() -> None:
    extra = obligation("extra", 1_000, UnitsPattern(total_units=D(10)))
    v3 = contract("GOODS", [PRODUCTS, MORE, extra], 15_650, version=3, effective=APRIL)
    events = _delivered(
        ("products", 60, date(2024, 2, 15)),
        ("products", 60, date(2024, 5, 15)),
        ("more", 30, date(2024, 5, 15)),
        ("extra", 10, date(2024, 5, 15)),
    )
    result = run_scenario(Scenario(contracts=[V1, V2, v3], events=events, as_of=date(2024, 6, 30)))

    assert _by_account(result) == {"GOODS": D("12800.00"), "GOODS/m2": D("2850.00")}
    # the original's remaining products and the extra units share 12,800 - 6,000 by their stated SSPs
    # (12,000 : 1,000); the separate contract's 2,850 takes no part
    assert result.recognised_to_date("GOODS", "extra") == D("523.08")


def test_a_change_of_the_separate_contract_alone_is_its_own_and_so_are_the_goods_it_adds() -> None:
    fewer = obligation("more", 1_900, UnitsPattern(total_units=D(20)))
    bonus = obligation("bonus", 500, UnitsPattern(total_units=D(5)))
    v3 = contract("GOODS", [PRODUCTS, fewer, bonus], 14_850 - 950 + 300, version=3, effective=APRIL)
    events = [
        *_delivered(
            ("products", 60, date(2024, 2, 15)),
            ("more", 10, date(2024, 3, 15)),
            ("products", 60, date(2024, 5, 15)),
            ("more", 10, date(2024, 5, 15)),
            ("bonus", 5, date(2024, 5, 15)),
        ),
        Invoice(
            id="inv-bonus",
            contract_id="GOODS",
            accounting_contract="GOODS/m2",
            on=date(2024, 4, 2),
            amount=D(300),
        ),
    ]
    result = run_scenario(Scenario(contracts=[V1, V2, v3], events=events, as_of=date(2024, 6, 30)))

    assert _by_account(result) == {"GOODS": D("12000.00"), "GOODS/m2": D("2200.00")}
    assert [a.obligations for a in result.contract("GOODS").accounting] == [["products"], ["more", "bonus"]]
    [modification] = [m for m in result.modifications() if m.contract_version == 3]
    assert modification.treatment == "prospective"
    # 10 of "more" were delivered (950) before the change: the remaining 10 units and the bonus share 1,250
    assert result.recognised_to_date("GOODS", "more") + result.recognised_to_date("GOODS", "bonus") == D(
        "2200.00"
    )
    assert result.recognised_to_date("GOODS", "more") > D("950.00")
