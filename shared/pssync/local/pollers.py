"""SQS -> Lambda event source mappings: long-poll, invoke, delete what succeeded.

Failed records stay on the queue until their visibility timeout ends; the queue's redrive policy
(maxReceiveCount) moves them to its dead-letter queue, as on AWS.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from pssync.local.intrinsics import ACCOUNT_ID, REGION
from pssync.local.lambda_host import LambdaHost
from pssync.local.resources import EventSourceMapping


def sqs_event(queue_url: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class QueuePoller(threading.Thread):
    # As Lambda's own pollers: a long poll returns as soon as a message arrives, so a longer one costs no
    # latency, and an idle mapping makes one call per LONG_POLL_SECONDS instead of one a second (with a
    # dozen mappings the idle polls were ~13 % of the runtime process's CPU). LocalRuntime.stop() stops
    # the moto server first, which ends a poll in progress.
    LONG_POLL_SECONDS = 20

    def __init__(
        self, mapping: EventSourceMapping, host: LambdaHost, sqs: Any, stop: threading.Event
    ) -> None:
        super().__init__(name=f"esm-{mapping.function_name}", daemon=True)
        self._mapping = mapping
        self._host = host
        self._sqs = sqs
        self._halt = stop
        self.busy = threading.Event()  # set while a received batch is being handled

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.poll_once(wait_seconds=self.LONG_POLL_SECONDS)
            except Exception:  # keep polling: a local runtime must survive a transient server hiccup
                if self._halt.is_set():
                    return
                self._halt.wait(0.5)

    def poll_once(self, wait_seconds: int) -> int:
        response = self._sqs.receive_message(
            QueueUrl=self._mapping.queue_url,
            MaxNumberOfMessages=min(self._mapping.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        self.busy.set()
        try:
            result, errored = self._host.invoke(
                self._mapping.function_name, sqs_event(self._mapping.queue_url, messages)
            )
            if errored:
                return 0  # the whole batch becomes visible again later
            failed = set()
            if self._mapping.report_batch_item_failures and isinstance(result, dict):
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                self._sqs.delete_message_batch(
                    QueueUrl=self._mapping.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            return len(messages)
        finally:
            self.busy.clear()
