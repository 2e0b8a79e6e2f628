"""Kantata OX subscribed events about time entries -> TimeApproved (approved, or withdrawn).

Payload fields arrive as objects or as JSON text; an unapproved entry is not a business fact yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from pssync.errors import MalformedDelivery, UnknownTenant, UnprocessableDelivery
from pssync.model.events import TimeApproved, TimeApprovedData, canonical_event_id
from pssync.model.sources import SourceConfig
from pssync.money import Money, from_minor
from pssync.ports import NormalisedEvent
from pssync.sources.base import fingerprint_of, parse_json_body

TIME_ENTRY_CREATED = "time_entry:created"
TIME_ENTRY_UPDATED = "time_entry:updated"
TIME_ENTRY_DELETED = "time_entry:deleted"
TIME_ENTRY_EVENT_TYPES = (TIME_ENTRY_CREATED, TIME_ENTRY_UPDATED, TIME_ENTRY_DELETED)
HOURS_QUANTUM = Decimal("0.000001")


def _document(value: Any, field: str) -> dict[str, Any]:
    """Payload fields arrive as objects or as JSON text (both seen): accept either, or nothing."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = parse_json_body(value)
        except MalformedDelivery as error:
            raise MalformedDelivery(f"{field} is neither an object nor JSON text: {error.message}") from None
    if not isinstance(value, dict):
        raise MalformedDelivery(f"{field} must be an object")
    return value


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise MalformedDelivery(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedDelivery(f"{field} {value!r} is not ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def created_at_of(event: Mapping[str, Any]) -> datetime:
    return _instant(event.get("created_at"), "created_at")


def _approved_changed_to(changes: Mapping[str, Any]) -> bool | None:
    """payload_changes {"approved": [old, new]} (or {"approved": new}) -> new, when present."""
    change = changes.get("approved")
    if isinstance(change, list) and len(change) == 2:
        return bool(change[1])
    if isinstance(change, bool):
        return change
    return None


class KantataNormaliser:
    """Approved time entry -> TimeApproved; deleted or approval withdrawn -> TimeApproved(approved=False)."""

    def __init__(self, currency: str) -> None:
        self._currency = currency

    def normalise(
        self, source: SourceConfig, event: Mapping[str, Any], received_at: datetime
    ) -> list[NormalisedEvent]:
        account_id = str(event.get("account_id", ""))
        if account_id not in source.tenants:
            raise UnknownTenant(f"Kantata account {account_id!r} is not a tenant of source {source.name}")
        event_type = event.get("event_type")
        if event_type not in TIME_ENTRY_EVENT_TYPES:
            return []
        current = _document(event.get("current_payload"), "current_payload")
        previous = _document(event.get("previous_payload"), "previous_payload")
        changes = _document(event.get("payload_changes"), "payload_changes")
        if event_type == TIME_ENTRY_DELETED:
            entry, approved = (previous or current or _document(event.get("subject"), "subject")), False
        elif current.get("approved") is True:
            entry, approved = current, True
        elif previous.get("approved") is True or _approved_changed_to(changes) is False:
            entry, approved = {**previous, **current}, False  # the approval was withdrawn
        else:
            return []  # an unapproved entry was created or edited: not a business fact yet
        if not entry:
            raise MalformedDelivery(f"{event_type} {event.get('id')} carries no time entry payload")
        source_event_id = str(event.get("id", ""))
        if not source_event_id:
            raise MalformedDelivery("subscribed event has no id")
        changed_at = _instant(
            event.get("subject_changed_at") or event.get("created_at"), "subject_changed_at"
        )
        try:
            data = self._data(event, entry, approved)
        except (ValidationError, InvalidOperation, KeyError, TypeError, ValueError) as error:
            raise UnprocessableDelivery(f"time entry {event.get('subject_id')}: {error}") from None
        event_id = canonical_event_id(source.name, source_event_id)
        canonical = TimeApproved(
            event_id=event_id,
            source=source.name,
            source_system=source.system,
            source_event_id=source_event_id,
            source_version=str(event.get("subject_changed_at") or "") or None,
            correlation_id=event_id,
            occurred_at=changed_at,
            received_at=received_at,
            data=data,
        )
        # The included subject is the entry as it is now, not what this event said: not fingerprinted.
        fingerprint = fingerprint_of({k: v for k, v in event.items() if k != "subject"})
        return [NormalisedEvent(event=canonical, fingerprint=fingerprint)]

    def _data(self, event: Mapping[str, Any], entry: Mapping[str, Any], approved: bool) -> TimeApprovedData:
        minutes = Decimal(str(entry["time_in_minutes"]))
        hours = (minutes / Decimal(60)).quantize(HOURS_QUANTUM, rounding=ROUND_HALF_EVEN).normalize()
        rate_cents = entry.get("rate_in_cents")
        rate = (
            None
            if rate_cents is None
            else Money(amount=from_minor(int(rate_cents), self._currency), currency=self._currency)
        )
        story_id = entry.get("story_id")
        return TimeApprovedData(
            time_entry_id=str(event.get("subject_id") or entry["id"]),
            project_id=str(entry["workspace_id"]),
            person_id=str(entry["user_id"]),
            work_date=entry["date_performed"],
            hours=hours,
            billable=bool(entry.get("billable", False)),
            approved=approved,
            rate=rate,
            wbs_code=None if story_id is None else str(story_id),
            notes=entry.get("notes") or None,
        )
