"""Alarms reach someone: the stack's SNS topic, its subscribers from context, every alarm pointing at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.constructs.monitoring import (
    ALARM_SUBSCRIBERS_CONTEXT_KEY,
    AlarmSubscriber,
    SubscriberKind,
    parse_alarm_subscribers,
)
from tests.infra.conftest import Synthesis, cfn_lint_output, synthesize
from tests.infra.test_infra_template import Resources, of_type, ref_target

pytestmark = pytest.mark.infra

SUBSCRIBERS = ["finance-ops@example.com", "https://hooks.example.com/pssync/alarms?team=ops"]


@pytest.fixture(scope="module")
def subscribed() -> Synthesis:
    return synthesize({ALARM_SUBSCRIBERS_CONTEXT_KEY: SUBSCRIBERS})


def _topic(resources: Resources) -> tuple[str, dict[str, Any]]:
    (topic,) = of_type(resources, "AWS::SNS::Topic").items()
    return topic


def test_the_stack_creates_one_encrypted_alarm_topic_refusing_plain_http(resources: Resources) -> None:
    topic_id, topic = _topic(resources)
    key_id = ref_target(topic["Properties"]["KmsMasterKeyId"])
    key = resources[key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    # CloudWatch may use the key (it encrypts what it publishes), and only for this account.
    key_grants = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Principal"].get("Service")]
    assert key_grants == [
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": "*",
        }
    ]

    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert [ref_target(t) for t in policy["Properties"]["Topics"]] == [topic_id]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    (publish,) = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "ArnLike" in publish["Condition"]


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(resources: Resources) -> None:
    topic_id, _ = _topic(resources)
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 3
    for logical_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert [ref_target(a) for a in properties.get("AlarmActions", [])] == [topic_id], logical_id
        assert [ref_target(a) for a in properties.get("OKActions", [])] == [topic_id], logical_id
        assert properties.get("ActionsEnabled", True) is True, logical_id


def test_without_subscribers_the_topic_has_none(resources: Resources) -> None:
    assert of_type(resources, "AWS::SNS::Subscription") == {}


def test_subscribers_come_from_context(subscribed: Synthesis) -> None:
    assert subscribed.error is None, subscribed.error  # cdk-nag clean with subscribers too
    assert subscribed.template is not None
    resources = subscribed.template["Resources"]
    topic_id, _ = _topic(resources)
    subscriptions = {
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"]): ref_target(s["Properties"]["TopicArn"])
        for s in of_type(resources, "AWS::SNS::Subscription").values()
    }
    assert subscriptions == {
        ("email", "finance-ops@example.com"): topic_id,
        ("https", "https://hooks.example.com/pssync/alarms?team=ops"): topic_id,
    }


def test_cfn_lint_accepts_the_subscribed_template(subscribed: Synthesis, tmp_path: Path) -> None:
    assert subscribed.template is not None
    assert cfn_lint_output(subscribed.template, tmp_path) is None


def test_subscribers_accept_json_text_and_default_to_none() -> None:
    assert parse_alarm_subscribers(None) == []
    assert parse_alarm_subscribers("[]") == []
    assert parse_alarm_subscribers('["ops@example.com", "https://example.com:8443/hook"]') == [
        AlarmSubscriber(SubscriberKind.EMAIL, "ops@example.com"),
        AlarmSubscriber(SubscriberKind.HTTPS, "https://example.com:8443/hook"),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ops@example.com", "is not JSON"),
        ({"email": "ops@example.com"}, "must be a JSON list"),
        (["ops@"], "'ops@' is not an e-mail address"),
        (["ops@example"], "is not an e-mail address"),
        (["ops @example.com"], "is not an e-mail address"),
        (["http://hooks.example.com/x"], "must use https://"),
        (["ftp://hooks.example.com/x"], "must use https://"),
        (["https://"], "is not a valid https:// URL"),
        (["https://hooks..example.com"], "is not a valid https:// URL"),
        (["https://user:secret@hooks.example.com"], "no credentials in the URL"),
        (["https://hooks.example.com:99999/"], "is not a valid https:// URL"),
        ([" ops@example.com"], "non-empty string"),
        ([""], "non-empty string"),
        ([42], "non-empty string"),
        (["ops@example.com", "ops@example.com"], "listed twice"),
    ],
)
def test_a_malformed_subscriber_is_refused_with_a_clear_message(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=rf"pssync:alarm_subscribers.*{message}"):
        parse_alarm_subscribers(raw)


def test_a_malformed_subscriber_fails_the_synth() -> None:
    from infra.app import build_app

    with pytest.raises(ValueError, match=r"pssync:alarm_subscribers: 'oncall-at-example\.com'"):
        build_app(bundle=False, context={ALARM_SUBSCRIBERS_CONTEXT_KEY: ["oncall-at-example.com"]})
