"""Kantata rate cards: the contract's T&M rates as the project's own Kantata Rate Card Set, through respx.

The fake behind respx is the Kantata stand-in's request handling (`KantataOX.handle`, no sockets), which
keeps rate card sets, set versions, cards and table rows as Kantata documents them, so these tests count
objects (one set, one card, one row per role), not only calls.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from pssync.connectors.cutover import DUAL, CutoverConnector, CutoverMismatch
from pssync.connectors.kantata import rate_differences
from pssync.connectors.kantata_plan import (
    RateCardPlan,
    UnmappedRole,
    rate_card_set_title,
    workspace_plan,
)
from pssync.errors import BusinessRuleViolation
from pssync.model import examples
from pssync.model.contract import ContractTerms, RateCardLine, TimeAndMaterialsBilling
from pssync.money import Money
from tests.fakes import InMemoryDeliveryLog
from tests.unit.test_kantata_connector import ROLE_IDS, Fake, connector, fake, project_command

__all__ = ["fake"]  # the respx-backed stand-in core, a fixture

CONSULTANT, ARCHITECT = ROLE_IDS["consultant"], ROLE_IDS["architect"]


def with_rates(terms: ContractTerms, **rates: str) -> ContractTerms:
    """The terms with their T&M rate card replaced by `role=rate` (EUR)."""
    card = [RateCardLine(role=role, hourly_rate=Money.of(rate, "EUR")) for role, rate in rates.items()]
    billing = [
        term.model_copy(update={"rate_card": card}) if isinstance(term, TimeAndMaterialsBilling) else term
        for term in terms.billing
    ]
    return terms.model_copy(update={"billing": billing})


def on(day: str) -> str:
    return f"{day}T09:00:00Z"


def rows_of(fake: Fake, version_id: str) -> dict[str, dict[str, int]]:
    return {role: rates for (v, role), rates in fake.ox.rate_card_rows.items() if v == version_id}


def only(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(table) == 1, table
    return next(iter(table.values()))


def calls(fake: Fake, method: str, fragment: str) -> int:
    return sum(1 for m, path in fake.ox.requests if m == method and fragment in path)


V1_TERMS = examples.delivery_programme()  # consultant 150.00, architect 210.00 EUR; starts 2027-01-04


# --- the plan (pure) ---------------------------------------------------------------------------------


def test_the_plan_maps_roles_case_blind_to_kantata_ids_with_exact_minor_units() -> None:
    terms = with_rates(V1_TERMS, Consultant="150.50", architect="210.00")
    plan = workspace_plan(project_command(terms, 1), {"CONSULTANT ": "501", "Architect": 502})
    assert plan.rate_card is not None
    assert plan.rate_card.title == rate_card_set_title(terms.project.project_id)
    assert plan.rate_card.currency == "EUR"
    assert plan.rate_card.starts_on == "2027-01-04"
    assert plan.rate_card.minor_units_by_role_id() == {"501": 15050, "502": 21000}


def test_an_unmapped_role_is_a_typed_permanent_error_naming_it_and_nothing_is_written(fake: Fake) -> None:
    kantata, _ = connector()
    terms = with_rates(V1_TERMS, consultant="150.00", **{"data scientist": "230.00"})
    with pytest.raises(UnmappedRole) as refused:
        kantata.send(project_command(terms, 1), on("2026-11-30"))
    assert refused.value.roles == ("data scientist",)
    assert refused.value.code == "kantata_unmapped_role"
    assert "'data scientist'" in refused.value.message
    assert isinstance(refused.value, BusinessRuleViolation)  # the exceptions queue, not a retry
    assert fake.ox.requests == []  # refused before the first call: nothing half-written


def test_a_bad_mapping_or_two_rates_for_one_kantata_role_are_refused() -> None:
    command = project_command(V1_TERMS, 1)
    with pytest.raises(BusinessRuleViolation) as bad:
        workspace_plan(command, {"consultant": "Senior", "architect": "502"})
    assert bad.value.code == "kantata_role_mapping_invalid"
    with pytest.raises(BusinessRuleViolation) as clash:
        workspace_plan(command, {"consultant": "501", "architect": "501"})
    assert clash.value.code == "kantata_role_rate_conflict"
    finer = with_rates(V1_TERMS, consultant="150.005", architect="210.00")
    with pytest.raises(BusinessRuleViolation) as precision:
        workspace_plan(project_command(finer, 1), ROLE_IDS)
    assert precision.value.code == "kantata_amount_precision"


def test_rate_differences_compare_exact_decimals_per_role() -> None:
    plan = workspace_plan(project_command(V1_TERMS, 1), ROLE_IDS).rate_card
    assert isinstance(plan, RateCardPlan)
    assert rate_differences(plan, {CONSULTANT: 15000, ARCHITECT: 21000}, "rc") == []
    found = rate_differences(plan, {CONSULTANT: 15001, "504": 9000}, "rc")
    assert found == [
        "rc consultant: rate (wrote 150.00 EUR/h, holds 150.01 EUR/h)",
        f"rc architect (Kantata role {ARCHITECT}): no rate",
        "rc: Kantata role 504 is not in the contract's rate card",
    ]


# --- provisioning and retries ------------------------------------------------------------------------


def test_provisioning_writes_one_set_card_and_row_per_role_linked_to_the_workspace(fake: Fake) -> None:
    kantata, _ = connector()
    command = project_command(V1_TERMS, 1)
    kantata.send(command, on("2026-11-30"))
    rate_set = only(fake.ox.rate_card_sets)
    assert rate_set["title"] == f"pssync project {V1_TERMS.project.project_id} rates"
    version = only(fake.ox.rate_card_set_versions)
    # Not before the contract starts: 2027-01-04 is after the day it was sent.
    assert (version["effective_date"], version["active"]) == ("2027-01-04", True)
    card = only(fake.ox.rate_cards)
    assert (card["currency"], card["rate_card_set_id"]) == ("EUR", rate_set["id"])
    assert rows_of(fake, version["id"]) == {CONSULTANT: {"EUR": 15000}, ARCHITECT: {"EUR": 21000}}
    assert only(fake.ox.workspaces)["rate_card_id"] == card["id"]
    [reference] = [r for r in fake.ox.external_references.values() if r["subject_type"] == "RateCard"]
    assert (reference["subject_id"], reference["service_model"]) == (card["id"], "project_rate_card")
    assert kantata.mismatches(command) == []


def test_a_redelivery_finds_the_rate_card_by_reference_and_writes_no_rate(fake: Fake) -> None:
    kantata, _ = connector()
    command = project_command(V1_TERMS, 1)
    kantata.send(command, on("2026-11-30"))
    before = len(fake.ox.requests)
    kantata.send(command, on("2026-11-30"))
    again = fake.ox.requests[before:]
    assert not [r for r in again if "rate_card" in r[1] and r[0] != "GET"], again
    assert len(fake.ox.rate_card_sets) == len(fake.ox.rate_cards) == len(fake.ox.rate_card_set_versions) == 1


@pytest.mark.parametrize(
    "lost",
    [
        ("POST", "/rate_card_sets.json"),
        ("POST", "/rate_card_set_versions.json"),
        ("POST", "/rate_cards.json"),
        ("POST", "/external_references/create_or_update.json"),
        ("PUT", f"/rate_card_table_rows/{CONSULTANT}.json"),
        ("PUT", "/publish.json"),
    ],
    ids=lambda lost: f"{lost[0]} {lost[1]}",
)
def test_a_write_whose_answer_is_lost_is_found_not_repeated(fake: Fake, lost: tuple[str, str]) -> None:
    method, suffix = lost
    fake.lose.append(lambda request: request.method == method and request.url.path.endswith(suffix))
    kantata, _ = connector()
    command = project_command(V1_TERMS, 1)
    try:
        kantata.send(command, on("2026-11-30"))
    except Exception:  # an ambiguity the connector could not settle in the call: the workflow retries
        kantata.send(command, on("2026-11-30"))
    assert not fake.lose, "the answer was never lost"
    assert len(fake.ox.rate_card_sets) == len(fake.ox.rate_cards) == len(fake.ox.rate_card_set_versions) == 1
    version = only(fake.ox.rate_card_set_versions)
    assert version["active"] is True
    assert rows_of(fake, version["id"]) == {CONSULTANT: {"EUR": 15000}, ARCHITECT: {"EUR": 21000}}
    assert len([r for r in fake.ox.external_references.values() if r["subject_type"] == "RateCard"]) == 1
    assert kantata.mismatches(command) == []


def test_throttling_and_server_errors_are_waited_out_without_a_second_object(fake: Fake) -> None:
    def throttle_once(path: str, status: int) -> Any:
        def answer(request: httpx.Request) -> httpx.Response | None:
            if request.url.path.endswith(path):
                headers = {"Retry-After": "2"} if status == 429 else {}
                body = {"errors": [{"type": "rate_limit" if status == 429 else "server", "message": "x"}]}
                return httpx.Response(status, headers=headers, json=body)
            return None

        return answer

    fake.before += [
        throttle_once("/rate_card_sets.json", 429),  # the lookup, then the create: both throttled once
        throttle_once(f"/rate_card_table_rows/{ARCHITECT}.json", 503),
        throttle_once("/publish.json", 502),
    ]
    kantata, sleeps = connector()
    kantata.send(project_command(V1_TERMS, 1), on("2026-11-30"))
    assert not fake.before
    assert 2.0 in sleeps  # Kantata's Retry-After, honoured
    assert len(fake.ox.rate_card_sets) == len(fake.ox.rate_cards) == len(fake.ox.rate_card_set_versions) == 1
    assert rows_of(fake, only(fake.ox.rate_card_set_versions)["id"])[ARCHITECT] == {"EUR": 21000}


# --- amendments --------------------------------------------------------------------------------------


def test_an_amendment_before_the_rates_take_effect_edits_the_published_version_in_place(fake: Fake) -> None:
    fake.ox.today = lambda: date(2026, 12, 15)
    kantata, _ = connector()
    kantata.send(project_command(V1_TERMS, 1), on("2026-11-30"))
    amended = project_command(with_rates(V1_TERMS, consultant="165.00", architect="210.00"), 2)
    kantata.send(amended, on("2026-12-15"))
    version = only(fake.ox.rate_card_set_versions)  # effective 2027-01-04: still in the future
    assert rows_of(fake, version["id"])[CONSULTANT] == {"EUR": 16500}
    assert kantata.mismatches(amended) == []


def test_an_amendment_once_rates_apply_publishes_a_new_version_and_keeps_the_old(fake: Fake) -> None:
    fake.ox.today = lambda: date(2027, 3, 1)
    kantata, _ = connector()
    kantata.send(project_command(V1_TERMS, 1), on("2027-02-01"))
    amended = project_command(with_rates(V1_TERMS, consultant="165.00"), 2)  # the architect is dropped
    kantata.send(amended, on("2027-03-01"))
    versions = sorted(fake.ox.rate_card_set_versions.values(), key=lambda v: v["effective_date"])
    assert [(v["effective_date"], v["active"]) for v in versions] == [
        ("2027-02-01", True),
        ("2027-03-01", True),
    ]
    old, new = versions
    assert rows_of(fake, old["id"]) == {CONSULTANT: {"EUR": 15000}, ARCHITECT: {"EUR": 21000}}  # history
    assert rows_of(fake, new["id"]) == {CONSULTANT: {"EUR": 16500}}
    assert len(fake.ox.rate_cards) == 1
    assert kantata.mismatches(amended) == []
    # The v1 rates are now a difference, named per role.
    rate_mismatches = [
        m for m in kantata.mismatches(project_command(V1_TERMS, 1)) if m.startswith("rate card")
    ]
    assert rate_mismatches == [
        f"rate card {V1_TERMS.project.project_id} consultant: rate (wrote 150.00 EUR/h, holds 165.00 EUR/h)",
        f"rate card {V1_TERMS.project.project_id} architect (Kantata role {ARCHITECT}): no rate",
    ]


def test_a_second_change_on_the_day_a_version_took_effect_applies_from_the_next_day(fake: Fake) -> None:
    fake.ox.today = lambda: date(2027, 2, 1)
    kantata, _ = connector()
    kantata.send(project_command(V1_TERMS, 1), on("2027-02-01"))
    amended = project_command(with_rates(V1_TERMS, consultant="150.00", architect="220.00"), 2)
    kantata.send(amended, on("2027-02-01"))
    dates = sorted(v["effective_date"] for v in fake.ox.rate_card_set_versions.values())
    assert dates == ["2027-02-01", "2027-02-02"]
    assert kantata.mismatches(amended) == []


def test_dual_mode_reports_a_rate_kantata_accepted_but_does_not_hold_as_a_cutover_mismatch(
    fake: Fake,
) -> None:
    def accepted_not_applied(request: httpx.Request) -> httpx.Response | None:
        # Kantata answers 200 to the architect's row but keeps another rate (an approval rule, a rounding).
        if request.method == "PUT" and request.url.path.endswith(f"/rate_card_table_rows/{ARCHITECT}.json"):
            version_id = request.url.path.split("/")[4]
            fake.ox.rate_card_rows[(version_id, ARCHITECT)] = {"EUR": 19900}
            return httpx.Response(200, json={"count": 1, "results": [], "rate_card_table_rows": {}})
        return None

    fake.before.append(accepted_not_applied)
    kantata, _ = connector()
    dual = CutoverConnector(DUAL, InMemoryDeliveryLog(), kantata)
    with pytest.raises(CutoverMismatch) as mismatch:
        dual.send(project_command(V1_TERMS, 1), on("2026-11-30"))
    assert mismatch.value.mismatches == [
        f"rate card {V1_TERMS.project.project_id} architect: rate (wrote 210.00 EUR/h, holds 199.00 EUR/h)"
    ]


def test_read_back_names_a_workspace_pointing_at_another_card(fake: Fake) -> None:
    kantata, _ = connector()
    command = project_command(V1_TERMS, 1)
    kantata.send(command, on("2026-11-30"))
    only(fake.ox.workspaces)["rate_card_id"] = None  # someone reset the project to the account default
    [found] = kantata.mismatches(command)
    assert found.startswith(f"workspace {V1_TERMS.project.project_id}: rate_card_id")
