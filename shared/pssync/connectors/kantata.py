"""The Kantata OX PSA connector: a project command as an upserted workspace with its stories.

Kantata OX (API v1, `/api/v1/...json`, OAuth bearer token) has no upsert by an id of ours, so the
connector makes one:
- it looks the workspace up by our external reference first: Kantata's External References
  (`GET /external_references?subject_type=Workspace&service_name=pssync&service_model=project&
  service_model_ref=<project id>`), which exist to link Kantata objects to a third-party system's ids;
- a create and its reference are two calls, so a create whose answer was lost leaves a workspace with no
  reference yet. Its description's first line is our marker (`pssync project P-1`), so the second lookup
  is a description search (`search=description:'...'`), checked exactly against the marker; a workspace
  found that way gets its reference attached;
- only when both find nothing is a workspace created (then the reference is attached), else it is updated.
Stories (WBS phases and tasks, milestones, the T&M phase) are matched inside the workspace by the marker
their description starts with: created, updated when a field differs, deleted when a new version drops
them. Read-back (`mismatches`) fetches the workspace and its stories and compares what we wrote.

The T&M rate card is written as Kantata models rates (Rate Card Sets -> Set Versions effective by date ->
a Rate Card per currency -> one Rate Card Table Row per role, rates in minor units): the project's own Rate
Card Set, found by an external reference on its Rate Card (`service_model` `project_rate_card`) and, for a
create whose answer was lost, by its title (`pssync project P-1 rates`). Rows are written with Kantata's
create-or-update row endpoint (PUT by set version and role id), so a retry never adds a second rate for a
role. A published version is changed in place only while its effective date is in the future (what Kantata
allows); otherwise a changed rate gets a new set version, cloned from the current one and published,
effective from today (or the contract's start, if later). The workspace's `rate_card_id` names the card.
Read-back compares the latest published version's rates per role, exactly, in the card's currency.

Retries, timeouts, 429 / Retry-After and the mapping of failures (401 -> `VendorAuthRefused`, 404 ->
`VendorNotFound`, other 4xx -> `VendorRejected` carrying Kantata's `errors[].type` and messages, 5xx ->
`TransientDownstreamError`) are the one vendor HTTP client's (`pssync.connectors.http`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from functools import partial
from typing import Any

import httpx

from pssync.connectors.http import VendorHttp, _Retryable, json_object
from pssync.connectors.http_policy import CallPolicy
from pssync.connectors.kantata_plan import (
    PlannedStory,
    RateCardPlan,
    WorkspacePlan,
    field_differences,
    marker_of,
    story_marker,
    workspace_plan,
)
from pssync.errors import TransientDownstreamError, VendorNotFound, VendorRejected
from pssync.model.commands import ConnectorCommand
from pssync.money import Money, from_minor
from pssync.ports import RecordedCommand

API = "/api/v1"
SERVICE_NAME = "pssync"  # our integration's name in Kantata's external references
SERVICE_MODEL = "project"
RATE_CARD_MODEL = "project_rate_card"  # the reference our project's Rate Card carries
PER_PAGE = 200  # Kantata's largest page

# A write may wait out a Retry-After of Kantata's per-endpoint rate limits; a step's Lambda has minutes.
KANTATA_WRITES = CallPolicy(
    timeout_seconds=10.0, deadline_seconds=20.0, max_attempts=4, backoff_base_seconds=0.5
)


def kantata_errors(response: httpx.Response) -> list[dict[str, str]]:
    """Kantata's error body (`{"errors": [{"type": ..., "message": ...}]}`) as a list; [] if another shape."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        {"type": str(e.get("type", "")), "message": str(e.get("message", ""))}
        for e in errors
        if isinstance(e, dict)
    ]


# Failures after which Kantata surely did not apply a POST: it throttled it, or no connection was made.
_NOT_APPLIED = frozenset({"HTTP 429", "ConnectError", "ConnectTimeout"})
# A create that may or may not have been applied is looked up before it is tried again, this many times.
CREATE_ATTEMPTS = 3


class AmbiguousCreate(TransientDownstreamError):
    """A POST failed in a way that leaves unknown whether Kantata created the object (a timeout, a 5xx,
    a reset): retrying it blind could create a second one, so the caller looks for it first."""

    code = "kantata_ambiguous_create"


