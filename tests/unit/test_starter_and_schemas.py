import json
from pathlib import Path

import pytest

from pssync import schemas
from pssync.errors import BusinessRuleViolation
from pssync.model import examples
from pssync.model.queued import ATTEMPT_KEY, QueuedEvent
from pssync.workflows.starter import execution_name, start_workflow

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
BOOKED = frozenset({"ContractBooked"})


class RecordingStarter:
    def __init__(self) -> None:
        self.started: dict[str, str] = {}

    def start(self, name: str, input_document: str) -> tuple[str, bool]:
        newly = name not in self.started
        self.started.setdefault(name, input_document)
        return f"arn:{name}", newly


def _bus_message(attempt: int | None = None) -> QueuedEvent:
    document = {
        "detail-type": "ContractBooked",
        "source": "pssync.ingest",
        "detail": examples.contract_booked().model_dump(mode="json"),
    }
    if attempt is not None:
        document[ATTEMPT_KEY] = attempt
    return QueuedEvent.from_message(json.dumps(document))


def test_execution_name_is_derived_from_the_business_event() -> None:
    starter = RecordingStarter()
    first = start_workflow(_bus_message(), starter, "provision-engagement", BOOKED)
    redelivered = start_workflow(_bus_message(), starter, "provision-engagement", BOOKED)
    assert first.execution_name == f"ContractBooked-{examples.contract_booked().event_id}"
    assert first.newly_started and not redelivered.newly_started
    assert json.loads(starter.started[first.execution_name])["attempt"] == 0


def test_an_ops_replay_gets_a_new_attempt_name() -> None:
    starter = RecordingStarter()
    replay = start_workflow(_bus_message(attempt=2), starter, "provision-engagement", BOOKED)
    assert replay.execution_name.endswith("-a2") and replay.newly_started


def test_execution_names_respect_step_functions_limits() -> None:
    name = execution_name("ContractBooked", "x" * 200 + " /:", 3)
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)


def test_garbage_on_the_inbox_is_a_business_exception_not_a_retry() -> None:
    with pytest.raises(BusinessRuleViolation, match="not a canonical event"):
        start_workflow(
            QueuedEvent.from_message('{"detail-type": "Nope"}'),
            RecordingStarter(),
            "provision-engagement",
            BOOKED,
        )


def test_checked_in_schemas_and_samples_match_the_models() -> None:
    assert schemas.drift(EVENTS_DIR) == [], "run `make schemas` and commit the result"


def test_samples_validate_against_their_models() -> None:
    from pssync.model.events import ContractBooked, EngagementActivated

    ContractBooked.model_validate_json((EVENTS_DIR / "samples/canonical/contract-booked.json").read_text())
    EngagementActivated.model_validate_json(
        (EVENTS_DIR / "samples/canonical/engagement-activated.json").read_text()
    )


def test_openapi_describes_the_route_the_template_serves() -> None:
    """The checked-in OpenAPI (drift-tested above) names the one route API Gateway exposes."""
    document = json.loads((EVENTS_DIR / "openapi/webhook-api.v1.json").read_text())
    operation = document["paths"]["/webhooks/{source}"]["post"]
    assert set(operation["responses"]) == {
        "202",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "422",
        "503",
    }
    refs = json.dumps(operation)
    for name in ("StandardWebhooksMessage", "AcceptedResponse", "ErrorResponse"):
        assert f"#/components/schemas/{name}" in refs and name in document["components"]["schemas"]


def test_a_message_in_the_wrong_inbox_is_refused() -> None:
    with pytest.raises(BusinessRuleViolation, match="does not start workflow propagate-amendment"):
        start_workflow(
            _bus_message(), RecordingStarter(), "propagate-amendment", frozenset({"ContractAmended"})
        )
