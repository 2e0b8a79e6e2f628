"""Typed SQS record models of the queue consumers (Powertools parser models)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json

from pssync.model.queued import QueuedEvent


class QueuedEventRecord(SqsRecordModel):
    """A canonical event a bus rule delivered to a workflow inbox or the closed-won inbox."""

    body: Json[QueuedEvent]  # narrows SqsRecordModel's `body: str`


class RelayedEventRecord(SqsRecordModel):
    """A Salesforce Event Relay event, kept as the exact text it arrived as (archived for lineage)."""
