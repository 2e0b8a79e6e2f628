"""Jira Cloud: X-Hub-Signature vector, freshness, site tenancy, milestone transitions, dedupe."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from pssync.errors import (
    DeliveryInProgress,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    StaleDelivery,
    UnknownTenant,
)
from pssync.model.events import MilestoneCompleted, canonical_event_id
from pssync.sources.jira import jira_signature
from pssync.sources.request import RawRequest
from tests.unit.ingest.sources_kit import (
    JIRA_PREVIOUS,
    NOW_MS,
    Harness,
    assert_refused_without_writes,
    jira_request,
    sample,
    with_json,
)

DONE = sample("jira/milestone-done.json")
IDENTIFIER = "e1b3c6f0-5d8a-4a49-9c1e-2f0b7d3a8c11"


def test_signature_vector() -> None:
    # hmac.new(b"jira-vector-secret", body, hashlib.sha256).hexdigest(), computed once and pinned.
    body = b'{"timestamp":1795169700000,"webhookEvent":"jira:issue_updated"}'
    assert jira_signature("jira-vector-secret", body) == (
        b"178d4d13e7826d06f31be7511a56d647cd8c5f1312f5258d4bad3360d542455b"
    )


def test_done_transition_on_a_milestone_issue_is_milestone_completed_pending_acceptance() -> None:
    harness = Harness()
    result = harness.send("jira", jira_request(DONE))
    [event] = harness.publisher.published
    assert isinstance(event, MilestoneCompleted)
    document = json.loads(sample("jira/milestone-done.json"))
    signed_id = f"{document['issue']['id']}:{document['changelog']['id']}:{document['timestamp']}"
    assert event.event_id == event.correlation_id == canonical_event_id("jira", signed_id)
    assert event.source_event_id == signed_id == result.delivery_id
    assert event.source_version == "2026-11-20T10:14:58.123Z"  # issue.fields.updated, in UTC
    assert event.data.milestone_id == "CONTOSO-12" and event.data.project_id == "CONTOSO"
    assert event.data.completed_on == date(2026, 11, 20)
    assert event.data.acceptance == "pending" and event.data.accepted_on is None


def test_accepted_transition_is_explicit_acceptance() -> None:
    document = json.loads(DONE)
    document["changelog"]["items"][1]["toString"] = "Accepted"
    harness = Harness()
    harness.send("jira", jira_request(json.dumps(document).encode()))
    [event] = harness.publisher.published
    assert isinstance(event, MilestoneCompleted)
    assert event.data.acceptance == "explicit" and event.data.accepted_on == date(2026, 11, 20)


def test_previous_secret_verifies() -> None:
    assert len(Harness().send("jira", jira_request(DONE, secret=JIRA_PREVIOUS)).events) == 1


@pytest.mark.parametrize(
    "change",
    [
        "not a milestone",
        "another status",
        "no status change",
        "another webhook event",
    ],
)
def test_other_changes_are_acknowledged_without_an_event(change: str) -> None:
    document = json.loads(DONE)
    if change == "not a milestone":
        document["issue"]["fields"]["labels"] = ["sow-3"]
        document["issue"]["fields"]["issuetype"]["name"] = "Task"
    elif change == "another status":
        document["changelog"]["items"][1]["toString"] = "In Review"
    elif change == "no status change":
        document["changelog"]["items"] = document["changelog"]["items"][:1]
    else:
        document["webhookEvent"] = "comment_created"
    harness = Harness()
    assert harness.send("jira", jira_request(json.dumps(document).encode())).events == []
    assert harness.nothing_written()


def test_the_milestone_label_alone_marks_a_milestone() -> None:
    document = json.loads(DONE)
    document["issue"]["fields"]["issuetype"]["name"] = "Task"
    harness = Harness()
    assert len(harness.send("jira", jira_request(json.dumps(document).encode())).events) == 1


def test_retries_and_concurrent_copies_publish_once() -> None:
    harness = Harness()
    harness.send("jira", jira_request(DONE))
    retry = jira_request(DONE, **{"X-Atlassian-Webhook-Retry": "1"})
    assert harness.send("jira", retry).all_duplicates

    def attempt(_: int) -> bool:
        try:
            return harness.send("jira", jira_request(DONE)).all_duplicates
        except DeliveryInProgress:
            return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(attempt, range(12)))
    assert len(harness.publisher.published) == 1


def _swap_body(raw: RawRequest, body: bytes) -> RawRequest:
    return RawRequest(method=raw.method, url=raw.url, body=body, headers=raw.headers)


CASES = {
    "wrong secret": (lambda: jira_request(DONE, secret="guess"), SignatureInvalid),
    "one byte changed": (
        lambda: _swap_body(jira_request(DONE), DONE.replace(b"CONTOSO-12", b"CONTOSO-13")),
        SignatureInvalid,
    ),
    "sha1 signature": (lambda: jira_request(DONE, **{"X-Hub-Signature": "sha1=abcdef"}), SignatureInvalid),
    "signature missing": (lambda: jira_request(DONE, **{"X-Hub-Signature": []}), SignatureInvalid),
    "signature duplicated": (
        lambda: jira_request(
            DONE, **{"X-Hub-Signature": [jira_request(DONE).single_header("x-hub-signature")] * 2}
        ),
        SignatureInvalid,
    ),
    "identifier missing": (
        lambda: jira_request(DONE, **{"X-Atlassian-Webhook-Identifier": []}),
        MalformedDelivery,
    ),
    "identifier duplicated": (
        lambda: jira_request(DONE, **{"X-Atlassian-Webhook-Identifier": ["a", "b"]}),
        MalformedDelivery,
    ),
    "stale body timestamp": (
        lambda: jira_request(with_json(DONE, timestamp=NOW_MS - 301_000)),
        StaleDelivery,
    ),
    "future body timestamp": (
        lambda: jira_request(with_json(DONE, timestamp=NOW_MS + 301_000)),
        StaleDelivery,
    ),
    "timestamp missing": (lambda: jira_request(with_json(DONE, timestamp=None)), MalformedDelivery),
    "unknown site": (
        lambda: jira_request(DONE.replace(b"acme-consulting.atlassian.net", b"evil.atlassian.net")),
        UnknownTenant,
    ),
    "one foreign self URL": (
        lambda: jira_request(DONE.replace(b"acme-consulting.atlassian.net", b"evil.atlassian.net", 1)),
        UnknownTenant,
    ),
    "no self URL": (
        lambda: jira_request(
            json.dumps({"timestamp": 1795169700000, "webhookEvent": "jira:issue_updated"}).encode()
        ),
        MalformedDelivery,
    ),
    "not JSON": (lambda: jira_request(b"{nope"), MalformedDelivery),
    "an array": (lambda: jira_request(b"[]"), MalformedDelivery),
    "oversize": (lambda: jira_request(DONE + b" " * 70_000), PayloadTooLarge),
}


@pytest.mark.parametrize("case", CASES)
def test_rejections_have_their_status_and_write_nothing(case: str) -> None:
    assert_refused_without_writes("jira", *CASES[case])


def test_the_same_body_under_a_new_identifier_is_a_duplicate_not_a_new_event() -> None:
    """The identifier header is not signed: dedupe rests on signed content."""
    harness = Harness()
    body = sample("jira/milestone-done.json")
    first = harness.send("jira", jira_request(body, identifier="id-1"))
    replayed = harness.send("jira", jira_request(body, identifier="id-2-forged"))
    assert not first.all_duplicates and replayed.all_duplicates
    assert len(harness.publisher.published) == 1


def test_a_jira_retry_may_be_older_than_the_normal_window_but_not_older_than_the_horizon() -> None:
    harness = Harness()
    body = with_json(sample("jira/milestone-done.json"), timestamp=NOW_MS - 40 * 60 * 1000)
    with pytest.raises(StaleDelivery):
        harness.send("jira", jira_request(body))
    assert not harness.send("jira", jira_request(body, X_Atlassian_Webhook_Retry="1")).all_duplicates
    too_old = with_json(sample("jira/milestone-done.json"), timestamp=NOW_MS - 2 * 3600 * 1000)
    with pytest.raises(StaleDelivery):
        harness.send("jira", jira_request(too_old, X_Atlassian_Webhook_Retry="3"))
