"""R2's fault plan: one directive per invocation; an event sharing a starter batch with another faulted
event is recorded as shadowed, so the row can tell a fault the harness never delivered from one the product
missed."""

from __future__ import annotations

from scorecard import r2_faults as r2

STARTER = r2.FAULTS[3]  # "starter: StartExecution throttled"
A, B = "R2-1-00001", "R2-1-00002"


def _plan() -> r2.ItemFaults:
    plan = r2.ItemFaults({"StartWorkflow": STARTER.function})
    for item in (A, B):
        plan.add(STARTER.function, item, STARTER.directive(item, item, None), 1)
    return plan


def _batch(*contracts: str) -> dict[str, object]:
    return {"Records": [{"body": f'{{"contract_id": "{c}"}}'} for c in contracts]}


def test_a_batch_with_two_faulted_events_hands_out_one_directive_and_records_the_other_as_shadowed() -> None:
    plan = _plan()

    directive = plan("StartWorkflow", _batch(A, B))

    assert directive is not None and directive["contains"] == [A]
    assert [item for _, item, _ in plan.log] == [A]
    assert plan.shadowed == {B}
    assert plan.pending() == 1  # B's directive waits for an invocation of its own


def test_events_in_batches_of_their_own_each_get_their_directive_and_none_is_shadowed() -> None:
    plan = _plan()

    first, second = plan("StartWorkflow", _batch(A)), plan("StartWorkflow", _batch(B))

    assert first is not None and second is not None
    assert [item for _, item, _ in plan.log] == [A, B]
    assert plan.shadowed == set() and plan.pending() == 0
    assert plan("StartWorkflow", _batch(A)) is None  # one directive each, used up
    assert plan("OtherFunction", _batch(A)) is None
