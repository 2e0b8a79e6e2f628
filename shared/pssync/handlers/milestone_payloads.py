"""What the accept-milestone step handlers receive (see accept_milestone.asl.json; `workflow_step`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pssync.model.events import MilestoneCompleted
from pssync.workflows.milestones import MilestoneRelease, MilestoneState
from pssync.workflows.provision import RevenueReceipt


class MilestonePayload(BaseModel):
    """The state an accept-milestone step receives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: MilestoneCompleted
    milestone: MilestoneState | None = None
    release: MilestoneRelease | None = None
    revenue: RevenueReceipt | None = None

    def require_milestone(self) -> MilestoneState:
        if self.milestone is None:
            raise ValueError("this step runs after RecordMilestone; 'milestone' is missing")
        return self.milestone

    def require_release(self) -> MilestoneRelease:
        if self.release is None:
            raise ValueError("this step runs after ReleaseMilestoneInvoice; 'release' is missing")
        return self.release

    def require_revenue(self) -> RevenueReceipt:
        if self.revenue is None:
            raise ValueError("this step runs after RecogniseMilestoneRevenue; 'revenue' is missing")
        return self.revenue
