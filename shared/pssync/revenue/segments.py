"""Building an obligation's segments from the contract versions: inception, then one step per modification.

Each modification is classified (modification.py); this module applies the treatment: a separate contract
adds a group of its own; otherwise what was transferred is frozen at the revenue recognised, and the price
still to allocate goes to the remaining and added obligations, prospectively or by cumulative catch-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import pairwise

from pssync.revenue.allocation import largest_remainder
from pssync.revenue.compiled import CompiledVersion
from pssync.revenue.consideration import AllocationGroup, CarriedChange, VcTimeline, allocation_group
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.evaluation import Measurer, Segment, apply_segment, segment_mode
from pssync.revenue.models import (
    MaterialRightPattern,
    ModificationFacts,
    ModificationTreatment,
    PerformanceObligation,
)
from pssync.revenue.modification import (
    OPTION_EXERCISED,
    TERMINATION,
    ModificationRecord,
    added_obligations,
    classify_modification,
    concession_minor,
    split_remaining,
)

# The facts of a version that states none: one frozen model, only read (building it per version is a
# pydantic validation per modification).
_NO_FACTS = ModificationFacts()


@dataclass(slots=True)
class ContractSegments:
    """Per obligation, the segments in force from each version on; obligations in order of appearance."""

    by_obligation: dict[str, list[Segment]]
    order: list[str]
    modifications: list[ModificationRecord]


def build_segments(
    versions: list[CompiledVersion], measurer: Measurer, timeline: VcTimeline
) -> ContractSegments:
    """Segments of every obligation of a contract from its versions, sorted by (effective date, number)."""
    builder = _Builder(ContractSegments({}, [], []), measurer, timeline)
    builder.inception(versions[0])
    for previous, version in pairwise(versions):
        builder.modify(previous, version)
    return builder.built


@dataclass(slots=True)
class _SeparateContract:
    """A contract created by a modification accounted for as a separate contract (IFRS 15.20): its added
    obligations, its price (the price increase before any concession) and its own variable amounts."""

    obligations: tuple[str, ...]
    price: int
    vc_ids: frozenset[str]
    version: CompiledVersion  # the version that last stated it (its patterns)
    number: int  # the version that created it: its name is `<contract_id>/m<number>`


@dataclass(slots=True)
class _Aside:
    """What a later modification of the contract leaves alone: the separate contracts it does not change,
    and the contract itself when the modification changes one separate contract only (`modifies`)."""

    obligations: frozenset[str] = frozenset()
    price: int = 0
    vc_ids: frozenset[str] = frozenset()
    modifies: _SeparateContract | None = None


@dataclass(slots=True)
class _Builder:
    built: ContractSegments
    measurer: Measurer
    timeline: VcTimeline
    separate: list[_SeparateContract] = field(default_factory=list)
    aside: _Aside = field(default_factory=_Aside)

    def inception(self, first: CompiledVersion) -> None:
        if first.contract.termination is not None:
            raise RevenueRuleError(
                "a contract's first version cannot terminate it", f"{first.field()}.termination"
            )
        if first.contract.modification is not None and first.contract.modification.concession is not None:
            raise RevenueRuleError(
                "a concession is a credit for goods or services already transferred: it needs an earlier "
                "version of the contract",
                f"{first.field()}.modification.concession",
            )
        group = self._group(first, list(first.order), first.fixed)
        for oid in first.order:
            obligation = first.obligations[oid]
            self.built.by_obligation[oid] = [
                Segment(first.effective, first, obligation, segment_mode(obligation, "inception"), group)
            ]
            self.built.order.append(oid)

    def modify(self, old: CompiledVersion, new: CompiledVersion) -> None:
        segments = self.built.by_obligation
        day_before = new.effective - 1
        facts = new.contract.modification or _NO_FACTS
        if old.contract.termination is not None:
            raise RevenueRuleError(
                f"version {old.number} terminated the contract: no later version can follow it; book the "
                "new agreement as a new contract",
                new.field(),
            )
        if new.contract.termination is not None:
            self._terminate(new, facts)
            return
        if facts.exercised_option is not None:
            self._exercise(old, new, facts)
            return
        added = added_obligations(old, new)
        removed = [o for o in segments if o not in new.obligations]
        recognised, satisfied = self._state_on(day_before)
        self.aside = self._left_alone(old, new, facts)
        unsatisfied = [
            o
            for o in old.order
            if o in new.obligations and not satisfied[o] and o not in self.aside.obligations
        ]
        treatment, rationale = classify_modification(
            old, new, facts, removed=removed, unsatisfied=unsatisfied
        )
        record = ModificationRecord(
            contract_id=new.contract.contract_id,
            version=new.number,
            effective_date=new.contract.effective_date,
            treatment=treatment,
            overridden=facts.override is not None,
            rationale=rationale,
            prospective=[],
            catch_up=[],
            added=added,
            catch_up_amounts={},
            causing_event_id=new.contract.causing_event_id,
            accounting_version=self.aside.modifies.number if self.aside.modifies else None,
        )
        self.built.modifications.append(record)
        concession = self._concession_shares(new, facts, added, recognised)
        credit = sum(concession.values())
        record.concession_amounts = concession
        for oid in added:
            if oid not in segments:
                segments[oid] = []
                self.built.order.append(oid)
        if treatment is ModificationTreatment.SEPARATE_CONTRACT:
            if added or not _price_changed(old, new):
                self._separate_contract(old, new, added, credit)
                self.aside = _Aside()
                self._grant(new, concession)
                return
            if unsatisfied:
                # No added goods to carry the change and work still in progress: which obligations take it
                # would be our choice, not the user's statement.
                raise RevenueRuleError(
                    "a separate contract needs added goods or services; this one adds none but changes the "
                    "price while obligations remain: state prospective or cumulative catch-up instead",
                    f"{new.field()}.modification.override",
                )
            # Everything was transferred: the change belongs to the existing contract (see _reprice).
        prospective, catch_up = split_remaining(treatment, unsatisfied, new, facts)
        sources = self._price_change_sources(old, new, treatment, added, unsatisfied, day_before)
        self._freeze_transferred(new, added, recognised, satisfied, sources, day_before)
        modified = self._reprice(new, str(treatment), added, unsatisfied, catch_up, recognised, credit)
        if sources and modified is not None:
            _carry_price_changes(modified, old, sources, satisfied, day_before)
        record.prospective, record.catch_up = prospective, catch_up
        for oid in catch_up:
            record.catch_up_amounts[oid] = self._catch_up_amount(new, oid, recognised[oid])
        self._grant(new, concession)
        modified_separate = self.aside.modifies
        if modified_separate is not None:  # its price, obligations and variable amounts from now on
            modified_separate.price = new.fixed - self.aside.price
            modified_separate.obligations = tuple(o for o in new.order if o not in self.aside.obligations)
            modified_separate.vc_ids = frozenset(
                v.id for v in new.contract.variable_consideration if v.id not in self.aside.vc_ids
            )
            modified_separate.version = new
        self.aside = _Aside()

    def _left_alone(self, old: CompiledVersion, new: CompiledVersion, facts: ModificationFacts) -> _Aside:
        """What a modification does not change. Separate contracts it leaves alone (below) always; and when
        it changes exactly one separate contract and nothing of the contract itself (its obligations kept
        with the same patterns, its variable amounts kept, no concession), it is a modification of that
        separate contract only: the contract keeps its price (the previous fixed price less the separate
        contracts'), its allocation and segments too, and the change of price is that separate contract's."""
        touched = [s for s in self.separate if not _unchanged(s, new)]
        owned = {o for s in self.separate for o in s.obligations}
        separate_vcs = {v for s in self.separate for v in s.vc_ids}
        aside = self._separate_contracts_left_alone(new)
        if len(touched) != 1 or facts.concession is not None:
            return aside
        own = [o for o in old.order if o not in owned]
        own_vcs = {v.id for v in old.contract.variable_consideration} - separate_vcs
        if not own or any(
            o not in new.obligations or new.obligations[o].pattern != old.obligations[o].pattern for o in own
        ):
            return aside
        if not own_vcs <= {v.id for v in new.contract.variable_consideration}:
            return aside
        target = touched[0]
        self.separate.append(target)  # it stays a contract of its own
        frozen = [o for o in self.built.order if o not in owned and o not in old.obligations]
        return _Aside(
            aside.obligations | set(own) | set(frozen),
            aside.price + old.fixed - sum(s.price for s in self.separate),
            aside.vc_ids | own_vcs,
            modifies=target,
        )

    def _separate_contracts_left_alone(self, new: CompiledVersion) -> _Aside:
        """The separate contracts (IFRS 15.20) a modification of the contract does not change: each of their
        obligations kept with the same pattern, and their variable amounts kept. The modification is one of
        the other contract(s): these keep their own price, allocation and segments (IFRS 15.105 treats them
        as contracts of their own), and their price is not part of the price to reallocate. A separate
        contract the modification does change is from then on modified together with the contract (the
        whole arrangement is reassessed; its balances stay its own)."""
        kept = [s for s in self.separate if _unchanged(s, new)]
        self.separate = kept
        return _Aside(
            frozenset(o for s in kept for o in s.obligations),
            sum(s.price for s in kept),
            frozenset(v for s in kept for v in s.vc_ids),
        )

    def _terminate(self, new: CompiledVersion, facts: ModificationFacts) -> None:
        """Every obligation keeps the revenue recognised the day before; nothing more is recognised."""
        termination = new.contract.termination
        assert termination is not None
        recognised, _ = self._state_on(new.effective - 1)
        concession = self._concession_shares(new, facts, [], recognised)
        self.built.modifications.append(
            ModificationRecord(
                contract_id=new.contract.contract_id,
                version=new.number,
                effective_date=new.contract.effective_date,
                treatment=ModificationTreatment.TERMINATION,
                overridden=False,
                rationale=f"{TERMINATION}: {termination.reason}",
                prospective=[],
                catch_up=[],
                added=[],
                catch_up_amounts={},
                causing_event_id=new.contract.causing_event_id,
                concession_amounts=concession,
            )
        )
        # Plain frozen segments, even for obligations taking later price changes (15.90(a)): the terminated
        # contract has no variable amounts left to re-estimate.
        for oid, history in self.built.by_obligation.items():
            last = history[-1]
            history.append(
                Segment(
                    new.effective,
                    last.version,
                    last.obligation,
                    "frozen",
                    None,
                    base=recognised[oid],
                    treatment="terminated",
                )
            )
        self._grant(new, concession)

    def _exercise(self, old: CompiledVersion, new: CompiledVersion, facts: ModificationFacts) -> None:
        """A material right exercised (IFRS 15.B40, as a continuation of the contract): the right keeps what
        it recognised (nothing, unless it was partly lapsed) and its unrecognised price joins the price of
        the goods bought with it, which are recognised on their own pattern. Nothing else may change in the
        same version: the rest of the contract goes on as it was."""
        option = facts.exercised_option
        assert option is not None
        field_path = f"{new.field()}.modification.exercised_option"
        right = option.right_id
        if right not in old.obligations or not isinstance(
            old.obligations[right].pattern, MaterialRightPattern
        ):
            raise RevenueRuleError(
                f"{right} is not a material right of version {old.number}", f"{field_path}.right_id"
            )
        added = added_obligations(old, new)
        dropped = [o for o in old.order if o not in new.obligations]
        if dropped != [right]:
            raise RevenueRuleError(
                f"the version that exercises {right} removes it and nothing else (it removes "
                f"{', '.join(dropped) or 'nothing'})",
                f"{field_path}.right_id",
            )
        if sorted(added) != sorted(option.obligation_ids):
            raise RevenueRuleError(
                f"the goods bought with the option ({', '.join(option.obligation_ids)}) must be exactly the "
                f"obligations this version adds ({', '.join(added) or 'none'})",
                f"{field_path}.obligation_ids",
            )
        kept = [o for o in old.order if o in new.obligations]
        old_vcs = {v.id for v in old.contract.variable_consideration}
        if any(old.obligations[o].pattern != new.obligations[o].pattern for o in kept) or not old_vcs <= {
            v.id for v in new.contract.variable_consideration
        }:
            raise RevenueRuleError(
                "an exercise changes nothing else in the contract: state other changes in a version of "
                "their own",
                field_path,
            )
        day_before = new.effective - 1
        in_force = self._in_force(right, day_before)
        assert in_force is not None
        m = self.measurer.measure_for(in_force, [day_before])
        value: list[int] = []
        expected: list[int] = []
        apply_segment(in_force, m, [day_before], value, expected)
        if in_force.mode == "frozen" or m.nums[0] >= m.dens[0]:
            raise RevenueRuleError(
                f"material right {right} lapsed or was exercised before {new.contract.effective_date}",
                f"{field_path}.right_id",
            )
        unrecognised = expected[0] - value[0]
        group = in_force.group
        self.built.by_obligation[right].append(
            Segment(
                new.effective,
                in_force.version,
                in_force.obligation,
                "frozen",
                None,
                base=value[0],
                treatment="option_exercised",
                # later re-estimates of the price allocated to the right are recognised at once
                carry=CarriedChange(group, day_before, (right,))
                if group is not None and group.varies
                else None,
            )
        )
        vcs = [v for v in new.contract.variable_consideration if v.id not in old_vcs]
        goods = allocation_group(new, added, new.fixed - old.fixed + unrecognised, vcs, self.timeline)
        for oid in added:
            obligation = new.obligations[oid]
            self.built.by_obligation.setdefault(oid, [])
            if oid not in self.built.order:
                self.built.order.append(oid)
            self.built.by_obligation[oid].append(
                Segment(
                    new.effective,
                    new,
                    obligation,
                    segment_mode(obligation, "inception"),
                    goods,
                    treatment="option_exercised",
                )
            )
        self.built.modifications.append(
            ModificationRecord(
                contract_id=new.contract.contract_id,
                version=new.number,
                effective_date=new.contract.effective_date,
                treatment=ModificationTreatment.OPTION_EXERCISED,
                overridden=False,
                rationale=OPTION_EXERCISED,
                prospective=[],
                catch_up=[],
                added=added,
                catch_up_amounts={},
                causing_event_id=new.contract.causing_event_id,
            )
        )

    def _concession_shares(
        self, new: CompiledVersion, facts: ModificationFacts, added: list[str], recognised: dict[str, int]
    ) -> dict[str, int]:
        """Per obligation, its part of a concession for what was transferred: in proportion to the revenue
        recognised on the named obligations (all existing ones with revenue by default), never above it."""
        if facts.concession is None:
            return {}
        amount = concession_minor(new, facts)
        field_path = f"{new.field()}.modification.concession"
        existing = [o for o in self.built.order if o not in added]
        targets = facts.concession.obligation_ids or [o for o in existing if recognised[o] > 0]
        for target in targets:
            if target not in existing:
                raise RevenueRuleError(
                    f"the concession names {target}, which is not an obligation of the contract before this "
                    "modification: a concession relates to goods or services already transferred",
                    f"{field_path}.obligation_ids",
                )
        earned = [recognised[t] for t in targets]
        if sum(earned) < amount:
            raise RevenueRuleError(
                f"a concession of {amount} minor units exceeds the {sum(earned)} recognised on "
                f"{', '.join(targets) or 'the contract'}: a credit for what was transferred cannot exceed "
                "its revenue; a lower price for what remains is a price change, not a concession",
                f"{field_path}.amount",
            )
        return dict(zip(targets, largest_remainder(amount, earned), strict=True))

    def _grant(self, new: CompiledVersion, concession: dict[str, int]) -> None:
        """Take each share of a concession from its obligation's revenue on the modification date."""
        for oid, share in concession.items():
            history = self.built.by_obligation[oid]
            last = history[-1]
            if last.start == new.effective:
                last.concession += share
            else:  # the obligation's measure goes on unchanged (a separate contract was added)
                history.append(replace(last, start=new.effective, concession=last.concession + share))

    def _in_force(self, oid: str, day: int) -> Segment | None:
        return _in_force_on(self.built.by_obligation[oid], day)

    def _price_change_sources(
        self,
        old: CompiledVersion,
        new: CompiledVersion,
        treatment: ModificationTreatment,
        added: list[str],
        unsatisfied: list[str],
        day_before: int,
    ) -> list[AllocationGroup]:
        """The groups whose later changes in variable consideration IFRS 15.90(a) splits: those in force the
        day before a modification accounted for under 15.21(a) (termination and new contract) that carry
        variable amounts. None for other treatments (15.90(b): the modified contract takes the change), when
        nothing remains (everything satisfied: see _recognise_at_once), or when the modification drops a
        variable amount (its changes no longer belong to the contract)."""
        if treatment is not ModificationTreatment.PROSPECTIVE or not (added or unsatisfied):
            return []
        old_vcs = {v.id for v in old.contract.variable_consideration}
        if not old_vcs or not old_vcs <= {v.id for v in new.contract.variable_consideration}:
            return []
        groups: dict[int, AllocationGroup] = {}
        for oid in self.built.by_obligation:
            if oid in self.aside.obligations:
                continue
            in_force = self._in_force(oid, day_before)
            if in_force is not None and in_force.group is not None and in_force.group.varies:
                groups.setdefault(id(in_force.group), in_force.group)
        return list(groups.values())

    def _state_on(self, day: int) -> tuple[dict[str, int], dict[str, bool]]:
        """Per obligation so far: revenue recognised on `day`, and whether it was fully transferred."""
        recognised: dict[str, int] = {}
        satisfied: dict[str, bool] = {}
        days = [day]
        measure = self.measurer.measure
        for oid, history in self.built.by_obligation.items():
            in_force = _in_force_on(history, day)
            if in_force is None:  # the obligation did not exist yet
                recognised[oid], satisfied[oid] = 0, False
                continue
            m = measure(in_force.version, in_force.obligation, days)
            value: list[int] = []
            apply_segment(in_force, m, days, value, [])
            recognised[oid] = value[0]
            satisfied[oid] = in_force.mode in ("frozen", "transferred") or (
                m.nums[0] >= m.dens[0] and m.earned is None
            )
        return recognised, satisfied

    def _separate_contract(
        self, old: CompiledVersion, new: CompiledVersion, added: list[str], credit: int
    ) -> None:
        """The added goods form a contract of their own: the price increase (before any concession folded
        into it) and the new variable amounts."""
        old_vcs = {v.id for v in old.contract.variable_consideration}
        vcs = [v for v in new.contract.variable_consideration if v.id not in old_vcs]
        price = new.fixed - old.fixed + credit
        group = allocation_group(new, added, price, vcs, self.timeline)
        for oid in added:
            obligation = new.obligations[oid]
            self.built.by_obligation[oid].append(
                Segment(
                    new.effective,
                    new,
                    obligation,
                    segment_mode(obligation, "inception"),
                    group,
                    treatment="separate_contract",
                )
            )
        if added:
            self.separate.append(
                _SeparateContract(tuple(added), price, frozenset(v.id for v in vcs), new, new.number)
            )

    def _freeze_transferred(
        self,
        new: CompiledVersion,
        added: list[str],
        recognised: dict[str, int],
        satisfied: dict[str, bool],
        sources: list[AllocationGroup],
        day_before: int,
    ) -> None:
        """Satisfied and removed obligations keep the revenue recognised before the modification; a satisfied
        one also takes, at once, its share of later changes in variable amounts promised before it when
        IFRS 15.90(a) applies (`sources`). An obligation frozen earlier stays as it was."""
        segments = self.built.by_obligation
        source_ids = {id(g) for g in sources}
        for oid in list(segments):
            if oid in added or oid in self.aside.obligations:
                continue
            if oid not in new.obligations or satisfied[oid]:
                last_segment = segments[oid][-1]
                if last_segment.mode == "frozen":
                    segments[oid].append(replace(last_segment, start=new.effective))
                    continue
                in_force = self._in_force(oid, day_before)
                group = in_force.group if in_force is not None else None
                carry = None
                if (
                    satisfied[oid]
                    and group is not None
                    and id(group) in source_ids
                    and oid in group.rule.obligation_ids
                ):
                    carry = CarriedChange(group, day_before, (oid,))
                segments[oid].append(
                    Segment(
                        new.effective,
                        last_segment.version,
                        last_segment.obligation,
                        "frozen",
                        None,
                        base=recognised[oid],
                        treatment="frozen" if carry is None else "satisfied_price_change_90a",
                        carry=carry,
                    )
                )

    def _reprice(
        self,
        new: CompiledVersion,
        treatment: str,
        added: list[str],
        unsatisfied: list[str],
        catch_up: list[str],
        recognised: dict[str, int],
        credit: int,
    ) -> AllocationGroup | None:
        """Termination + new contract and/or catch-up: the price still to allocate is the modified contract's
        price less the revenue already recognised on what was transferred (distinct remainders, satisfied and
        removed obligations). Catch-up obligations are re-measured in full: their revenue stays in. A
        concession (`credit`) was folded into the new price but belongs to what was transferred (it is
        taken from that revenue in _grant), so the remaining obligations' price is before it."""
        # What a right-to-invoice obligation earned is its own variable consideration (ASC 606-10-32-40),
        # never part of the fixed price: deducting it would take it from the obligations the price goes to.
        variable = {o for o, segments in self.built.by_obligation.items() if _right_to_invoice(segments)}
        variable |= self.aside.obligations  # a separate contract left alone keeps its own price
        deducted = sum(v for o, v in recognised.items() if o not in catch_up and o not in variable)
        members = [o for o in new.order if o in added or o in unsatisfied]
        price = new.fixed + credit - deducted - self.aside.price
        if not members:
            self._recognise_at_once(new, price, recognised)
            return None
        group = self._group(new, members, price)
        for oid in members:
            obligation = new.obligations[oid]
            if oid in added:
                mode = segment_mode(obligation, "inception")
                segment = Segment(new.effective, new, obligation, mode, group, treatment=treatment)
            elif oid in catch_up:
                mode = segment_mode(obligation, "catch_up")
                segment = Segment(
                    new.effective, new, obligation, mode, group, treatment="cumulative_catch_up"
                )
            else:
                segment = self._prospective(new, obligation, group, recognised[oid])
            self.built.by_obligation[oid].append(segment)
        return group

    def _recognise_at_once(self, new: CompiledVersion, change: int, recognised: dict[str, int]) -> None:
        """Nothing remains to transfer and nothing is added: the price still to recognise (the change in the
        transaction price, fixed and variable) relates only to satisfied obligations, so it is allocated to
        the kept ones on the inception basis (relative SSP) and recognised at once on the modification date,
        and later re-estimates of variable consideration likewise (IFRS 15.88 / ASC 606-10-32-43). The frozen
        segments just appended for them become `transferred` ones: R + A(t)."""
        kept = [o for o in new.order if o not in self.aside.obligations]  # every one satisfied here
        group = self._group(new, kept, change)
        for oid in kept:
            history = self.built.by_obligation[oid]
            history[-1] = Segment(
                new.effective,
                new,
                new.obligations[oid],
                "transferred",
                group,
                base=recognised[oid],
                treatment="price_change_on_satisfied",
            )

    def _prospective(
        self, new: CompiledVersion, obligation: PerformanceObligation, group: AllocationGroup, base: int
    ) -> Segment:
        """The remainder of a distinct obligation: from the revenue and progress reached the day before.

        Progress p0 is measured by the new version, which may restate the pattern (a delivery date, a shorter
        term, fewer units) or its own estimates, so an obligation not satisfied under the old version can be
        complete under the new one: nothing remains to transfer, and (p - p0) / (1 - p0) is undefined. Its
        share of the remaining consideration then relates only to what was already transferred and is
        recognised at once on the modification date ("transferred": R + A), as IFRS 15.21(a) allocates only
        to what remains and IFRS 15.88 recognises amounts allocated to a satisfied obligation immediately
        (docs/decisions.md, 2026-11-30)."""
        m = self.measurer.measure(new, obligation, [new.effective - 1])
        mode = segment_mode(obligation, "prospective")
        if mode == "prospective" and m.nums[0] >= m.dens[0]:
            mode = "transferred"
        segment = Segment(
            new.effective,
            new,
            obligation,
            mode,
            group,
            base=base,
            p0=(m.nums[0], m.dens[0]),
            treatment="prospective",
        )
        if segment.mode == "right_to_invoice":
            segment.p0 = ((m.earned or [0])[0], 1)
        return segment

    def _catch_up_amount(self, new: CompiledVersion, oid: str, recognised: int) -> int:
        """The re-measured obligation at the modification date less what was recognised."""
        segment = self.built.by_obligation[oid][-1]
        re_measured: list[int] = []
        m = self.measurer.measure(new, segment.obligation, [new.effective - 1])
        apply_segment(segment, m, [new.effective], re_measured, [])
        return re_measured[0] - recognised

    def _group(self, version: CompiledVersion, members: list[str], fixed: int) -> AllocationGroup:
        """A group that takes every variable amount of the version but those of separate contracts left
        alone by the modification."""
        vcs = [v for v in version.contract.variable_consideration if v.id not in self.aside.vc_ids]
        return allocation_group(version, members, fixed, vcs, self.timeline)


def _in_force_on(history: list[Segment], day: int) -> Segment | None:
    """The obligation's segment in force on `day` (the last one started by then); None before the first."""
    for segment in reversed(history):
        if segment.start <= day:
            return segment
    return None


def _carry_price_changes(
    modified: AllocationGroup,
    old: CompiledVersion,
    sources: list[AllocationGroup],
    satisfied: dict[str, bool],
    day_before: int,
) -> None:
    """IFRS 15.90(a): the modified contract takes the variable amounts promised before the modification at
    their estimate the day before it, and, of their later changes, the shares of the obligations that were
    not yet satisfied; satisfied ones take their shares at once (see _Builder._freeze_transferred)."""
    modified.anchored = frozenset(v.id for v in old.contract.variable_consideration)
    modified.anchor_day = day_before
    modified.carried = [
        CarriedChange(source, day_before, remaining)
        for source in sources
        if (remaining := tuple(o for o in source.rule.obligation_ids if not satisfied[o]))
    ]
    modified.cache.clear()


def _unchanged(separate: _SeparateContract, new: CompiledVersion) -> bool:
    """Whether `new` keeps every obligation of the separate contract with the same pattern, and its variable
    amounts."""
    vc_ids = {v.id for v in new.contract.variable_consideration}
    return separate.vc_ids <= vc_ids and all(
        oid in new.obligations and new.obligations[oid].pattern == separate.version.obligations[oid].pattern
        for oid in separate.obligations
    )


def _price_changed(old: CompiledVersion, new: CompiledVersion) -> bool:
    """Whether the fixed price or the set of variable amounts differs between the versions."""
    return new.fixed != old.fixed or [v.id for v in old.contract.variable_consideration] != [
        v.id for v in new.contract.variable_consideration
    ]


def _right_to_invoice(segments: list[Segment]) -> bool:
    """Whether the obligation's segment in force is measured by the right to invoice (T&M)."""
    return bool(segments) and segments[-1].mode == "right_to_invoice"
