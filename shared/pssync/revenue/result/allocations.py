"""How the price was set: allocation per obligation and version, and the modifications with their reasons."""

from __future__ import annotations

from pssync.revenue.engine import EngineRun
from pssync.revenue.result.models import AllocationLine, ModificationLine
from pssync.revenue.result.support import dec


def allocation_lines(run: EngineRun) -> list[AllocationLine]:
    lines = []
    for outcome in run.contracts:
        seen: set[tuple[int, str]] = set()
        for oid in outcome.obligation_order:
            for _, segment in outcome.tracks[oid].pieces:
                group = segment.group
                key = (segment.version.number, oid)
                if group is None or key in seen or oid not in group.rule.obligation_ids:
                    continue
                seen.add(key)
                lines.append(
                    AllocationLine(
                        contract_id=outcome.contract_id,
                        contract_version=segment.version.number,
                        obligation_id=oid,
                        currency=outcome.currency,
                        ssp=segment.version.obligations[oid].ssp,
                        allocated=dec(group.at(segment.start)[oid], outcome.exponent),
                        method=f"{group.rule.method} ({segment.treatment})",
                        reason=group.rule.override_reason,
                    )
                )
    return lines


def modification_lines(run: EngineRun) -> list[ModificationLine]:
    return [
        ModificationLine(
            contract_id=m.contract_id,
            contract_version=m.version,
            effective_date=m.effective_date,
            treatment=str(m.treatment),
            overridden=m.overridden,
            rationale=m.rationale,
            prospective_obligations=m.prospective,
            catch_up_obligations=m.catch_up,
            added_obligations=m.added,
            catch_up_amounts={o: dec(v, outcome.exponent) for o, v in m.catch_up_amounts.items()},
            causing_event_id=m.causing_event_id,
            concession_amounts={o: dec(v, outcome.exponent) for o, v in m.concession_amounts.items()},
        )
        for outcome in run.contracts
        for m in outcome.modifications
    ]
