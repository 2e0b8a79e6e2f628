"""Step (a Distributed Map child): close every contract of one shard, then write the shard's summary."""

from typing import Any

from pssync.adapters.aws import S3JsonObjects
from pssync.config import BusinessTableSettings, DeliveryLogSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.ports import SystemClock
from pssync.wiring import client, deliver, version_store
from pssync.workflows import period_close


class ShardSettings(BusinessTableSettings):
    close_bucket_name: str


@lambda_handler(correlation_id_path="request.close_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = period_close.CloseState.model_validate(event)
    shard = state.require_shard()
    settings = load_settings(ShardSettings)
    load_settings(DeliveryLogSettings)  # fails fast when the ERP's delivery log is not configured
    objects = S3JsonObjects(settings.close_bucket_name, client("s3"))
    contract_ids = [str(c) for c in objects.get_json(shard.key)]
    summary = period_close.close_shard(
        state.request, shard.shard, contract_ids, version_store(settings), deliver, SystemClock().now()
    )
    objects.put_json(
        period_close.shard_result_key(state.request.close_id, shard.shard), summary.model_dump(mode="json")
    )
    # Small on purpose: the Distributed Map's results stay far below the state size limit at any scale.
    return {"shard": summary.shard, "contracts": summary.contracts, "posted": summary.posted}
