"""Step: stream the entity's contract ids into shard files on S3 and write the Distributed Map manifest."""

from typing import Any

from pssync.adapters.aws import DynamoDBAggregateHeads, S3JsonObjects
from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.wiring import client
from pssync.workflows import period_close
from pssync.workflows.provision import CONTRACT


class PlanSettings(BusinessTableSettings):
    close_bucket_name: str


@lambda_handler(correlation_id_path="request.close_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = period_close.CloseState.model_validate(event)
    settings = load_settings(PlanSettings)
    heads = DynamoDBAggregateHeads(settings.business_table_name, client("dynamodb")).heads(CONTRACT)
    objects = S3JsonObjects(settings.close_bucket_name, client("s3"))
    plan = period_close.plan_close(state.request, heads, objects.put_json, objects.bucket)
    return plan.model_dump(mode="json")
