"""Replay throughput: 1,000 dead-lettered messages redriven, and 1,000 archived events re-put, on moto.

    python -m bench.replay                  # 1,000 of each; writes build/bench/replay.json
    python -m bench.replay --messages 200   # fewer, for iterating

Runs against a moto server on 127.0.0.1 (HTTP, one process: what the local runtime's AWS endpoint is),
without the local runtime's functions: they would consume the inbox while the replay fills it, and the
figure would be theirs. Measured: `audited_replay` (the receive / send / delete loop `pssync dlq replay`
runs locally and for the exceptions queue, audit record included) and `audited_archive_replay` by re-put
(`pssync events replay` locally). Each run is checked: every message or event arrives exactly once and
the audit record lists every one; a failed check fails the bench (a figure for a wrong replay is no figure).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "build" / "bench" / "replay.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUS = "pssync-bench"
AUDIT_TABLE = "pssync-bench-TablesReplayAuditTable-BENCH"


class BenchCheckFailed(AssertionError):
    pass


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class CallCounter:
    """AWS API calls per operation, counted at botocore's before-call hook."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


def _clients(endpoint: str, counter: CallCounter) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto's placeholder credentials
        region_name=REGION,
    )
    return {
        s: counter.attach(session.client(s, endpoint_url=endpoint))
        for s in ("sqs", "events", "dynamodb", "sts")
    }


def _event_body(n: int) -> dict[str, Any]:
    from pssync.model import examples

    event = examples.contract_booked().model_dump(mode="json")
    event["event_id"] = f"bench-{n:05d}"
    return {"version": "0", "detail-type": "ContractBooked", "source": "pssync.ingest", "detail": event}


