"""Poll cursors in DynamoDB: one item per source, moved forward only by a conditional write.

pk = CURSOR#<source>; `position` is the newest `created_at` the source has handed us (ISO 8601, the
source's clock, never ours), `version` counts the moves. Two pollers racing on one source cannot both move
it: the loser gets CursorConflict and its events are already deduplicated by the ingest service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from pssync.adapters.aws import translate_aws_errors
from pssync.ports import Cursor, CursorConflict


def _pk(source: str) -> str:
    return f"CURSOR#{source}"


class DynamoDBCursorStore:
    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def get(self, source: str) -> Cursor:
        with translate_aws_errors("dynamodb:GetItem"):
            item = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": _pk(source)}}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return Cursor(source=source, position=None, version=0)
        return Cursor(
            source=source,
            position=datetime.fromisoformat(item["position"]["S"]),
            version=int(item["version"]["N"]),
        )

    def advance(self, cursor: Cursor, position: datetime, updated_at: datetime) -> Cursor:
        version = cursor.version + 1
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if cursor.version == 0
            else {
                "ConditionExpression": "#v = :expected",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(cursor.version)}},
            }
        )
        try:
            with translate_aws_errors("dynamodb:PutItem"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        "pk": {"S": _pk(cursor.source)},
                        "position": {"S": position.isoformat()},
                        "version": {"N": str(version)},
                        "updated_at": {"S": updated_at.isoformat()},
                    },
                    **condition,
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise CursorConflict(
                    f"cursor of {cursor.source} moved since version {cursor.version}"
                ) from None
            raise
        return Cursor(source=cursor.source, position=position, version=version)
