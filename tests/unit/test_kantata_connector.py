"""Kantata OX PSA connector against respx fakes that answer as Kantata documents it.

The fake behind respx is the stand-in's request handling (`KantataOX.handle`, no sockets): it keeps
workspaces, stories and external references, so the tests count objects, not just calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from pssync.connectors.kantata import (
    CREATE_ATTEMPTS,
    KantataConnector,
    kantata_errors,
    kantata_psa_http,
)
from pssync.connectors.kantata_plan import workspace_plan
from pssync.errors import BusinessRuleViolation, TransientDownstreamError, VendorAuthRefused, VendorRejected
from pssync.local.standins.kantata import DEFAULT_ROLES, Fault, KantataFaults, KantataOX
from pssync.model import examples
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import ContractTerms, RateCardLine, TimeAndMaterialsBilling
from pssync.money import Money
from pssync.workflows import provision
from pssync.workflows.provision import project_plan_fields

BASE = "https://api.mavenlink.com"
TOKEN = "kantata-token-1"  # a test token
ROLE_IDS = dict(DEFAULT_ROLES)  # the deployment's mapping: our role names -> the account's role ids


def project_command(terms: ContractTerms, version: int) -> ConnectorCommand:
    """The PSA command as the provision workflow builds it, with the plan fields it merges in."""
    booked = examples.contract_booked()
    base = provision.provision_project_command(booked, terms, version)
    return base.model_copy(update={"payload": {**base.payload, **project_plan_fields(terms)}})


class Fake:
    """respx side effect over the stand-in's handling; `lose` drops the answer to matching requests."""

    def __init__(self) -> None:
        self.ox = KantataOX(TOKEN)
        self.lose: list[Callable[[httpx.Request], bool]] = []
        self.before: list[Callable[[httpx.Request], httpx.Response | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        for intercept in list(self.before):  # each intercepts one request, by answering or raising
            try:
                answer = intercept(request)
            except httpx.TransportError:
                self.before.remove(intercept)
                raise
            if answer is not None:
                self.before.remove(intercept)
                return answer
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, answer_headers, body = self.ox.handle(
            request.method, request.url.raw_path.decode(), headers, request.content
        )
        for lost in list(self.lose):
            if lost(request):
                self.lose.remove(lost)
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(status, headers=answer_headers, content=body)

    def posts(self, suffix: str) -> int:
        return sum(1 for method, path in self.ox.requests if method == "POST" and path.endswith(suffix))


@pytest.fixture
def fake() -> Iterator[Fake]:
    fake = Fake()
    with respx.mock(assert_all_called=False) as mock:
        mock.route(url__startswith=BASE).mock(side_effect=fake)
        yield fake


class Token:
    def __init__(self, value: str = TOKEN) -> None:
        self.value = value

    def __call__(self) -> str:
        return self.value


def connector(token: Token | None = None) -> tuple[KantataConnector, list[float]]:
    sleeps: list[float] = []
    http = kantata_psa_http(BASE, token or Token(), sleep=sleeps.append, rng=lambda: 0.5)
    return KantataConnector(http, ROLE_IDS), sleeps


def is_workspace_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/api/v1/workspaces.json"


def only_workspace(fake: Fake) -> dict[str, Any]:
    workspaces = list(fake.ox.workspaces.values())
    assert len(workspaces) == 1, workspaces
    return workspaces[0]


def stories_by_title(fake: Fake) -> dict[str, dict[str, Any]]:
    return {s["title"]: s for s in fake.ox.stories.values()}


# --- mapping -----------------------------------------------------------------------------------------


def test_the_plan_puts_parents_first_and_amounts_in_minor_units() -> None:
    terms = examples.transformation_programme()
    plan = workspace_plan(project_command(terms, 1), ROLE_IDS)
    assert plan.reference == terms.project.project_id
    assert plan.fields["price_in_cents"] == terms.transaction_price.minor_units
    assert plan.fields["currency"] == terms.currency
    assert plan.fields["description"].splitlines()[0] == f"pssync project {terms.project.project_id}"
    keys = [s.key for s in plan.stories]
    for story in plan.stories:
        if story.parent_key is not None:
            assert keys.index(story.parent_key) < keys.index(story.key)
    milestones = [s for s in plan.stories if s.fields["story_type"] == "milestone"]
    billed = [m for b in terms.billing if b.kind == "milestones" for m in b.milestones]
    assert [m.fields["budget_estimate_in_cents"] for m in milestones] == [
        m.amount.minor_units for m in billed
    ]


def test_a_time_and_materials_contract_gets_a_tm_phase_with_its_cap_and_rates() -> None:
    terms = examples.transformation_programme()
    tm = TimeAndMaterialsBilling(
        rate_card=[RateCardLine(role="Architect", hourly_rate=Money.of("1450.00", "EUR"))],
        not_to_exceed=Money.of("50000.00", "EUR"),
    )
    terms = terms.model_copy(update={"billing": [*terms.billing, tm]})
    phase = next(
        s
        for s in workspace_plan(project_command(terms, 1), ROLE_IDS).stories
        if s.key == "time-and-materials"
    )
    assert phase.fields["budget_estimate_in_cents"] == Money.of("50000.00", "EUR").minor_units
    assert "Architect: 1450.00 EUR/h" in phase.fields["description"].splitlines()


def test_a_budget_finer_than_the_currency_allows_is_refused_before_any_call(fake: Fake) -> None:
    command = project_command(examples.transformation_programme(), 1)
    payload = {**command.payload, "budget": {"amount": "100.001", "currency": "EUR"}}
    with pytest.raises(BusinessRuleViolation, match="EUR"):
        connector()[0].send(command.model_copy(update={"payload": payload}), "2026-11-30T08:00:00Z")
    assert fake.ox.requests == []


def test_an_erp_command_or_unknown_operation_is_refused(fake: Fake) -> None:
    command = project_command(examples.transformation_programme(), 1)
    with pytest.raises(BusinessRuleViolation, match="PSA"):
        connector()[0].send(command.model_copy(update={"target": Target.ERP}), "2026-11-30T08:00:00Z")
    with pytest.raises(BusinessRuleViolation, match="no mapping"):
        connector()[0].send(command.model_copy(update={"operation": "close_project"}), "2026-11-30T08:00:00Z")
    assert fake.ox.requests == []


# --- provision, retry, amendment ---------------------------------------------------------------------


def test_provision_writes_one_workspace_with_budget_phases_milestones_and_our_reference(fake: Fake) -> None:
    terms = examples.transformation_programme()
    kantata, _ = connector()
    recorded = kantata.send(project_command(terms, 1), "2026-11-30T08:00:00Z")
    assert recorded.first_time
    workspace = only_workspace(fake)
    assert workspace["title"] == terms.project.name
    assert workspace["price_in_cents"] == terms.transaction_price.minor_units
    assert workspace["currency"] == "EUR" and workspace["budgeted"] is True
    [reference] = fake.ox.external_references.values()
    assert (reference["subject_id"], reference["service_model_ref"]) == (
        workspace["id"],
        terms.project.project_id,
    )
    stories = stories_by_title(fake)
    assert {w.name for w in terms.project.wbs} <= set(stories)
    assert stories["Discovery"]["parent_id"] == stories["Implementation"]["id"]
    assert stories["Design accepted"]["story_type"] == "milestone"
    assert kantata.mismatches(project_command(terms, 1)) == []


def test_sending_the_same_command_again_creates_nothing(fake: Fake) -> None:
    terms = examples.transformation_programme()
    kantata, _ = connector()
    kantata.send(project_command(terms, 1), "2026-11-30T08:01:00Z")
    held = fake.ox.holdings()
    posts = fake.posts("/workspaces.json"), fake.posts("/stories.json")
    kantata.send(project_command(terms, 1), "2026-11-30T08:02:00Z")
    assert (fake.posts("/workspaces.json"), fake.posts("/stories.json")) == posts
    assert len(fake.ox.holdings()["stories"]) == len(held["stories"])
    only_workspace(fake)


def test_a_workspace_create_whose_answer_is_lost_is_found_by_its_marker_not_created_twice(fake: Fake) -> None:
    terms = examples.transformation_programme()
    fake.lose.append(is_workspace_create)
    kantata, _ = connector()
    kantata.send(project_command(terms, 1), "2026-11-30T08:00:00Z")
    workspace = only_workspace(fake)
    assert fake.posts("/workspaces.json") == 1
    [reference] = fake.ox.external_references.values()  # attached after the lookup found it
    assert reference["subject_id"] == workspace["id"]
    assert kantata.mismatches(project_command(terms, 1)) == []


def test_a_story_create_answered_with_a_gateway_error_after_applying_is_not_duplicated(fake: Fake) -> None:
    terms = examples.transformation_programme()
    fake.ox.faults.add(Fault("POST", "/stories.json", status=504, apply_first=True))
    kantata, _ = connector()
    kantata.send(project_command(terms, 1), "2026-11-30T08:00:00Z")
    titles = [s["title"] for s in fake.ox.stories.values()]
    assert len(titles) == len(set(titles)) == len(workspace_plan(project_command(terms, 1), ROLE_IDS).stories)


def test_a_create_that_keeps_failing_ambiguously_gives_up_transiently_without_duplicates(fake: Fake) -> None:
    fake.ox.faults.add(Fault("POST", "/workspaces.json", status=502, times=CREATE_ATTEMPTS))
    with pytest.raises(TransientDownstreamError, match="failed 3 times"):
        connector()[0].send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert fake.ox.workspaces == {}
    assert fake.posts("/workspaces.json") == CREATE_ATTEMPTS  # one POST per look, never blind


def test_an_amendment_updates_the_same_workspace_budget_and_phases(fake: Fake) -> None:
    kantata, _ = connector()
    kantata.send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:01:00Z")
    amended = examples.change_order_terms()
    kantata.send(project_command(amended, 2), "2026-11-30T08:02:00Z")
    workspace = only_workspace(fake)
    assert workspace["price_in_cents"] == amended.transaction_price.minor_units
    assert "v2" in workspace["description"]
    assert "Advisory" in stories_by_title(fake)
    assert fake.posts("/workspaces.json") == 1
    assert kantata.mismatches(project_command(amended, 2)) == []


def test_an_amendment_that_drops_a_phase_deletes_the_story_we_wrote_and_leaves_others(fake: Fake) -> None:
    kantata, _ = connector()
    terms = examples.transformation_programme()
    kantata.send(project_command(terms, 1), "2026-11-30T08:01:00Z")
    workspace_id = only_workspace(fake)["id"]
    theirs = fake.ox._create_story(
        {"workspace_id": workspace_id, "title": "Team offsite", "story_type": "task"}
    )
    wbs = [w for w in terms.project.wbs if w.code not in ("1.3",)]
    smaller = terms.model_copy(update={"project": terms.project.model_copy(update={"wbs": wbs})})
    kantata.send(project_command(smaller, 2), "2026-11-30T08:02:00Z")
    titles = set(stories_by_title(fake))
    assert "Build and go-live" not in titles
    assert {"Team offsite", "Discovery", "Design"} <= titles
    assert theirs["id"] in fake.ox.stories


# --- failures ----------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(fake: Fake) -> None:
    fake.ox.faults.add(Fault("GET", "/external_references.json", status=429, retry_after=7))
    kantata, sleeps = connector()
    kantata.send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert 7.0 in sleeps
    only_workspace(fake)


def test_a_throttled_create_is_retried_in_the_call_because_kantata_did_not_apply_it(fake: Fake) -> None:
    fake.ox.faults.add(Fault("POST", "/workspaces.json", status=429, retry_after=2))
    kantata, sleeps = connector()
    kantata.send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert 2.0 in sleeps
    only_workspace(fake)


def test_5xx_is_retried_then_ends_transient_with_nothing_written(fake: Fake) -> None:
    fake.ox.faults.add(Fault("GET", "/external_references.json", status=503, times=10))
    with pytest.raises(TransientDownstreamError, match="HTTP 503"):
        connector()[0].send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert fake.ox.workspaces == {}


def test_a_read_timeout_is_retried(fake: Fake) -> None:
    def timeout_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/external_references.json"):
            raise httpx.ReadTimeout("slow", request=request)
        return None

    fake.before.append(timeout_once)
    kantata, sleeps = connector()
    kantata.send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert len(sleeps) == 1
    only_workspace(fake)


def test_a_token_rejected_mid_batch_stops_that_command_and_a_fixed_token_finishes_it(fake: Fake) -> None:
    token = Token()
    kantata, _ = connector(token)
    first, second = examples.transformation_programme(), examples.delivery_programme()
    kantata.send(project_command(first, 1), "2026-11-30T08:01:00Z")
    fake.ox.token = "rotated-token"  # the account's token was rotated
    with pytest.raises(VendorAuthRefused):
        kantata.send(project_command(second, 1), "2026-11-30T08:02:00Z")
    assert len(fake.ox.workspaces) == 1
    token.value = "rotated-token"  # the secret now holds the new token
    kantata.send(project_command(second, 1), "2026-11-30T08:03:00Z")
    references = fake.ox.external_references.values()
    refs = sorted(r["service_model_ref"] for r in references if r["subject_type"] == "Workspace")
    assert refs == sorted([first.project.project_id, second.project.project_id])
    assert len(fake.ox.workspaces) == 2


def test_a_validation_refusal_carries_kantatas_error_type_and_message(fake: Fake) -> None:
    def refuse(request: httpx.Request) -> httpx.Response | None:
        if is_workspace_create(request):
            body = {"errors": [{"type": "validation", "message": "Title is too long"}]}
            return httpx.Response(422, json=body)
        return None

    fake.before.append(refuse)
    with pytest.raises(VendorRejected, match="Title is too long") as refused:
        connector()[0].send(project_command(examples.transformation_programme(), 1), "2026-11-30T08:00:00Z")
    assert (refused.value.status, refused.value.vendor_code) == (422, "validation")
    assert fake.ox.workspaces == {}


def test_kantata_errors_reads_only_kantatas_shape() -> None:
    assert kantata_errors(httpx.Response(409, json={"errors": [{"type": "conflict", "message": "m"}]})) == [
        {"type": "conflict", "message": "m"}
    ]
    assert kantata_errors(httpx.Response(500, text="<html>")) == []


def test_two_workspaces_with_our_reference_are_refused_not_guessed(fake: Fake) -> None:
    terms = examples.transformation_programme()
    for _ in range(2):
        workspace = fake.ox._create_workspace({"title": "dup", "creator_role": "maven"})
        fake.ox._upsert_reference(
            {
                "subject_type": "Workspace",
                "subject_id": workspace["id"],
                "service_name": "pssync",
                "service_model": "project",
                "service_model_ref": terms.project.project_id,
            }
        )
    with pytest.raises(VendorRejected, match="2 workspaces") as refused:
        connector()[0].send(project_command(terms, 1), "2026-11-30T08:00:00Z")
    assert refused.value.vendor_code == "pssync_duplicate_reference"


# --- read-back ---------------------------------------------------------------------------------------


def test_read_back_reports_what_kantata_holds_differently(fake: Fake) -> None:
    terms = examples.transformation_programme()
    kantata, _ = connector()
    kantata.send(project_command(terms, 1), "2026-11-30T08:00:00Z")
    workspace = only_workspace(fake)
    workspace["price_in_cents"] = 1  # someone edited the budget in Kantata
    design = stories_by_title(fake)["Design"]
    del fake.ox.stories[design["id"]]
    found = kantata.mismatches(project_command(terms, 1))
    assert any("price_in_cents" in m for m in found)
    assert any("story 'wbs 1.2': missing" in m for m in found)
    assert len(found) == 2


def test_read_back_of_a_project_kantata_never_got_says_so(fake: Fake) -> None:
    found = connector()[0].mismatches(project_command(examples.transformation_programme(), 1))
    assert found == ["workspace P-CONTOSO-0412: not found in Kantata"]


# --- many commands under random faults ---------------------------------------------------------------


def numbered(terms: ContractTerms, n: int) -> ContractTerms:
    project = terms.project.model_copy(update={"project_id": f"P-{n:03d}", "name": f"Project {n}"})
    return terms.model_copy(update={"contract_id": f"C-{n:03d}", "project": project})


def test_under_ten_percent_faults_every_command_ends_delivered_once_after_redeliveries(fake: Fake) -> None:
    fake.ox.faults = KantataFaults(rate=0.10, seed=9)
    kantata, _ = connector()
    projects = range(12)
    commands = [project_command(numbered(examples.transformation_programme(), n), 1) for n in projects]
    commands += [project_command(numbered(examples.change_order_terms(), n), 2) for n in projects]
    redeliveries = 0
    for command in commands:
        for _ in range(10):  # the queue's redeliveries; a command failing this often would be parked
            try:
                kantata.send(command, "2026-11-30T08:00:00Z")
                break
            except TransientDownstreamError:
                redeliveries += 1
        else:
            pytest.fail(f"{command.command_id} was never delivered")
    assert fake.ox.faults.injected > 0  # the faults did bite (most are absorbed by in-call retries)
    fake.ox.faults = KantataFaults()
    assert len(fake.ox.workspaces) == len(projects)
    assert len(fake.ox.external_references) == len(projects)
    for command in commands[len(projects) :]:
        assert kantata.mismatches(command) == []
    per_workspace: dict[str, list[str]] = {}
    for story in fake.ox.stories.values():
        per_workspace.setdefault(story["workspace_id"], []).append(story["description"].splitlines()[0])
    for markers in per_workspace.values():
        assert len(markers) == len(set(markers)) == len(workspace_plan(commands[-1], ROLE_IDS).stories)