class KantataHttp(VendorHttp):
    """The one vendor client, with two Kantata needs on top.

    - Kantata's error body in the exception: `errors[0].type` becomes the vendor code and the messages
      the reason (the shared classifier only knows `errors[].code`).
    - `create`: a POST is retried in the call only when it surely was not applied (429 with its
      Retry-After, connection refused); otherwise it raises `AmbiguousCreate` at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._creating = threading.local()

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self._creating.active = True
        try:
            response = self.request("POST", path, json_body=body)
        finally:
            self._creating.active = False
        return json_object(response, self.vendor, path)

    def _attempt(self, *args: Any, **kwargs: Any) -> httpx.Response:
        try:
            return super()._attempt(*args, **kwargs)
        except _Retryable as failure:
            if getattr(self._creating, "active", False) and failure.problem not in _NOT_APPLIED:
                raise AmbiguousCreate(
                    f"kantata create: {failure.problem}; it may have been applied"
                ) from None
            raise

    def _classified(self, response: httpx.Response, what: str) -> httpx.Response:
        try:
            return super()._classified(response, what)
        except VendorRejected as rejected:
            errors = kantata_errors(response)
            if not errors:
                raise
            reasons = "; ".join(e["message"] for e in errors if e["message"])
            raise type(rejected)(
                f"{rejected.message}: {reasons}" if reasons else rejected.message,
                status=rejected.status,
                vendor_code=errors[0]["type"] or rejected.vendor_code,
            ) from None


def kantata_psa_http(base_url: str, token: Callable[[], str], **options: Any) -> KantataHttp:
    """The vendor HTTP client for one Kantata account's PSA writes (tests pass a transport, sleep, rng)."""
    return KantataHttp("kantata", base_url, KANTATA_WRITES, bearer_token=token, **options)


