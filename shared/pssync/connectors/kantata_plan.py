"""What one PSA project command becomes in Kantata OX: a workspace and its stories. Pure: no I/O.

- The workspace (Kantata's project) carries the plan's name, budget (`price_in_cents`: the contract's
  transaction price in the currency's ISO 4217 minor units, which is what Kantata's `currency_base_unit`
  counts) and currency, and its dates. Its description starts with our reference marker, so a workspace
  whose create answer was lost can still be found by a description search.
- Each WBS element is a `task` story (children under their parent's story: top-level elements are the
  phases); each billing milestone a `milestone` story; time-and-materials billing a `task` story "Time and
  materials" whose budget is the not-to-exceed cap. Every story's description starts with its own marker
  (`pssync wbs 1.2`), which is how an amendment finds the stories it wrote before.
- The T&M rate card becomes a Kantata rate card: one custom Rate Card Set per project (titled with the
  workspace marker) holding a Rate Card in the contract's currency, one row per Kantata role with the
  hourly rate in minor units. Our role names map to Kantata role ids through the per-deployment mapping
  (the Kantata secret's `role_ids`); a role the mapping lacks refuses the whole command (`UnmappedRole`)
  before anything is written.

The command payload has always carried the project plan; the budget, dates, milestones and T&M terms come
from `pssync.workflows.provision.project_plan_fields`, merged into the payload. A command recorded before
that (no `budget` key) still maps: its workspace is written without a budget, and none is compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pssync.errors import BusinessRuleViolation
from pssync.model.commands import ConnectorCommand, Target
from pssync.money import Money

UPSERT_PROJECT = "upsert_project"
MARKER_PREFIX = "pssync"
TIME_AND_MATERIALS_KEY = "time-and-materials"


def workspace_marker(project_id: str) -> str:
    """The first line of the workspace description: our reference, searchable and exact."""
    return f"{MARKER_PREFIX} project {project_id}"


def story_marker(key: str) -> str:
    return f"{MARKER_PREFIX} {key}"


def marker_of(description: Any) -> str | None:
    """The pssync marker a description starts with, or None for a story or workspace we did not write."""
    if not isinstance(description, str):
        return None
    first = description.split("\n", 1)[0].strip()
    return first if first.startswith(f"{MARKER_PREFIX} ") else None


@dataclass(frozen=True)
class PlannedStory:
    """One story we keep in the workspace; `key` is its identity across versions (`wbs 1.2`)."""

    key: str
    parent_key: str | None
    fields: dict[str, Any]  # what we write and compare: title, story_type, description, estimates

    @property
    def marker(self) -> str:
        return story_marker(self.key)


class UnmappedRole(BusinessRuleViolation):
    """The contract bills a role the deployment's Kantata role mapping does not name: nothing is written
    (a rate card without that role would bill its hours at the rate card's default rate)."""

    code = "kantata_unmapped_role"

    def __init__(self, message: str, roles: tuple[str, ...]) -> None:
        super().__init__(message)
        self.roles = roles


@dataclass(frozen=True)
class PlannedRate:
    """One row of the project's rate card: our role, the Kantata role it maps to, its hourly rate."""

    role: str
    role_id: str
    hourly_rate: Money

    @property
    def minor_units(self) -> int:
        return self.hourly_rate.minor_units


@dataclass(frozen=True)
class RateCardPlan:
    """The project's own Kantata rate card: a Rate Card Set titled with our marker, a Rate Card in the
    contract's currency, one row per mapped role. `starts_on` is the first day its rates may apply."""

    reference: str  # our project id: the external reference Kantata keeps for the rate card
    currency: str
    starts_on: str
    rates: tuple[PlannedRate, ...]

    @property
    def title(self) -> str:
        return rate_card_set_title(self.reference)

    def minor_units_by_role_id(self) -> dict[str, int]:
        return {rate.role_id: rate.minor_units for rate in self.rates}

    def role_name(self, role_id: str) -> str:
        return next((r.role for r in self.rates if r.role_id == role_id), f"Kantata role {role_id}")


def rate_card_set_title(project_id: str) -> str:
    """The title of the project's Rate Card Set: unique per account, so a lost create can be found."""
    return f"{workspace_marker(project_id)} rates"


def normalised_role_ids(role_ids: Mapping[str, Any]) -> dict[str, str]:
    """The deployment's role mapping by case-folded role name; a Kantata id must be a positive integer."""
    if not isinstance(role_ids, Mapping):  # e.g. the secret's role_ids stored as a string
        raise BusinessRuleViolation(
            f"the Kantata role mapping must map role names to ids, not {type(role_ids).__name__}",
            code="kantata_role_mapping_invalid",
        )
    mapped: dict[str, str] = {}
    for name, role_id in role_ids.items():
        text = str(role_id).strip()
        if isinstance(role_id, bool) or not text.isdigit() or int(text) <= 0:
            raise BusinessRuleViolation(
                f"the Kantata role mapping gives {name!r} the id {role_id!r}, not a Kantata role id",
                code="kantata_role_mapping_invalid",
            )
        mapped[str(name).strip().casefold()] = str(int(text))
    return mapped


@dataclass(frozen=True)
class WorkspacePlan:
    """The workspace and stories one command asks Kantata to hold."""

    reference: str  # our project id: the external reference Kantata keeps for the workspace
    contract_id: str
    contract_version: int
    fields: dict[str, Any]  # written on create and update, compared on read-back
    create_only: dict[str, Any] = field(default_factory=dict)  # e.g. creator_role: not readable back
    stories: tuple[PlannedStory, ...] = ()
    rate_card: RateCardPlan | None = None  # None: the contract bills no time and materials

    @property
    def marker(self) -> str:
        return workspace_marker(self.reference)


def _minor_units(money: Mapping[str, Any], currency: str, what: str) -> int:
    amount = Money(amount=Decimal(str(money["amount"])), currency=str(money["currency"]))
    if amount.currency != currency:
        raise BusinessRuleViolation(
            f"{what} is in {amount.currency}, the workspace in {currency}", code="kantata_currency_mismatch"
        )
    try:
        return amount.minor_units
    except ValueError as error:  # finer than the currency's minor unit: refuse rather than round
        raise BusinessRuleViolation(f"{what}: {error}", code="kantata_amount_precision") from None


def workspace_plan(command: ConnectorCommand, role_ids: Mapping[str, Any]) -> WorkspacePlan:
    """The Kantata workspace, stories and rate card for one `upsert_project` command; a bad command, or
    one billing a role `role_ids` (our role name -> Kantata role id) does not map, is refused."""
    if command.target is not Target.PSA:
        raise BusinessRuleViolation(
            f"Kantata OX is the PSA; it cannot take a {command.target} command", code="wrong_target"
        )
    if command.operation != UPSERT_PROJECT:
        raise BusinessRuleViolation(
            f"the Kantata connector has no mapping for operation {command.operation!r}",
            code="kantata_unsupported_operation",
        )
    p = command.payload
    try:
        project = p["project"]
        currency = str(p["currency"])
        reference = str(project["project_id"])
        version = int(p["contract_version"])
        contract_id = str(p["contract_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise BusinessRuleViolation(
            f"{command.command_id}: the project command lacks {error}", code="kantata_bad_command"
        ) from None
    if reference != command.external_id:
        raise BusinessRuleViolation(
            f"{command.command_id}: project {reference} is not the command's record {command.external_id}",
            code="kantata_bad_command",
        )
    description = "\n".join(
        [workspace_marker(reference), f"Contract {contract_id} v{version}", str(p.get("title", ""))]
    ).rstrip()
    fields: dict[str, Any] = {"title": project["name"], "description": description, "currency": currency}
    if p.get("budget") is not None:
        fields["budgeted"] = True
        fields["price_in_cents"] = _minor_units(p["budget"], currency, "the budget")
    if p.get("start_date"):
        fields["start_date"] = p["start_date"]
    if p.get("end_date"):
        fields["due_date"] = p["end_date"]
    return WorkspacePlan(
        reference=reference,
        contract_id=contract_id,
        contract_version=version,
        fields=fields,
        create_only={"creator_role": "maven"},  # we are the provider side of the project
        stories=tuple(_stories(p, currency)),
        rate_card=_rate_card(p, currency, reference, normalised_role_ids(role_ids)),
    )


def _rate_card(
    p: Mapping[str, Any], currency: str, reference: str, role_ids: Mapping[str, str]
) -> RateCardPlan | None:
    tm = p.get("time_and_materials")
    if tm is None or not tm.get("rate_card"):
        return None
    lines = [(str(line["role"]), Money.model_validate(line["hourly_rate"])) for line in tm["rate_card"]]
    unmapped = tuple(sorted({role for role, _ in lines if role.strip().casefold() not in role_ids}))
    if unmapped:
        raise UnmappedRole(
            f"project {reference}: the Kantata role mapping has no role for {', '.join(map(repr, unmapped))}"
            " (add it to the Kantata secret's role_ids); nothing was written",
            unmapped,
        )
    rates: dict[str, PlannedRate] = {}
    for role, rate in lines:
        role_id = role_ids[role.strip().casefold()]
        _minor_units(rate.model_dump(mode="json"), currency, f"the {role} rate")
        held = rates.get(role_id)
        if held is not None and held.hourly_rate != rate:
            # One Kantata role holds one rate per rate card: two rates for it cannot both be billed.
            raise BusinessRuleViolation(
                f"project {reference}: roles {held.role!r} and {role!r} both map to Kantata role {role_id}"
                f" at different rates ({held.hourly_rate}, {rate})",
                code="kantata_role_rate_conflict",
            )
        rates.setdefault(role_id, PlannedRate(role, role_id, rate))
    return RateCardPlan(
        reference=reference,
        currency=currency,
        starts_on=str(p.get("start_date") or ""),
        rates=tuple(sorted(rates.values(), key=lambda r: int(r.role_id))),
    )


def _stories(p: Mapping[str, Any], currency: str) -> list[PlannedStory]:
    wbs = list(p["project"].get("wbs", []))
    # Parents before children, whatever order the plan lists them in, so a child's parent id is known.
    depth = {w["code"]: _depth(w["code"], {x["code"]: x.get("parent_code") for x in wbs}) for w in wbs}
    stories: list[PlannedStory] = []
    for element in sorted(wbs, key=lambda w: depth[w["code"]]):
        key = f"wbs {element['code']}"
        fields: dict[str, Any] = {
            "title": element["name"],
            "story_type": "task",
            "description": story_marker(key),
        }
        if element.get("budget_hours") is not None:
            fields["time_estimate_in_minutes"] = int(element["budget_hours"]) * 60
        parent = element.get("parent_code")
        stories.append(PlannedStory(key, f"wbs {parent}" if parent else None, fields))
    for milestone in p.get("milestones") or []:
        key = f"milestone {milestone['milestone_id']}"
        fields = {
            "title": milestone["name"],
            "story_type": "milestone",
            "description": story_marker(key),
            "budget_estimate_in_cents": _minor_units(
                milestone["amount"], currency, f"milestone {milestone['milestone_id']}"
            ),
        }
        stories.append(PlannedStory(key, None, fields))
    tm = p.get("time_and_materials")
    if tm is not None:
        fields = {
            "title": "Time and materials",
            "story_type": "task",
            "description": "\n".join([story_marker(TIME_AND_MATERIALS_KEY), *_rate_lines(tm)]),
        }
        if tm.get("not_to_exceed") is not None:
            fields["budget_estimate_in_cents"] = _minor_units(tm["not_to_exceed"], currency, "the T&M cap")
        stories.append(PlannedStory(TIME_AND_MATERIALS_KEY, None, fields))
    return stories


def _rate_lines(tm: Mapping[str, Any]) -> list[str]:
    """The T&M rate card as the phase's description lines (`Senior consultant: 1450.00 EUR/h`)."""
    return [
        f"{line['role']}: {Money.model_validate(line['hourly_rate'])}/h" for line in tm.get("rate_card", [])
    ]


def _depth(code: str, parents: Mapping[str, str | None]) -> int:
    depth, seen = 0, {code}
    parent = parents.get(code)
    while parent is not None and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = parents.get(parent)
    return depth


# Kantata answers ids as strings and money as integers: ints compare as integers, the rest as text.
def field_differences(written: Mapping[str, Any], held: Mapping[str, Any], where: str) -> list[str]:
    """The fields we wrote whose value Kantata does not hold (`workspace P-1: price_in_cents`)."""
    found = []
    for key, value in written.items():
        actual = held.get(key)
        if value is None:
            same = actual in (None, "")
        elif isinstance(value, bool) or isinstance(actual, bool):
            same = value is actual
        elif isinstance(value, int):
            same = actual is not None and str(actual).lstrip("-").isdigit() and int(str(actual)) == value
        else:
            same = str(value) == ("" if actual is None else str(actual))
        if not same:
            found.append(f"{where}: {key} (wrote {value!r}, holds {actual!r})")
    return found
