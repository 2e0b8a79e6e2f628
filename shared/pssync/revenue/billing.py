"""Billing buckets: invoices and payments per period, for the contract balances and journals."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from datetime import date

from pssync.revenue.compiled import to_minor_units
from pssync.revenue.models import Invoice, Payment
from pssync.revenue.periods import PeriodIndex


def billing_buckets(
    billings: Sequence[Invoice | Payment],
    as_of: date,
    periods: PeriodIndex,
    knowledge: Sequence[int],
    exponent: int,
    zeros: array[int],
) -> tuple[array[int], array[int], dict[int, list[str]]]:
    """(billed, paid) per period in minor units, and the invoice / payment ids booked in each period.

    A bill known by as_of and dated on or before it is booked in its period, or, when it was recorded after
    that period's knowledge cut-off (a closed period), in the first period whose cut-off saw it.
    """
    billed, paid = array("q", zeros), array("q", zeros)
    causes: dict[int, list[str]] = {}
    period_count = len(knowledge)
    for billing in sorted(billings, key=lambda b: (b.known_from, b.id)):
        if billing.known_from <= as_of and billing.on <= as_of:
            k = periods.index_of(billing.on)
            recorded = billing.known_from.toordinal()
            while k < period_count and knowledge[k] < recorded:
                k += 1
            if k >= period_count:
                continue
            amount = to_minor_units(billing.amount, exponent)
            (billed if isinstance(billing, Invoice) else paid)[k] += amount
            causes.setdefault(k, []).append(billing.id)
    return billed, paid, causes
