"""Jira Cloud admin webhooks with a secret: `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.

Nothing in the signature is time-bound, so the body `timestamp` (epoch ms) must be within
`tolerance_seconds` of now; a delivery Jira marks as a retry (`X-Atlassian-Webhook-Retry`) may be up to
`RETRY_HORIZON_SECONDS` old, because the body keeps the event's time on every retry. The dedupe id comes
from signed content (issue id, changelog id, body timestamp), never from the unsigned
`X-Atlassian-Webhook-Identifier` header, so re-sending a captured body under a new identifier is a
duplicate, not a new event. Tenancy: every `self` URL in the payload must be on a site host listed in
`tenants` (e.g. `acme.atlassian.net`).

Milestone mapping (explicit, documented, no lookups):
- an issue is a milestone when its issue type is `Milestone` or it carries the label `pssync-milestone`;
- milestone id = the issue key (e.g. `ACME-42`), project id = the Jira project key (e.g. `ACME`): the
  SOW's billing milestones and the PSA project use these ids;
- source_version is `issue.fields.updated` (else the body timestamp) in UTC, ISO 8601 with ms;
- a `jira:issue_updated` whose changelog moves `status` to a *done* status (default `Done`) is
  MilestoneCompleted with acceptance `pending`; to an *accepted* status (default `Accepted`) it is
  MilestoneCompleted with acceptance `explicit`, accepted the same day. Both dates are the UTC date of
  the body timestamp. Anything else is acknowledged without an event.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pssync.errors import (
    MalformedDelivery,
    SignatureInvalid,
    StaleDelivery,
    UnknownTenant,
    UnprocessableDelivery,
)
from pssync.model.events import MilestoneCompleted, MilestoneCompletedData, canonical_event_id
from pssync.model.sources import SourceConfig
from pssync.ports import IngestResult, NormalisedEvent, SigningSecrets
from pssync.sources.base import (
    HttpReply,
    NormaliseContext,
    fingerprint_of,
    json_acknowledgement,
    parse_json_body,
)
from pssync.sources.request import RawRequest
from pssync.sources.verification import VerifiedDelivery, epoch_instant, matches_any

MILESTONE_ISSUE_TYPE = "Milestone"
MILESTONE_LABEL = "pssync-milestone"
DELIVERY_ID_HEADER = "X-Atlassian-Webhook-Identifier"
RETRY_HEADER = "X-Atlassian-Webhook-Retry"
# Jira retries failed deliveries for a while with the same body; older "retries" are refused as stale.
RETRY_HORIZON_SECONDS = 3600


def jira_signature(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()


class JiraScheme:
    media_type = "application/json"

    def __init__(
        self,
        done_statuses: frozenset[str] = frozenset({"Done"}),
        accepted_statuses: frozenset[str] = frozenset({"Accepted"}),
    ) -> None:
        self._done = done_statuses
        self._accepted = accepted_statuses

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery:
        if secrets is None:
            raise SignatureInvalid("no webhook secret is configured for this source")
        header = request.single_header("X-Hub-Signature")
        algorithm, _, offered = header.partition("=")
        if algorithm != "sha256" or not offered:
            raise SignatureInvalid("X-Hub-Signature must be sha256=<hex>")
        expected = [jira_signature(s, request.body) for s in secrets.all()]
        if not matches_any(offered.lower().encode(), expected):
            raise SignatureInvalid("X-Hub-Signature matches no configured secret")
        identifiers = request.headers.get(DELIVERY_ID_HEADER.lower(), [])
        if len(identifiers) != 1 or not identifiers[0].strip():
            raise MalformedDelivery(f"header {DELIVERY_ID_HEADER} must be present exactly once")
        document = _parse(request.body)
        sent_at = _timestamp(document)
        skew = (now - sent_at).total_seconds()
        is_retry = bool(request.headers.get(RETRY_HEADER.lower()))
        limit = (
            max(source.tolerance_seconds, RETRY_HORIZON_SECONDS)
            if is_retry and skew > 0
            else (source.tolerance_seconds)
        )
        if abs(skew) > limit:
            direction = "old" if skew > 0 else "in the future"
            raise StaleDelivery(f"body timestamp is {int(abs(skew))} s {direction} (limit {limit} s)")
        return VerifiedDelivery(delivery_id=_signed_delivery_id(document, request.body), sent_at=sent_at)

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]:
        document = _parse(context.body)
        _check_site(document, context.source)
        if document.get("webhookEvent") != "jira:issue_updated":
            return []
        status = _status_transition(document)
        if status not in self._done and status not in self._accepted:
            return []
        issue = document.get("issue")
        if not isinstance(issue, dict) or not _is_milestone(issue):
            return []
        fields = issue.get("fields") or {}
        project = fields.get("project") or {}
        issue_key, project_key = issue.get("key"), project.get("key")
        if (
            not isinstance(issue_key, str)
            or not issue_key
            or not isinstance(project_key, str)
            or not project_key
        ):
            raise UnprocessableDelivery("a milestone issue needs issue.key and issue.fields.project.key")
        occurred_at = _timestamp(document)
        on = occurred_at.date()
        accepted = status in self._accepted
        source = context.source
        dedupe_id = context.delivery.delivery_id
        event_id = canonical_event_id(source.name, dedupe_id)
        version = _updated(fields.get("updated")) or occurred_at
        event = MilestoneCompleted(
            event_id=event_id,
            source=source.name,
            source_system=source.system,
            source_event_id=dedupe_id,
            source_version=version.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            correlation_id=event_id,
            occurred_at=occurred_at,
            received_at=context.received_at,
            data=MilestoneCompletedData(
                milestone_id=issue_key,
                project_id=project_key,
                completed_on=on,
                accepted_on=on if accepted else None,
                acceptance="explicit" if accepted else "pending",
            ),
        )
        return [NormalisedEvent(event=event, fingerprint=fingerprint_of(document))]

    def acknowledge(self, result: IngestResult) -> HttpReply:
        return json_acknowledgement(result)


def _signed_delivery_id(document: dict[str, Any], body: bytes) -> str:
    """The same business change has the same id on every retry: issue id + changelog id + event time."""
    issue, changelog = document.get("issue"), document.get("changelog")
    issue_id = issue.get("id") if isinstance(issue, dict) else None
    changelog_id = changelog.get("id") if isinstance(changelog, dict) else None
    if issue_id and changelog_id:
        return f"{issue_id}:{changelog_id}:{document.get('timestamp')}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _parse(body: bytes) -> dict[str, Any]:
    document = parse_json_body(body)
    if not isinstance(document, dict):
        raise MalformedDelivery("body must be a JSON object")
    return document


def _timestamp(document: dict[str, Any]) -> datetime:
    value = document.get("timestamp")
    return epoch_instant(value, milliseconds=True, what="body timestamp")


def _updated(value: Any) -> datetime | None:
    """`issue.fields.updated`, e.g. 2026-11-20T11:14:58.123+0100, as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise MalformedDelivery(f"issue.fields.updated {value!r} is not a Jira timestamp") from None


def _self_urls(node: Any, depth: int = 0) -> Iterator[str]:
    if depth > 8:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "self" and isinstance(value, str):
                yield value
            else:
                yield from _self_urls(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _self_urls(item, depth + 1)


def _check_site(document: dict[str, Any], source: SourceConfig) -> None:
    hosts = {(urlsplit(url).hostname or "") for url in _self_urls(document)}
    if not hosts:
        raise MalformedDelivery("payload carries no self URL naming the Jira site")
    foreign = sorted(hosts - set(source.tenants))
    if foreign:
        raise UnknownTenant(f"Jira site(s) {', '.join(foreign)} are not configured for this source")


def _status_transition(document: dict[str, Any]) -> str | None:
    changelog = document.get("changelog") or {}
    for item in changelog.get("items") or []:
        if isinstance(item, dict) and (item.get("field") == "status" or item.get("fieldId") == "status"):
            to = item.get("toString")
            return to if isinstance(to, str) else None
    return None


def _is_milestone(issue: dict[str, Any]) -> bool:
    fields = issue.get("fields") or {}
    issue_type = (fields.get("issuetype") or {}).get("name")
    labels = fields.get("labels") or []
    return issue_type == MILESTONE_ISSUE_TYPE or MILESTONE_LABEL in labels
