from decimal import Decimal

from pssync.model import examples
from pssync.workflows.billing import billing_schedule
from pssync.workflows.revenue import revenue_schedule_for


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
    assert schedule.unscheduled["IMPL"].amount == allocations["IMPL"]
    [training] = [line for line in schedule.lines if line.obligation_id == "TRAIN"]
    assert (training.period, training.amount.amount) == ("2027-03", Decimal("13655.17"))
    assert {line.caused_by_event_id for line in schedule.lines} == {"e"}
