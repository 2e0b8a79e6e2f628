from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pssync.model import examples
from pssync.workflows.billing import billing_schedule
from pssync.workflows.revenue import revenue_schedule_for, split_largest_remainder


def test_billing_schedule_expands_every_term() -> None:
    lines = billing_schedule(examples.transformation_programme())
    kinds = [line.kind for line in lines]
    assert kinds.count("milestone") == 3
    assert kinds.count("instalment") == 1
    assert kinds.count("managed_service") == 12
    assert lines[-1].due_on is not None and lines[-1].due_on.isoformat() == "2027-12-01"
    assert sum((line.amount.amount for line in lines if line.amount), Decimal(0)) == Decimal("396000.00")


def test_relative_ssp_allocation_sums_exactly_to_the_price() -> None:
    schedule = revenue_schedule_for(
        examples.transformation_programme(), contract_version=1, caused_by_event_id="e"
    )
    allocations = {k: v.amount for k, v in schedule.allocations.items()}
    assert sum(allocations.values()) == Decimal("396000.00")
    # 396,000 x 300,000 / 435,000 = 273,103.448... -> largest remainder gives the extra cent
    assert allocations == {
        "IMPL": Decimal("273103.45"),
        "TRAIN": Decimal("13655.17"),
        "MANAGED": Decimal("109241.38"),
    }
    managed = [line.amount.amount for line in schedule.lines if line.obligation_id == "MANAGED"]
    assert len(managed) == 12 and sum(managed) == allocations["MANAGED"]
    assert set(schedule.unscheduled) == {"IMPL"}  # milestones: recognised as they are accepted


@given(
    st.integers(min_value=0, max_value=10**12),
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=12),
)
def test_largest_remainder_is_exact_and_close(total: int, weights: list[int]) -> None:
    shares = split_largest_remainder(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights, strict=True):
        assert abs(share - total * weight / sum(weights)) < 1
