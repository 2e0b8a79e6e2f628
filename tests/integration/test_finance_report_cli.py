"""`pssync report` against moto: the portfolio written through the DynamoDB version store, dead-letter
stores found by their tags, the page written by the CLI with the same figures the in-memory gathering
finds; parked messages are read with their age and left in their queues, unchanged."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from bench.report import add_engagement
from pssync.adapters.aws import DynamoDBVersionStore
from pssync.cli.report import report_app
from pssync.ops.contract_view import Cutoff
from pssync.ops.finance_report.gather import build_report
from tests.fakes import InMemoryVersionStore
from tests.integration.conftest import AwsWorld

AS_OF = "2026-10-31"
ENGAGEMENTS = 4


def _park(aws: AwsWorld) -> tuple[str, str]:
    sqs = aws.clients["sqs"]
    exceptions = sqs.create_queue(
        QueueName="pssync-dev-Exceptions", tags={"pssync:replay": "workflow-exceptions"}
    )
    inbox_dlq = sqs.create_queue(QueueName="pssync-dev-InboxDlq", tags={"pssync:replay": "redrive"})
    body = {
        "event": {"event_id": "evt-1", "event_type": "TimeApproved", "data": {"contract_id": "C-GEN-00000"}},
        "failed_step": "match_time_entry",
        "error": {"Error": "UnknownProject", "Cause": json.dumps({"errorType": "UnknownProject"})},
    }
    sqs.send_message(QueueUrl=exceptions["QueueUrl"], MessageBody=json.dumps(body))
    sqs.send_message(
        QueueUrl=inbox_dlq["QueueUrl"],
        MessageBody=json.dumps({"detail": {"event_id": "evt-2", "event_type": "ContractBooked"}}),
        MessageAttributes={
            "pssync-error": {"DataType": "String", "StringValue": "ValidationError"},
            "pssync-function": {"DataType": "String", "StringValue": "start_provision_engagement"},
        },
    )
    return exceptions["QueueUrl"], inbox_dlq["QueueUrl"]


def _figure(page: str, name: str, currency: str) -> str:
    [value] = re.findall(rf'data-figure="{name}" data-currency="{currency}">([^<]*)<', page)
    assert isinstance(value, str)
    return value.replace(",", "")


def test_report_reads_the_stack_and_writes_the_page(aws: AwsWorld, tmp_path: Path) -> None:
    store = DynamoDBVersionStore("business", aws.clients["dynamodb"])
    memory = InMemoryVersionStore()
    ids = [add_engagement(store, n) for n in range(ENGAGEMENTS)]
    assert ids == [add_engagement(memory, n) for n in range(ENGAGEMENTS)]
    queues = _park(aws)
    out = tmp_path / "out" / "report.html"

    result = CliRunner().invoke(
        report_app,
        [
            *("--out", str(out), "--as-of", AS_OF),
            *("--business-table", "business", "--delivery-log-table", "delivery-log"),
        ],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    # Without --reconciliation the report reconciles the portfolio itself: one row per engagement.
    assert "Not connected" not in page
    start = page.index('class="reconciliation-table"')
    reconciled = page[start : page.index("</table>", start)]
    assert all(contract_id in reconciled for contract_id in ids)
    expected = build_report(
        memory, ids, Cutoff.parse(AS_OF, datetime.now(UTC)), generated_at=datetime.now(UTC)
    )
    for section in expected.sections:
        b = section.balances
        for name, money in (
            ("recognised_to_date", b.recognised_to_date),
            ("receivable", b.receivable),
            ("contract_liability", b.contract_liability),
            ("rpo_total", section.rpo.remaining),
            ("waterfall_sum", section.waterfall_total),
        ):
            assert _figure(page, name, section.currency) == str(money.amount), (name, section.currency)
    assert "Open exceptions (2)" in page
    assert "match_time_entry" in page and "UnknownProject" in page
    assert "start_provision_engagement" in page and "ValidationError" in page
    # read, not consumed: both messages are there for `pssync dlq replay`
    for url in queues:
        depth = aws.clients["sqs"].get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert depth["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_reconciliation_rows_from_a_file_fill_the_slot(aws: AwsWorld, tmp_path: Path) -> None:
    rows = tmp_path / "reconcile.json"
    rows.write_text(json.dumps([{"contract_id": "C-1", "variance": "12.00", "cause": "rate difference"}]))
    out = tmp_path / "report.html"
    args = [
        "--out",
        str(out),
        "--business-table",
        "business",
        "--no-exceptions",
        "--reconciliation",
        str(rows),
    ]
    result = CliRunner().invoke(report_app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "reconciliation-table" in page and "rate difference" in page

    rows.write_text(json.dumps({"not": "rows"}))
    refused = CliRunner().invoke(report_app, args)
    assert refused.exit_code == 2 and "expected a JSON array of objects" in refused.output.replace("\n", " ")
