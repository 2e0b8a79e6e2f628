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

Retries, timeouts, 429 / Retry-After and the mapping of failures (401 -> `VendorAuthRefused`, 404 ->
`VendorNotFound`, other 4xx -> `VendorRejected` carrying Kantata's `errors[].type` and messages, 5xx ->
`TransientDownstreamError`) are the one vendor HTTP client's (`pssync.connectors.http`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import httpx

from pssync.connectors.http import VendorHttp, _Retryable, json_object
from pssync.connectors.http_policy import CallPolicy
from pssync.connectors.kantata_plan import (
    PlannedStory,
    WorkspacePlan,
    field_differences,
    marker_of,
    story_marker,
    workspace_plan,
)
from pssync.errors import TransientDownstreamError, VendorNotFound, VendorRejected
from pssync.model.commands import ConnectorCommand
from pssync.ports import RecordedCommand

API = "/api/v1"
SERVICE_NAME = "pssync"  # our integration's name in Kantata's external references
SERVICE_MODEL = "project"
PER_PAGE = 200  # Kantata's largest page

# A write may wait out a Retry-After of Kantata's per-endpoint rate limits; a step's Lambda has minutes.
KANTATA_WRITES = CallPolicy(
    timeout_seconds=10.0, deadline_seconds=45.0, max_attempts=4, backoff_base_seconds=0.5
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


class KantataConnector:
    """Writes PSA project commands to one Kantata OX account; safe to call twice with the same command."""

    vendor = "kantata"

    def __init__(self, http: KantataHttp) -> None:
        self._http = http

    # --- the connector interface -------------------------------------------------------------------

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        plan = workspace_plan(command)
        workspace_id = self.find_workspace(plan)
        if workspace_id is None:
            workspace_id = self._create_workspace(plan)
        else:
            self._put(f"{API}/workspaces/{workspace_id}.json", {"workspace": plan.fields})
        self._sync_stories(workspace_id, plan)
        return RecordedCommand(command=command, first_time=True)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        """Read back the workspace and stories the command wrote; the fields that differ from ours."""
        plan = workspace_plan(command)
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

    def _create_workspace(self, plan: WorkspacePlan) -> str:
        def look() -> dict[str, Any] | None:
            found = self.find_workspace(plan, attach=False)
            return None if found is None else {"id": found}

        workspace = self._create(
            f"{API}/workspaces.json", {"workspace": {**plan.fields, **plan.create_only}}, "workspaces", look
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
        self._post(
            f"{API}/external_references/create_or_update.json",
            {
                "external_reference": {
                    "subject_type": "Workspace",
                    "subject_id": int(workspace_id),
                    "service_name": SERVICE_NAME,
                    "service_model": SERVICE_MODEL,
                    "service_model_ref": plan.reference,
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
