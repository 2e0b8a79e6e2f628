"""The state an apply-receivables step receives (see apply_receivables.asl.json; `workflow_step`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from pssync.model.events import InvoicePosted, PaymentReceived
from pssync.workflows.receivables import BalancesReceipt, ReceivableMatch, RecordedReceivable


class ReceivablePayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event: Annotated[InvoicePosted | PaymentReceived, Field(discriminator="event_type")]
    match: ReceivableMatch | None = None
    recorded: RecordedReceivable | None = None
    balances: BalancesReceipt | None = None

    def require_match(self) -> ReceivableMatch:
        if self.match is None:
            raise ValueError("this step runs after MatchReceivable; 'match' is missing")
        return self.match

    def require_recorded(self) -> RecordedReceivable:
        if self.recorded is None:
            raise ValueError("this step runs after RecordReceivable; 'recorded' is missing")
        return self.recorded

    def require_balances(self) -> BalancesReceipt:
        if self.balances is None:
            raise ValueError("this step runs after UpdateContractBalances; 'balances' is missing")
        return self.balances

    def require_invoice(self) -> InvoicePosted:
        if not isinstance(self.event, InvoicePosted):
            raise ValueError(f"this step checks invoices; got {self.event.event_type}")
        return self.event
