"""A Kantata OX STAND-IN: test equipment that behaves like the Kantata OX API v1 for what pssync uses.

Not Kantata and not the product: an in-memory imitation of the documented behaviour of the endpoints the
PSA connector calls, so the connector can be exercised end to end on 127.0.0.1. Every answer carries the
header `X-Stand-In: kantata`.

What it imitates (Kantata OX API v1 as documented at developer.kantata.com):
- `Authorization: Bearer <token>`, else 401 with `{"errors": [{"type": "authentication", ...}]}`;
- answers shaped `{"count", "results": [{"key", "id"}], "<key>": {"<id>": {...}}, "meta"}`, ids as strings;
- `GET/POST /api/v1/workspaces.json`, `GET/PUT /api/v1/workspaces/{id}.json`, with `search` (keywords, or
  `description:'...'` / `title:'...'`), `only`, `include_archived`, `page`, `per_page`;
- `GET/POST /api/v1/stories.json` (`workspace_id` filter), `PUT/DELETE /api/v1/stories/{id}.json`;
- `GET /api/v1/external_references.json` (`subject_type` required; `service_name`, `service_model`,
  `service_model_ref`, `subject_id` filters) and `POST /api/v1/external_references/create_or_update.json`
  (subjects: Workspace, Story, RateCard);
- the account's roles (`GET /api/v1/roles.json`; seeded, see `DEFAULT_ROLES`) and rate cards:
  `GET/POST /rate_card_sets.json` (title unique on the account), `GET/POST /rate_card_set_versions.json`
  (`rate_card_set_id` filter; `clone_id` copies a version's rows; one version per effective date),
  `PUT /rate_card_set_versions/{id}/publish.json` (once), `GET/POST /rate_cards.json` (`rate_card_set_id`,
  `currencies` filters; one card per currency in a set), `GET /rate_cards/{id}.json`, and the table rows
  `GET /rate_card_set_versions/{id}/rate_card_table_rows.json`, `PUT|DELETE .../rate_card_table_rows/
  {role_id}.json` (rates in minor units; the set needs a card in the row's currency). A version is
  editable while unpublished or while its effective date is in the future, as Kantata documents; the
  workspace's `rate_card_id` must name a card in the workspace's currency;
- validation failures as 422 `{"errors": [{"type": "validation", "message": ...}]}`, unknown ids as 404;
- 429 with `Retry-After` when more than `requests_per_second` requests arrive within a second;
- a fault plan (`KantataFaults`): answer the next matching request with a status (503, 429 + Retry-After,
  ...), optionally after applying it (a write whose answer is lost).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pssync.money import MINOR_UNITS

API = "/api/v1"
STAND_IN_HEADER = ("X-Stand-In", "kantata")
STORY_TYPES = ("task", "milestone", "deliverable")
MAX_PER_PAGE = 200
# The stand-in account's roles (name -> id), as a firm's Kantata administrator would have set them up.
DEFAULT_ROLES = {"consultant": "501", "architect": "502", "engineer": "503", "project manager": "504"}

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and a path ending in `path_suffix` with
    `status`; `apply_first` does the request's work before answering (the answer is lost)."""

    method: str
    path_suffix: str
    status: int = 503
    retry_after: int | None = None
    apply_first: bool = False
    times: int = 1


class KantataFaults:
    """A thread-safe plan of faults: the listed ones first, in order of arrival; then, when `rate` > 0, a
    random share of all requests fails with one of `statuses` (seeded: a run can be repeated), and a
    failing write is applied first (its answer lost) with probability `lost_answer_share`."""

    def __init__(
        self,
        faults: Iterable[Fault] = (),
        *,
        rate: float = 0.0,
        statuses: tuple[int, ...] = (429, 500, 502, 503),
        lost_answer_share: float = 0.5,
        seed: int = 0,
    ) -> None:
        self._faults = list(faults)
        self._rate = rate
        self._statuses = statuses
        self._lost_answer_share = lost_answer_share
        self._random = random.Random(seed)  # fault injection, not security
        self._lock = threading.Lock()
        self.injected = 0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and path.endswith(fault.path_suffix) and fault.times > 0:
                    fault.times -= 1
                    self.injected += 1
                    return fault
            if self._rate <= 0 or self._random.random() >= self._rate:
                return None
            self.injected += 1
            status = self._random.choice(self._statuses)
            if status == 429:  # a throttled request was not applied, and says when to come back
                return Fault(method, path, status=429, retry_after=1)
            lost = method != "GET" and self._random.random() < self._lost_answer_share
            return Fault(method, path, status=status, apply_first=lost)