def _entities(document: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects a Kantata answer lists, in `results` order (`{"results": [{key, id}], key: {id: {}}}`)."""
    table = document.get(key)
    if not isinstance(table, dict):
        return []
    found = []
    for ref in document.get("results") or []:
        if isinstance(ref, dict) and ref.get("key") == key and str(ref.get("id")) in table:
            found.append(table[str(ref["id"])])
    return found


RoleIds = Mapping[str, Any]  # our role name -> Kantata role id, per deployment (the secret's role_ids)


class KantataConnector:
    """Writes PSA project commands to one Kantata OX account; safe to call twice with the same command.

    `role_ids` maps our role names to the account's Kantata role ids, or is read each command (a callable:
    the secret, cached), so a mapping fixed by an administrator is picked up without a deploy."""

    vendor = "kantata"

    def __init__(self, http: KantataHttp, role_ids: RoleIds | Callable[[], RoleIds] | None = None) -> None:
        self._http = http
        mapping: RoleIds | Callable[[], RoleIds] = {} if role_ids is None else role_ids
        self._role_ids: Callable[[], RoleIds] = mapping if callable(mapping) else partial(dict, mapping)

    # --- the connector interface -------------------------------------------------------------------

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        plan = workspace_plan(command, self._role_ids())  # refuses an unmapped role before any write
        fields = dict(plan.fields)
        if plan.rate_card is not None:
            today = date.fromisoformat(recorded_at[:10])
            fields["rate_card_id"] = int(self._sync_rate_card(plan.rate_card, today))
        workspace_id = self.find_workspace(plan)
        if workspace_id is None:
            workspace_id = self._create_workspace(plan, fields)
        else:
            self._put(f"{API}/workspaces/{workspace_id}.json", {"workspace": fields})
        self._sync_stories(workspace_id, plan)
        return RecordedCommand(command=command, first_time=True)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        """Read back the workspace, stories and rate card the command wrote; what differs from ours."""
        plan = workspace_plan(command, self._role_ids())
        where = f"workspace {plan.reference}"
        workspace_id = self.find_workspace(plan, attach=False)
        if workspace_id is None:
            return [f"{where}: not found in Kantata"]
        try:
            held = self._get(f"{API}/workspaces/{workspace_id}.json", {"include_archived": "true"})
        except VendorNotFound:
            return [f"{where}: referenced workspace {workspace_id} no longer exists"]
        workspaces = _entities(held, "workspaces")
        found = field_differences(plan.fields, workspaces[0] if workspaces else {}, where)
        ours = self._our_stories(workspace_id)
        planned = {story.marker: story for story in plan.stories}
        for marker, story in planned.items():
            if marker not in ours:
                found.append(f"{where} story '{story.key}': missing")
                continue
            expected = {**story.fields, "parent_id": self._parent_id(story, ours)}
            found += field_differences(expected, ours[marker], f"{where} story '{story.key}'")
        found += [f"{where} story '{m}': not in the plan" for m in sorted(set(ours) - set(planned))]
        if plan.rate_card is not None:
            found += self._rate_card_mismatches(plan.rate_card, workspaces[0] if workspaces else {})
        return found

    # --- the workspace -----------------------------------------------------------------------------

    def find_workspace(self, plan: WorkspacePlan, *, attach: bool = True) -> str | None:
        """The id of the workspace holding our reference; by its marker if the reference is not attached
        yet (a create whose answer was lost), attaching the reference then unless `attach` is False."""
        references = self._get(
            f"{API}/external_references.json",
            {
                "subject_type": "Workspace",
                "service_name": SERVICE_NAME,
                "service_model": SERVICE_MODEL,
                "service_model_ref": plan.reference,
            },
        )
        linked = sorted(
            str(r["subject_id"])
            for r in _entities(references, "external_references")
            if r.get("service_model_ref") == plan.reference and r.get("subject_id") is not None
        )
        if len(linked) > 1:
            raise VendorRejected(
                f"kantata: {len(linked)} workspaces carry reference {plan.reference} ({', '.join(linked)}); "
                "an operator must merge them",
                status=409,
                vendor_code="pssync_duplicate_reference",
            )
        if linked:
            return linked[0]
        found = self._get(
            f"{API}/workspaces.json",
            {"search": f"description:'{plan.marker}'", "include_archived": "true", "per_page": PER_PAGE},
        )
        marked = sorted(
            str(w["id"])
            for w in _entities(found, "workspaces")
            if marker_of(w.get("description")) == plan.marker
        )
        if not marked:
            return None
        if len(marked) > 1:
            raise VendorRejected(
                f"kantata: {len(marked)} workspaces carry marker {plan.marker!r} ({', '.join(marked)})",
                status=409,
                vendor_code="pssync_duplicate_reference",
            )
        if attach:
            self._attach_reference(marked[0], plan)
        return marked[0]

    def _create_workspace(self, plan: WorkspacePlan, fields: Mapping[str, Any]) -> str:
        def look() -> dict[str, Any] | None:
            found = self.find_workspace(plan, attach=False)
            return None if found is None else {"id": found}

        workspace = self._create(
            f"{API}/workspaces.json", {"workspace": {**fields, **plan.create_only}}, "workspaces", look
        )
        workspace_id = str(workspace["id"])
        self._attach_reference(workspace_id, plan)
        return workspace_id

    def _create(
        self, path: str, body: Mapping[str, Any], key: str, look: Callable[[], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """POST a create; after an ambiguous failure, `look` for what it may have created before trying
        again, so a lost answer never becomes a second object."""
        for _ in range(CREATE_ATTEMPTS):
            try:
                created = _entities(self._http.create(path, body), key)
            except AmbiguousCreate:
                found = look()
                if found is not None:
                    return found
                continue
            if not created:
                raise TransientDownstreamError(f"kantata: a create at {path} answered without the {key}")
            return created[0]
        raise TransientDownstreamError(f"kantata: create at {path} failed {CREATE_ATTEMPTS} times")

    def _attach_reference(self, workspace_id: str, plan: WorkspacePlan) -> None:
        self._attach("Workspace", workspace_id, SERVICE_MODEL, plan.reference)

    # --- the rate card -----------------------------------------------------------------------------

    def _sync_rate_card(self, rates: RateCardPlan, today: date) -> str:
        """Make the project's rate card hold `rates` (from today, or the contract's start if later).
        Returns the Rate Card's id."""
        card = self.find_rate_card(rates)
        set_id = str(card["rate_card_set_id"]) if card is not None else self._rate_card_set(rates)
        versions = self._set_versions(set_id)
        current = _latest_published(versions)
        if current is None or self._rows(current["id"], rates.currency) != rates.minor_units_by_role_id():
            target = self._version_to_write(set_id, versions, current, rates, today)
            if card is None:
                card = self._rate_card_in(set_id, str(target["id"]), rates)
            self._write_rows(str(target["id"]), rates)
            if not target.get("active"):
                self._publish(set_id, str(target["id"]))
        elif card is None:  # rates already held (a lost answer): only the reference was missing
            card = self._rate_card_in(set_id, str(current["id"]), rates)
        return str(card["id"])

    def find_rate_card(self, rates: RateCardPlan) -> dict[str, Any] | None:
        """The Rate Card carrying our project's reference (None before it is created and referenced)."""
        linked = self._referenced("RateCard", RATE_CARD_MODEL, rates.reference)
        if not linked:
            return None
        try:
            cards = _entities(self._get(f"{API}/rate_cards/{linked}.json"), "rate_cards")
        except VendorNotFound:  # deleted by someone in Kantata: found again by its set's title
            return None
        return cards[0] if cards else None

    def _rate_card_set(self, rates: RateCardPlan) -> str:
        """Our project's Rate Card Set, by its title; created when there is none."""

        def look() -> dict[str, Any] | None:
            sets = self._pages(f"{API}/rate_card_sets.json", {}, "rate_card_sets")
            ours = sorted((s for s in sets if s.get("title") == rates.title), key=lambda s: int(s["id"]))
            if len(ours) > 1:
                raise VendorRejected(
                    f"kantata: {len(ours)} rate card sets are titled {rates.title!r}; "
                    "an operator must merge them",
                    status=409,
                    vendor_code="pssync_duplicate_reference",
                )
            return ours[0] if ours else None

        found = look()
        if found is None:
            body = {"rate_card_set": {"title": rates.title}}
            found = self._create(f"{API}/rate_card_sets.json", body, "rate_card_sets", look)
        return str(found["id"])

    def _set_versions(self, set_id: str) -> list[dict[str, Any]]:
        return list(
            self._pages(
                f"{API}/rate_card_set_versions.json", {"rate_card_set_id": set_id}, "rate_card_set_versions"
            )
        )

    def _version_to_write(
        self,
        set_id: str,
        versions: list[dict[str, Any]],
        current: dict[str, Any] | None,
        rates: RateCardPlan,
        today: date,
    ) -> dict[str, Any]:
        """The set version our rates go into: an unpublished one an earlier attempt left; the current one
        while it is not yet in effect (Kantata allows editing it then); else a new one cloned from it."""
        draft = next((v for v in versions if not v.get("active")), None)
        if draft is not None:
            return draft
        if current is not None and date.fromisoformat(str(current["effective_date"])) > today:
            return current
        starts = max(date.fromisoformat(rates.starts_on), today) if rates.starts_on else today
        if current is not None and date.fromisoformat(str(current["effective_date"])) >= starts:
            # Kantata keeps one version per effective date and a version in effect is immutable: a second
            # change on the day a version took effect applies from the next day.
            starts = date.fromisoformat(str(current["effective_date"])) + timedelta(days=1)
        path = f"{API}/rate_card_set_versions.json"
        if current is not None:
            path += f"?clone_id={current['id']}"  # the new version starts with the current rows
        body = {
            "rate_card_set_version": {"rate_card_set_id": int(set_id), "effective_date": starts.isoformat()}
        }

        def look() -> dict[str, Any] | None:
            return next((v for v in self._set_versions(set_id) if not v.get("active")), None)

        return self._create(path, body, "rate_card_set_versions", look)

    def _rate_card_in(self, set_id: str, version_id: str, rates: RateCardPlan) -> dict[str, Any]:
        """The set's Rate Card in our currency (created with the given set version), with our reference."""

        def look() -> dict[str, Any] | None:
            held = self._get(
                f"{API}/rate_cards.json", {"rate_card_set_id": set_id, "currencies": rates.currency}
            )
            cards = [c for c in _entities(held, "rate_cards") if c.get("currency") == rates.currency]
            return cards[0] if cards else None

        card = look()
        if card is None:
            body = {"rate_card": {"rate_card_set_version_id": int(version_id), "currency": rates.currency}}
            card = self._create(f"{API}/rate_cards.json", body, "rate_cards", look)
        self._attach("RateCard", str(card["id"]), RATE_CARD_MODEL, rates.reference)
        return card

    def _rows(self, version_id: str, currency: str) -> dict[str, int]:
        """A set version's rate per Kantata role id, in `currency`'s minor units."""
        path = f"{API}/rate_card_set_versions/{version_id}/rate_card_table_rows.json"
        held: dict[str, int] = {}
        for row in self._pages(path, {}, "rate_card_table_rows"):
            for rate in row.get("rates") or []:
                if (
                    isinstance(rate, dict)
                    and rate.get("currency") == currency
                    and rate.get("rate") is not None
                ):
                    held[str(row["role_id"])] = int(rate["rate"])
        return held

    def _write_rows(self, version_id: str, rates: RateCardPlan) -> None:
        """Create-or-update each role's row (PUT by role id: a retry cannot add a second); drop the rows of
        roles the contract no longer bills."""
        held = self._rows(version_id, rates.currency)
        rows = f"{API}/rate_card_set_versions/{version_id}/rate_card_table_rows"
        for rate in rates.rates:
            if held.get(rate.role_id) != rate.minor_units:
                body = {
                    "rate_card_table_row": {"rates": [{"currency": rates.currency, "rate": rate.minor_units}]}
                }
                self._put(f"{rows}/{rate.role_id}.json", body)
        for role_id in sorted(set(held) - set(rates.minor_units_by_role_id())):
            with contextlib.suppress(VendorNotFound):  # gone already: an earlier attempt deleted it
                self._http.request("DELETE", f"{rows}/{role_id}.json")

    def _publish(self, set_id: str, version_id: str) -> None:
        try:
            self._put(f"{API}/rate_card_set_versions/{version_id}/publish.json", {})
        except VendorRejected:
            # A publish whose answer was lost and was retried is refused as already published: fine.
            if not any(str(v["id"]) == version_id and v.get("active") for v in self._set_versions(set_id)):
                raise

    def _rate_card_mismatches(self, rates: RateCardPlan, workspace: Mapping[str, Any]) -> list[str]:
        where = f"rate card {rates.reference}"
        card = self.find_rate_card(rates)
        if card is None:
            return [f"{where}: not found in Kantata"]
        found = []
        if str(workspace.get("rate_card_id")) != str(card["id"]):
            found.append(
                f"workspace {rates.reference}: rate_card_id (wrote {card['id']!r}, "
                f"holds {workspace.get('rate_card_id')!r})"
            )
        if card.get("currency") != rates.currency:
            found.append(f"{where}: currency (wrote {rates.currency!r}, holds {card.get('currency')!r})")
        current = _latest_published(self._set_versions(str(card["rate_card_set_id"])))
        if current is None:
            return [*found, f"{where}: no published version"]
        return found + rate_differences(rates, self._rows(str(current["id"]), rates.currency), where)

    def _referenced(self, subject_type: str, model: str, reference: str) -> str | None:
        """The id of the one `subject_type` carrying our reference; None if none; an error if several."""
        references = self._get(
            f"{API}/external_references.json",
            {
                "subject_type": subject_type,
                "service_name": SERVICE_NAME,
                "service_model": model,
                "service_model_ref": reference,
            },
        )
        linked = sorted(
            str(r["subject_id"])
            for r in _entities(references, "external_references")
            if r.get("service_model_ref") == reference and r.get("subject_id") is not None
        )
        if len(linked) > 1:
            raise VendorRejected(
                f"kantata: {len(linked)} {subject_type} objects carry reference {reference} "
                f"({', '.join(linked)}); an operator must merge them",
                status=409,
                vendor_code="pssync_duplicate_reference",
            )
        return linked[0] if linked else None

    def _attach(self, subject_type: str, subject_id: str, model: str, reference: str) -> None:
        self._post(
            f"{API}/external_references/create_or_update.json",
            {
                "external_reference": {
                    "subject_type": subject_type,
                    "subject_id": int(subject_id),
                    "service_name": SERVICE_NAME,
                    "service_model": model,
                    "service_model_ref": reference,
                    "status": "successful",
                }
            },
        )

    # --- the stories -------------------------------------------------------------------------------

    def _sync_stories(self, workspace_id: str, plan: WorkspacePlan) -> None:
        ours = self._our_stories(workspace_id)
        for story in plan.stories:  # parents first (the plan orders them so)
            wanted = {**story.fields, "parent_id": self._parent_id(story, ours)}
            held = ours.get(story.marker)
            if held is None:
                ours[story.marker] = self._create(
                    f"{API}/stories.json",
                    {"story": {**wanted, "workspace_id": int(workspace_id)}},
                    "stories",
                    partial(self._story_by_marker, workspace_id, story.marker),
                )
            elif field_differences(wanted, held, ""):
                updated = self._put(f"{API}/stories/{held['id']}.json", {"story": wanted})
                ours[story.marker] = next(iter(_entities(updated, "stories")), {**held, **wanted})
        planned = {story.marker for story in plan.stories}
        dropped = [held for marker, held in ours.items() if marker not in planned]
        # Sub-tasks before their parents; a story already gone (taken with its parent, or deleted by an
        # earlier attempt of this command) is what we wanted.
        for held in sorted(dropped, key=lambda story: story.get("parent_id") is None):
            with contextlib.suppress(VendorNotFound):
                self._http.request("DELETE", f"{API}/stories/{held['id']}.json")

    def _parent_id(self, story: PlannedStory, ours: Mapping[str, Mapping[str, Any]]) -> int | None:
        if story.parent_key is None:
            return None
        parent = ours.get(story_marker(story.parent_key))
        return int(parent["id"]) if parent is not None else None

    def _story_by_marker(self, workspace_id: str, marker: str) -> dict[str, Any] | None:
        return self._our_stories(workspace_id).get(marker)

    def _our_stories(self, workspace_id: str) -> dict[str, dict[str, Any]]:
        """The workspace's stories we wrote, by marker (others, added by the firm's people, are left be)."""
        ours: dict[str, dict[str, Any]] = {}
        for story in self._pages(f"{API}/stories.json", {"workspace_id": workspace_id}, "stories"):
            marker = marker_of(story.get("description"))
            if marker is not None and marker not in ours:
                ours[marker] = story
        return ours

    # --- HTTP --------------------------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, str | int], key: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            document = self._get(path, {**params, "page": page, "per_page": PER_PAGE})
            batch = _entities(document, key)
            yield from batch
            count = document.get("count")
            seen = (page - 1) * PER_PAGE + len(batch)
            if not batch or not isinstance(count, int) or seen >= count:
                return
            page += 1

    def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        return self._http.get_json(path, params)

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A POST that is safe to repeat (Kantata's create_or_update)."""
        return json_object(self._http.request("POST", path, json_body=body), self.vendor, path)

    def _put(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return json_object(self._http.request("PUT", path, json_body=body), self.vendor, path)

    def close(self) -> None:
        self._http.close()


def _latest_published(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The published set version with the latest effective date: the rates Kantata applies from then on."""
    published = [v for v in versions if v.get("active")]
    return max(published, key=lambda v: str(v.get("effective_date"))) if published else None


def rate_differences(rates: RateCardPlan, held: Mapping[str, int], where: str) -> list[str]:
    """Our rates per role against a version's rows (role id -> minor units), compared as exact decimals in
    the card's currency; a row for a role the contract does not bill is a difference too."""
    found = []
    for rate in rates.rates:
        units = held.get(rate.role_id)
        if units is None:
            found.append(f"{where} {rate.role} (Kantata role {rate.role_id}): no rate")
            continue
        holds = Money(amount=from_minor(units, rates.currency), currency=rates.currency)
        if holds != rate.hourly_rate:
            found.append(f"{where} {rate.role}: rate (wrote {rate.hourly_rate}/h, holds {holds}/h)")
    found += [
        f"{where}: Kantata role {role_id} is not in the contract's rate card"
        for role_id in sorted(set(held) - set(rates.minor_units_by_role_id()))
    ]
    return found