def _audit_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=AUDIT_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _drain_ids(sqs: Any, url: str) -> list[str]:
    """Every event id in a queue, each message deleted once read: moto's ReceiveMessage costs O(queue
    length) per message returned (its retention check recomputes the queue's attributes), so messages
    left in flight would make every later receive slower."""
    ids = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
        "Messages", []
    ):
        ids += [json.loads(m["Body"])["detail"]["event_id"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )
    return ids


def bench_dlq(clients: dict[str, Any], counter: CallCounter, messages: int) -> dict[str, Any]:
    from pssync.ops.audit import ReplayAuditLog, audited_replay, caller_identity
    from pssync.ops.dead_letters import DeadLetterOps, MessageOutcome
    from pssync.ops.replay import REPLAY_TAG

    sqs = clients["sqs"]
    dlq = sqs.create_queue(QueueName="pssync-bench-InboxDlq", tags={REPLAY_TAG: "redrive"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    inbox = sqs.create_queue(
        QueueName="pssync-bench-Inbox",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
    )["QueueUrl"]
    for start in range(0, messages, 10):
        sqs.send_message_batch(
            QueueUrl=dlq,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps(_event_body(n))}
                for n in range(start, min(messages, start + 10))
            ],
        )
    time.sleep(1.1)  # SentTimestamp has millisecond resolution: a run takes what was parked before it
    ops = DeadLetterOps(sqs, clients["events"])
    store = ops.store("pssync-bench-InboxDlq")
    audit = ReplayAuditLog(AUDIT_TABLE, clients["dynamodb"])
    caller = caller_identity(clients["sts"])
    counter.calls.clear()
    started, cpu = time.perf_counter(), time.process_time()
    run, outcome = audited_replay(ops, audit, caller, store)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    calls = dict(counter.calls)
    arrived = _drain_ids(sqs, inbox)
    recorded = audit.run(run.run_id)
    if sorted(arrived) != [f"bench-{n:05d}" for n in range(messages)]:
        raise BenchCheckFailed(f"dlq: {len(arrived)} arrived, {len(set(arrived))} distinct, of {messages}")
    if recorded.count(MessageOutcome.REPLAYED) != messages or outcome.replayed != messages:
        raise BenchCheckFailed(
            f"dlq: the audit record lists {recorded.count(MessageOutcome.REPLAYED)} replayed"
        )
    return {
        "messages": messages,
        "seconds": round(seconds, 2),
        "per_second": round(messages / seconds, 1),
        "cpu_seconds": round(cpu_seconds, 2),  # client and in-process server: less sensitive to a busy host
        "per_cpu_second": round(messages / cpu_seconds, 1),
        "aws_calls": sum(calls.values()),
        "aws_calls_per_message": round(sum(calls.values()) / messages, 2),
        "calls": calls,
    }


def bench_archive(
    clients: dict[str, Any], counter: CallCounter, events_count: int, endpoint: str
) -> dict[str, Any]:
    from pssync.cli.events import MotoServerArchive
    from pssync.ops.archive_replay import (
        ReplayMethod,
        ReplayWindow,
        audited_archive_replay,
        find_archive,
    )
    from pssync.ops.audit import ReplayAuditLog, caller_identity
    from pssync.ops.dead_letters import MessageOutcome

    events, sqs = clients["events"], clients["sqs"]
    bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
    events.create_archive(
        ArchiveName="pssync-bench-archive",
        EventSourceArn=bus_arn,
        EventPattern=json.dumps({"account": [ACCOUNT]}),
    )
    target = sqs.create_queue(QueueName="pssync-bench-Target")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="booked", EventBusName=BUS, EventPattern=json.dumps({"detail-type": ["ContractBooked"]})
    )
    events.put_targets(Rule="booked", EventBusName=BUS, Targets=[{"Id": "q", "Arn": target_arn}])
    first = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    for start in range(0, events_count, 10):
        events.put_events(
            Entries=[
                {
                    "Source": "pssync.ingest",
                    "DetailType": "ContractBooked",
                    "Detail": json.dumps(_event_body(n)["detail"]),
                    "EventBusName": BUS,
                    "Time": first + timedelta(seconds=n),
                }
                for n in range(start, min(events_count, start + 10))
            ]
        )
    _drain_ids(sqs, target)  # the first delivery: applied before the incident the replay repairs
    archive = find_archive(events, BUS)
    window = ReplayWindow(first, first + timedelta(seconds=events_count))
    audit = ReplayAuditLog(AUDIT_TABLE, clients["dynamodb"])
    counter.calls.clear()
    started, cpu = time.perf_counter(), time.process_time()
    run = audited_archive_replay(
        events,
        audit,
        caller_identity(clients["sts"]),
        archive,
        window,
        method=ReplayMethod.RE_PUT,
        archived=MotoServerArchive(endpoint),
        now=lambda: datetime.now(UTC) + timedelta(days=365),  # the window is in the bench's past
    )
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    calls = dict(counter.calls)
    arrived = _drain_ids(sqs, target)
    if sorted(arrived) != [f"bench-{n:05d}" for n in range(events_count)]:
        raise BenchCheckFailed(
            f"archive: {len(arrived)} arrived, {len(set(arrived))} distinct, of {events_count}"
        )
    if run.count(MessageOutcome.REPLAYED) != events_count:
        raise BenchCheckFailed(
            f"archive: the audit record lists {run.count(MessageOutcome.REPLAYED)} replayed"
        )
    return {
        "events": events_count,
        "seconds": round(seconds, 2),
        "per_second": round(events_count / seconds, 1),
        "cpu_seconds": round(cpu_seconds, 2),
        "per_cpu_second": round(events_count / cpu_seconds, 1),
        "aws_calls": sum(calls.values()),
        "calls": calls,
    }


def run(messages: int = 1000) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    with moto_server() as endpoint:
        counter = CallCounter()
        clients = _clients(endpoint, counter)
        _audit_table(clients["dynamodb"])
        result: dict[str, Any] = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "cpus": os.cpu_count(),
            "where": "moto server on 127.0.0.1 (HTTP), no local-runtime functions consuming",
        }
        result["dlq_receive_loop"] = bench_dlq(clients, counter, messages)
        print(json.dumps({"dlq_receive_loop": result["dlq_receive_loop"]}), flush=True)  # a long run shows it
        result["archive_re_put"] = bench_archive(clients, counter, messages, endpoint)
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.messages)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