class _Problem(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class KantataOX:
    """The stand-in's state and request handling, without sockets (the server and respx fakes share it)."""

    def __init__(
        self,
        token: str,
        *,
        faults: KantataFaults | None = None,
        requests_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        roles: Mapping[str, str] = DEFAULT_ROLES,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.token = token  # tests may change it: a token revoked mid-batch
        self.today = today  # decides which published rate card versions are in effect (immutable)
        self.faults = faults or KantataFaults()
        self.requests_per_second = requests_per_second
        self._clock = clock
        self._recent: deque[float] = deque()
        self._lock = threading.RLock()
        self._next_id = 1000
        self.workspaces: dict[str, dict[str, Any]] = {}
        self.stories: dict[str, dict[str, Any]] = {}
        self.external_references: dict[str, dict[str, Any]] = {}
        self.roles = {role_id: {"id": role_id, "name": name} for name, role_id in roles.items()}
        self.rate_card_sets: dict[str, dict[str, Any]] = {}
        self.rate_card_set_versions: dict[str, dict[str, Any]] = {}
        self.rate_cards: dict[str, dict[str, Any]] = {}
        # (set version id, role id) -> the row's rates by currency, in minor units
        self.rate_card_rows: dict[tuple[str, str], dict[str, int]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests to count

    # --- the one entry point ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """One HTTP request -> (status, headers, body)."""
        split = urlsplit(target)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append((method, path))
            if headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "authentication", "Invalid or expired OAuth token")
            if self._over_rate():
                return _error(429, "rate_limit", "Too many requests", retry_after=1)
            fault = self.faults.take(method, path)
            if fault is not None and not fault.apply_first:
                return _error(fault.status, "stand_in_fault", "injected fault", retry_after=fault.retry_after)
            try:
                status, document = self._route(method, path, query, _json_body(body))
            except _Problem as problem:
                return _error(problem.status, problem.kind, problem.message)
            if fault is not None:  # applied, and the answer is lost on its way back
                return _error(fault.status, "stand_in_fault", "injected fault after applying")
            if status == 204:
                return 204, dict([STAND_IN_HEADER]), b""
            return status, _json_headers(), json.dumps(document).encode()

    def role_ids(self) -> dict[str, str]:
        """The account's role ids by name: what a deployment's role mapping would say for this account."""
        return {role["name"]: role_id for role_id, role in self.roles.items()}

    def holdings(self) -> dict[str, Any]:
        with self._lock:
            copy: dict[str, Any] = json.loads(
                json.dumps(
                    {
                        "workspaces": list(self.workspaces.values()),
                        "stories": list(self.stories.values()),
                        "external_references": list(self.external_references.values()),
                        "roles": list(self.roles.values()),
                        "rate_card_sets": list(self.rate_card_sets.values()),
                        "rate_card_set_versions": list(self.rate_card_set_versions.values()),
                        "rate_cards": list(self.rate_cards.values()),
                        "rate_card_table_rows": [self._row(*key) for key in sorted(self.rate_card_rows)],
                    }
                )
            )
            return copy

    # --- routing ---------------------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, query: Mapping[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if not path.startswith(API + "/"):
            raise _Problem(404, "not_found", f"no route {path}")
        route = path[len(API) :]
        single = re.fullmatch(r"/(workspaces|stories)/(\d+)\.json", route)
        if route == "/workspaces.json" and method == "GET":
            return 200, self._list("workspaces", self._find_workspaces(query), query)
        if route == "/workspaces.json" and method == "POST":
            return 200, self._one("workspaces", self._create_workspace(_object(body, "workspace")))
        if route == "/stories.json" and method == "GET":
            stories = [
                s
                for s in self.stories.values()
                if s["workspace_id"] == query.get("workspace_id", s["workspace_id"])
            ]
            return 200, self._list("stories", stories, query)
        if route == "/stories.json" and method == "POST":
            return 200, self._one("stories", self._create_story(_object(body, "story")))
        if single is not None:
            kind, entity_id = single.groups()
            table = self.workspaces if kind == "workspaces" else self.stories
            if entity_id not in table:
                raise _Problem(404, "not_found", f"{kind[:-1]} {entity_id} not found")
            if method == "GET":
                return 200, self._one(kind, table[entity_id])
            if method == "PUT":
                fields = _object(body, "workspace" if kind == "workspaces" else "story")
                updated = (
                    self._update_workspace(entity_id, fields)
                    if kind == "workspaces"
                    else (self._update_story(entity_id, fields))
                )
                return 200, self._one(kind, updated)
            if method == "DELETE" and kind == "stories":
                self._delete_story(entity_id)
                return 204, {}
        rate_cards = self._route_rate_cards(method, route, query, body)
        if rate_cards is not None:
            return rate_cards
        if route == "/external_references.json" and method == "GET":
            return 200, self._list("external_references", self._find_references(query), query)
        if route == "/external_references/create_or_update.json" and method == "POST":
            reference = self._upsert_reference(_object(body, "external_reference"))
            return 200, self._one("external_references", reference)
        raise _Problem(404, "not_found", f"no route {method} {path}")

    # --- roles and rate cards ---------------------------------------------------------------------------

    def _route_rate_cards(
        self, method: str, route: str, query: Mapping[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        """The roles and rate card endpoints; None when `route` is none of them."""
        if route == "/roles.json" and method == "GET":
            return 200, self._list("roles", list(self.roles.values()), query)
        if route == "/rate_card_sets.json" and method == "GET":
            return 200, self._list("rate_card_sets", list(self.rate_card_sets.values()), query)
        if route == "/rate_card_sets.json" and method == "POST":
            return 200, self._one(
                "rate_card_sets", self._create_rate_card_set(_object(body, "rate_card_set"))
            )
        if route == "/rate_card_set_versions.json" and method == "GET":
            versions = [
                v
                for v in self.rate_card_set_versions.values()
                if v["rate_card_set_id"] == query.get("rate_card_set_id", v["rate_card_set_id"])
            ]
            return 200, self._list("rate_card_set_versions", versions, query)
        if route == "/rate_card_set_versions.json" and method == "POST":
            fields = _object(body, "rate_card_set_version")
            version = self._create_set_version(fields, query.get("clone_id"))
            return 200, self._one("rate_card_set_versions", version)
        if route == "/rate_cards.json" and method == "GET":
            currencies = set(query["currencies"].split(",")) if query.get("currencies") else None
            cards = [
                c
                for c in self.rate_cards.values()
                if c["rate_card_set_id"] == query.get("rate_card_set_id", c["rate_card_set_id"])
                and (currencies is None or c["currency"] in currencies)
            ]
            return 200, self._list("rate_cards", cards, query)
        if route == "/rate_cards.json" and method == "POST":
            return 200, self._one("rate_cards", self._create_rate_card(_object(body, "rate_card")))
        card = re.fullmatch(r"/rate_cards/(\d+)\.json", route)
        if card is not None and method == "GET":
            if card.group(1) not in self.rate_cards:
                raise _Problem(404, "not_found", f"rate card {card.group(1)} not found")
            return 200, self._one("rate_cards", self.rate_cards[card.group(1)])
        nested = re.fullmatch(
            r"/rate_card_set_versions/(\d+)/(publish|rate_card_table_rows)(?:/(\d+))?\.json", route
        )
        if nested is None:
            return None
        version_id, what, role_id = nested.groups()
        if version_id not in self.rate_card_set_versions:
            raise _Problem(404, "not_found", f"rate card set version {version_id} not found")
        if what == "publish" and role_id is None and method == "PUT":
            return 200, self._one("rate_card_set_versions", self._publish(version_id))
        if what == "rate_card_table_rows" and role_id is None and method == "GET":
            rows = [self._row(v, r) for v, r in sorted(self.rate_card_rows) if v == version_id]
            return 200, self._list("rate_card_table_rows", rows, query, order=lambda row: int(row["role_id"]))
        if what == "rate_card_table_rows" and role_id is not None and method == "PUT":
            row = _object(body, "rate_card_table_row")
            return 200, self._one("rate_card_table_rows", self._put_row(version_id, role_id, row))
        if what == "rate_card_table_rows" and role_id is not None and method == "DELETE":
            if self.rate_card_rows.pop((version_id, role_id), None) is None:
                raise _Problem(404, "not_found", f"no row for role {role_id} in version {version_id}")
            return 204, {}
        raise _Problem(404, "not_found", f"no route {method} {route}")

    def _create_rate_card_set(self, fields: dict[str, Any]) -> dict[str, Any]:
        title = str(fields.get("title") or "").strip()
        if not title:
            raise _Problem(422, "validation", "Title can't be blank")
        if any(s["title"].casefold() == title.casefold() for s in self.rate_card_sets.values()):
            raise _Problem(422, "validation", "Title has already been taken")
        set_id = self._new_id()
        created = {"id": set_id, "title": title, "created_at": _now(), "updated_at": _now()}
        self.rate_card_sets[set_id] = created
        return created

    def _create_set_version(self, fields: dict[str, Any], clone_id: str | None) -> dict[str, Any]:
        set_id = str(fields.get("rate_card_set_id", ""))
        if set_id not in self.rate_card_sets:
            raise _Problem(422, "validation", "Rate card set must exist")
        try:
            effective = date.fromisoformat(str(fields.get("effective_date"))).isoformat()
        except ValueError:
            raise _Problem(422, "validation", "Effective date must be a date (YYYY-MM-DD)") from None
        siblings = [v for v in self.rate_card_set_versions.values() if v["rate_card_set_id"] == set_id]
        if any(v["effective_date"] == effective for v in siblings):
            raise _Problem(422, "validation", "Effective date has already been taken")
        if clone_id is not None and clone_id not in {v["id"] for v in siblings}:
            raise _Problem(422, "validation", "Clone must be a version of the same rate card set")
        version_id = self._new_id()
        version = {
            "id": version_id,
            "rate_card_set_id": set_id,
            "effective_date": effective,
            "active": False,
            "published_at": None,
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.rate_card_set_versions[version_id] = version
        for (source, role_id), rates in list(self.rate_card_rows.items()):
            if source == clone_id:  # a clone starts with the cloned version's rows
                self.rate_card_rows[(version_id, role_id)] = dict(rates)
        return version

    def _publish(self, version_id: str) -> dict[str, Any]:
        version = self.rate_card_set_versions[version_id]
        if version["active"]:
            raise _Problem(422, "validation", "Rate card set version has already been published")
        version.update(active=True, published_at=_now(), updated_at=_now())
        return version

    def _create_rate_card(self, fields: dict[str, Any]) -> dict[str, Any]:
        version_id = str(fields.get("rate_card_set_version_id", ""))
        if version_id not in self.rate_card_set_versions:
            raise _Problem(422, "validation", "Rate card set version must exist")
        currency = fields.get("currency")
        if currency not in MINOR_UNITS:
            raise _Problem(422, "validation", f"Currency {currency!r} is not supported")
        set_id = self.rate_card_set_versions[version_id]["rate_card_set_id"]
        if any(
            c["rate_card_set_id"] == set_id and c["currency"] == currency for c in self.rate_cards.values()
        ):
            raise _Problem(422, "validation", "Currency has already been taken in this rate card set")
        card_id = self._new_id()
        card = {
            "id": card_id,
            "rate_card_set_id": set_id,
            "currency": currency,
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.rate_cards[card_id] = card
        return card

    def _put_row(self, version_id: str, role_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        version = self.rate_card_set_versions[version_id]
        if version["active"] and date.fromisoformat(version["effective_date"]) <= self.today():
            raise _Problem(
                422,
                "validation",
                "A published rate card set version can only be modified while its effective date is "
                "in the future; create a new version",
            )
        if role_id not in self.roles:
            raise _Problem(422, "validation", f"Role {role_id} must exist on the account")
        rates = fields.get("rates")
        if not isinstance(rates, list) or not rates:
            raise _Problem(422, "validation", "Rates can't be blank")
        currencies = {
            c["currency"]
            for c in self.rate_cards.values()
            if c["rate_card_set_id"] == version["rate_card_set_id"]
        }
        held = dict(self.rate_card_rows.get((version_id, role_id), {}))
        for rate in rates:
            currency = rate.get("currency") if isinstance(rate, dict) else None
            amount = rate.get("rate") if isinstance(rate, dict) else None
            if currency not in currencies:
                raise _Problem(422, "validation", f"The rate card set has no rate card in {currency!r}")
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                raise _Problem(422, "validation", "Rate must be a whole number of subunits of at least 0")
            held[str(currency)] = amount
        self.rate_card_rows[(version_id, role_id)] = held
        return self._row(version_id, role_id)

    def _row(self, version_id: str, role_id: str) -> dict[str, Any]:
        version = self.rate_card_set_versions[version_id]
        return {
            "id": f"{version_id}:{role_id}",
            "rate_card_set_id": int(version["rate_card_set_id"]),
            "rate_card_set_version_id": int(version_id),
            "role_id": int(role_id),
            "rates": [
                {"currency": c, "rate": r}
                for c, r in sorted(self.rate_card_rows[(version_id, role_id)].items())
            ],
        }

    # --- workspaces ------------------------------------------------------------------------------------

    def _find_workspaces(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        found = list(self.workspaces.values())
        if query.get("include_archived") != "true":
            found = [w for w in found if not w["archived"]]
        if query.get("only"):
            wanted = set(query["only"].split(","))
            found = [w for w in found if w["id"] in wanted]
        search = query.get("search", "").strip()
        if search:
            field_search = re.fullmatch(r"(title|description):'(.*)'", search, flags=re.S)
            if field_search is not None:
                name, keyword = field_search.groups()
                found = [w for w in found if keyword.lower() in str(w[name] or "").lower()]
            else:
                found = [
                    w
                    for w in found
                    if search.lower() in f"{w['id']} {w['title']} {w['description'] or ''}".lower()
                ]
        return found

    def _create_workspace(self, fields: dict[str, Any]) -> dict[str, Any]:
        if not str(fields.get("title") or "").strip():
            raise _Problem(422, "validation", "Title can't be blank")
        if fields.get("creator_role") not in ("maven", "buyer"):
            raise _Problem(422, "validation", "Creator role must be 'maven' or 'buyer'")
        workspace_id = self._new_id()
        workspace = {
            "id": workspace_id,
            "title": "",
            "description": None,
            "budgeted": False,
            "price_in_cents": None,
            "currency": "USD",
            "currency_base_unit": 100,
            "start_date": None,
            "due_date": None,
            "rate_card_id": None,
            "archived": False,
            "created_at": _now(),
            "updated_at": _now(),
        }
        self._apply_workspace(workspace, fields)
        self.workspaces[workspace_id] = workspace
        return workspace

    def _update_workspace(self, workspace_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        workspace = dict(self.workspaces[workspace_id])
        self._apply_workspace(workspace, fields)  # on a copy: a refused update changes nothing
        workspace["updated_at"] = _now()
        self.workspaces[workspace_id] = workspace
        return workspace

    def _apply_workspace(self, workspace: dict[str, Any], fields: Mapping[str, Any]) -> None:
        for key in ("title", "description", "budgeted", "start_date", "due_date", "archived"):
            if key in fields:
                workspace[key] = fields[key]
        if "currency" in fields:
            currency = fields["currency"]
            if currency not in MINOR_UNITS:
                raise _Problem(422, "validation", f"Currency {currency!r} is not supported")
            workspace["currency"] = currency
            workspace["currency_base_unit"] = 10 ** MINOR_UNITS[currency]
        if "price_in_cents" in fields:
            price = fields["price_in_cents"]
            if not isinstance(price, int) or isinstance(price, bool) or price < 0:
                raise _Problem(422, "validation", "Price in cents must be a whole number of at least 0")
            workspace["price_in_cents"] = price
        if "rate_card_id" in fields:
            card_id = None if fields["rate_card_id"] is None else str(fields["rate_card_id"])
            card = self.rate_cards.get(card_id) if card_id is not None else None
            if card_id is not None and card is None:
                raise _Problem(422, "validation", "Rate card must exist")
            workspace["rate_card_id"] = card_id
        if workspace["rate_card_id"] is not None:
            card_currency = self.rate_cards[workspace["rate_card_id"]]["currency"]
            if card_currency != workspace["currency"]:
                raise _Problem(422, "validation", "Rate card currency must match the project currency")
        if not str(workspace["title"]).strip():
            raise _Problem(422, "validation", "Title can't be blank")

    # --- stories ---------------------------------------------------------------------------------------

    def _create_story(self, fields: dict[str, Any]) -> dict[str, Any]:
        workspace_id = str(fields.get("workspace_id", ""))
        if workspace_id not in self.workspaces:
            raise _Problem(422, "validation", "Workspace must exist")
        story_id = self._new_id()
        story = {
            "id": story_id,
            "workspace_id": workspace_id,
            "title": "",
            "story_type": "task",
            "description": None,
            "parent_id": None,
            "time_estimate_in_minutes": None,
            "budget_estimate_in_cents": None,
            "state": "not started",
            "created_at": _now(),
            "updated_at": _now(),
        }
        self._apply_story(story, fields)
        self.stories[story_id] = story
        return story

    def _update_story(self, story_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        story = dict(self.stories[story_id])
        self._apply_story(story, fields)
        story["updated_at"] = _now()
        self.stories[story_id] = story
        return story

    def _apply_story(self, story: dict[str, Any], fields: Mapping[str, Any]) -> None:
        for key in ("title", "description", "time_estimate_in_minutes", "budget_estimate_in_cents"):
            if key in fields:
                story[key] = fields[key]
        if "story_type" in fields:
            if fields["story_type"] not in STORY_TYPES:
                raise _Problem(422, "validation", f"Story type must be one of {', '.join(STORY_TYPES)}")
            story["story_type"] = fields["story_type"]
        if "parent_id" in fields:
            parent = None if fields["parent_id"] is None else str(fields["parent_id"])
            if (
                parent is not None
                and self.stories.get(parent, {}).get("workspace_id") != story["workspace_id"]
            ):
                raise _Problem(422, "validation", "Parent must be a story in the same workspace")
            story["parent_id"] = parent
        if not str(story["title"]).strip():
            raise _Problem(422, "validation", "Title can't be blank")

    def _delete_story(self, story_id: str) -> None:
        # Kantata deletes a story's sub-tasks with it.
        for child in [s["id"] for s in self.stories.values() if s["parent_id"] == story_id]:
            self._delete_story(child)
        self.stories.pop(story_id, None)

    # --- external references ---------------------------------------------------------------------------

    def _find_references(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        if not query.get("subject_type"):
            raise _Problem(422, "validation", "subject_type is required")
        found = list(self.external_references.values())
        for key in ("subject_type", "subject_id", "service_name", "service_model", "service_model_ref"):
            if key in query:
                found = [r for r in found if str(r[key]) == query[key]]
        return found

    def _upsert_reference(self, fields: dict[str, Any]) -> dict[str, Any]:
        required = ("subject_type", "subject_id", "service_name", "service_model", "service_model_ref")
        missing = [key for key in required if fields.get(key) in (None, "")]
        if missing:
            raise _Problem(422, "validation", f"{', '.join(missing)} can't be blank")
        subject_id = str(fields["subject_id"])
        tables = {"Workspace": self.workspaces, "Story": self.stories, "RateCard": self.rate_cards}
        if subject_id not in tables.get(str(fields["subject_type"]), {}):
            raise _Problem(422, "validation", "Subject must exist")
        for reference in self.external_references.values():
            same = (reference["subject_type"], reference["subject_id"], reference["service_name"])
            if same == (fields["subject_type"], subject_id, fields["service_name"]) and (
                reference["service_model"] == fields["service_model"]
            ):
                reference.update(service_model_ref=str(fields["service_model_ref"]), updated_at=_now())
                reference["status"] = fields.get("status", reference["status"])
                return reference
        reference_id = self._new_id()
        reference = {
            "id": reference_id,
            "subject_type": fields["subject_type"],
            "subject_id": subject_id,
            "service_name": fields["service_name"],
            "service_model": fields["service_model"],
            "service_model_ref": str(fields["service_model_ref"]),
            "status": fields.get("status", "pending"),
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.external_references[reference_id] = reference
        return reference

    # --- answers ---------------------------------------------------------------------------------------

    def _list(
        self,
        key: str,
        entities: list[dict[str, Any]],
        query: Mapping[str, str],
        *,
        order: Callable[[dict[str, Any]], int] = lambda e: int(e["id"]),
    ) -> dict[str, Any]:
        try:
            page = max(1, int(query.get("page", "1")))
            per_page = min(MAX_PER_PAGE, max(1, int(query.get("per_page", "20"))))
        except ValueError:
            raise _Problem(422, "validation", "page and per_page must be numbers") from None
        ordered = sorted(entities, key=order)
        shown = ordered[(page - 1) * per_page : page * per_page]
        return {
            "count": len(ordered),
            "results": [{"key": key, "id": e["id"]} for e in shown],
            key: {e["id"]: e for e in shown},
            "meta": {
                "count": len(ordered),
                "page_count": max(1, -(-len(ordered) // per_page)),
                "page_number": page,
                "page_size": per_page,
            },
        }

    def _one(self, key: str, entity: dict[str, Any]) -> dict[str, Any]:
        return {"count": 1, "results": [{"key": key, "id": entity["id"]}], key: {entity["id"]: entity}}

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _over_rate(self) -> bool:
        if self.requests_per_second is None:
            return False
        now = self._clock()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.requests_per_second:
            return True
        self._recent.append(now)
        return False


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        document = json.loads(body)
    except ValueError:
        raise _Problem(400, "bad_request", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise _Problem(400, "bad_request", "the body is not a JSON object")
    return document


def _object(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise _Problem(422, "validation", f"the body needs a {key!r} object")
    return dict(value)


def _json_headers() -> dict[str, str]:
    return dict([STAND_IN_HEADER, ("Content-Type", "application/json; charset=utf-8")])


def _error(status: int, kind: str, message: str, *, retry_after: int | None = None) -> Answer:
    headers = _json_headers()
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return status, headers, json.dumps({"errors": [{"type": kind, "message": message}]}).encode()


class KantataStandIn:
    """The Kantata OX stand-in as an HTTP server on 127.0.0.1 (test equipment, not Kantata)."""

    def __init__(
        self,
        token: str,
        *,
        port: int = 0,
        faults: KantataFaults | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        self.ox = KantataOX(token, faults=faults, requests_per_second=requests_per_second)
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def workspaces(self) -> dict[str, dict[str, Any]]:
        return self.ox.workspaces

    @property
    def stories(self) -> dict[str, dict[str, Any]]:
        return self.ox.stories

    @property
    def external_references(self) -> dict[str, dict[str, Any]]:
        return self.ox.external_references

    @property
    def rate_cards(self) -> dict[str, dict[str, Any]]:
        return self.ox.rate_cards

    @property
    def faults(self) -> KantataFaults:
        return self.ox.faults

    def start(self) -> str:
        """Serve in a background thread; the base URL (connector paths start with /api/v1)."""
        ox = self.ox

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer_headers, answer = ox.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # test equipment: the tests read `requests` and `holdings()`, not a log

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kantata-stand-in", daemon=True
        )
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def holdings(self) -> dict[str, Any]:
        """What the stand-in holds (workspaces, stories, external references), as JSON-able data."""
        return self.ox.holdings()
