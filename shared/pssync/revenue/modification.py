"""Classification of a contract modification (IFRS 15.20-21, ASC 606-10-25-12/13): pure, no computation.

From the previous and the new contract version, the stated facts and what was already transferred, decide
how the modification is accounted for and say why. Segment building (segments.py) applies the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from pssync.revenue.compiled import CompiledVersion, to_minor_units
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import DISTINCT_REMAINDER_BY_DEFAULT, ModificationFacts, ModificationTreatment

SEPARATE_CONTRACT = "distinct goods or services added at their standalone selling price (IFRS 15.20)"
PROSPECTIVE = (
    "remaining goods or services are distinct from those transferred: termination of the "
    "old contract and creation of a new one (IFRS 15.21(a))"
)
CUMULATIVE_CATCH_UP = (
    "remaining goods or services form part of a partially satisfied obligation: "
    "cumulative catch-up (IFRS 15.21(b))"
)
MIXED = "remaining goods or services are partly distinct: mixed treatment (IFRS 15.21(c))"
TERMINATION = (
    "contract terminated: revenue recognised for what was transferred stays, the remaining price is not "
    "recognised, consideration received beyond revenue is a refund liability (IFRS 15.18, 15.55)"
)
OPTION_EXERCISED = (
    "material right exercised: the price allocated to the right and the price paid for the goods bought "
    "with it are recognised as those goods are transferred (IFRS 15.B40, continuation of the contract)"
)
NOT_AT_SSP = "; the price of the added goods does not reflect their standalone selling price"


@dataclass(slots=True)
class ModificationRecord:
    contract_id: str
    version: int
    effective_date: date
    treatment: ModificationTreatment
    overridden: bool
    rationale: str
    prospective: list[str]
    catch_up: list[str]
    added: list[str]
    catch_up_amounts: dict[str, int]
    causing_event_id: str
    concession_amounts: dict[str, int] = field(default_factory=dict)
    # the version that created the separate contract (IFRS 15.20) this modification changes alone; None: the
    # contract itself (with any separate contract it changes too)
    accounting_version: int | None = None


def concession_minor(new: CompiledVersion, facts: ModificationFacts) -> int:
    """The concession stated with a modification, in minor units (0 without one)."""
    if facts.concession is None:
        return 0
    try:
        return to_minor_units(facts.concession.amount, new.exponent)
    except RevenueRuleError as error:
        raise RevenueRuleError(error.reason, f"{new.field()}.modification.concession.amount") from None


def added_obligations(old: CompiledVersion, new: CompiledVersion) -> list[str]:
    return [o for o in new.order if o not in old.obligations]


def classify_modification(
    old: CompiledVersion,
    new: CompiledVersion,
    facts: ModificationFacts,
    *,
    removed: Sequence[str],
    unsatisfied: Sequence[str],
) -> tuple[ModificationTreatment, str]:
    """The treatment of the change from `old` to `new` and its rationale.

    `removed`: obligations accounted for so far that the new version no longer has; `unsatisfied`: the kept
    obligations not yet fully transferred the day before the modification. An override in the facts wins.
    """
    if facts.override is not None:
        return facts.override, facts.rationale or ""
    added = added_obligations(old, new)
    priced_at_ssp = _priced_at_ssp(old, new, facts, added)
    only_adds = _only_adds_distinct_goods(old, new, facts, added, removed)
    if priced_at_ssp and only_adds:
        return ModificationTreatment.SEPARATE_CONTRACT, SEPARATE_CONTRACT
    distinct = [remaining_distinct(o, new, facts) for o in unsatisfied]
    if all(distinct):
        treatment, rationale = ModificationTreatment.PROSPECTIVE, PROSPECTIVE
    elif not any(distinct):
        treatment, rationale = ModificationTreatment.CUMULATIVE_CATCH_UP, CUMULATIVE_CATCH_UP
    else:
        treatment, rationale = ModificationTreatment.MIXED, MIXED
    if not priced_at_ssp and only_adds:
        rationale += NOT_AT_SSP
    return treatment, rationale


def split_remaining(
    treatment: ModificationTreatment,
    unsatisfied: Sequence[str],
    new: CompiledVersion,
    facts: ModificationFacts,
) -> tuple[list[str], list[str]]:
    """(prospective, catch-up) obligations among the unsatisfied ones under `treatment`."""
    if treatment is ModificationTreatment.MIXED:
        distinct = {o: remaining_distinct(o, new, facts) for o in unsatisfied}
    else:
        distinct = dict.fromkeys(unsatisfied, treatment is not ModificationTreatment.CUMULATIVE_CATCH_UP)
    return [o for o in unsatisfied if distinct[o]], [o for o in unsatisfied if not distinct[o]]


def remaining_distinct(oid: str, new: CompiledVersion, facts: ModificationFacts) -> bool:
    """Whether what remains of an obligation is distinct from what was transferred (as stated, else by
    its pattern)."""
    if oid in facts.remaining_distinct:
        return facts.remaining_distinct[oid]
    return new.obligations[oid].pattern.kind in DISTINCT_REMAINDER_BY_DEFAULT


def _priced_at_ssp(
    old: CompiledVersion, new: CompiledVersion, facts: ModificationFacts, added: list[str]
) -> bool:
    """Stated, else derived: every added obligation has an SSP and the price rose by exactly their sum. A
    concession folded into the new price is a credit for what was transferred, not a discount on the added
    goods, so they are judged at the price before it (IFRS 15 IE Example 5 case B)."""
    if facts.priced_at_ssp is not None:
        return facts.priced_at_ssp
    added_ssp = [new.ssp(o) for o in added]
    increase = new.fixed - old.fixed + concession_minor(new, facts)
    return all(s is not None for s in added_ssp) and increase == sum(s or 0 for s in added_ssp)


def _only_adds_distinct_goods(
    old: CompiledVersion,
    new: CompiledVersion,
    facts: ModificationFacts,
    added: list[str],
    removed: Sequence[str],
) -> bool:
    """Only a contract that merely adds distinct goods can be a separate contract: nothing removed, and the
    kept obligations (what is delivered, and how) and variable amounts unchanged. A restated SSP of a kept
    obligation does not count: IFRS 15.20 / ASC 606-10-25-12 look only at the added goods and their price,
    and the existing contract keeps its own allocation whatever its goods sell for today."""
    if not (added and facts.added_goods_distinct and not removed):
        return False
    kept = [o for o in old.order if o in new.obligations]
    if any(old.obligations[o].pattern != new.obligations[o].pattern for o in kept):
        return False
    return {v.id for v in old.contract.variable_consideration} <= {
        v.id for v in new.contract.variable_consideration
    }
