"""The one domain exception of the revenue engine."""

from __future__ import annotations


class RevenueRuleError(Exception):
    """A revenue rule refused the inputs (e.g. a residual outside the observed SSP range).

    `field` names the input path that caused the refusal when there is one, so a caller can point the
    user at it; `reason` is the sentence an accountant would read.
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)
