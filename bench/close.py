"""The period close of a seeded portfolio on the local runtime: wall time and peak memory.

    python -m bench.close --contracts 10000 [--seed 8]

Contracts are written straight into the business table through the VersionStore adapter (no webhooks:
the bench measures the close, not ingestion), then one close of 2027-01 runs through the real state
machine (gate, plan, Distributed Map over the shard manifest, lock). Reported: contracts, shards, journal
entries posted, wall time of the close execution, and peak resident memory of this process (the moto
server and the Step Functions interpreter). The Lambda containers are forked by the runtime's fork server,
not by this process, so getrusage cannot see them: their peak is not reported here (each closes one shard
of 200 contracts, so it does not grow with the portfolio).
The portfolio builder is shared with the tests (`seed_portfolio`).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pssync.model.contract import ContractTerms
from pssync.model.examples import transformation_programme
from pssync.money import Money
from pssync.ports import VersionStore
from pssync.workflows.provision import CONTRACT

REPO = Path(__file__).resolve().parents[1]
PERIOD = "2027-01"
CURRENCIES = ("EUR", "EUR", "EUR", "USD")  # mostly the functional currency, some in another


def portfolio_terms(rng: random.Random, number: int, entity: str) -> ContractTerms:
    """A managed-service contract: one ratable obligation over 2027, billed monthly, seeded price."""
    currency = rng.choice(CURRENCIES)
    monthly = Decimal(rng.randrange(1_000, 20_000)).quantize(Decimal("1.00"))
    price = Money(amount=monthly * 12, currency=currency).model_dump(mode="json")
    contract_id = f"CL-{entity}-{number:06d}"
    document = transformation_programme().model_dump(mode="json")
    managed = document["obligations"][2]
    managed["standalone_selling_price"] = price
    document.update(
        contract_id=contract_id,
        legal_entity={
            "code": entity,
            "name": f"Entity {entity}",
            "country": "NL",
            "functional_currency": "EUR",
        },
        currency=currency,
        transaction_price=price,
        start_date="2027-01-01",
        obligations=[managed],
        billing=[
            {
                "kind": "managed_service",
                "monthly_fee": {"amount": str(monthly), "currency": currency},
                "start": "2027-01-01",
                "end": "2027-12-31",
                "obligation_id": managed["obligation_id"],
            }
        ],
    )
    document["project"].update(
        project_id=f"P-{contract_id}",
        wbs=[{"code": "1", "name": "Managed service", "obligation_id": managed["obligation_id"]}],
    )
    return ContractTerms.model_validate(document)


def seed_portfolio(store: VersionStore, contracts: int, entity: str, seed: int) -> list[str]:
    """Version 1 of `contracts` seeded contracts of `entity`, written through the VersionStore."""
    rng = random.Random(seed)
    ids = []
    for number in range(1, contracts + 1):
        terms = portfolio_terms(rng, number, entity)
        store.append(
            CONTRACT,
            terms.contract_id,
            expected_version=0,
            body={"terms": terms.model_dump(mode="json"), "source_version": None},
            caused_by_event_id=f"seed-{seed}-{terms.contract_id}",
            correlation_id=f"seed-{seed}",
            recorded_at=datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        )
        ids.append(terms.contract_id)
    return ids


def _peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def run_close(contracts: int, seed: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore, StepFunctionsExecutions
    from pssync.local.runtime import LocalRuntime
    from pssync.workflows import period_close

    entity = f"B{seed:03d}"
    with LocalRuntime(REPO, lambda_log=REPO / "build" / "bench" / "close-lambda.log") as runtime:
        ddb = runtime.clients["dynamodb"]
        store = DynamoDBVersionStore(runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
        started = time.perf_counter()
        seed_portfolio(store, contracts, entity, seed)
        seeded_seconds = time.perf_counter() - started
        log(f"seeded {contracts} contracts in {seeded_seconds:.1f} s")
        arn = next(a for a in runtime.resources.state_machines.values() if a.endswith("-close-period"))
        executions = StepFunctionsExecutions(arn, runtime.clients["stepfunctions"])
        document = period_close.request_input("close", entity, PERIOD, requested_by="bench")
        started = time.perf_counter()
        decision = period_close.submit_request(document, executions.status, executions.start)
        execution_arn = executions.execution_arn(decision.name)
        sfn = runtime.clients["stepfunctions"]
        while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            time.sleep(0.5)
        close_seconds = time.perf_counter() - started
        if described["status"] != "SUCCEEDED":
            raise RuntimeError(f"close {decision.name} {described['status']}: {described.get('cause')}")
        output = json.loads(described["output"])
        journals = [
            c
            for c in DynamoDBDeliveryLog(runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb).all_commands()
            if c.operation == "post_journal_entry" and c.payload["legal_entity"] == entity
        ]
        if len(journals) != contracts or output["lock"]["contracts"] != contracts:
            raise RuntimeError(f"{len(journals)} journals for {contracts} contracts: the close is incomplete")
        return {
            "measured_at": datetime.now(UTC).isoformat(),
            "contracts": contracts,
            "seed": seed,
            "shards": output["plan"]["shards"],
            "journal_entries": len(journals),
            "seed_seconds": round(seeded_seconds, 1),
            "close_seconds": round(close_seconds, 1),
            "contracts_per_second": round(contracts / close_seconds, 1),
            "peak_rss_mb_runtime": round(_peak_rss_mb(resource.RUSAGE_SELF), 1),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.close", description=__doc__)
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(run_close(args.contracts, args.seed), indent=2))


if __name__ == "__main__":
    main()
