"""What every workflow step handler shares: the step payloads and the step decorator.

Handlers stay thin: parse, call one domain function, map the result.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict

from pssync.handlers.stack import LambdaHandler, lambda_handler
from pssync.model.events import ContractAmended, ContractBooked, TimeApproved
from pssync.observability import logger
from pssync.workflows.amendment import Classification, RecordedAmendment, VersionGuard
from pssync.workflows.provision import CommandReceipt, RecordedContract, RevenueReceipt
from pssync.workflows.time_approval import RecordedTime, TimeCommandReceipt, TimeMatch


class StepPayload(BaseModel):
    """The state a provision-engagement step receives (see the ASL `Parameters` of each task)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: ContractBooked
    contract: RecordedContract | None = None
    psa: CommandReceipt | None = None
    erp: CommandReceipt | None = None
    revenue: RevenueReceipt | None = None
    started_at: str | None = None

    def require_contract(self) -> RecordedContract:
        if self.contract is None:
            raise ValueError("this step runs after RecordContractVersion; 'contract' is missing")
        return self.contract


class AmendmentPayload(BaseModel):
    """The state a propagate-amendment step receives (see propagate_amendment.asl.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: ContractAmended
    guard: VersionGuard | None = None
    contract: RecordedAmendment | None = None
    classification: Classification | None = None
    psa: CommandReceipt | None = None
    erp: CommandReceipt | None = None
    revenue: RevenueReceipt | None = None

    def require_contract(self) -> RecordedAmendment:
        if self.contract is None:
            raise ValueError("this step runs after RecordAmendedVersion; 'contract' is missing")
        return self.contract


class TimePayload(BaseModel):
    """The state an apply-approved-time step receives (see apply_approved_time.asl.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: TimeApproved
    match: TimeMatch | None = None
    recorded: RecordedTime | None = None
    erp: TimeCommandReceipt | None = None
    revenue: RevenueReceipt | None = None

    def require_match(self) -> TimeMatch:
        if self.match is None:
            raise ValueError("this step runs after MatchTimeEntry; 'match' is missing")
        return self.match

    def require_recorded(self) -> RecordedTime:
        if self.recorded is None:
            raise ValueError("this step runs after RecordBillableTime; 'recorded' is missing")
        return self.recorded


Payload = TypeVar("Payload", bound=BaseModel)
# The ids logs are searched by, wherever the event's data carries them.
_BUSINESS_ID_FIELDS = (
    "contract_id",
    "project_id",
    "time_entry_id",
    "expense_id",
    "milestone_id",
    "invoice_id",
    "payment_id",
)


def _business_keys(envelope: Any) -> dict[str, str]:
    data = envelope.data
    keys = {name: str(value) for name in _BUSINESS_ID_FIELDS if (value := getattr(data, name, None))}
    contract = getattr(data, "contract", None)
    if contract is not None:
        keys["contract_id"] = contract.contract_id
    return keys


def workflow_step(step: Callable[[Payload], BaseModel | dict[str, Any]]) -> LambdaHandler:
    """Decorates a step: the handler stack (correlation id from the event), validates the state (model from
    the step's annotation), tags logs with the business ids, serialises the result. Exceptions propagate:
    their class name is the Step Functions error the ASL retries or catches."""
    payload_model: type[BaseModel] = get_type_hints(step)["payload"]

    @wraps(step)
    def handler(event: dict[str, Any], context: Any) -> Any:
        payload = payload_model.model_validate(event)
        envelope = payload.event  # type: ignore[attr-defined]
        logger.append_keys(event_id=envelope.event_id, **_business_keys(envelope))
        result = step(payload)  # type: ignore[arg-type]
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    return lambda_handler(correlation_id_path="event.correlation_id")(handler)
