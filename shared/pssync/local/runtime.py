"""LocalRuntime: synthesized template -> moto server -> resources -> Lambda containers -> webhook API."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pssync.local import execution_ends
from pssync.local.execution_ends import ExecutionEnds
from pssync.local.http_api import WebhookApiServer
from pssync.local.intrinsics import REGION
from pssync.local.lambda_host import LambdaHost, install_into_moto, scale_step_functions_waits
from pssync.local.moto_dynamodb import install as install_moto_dynamodb_costs
from pssync.local.moto_server import MotoServer
from pssync.local.pollers import QueuePoller
from pssync.local.resources import LocalResources, create_resources
from pssync.local.schedules import Schedules
from pssync.local.template import load_template
from pssync.local.wait_clock import install_wait_clock

SECRETS_FILE_ENV = "PSSYNC_LOCAL_SECRETS_FILE"
DEFAULT_SECRETS_FILE = ".pssync-local-secrets.json"
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


_CLIENT_POOL = 64
_SERVICES = ("dynamodb", "sqs", "events", "lambda", "stepfunctions", "secretsmanager", "iam", "s3")


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + standard base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


# `--stand-ins`: the ERP and the PSA run `live` against the NetSuite and Kantata OX stand-ins (test
# equipment). The NetSuite stand-in's account has these internal ids (what an operator would put in
# cdk.json for a real account).
STAND_IN_NETSUITE_MAPPING = {
    "subsidiaries": {"NL01": "2", "US01": "1"},
    "currencies": {"USD": "1", "GBP": "2", "EUR": "4"},
    "items": {
        "milestone": "501",
        "instalment": "502",
        "managed_service": "503",
        "time_and_materials": "504",
        "expenses": "505",
        "time": "510",
        "expense": "520",
    },
    "accounts": {
        "cash": "111",
        "receivable": "119",
        "contract_asset": "125",
        "contract_liability": "221",
        "revenue": "401",
    },
}
STAND_IN_CONTEXT = {
    "pssync:cutover": {"erp": "live", "psa": "live"},
    "pssync:netsuite": {"mapping": STAND_IN_NETSUITE_MAPPING, "concurrency_limit": 5},
}


@dataclass(frozen=True)
class QueueDepth:
    name: str
    role: str  # inbox | dead-letter | exceptions
    visible: int
    in_flight: int


class LocalRuntime:
    """Start with `with LocalRuntime(root) as runtime:`; everything stops on exit."""

    def __init__(
        self,
        root: Path,
        *,
        api_port: int = 0,
        retry_time_scale: float = 1.0,
        secrets_file: Path | None = None,
        lambda_log: Path | None = None,
        context: dict[str, Any] | None = None,
        stand_ins: bool = False,
    ) -> None:
        self.root = root
        self.context = dict(context or {})  # CDK context for build_app (extra sources: Event Relay, Kantata)
        # Vendor stand-ins (test equipment) with the targets they stand in for selected `live`.
        self.with_stand_ins = stand_ins
        self.stand_ins: dict[str, Any] = {}
        self.stand_in_urls: dict[str, str] = {}  # vendor -> the stand-in's base URL on 127.0.0.1
        self._api_port = api_port
        self._retry_time_scale = retry_time_scale
        env_file = os.environ.get(SECRETS_FILE_ENV)
        self.secrets_file = secrets_file or (Path(env_file) if env_file else root / DEFAULT_SECRETS_FILE)
        self._lambda_log_path = lambda_log or root / "build" / "local" / "lambda.log"
        self._stop = threading.Event()
        self._pollers: list[QueuePoller] = []
        self._saved_env: dict[str, str] = {}
        self.execution_ends = ExecutionEnds()
        self.resources: LocalResources
        self.api: WebhookApiServer
        self.clients: dict[str, Any] = {}
        self.schedules: Schedules
        self.local_secrets: dict[str, dict[str, str]] = {}  # the local secrets file, by source name
        self.signing_secrets: dict[str, dict[str, str]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        import boto3
        import httpx
        from botocore.config import Config

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's per-request access log
        if self.with_stand_ins:
            self.context = {**STAND_IN_CONTEXT, **self.context}
        template = load_template(self.root, context=self.context or None)
        self._moto = MotoServer()
        self._moto.start()
        self.moto_url = self._moto.url
        self._saved_env = dict(os.environ)
        # moto's Step Functions interpreter calls other services at MOTO_PORT.
        os.environ.update({**_AWS_ENV, "MOTO_PORT": str(self._moto.port)})
        httpx.post(
            f"{self.moto_url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}
        )
        scale_step_functions_waits(self._retry_time_scale)
        # A transaction costs its items and a Query its partition, as on AWS (moto's cost the whole table).
        install_moto_dynamodb_costs()
        install_wait_clock()  # Wait states follow pssync.local.wait_clock.WAIT_CLOCK (real time at offset 0)
        execution_ends.install(self.execution_ends)  # wait_for_execution sleeps until the interpreter says
        self._lambda_log_path.parent.mkdir(parents=True, exist_ok=True)
        # Handlers run in Lambda containers (worker processes forked from the host's fork server, which
        # starts now and preloads while the resources are created). Their logs and EMF metric lines go to
        # the Lambda log file; their environment is this base plus the function's own.
        self.host = LambdaHost(
            self.root / "functions",
            {**_AWS_ENV, "AWS_ENDPOINT_URL": self.moto_url, "POWERTOOLS_TRACE_DISABLED": "1"},
            log_path=self._lambda_log_path,
        )

        session = boto3.session.Session(
            aws_access_key_id=_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=_AWS_ENV["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
        # One connection per concurrent caller, kept alive: every poller long-polls on the SQS client at
        # once, and drivers (tests, the scorecard's senders) share these clients from many threads. With
        # botocore's default pool of 10, each call beyond it opened and dropped a connection.
        pooled = Config(max_pool_connections=_CLIENT_POOL)
        for service in _SERVICES:
            self.clients[service] = session.client(service, endpoint_url=self.moto_url, config=pooled)
        self.resources = create_resources(template, self.clients)
        self._install_local_secrets()
        if self.with_stand_ins:
            self._start_stand_ins()

        for function in self.resources.functions.values():
            self.host.register(function)
        install_into_moto(self.host)
        # Schedule rules are not fired by moto: trigger_schedule() invokes them; the ticker is opt-in.
        self.schedules = Schedules(self.resources.schedules, self.host, self._stop)

        for mapping in self.resources.mappings:
            poller = QueuePoller(mapping, self.host, self.clients["sqs"], self._stop)
            poller.start()
            self._pollers.append(poller)
        self.api = WebhookApiServer(self.resources.routes, self.host, port=self._api_port)
        self.api.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.api.stop()
        # moto first: closing its connections ends the pollers' long polls at once (a poll waits up to
        # QueuePoller.LONG_POLL_SECONDS for a message), so their joins are short.
        with contextlib.suppress(Exception):
            self._moto.stop()
        for poller in self._pollers:
            poller.join(timeout=5)
        with contextlib.suppress(Exception):
            self.schedules.join(timeout=5)
        with contextlib.suppress(Exception):
            self.host.close()
        execution_ends.uninstall(self.execution_ends)
        for stand_in in self.stand_ins.values():
            with contextlib.suppress(Exception):
                stand_in.stop()
        os.environ.clear()
        os.environ.update(self._saved_env)

    # --- schedules ---------------------------------------------------------------------------

    def trigger_schedule(self, rule_or_function: str) -> Any:
        """Fire a schedule rule (by logical id, its prefix, or the target function name) once, now.

        Returns the function's result; raises RuntimeError with the error document if it failed.
        """
        result, errored = self.schedules.trigger(rule_or_function)
        if errored:
            raise RuntimeError(f"scheduled function failed: {result}")
        return result

    def start_schedule_ticker(self, period_override_seconds: float | None = None) -> None:
        """Fire every rate() schedule in the background (off by default; the demo never starts it)."""
        self.schedules.start_ticker(period_override_seconds)

    # --- configuration -----------------------------------------------------------------------

    def source_registry(self) -> list[dict[str, Any]]:
        for function in self.resources.functions.values():
            if "SOURCE_REGISTRY" in function.environment:
                return list(json.loads(function.environment["SOURCE_REGISTRY"]))
        return []

    def api_token_secrets(self) -> dict[str, str]:
        """Source name -> secret id of the API token the stack reads for it (Kantata, any CRM API)."""
        tokens: dict[str, str] = {}
        for function in self.resources.functions.values():
            tokens.update(json.loads(function.environment.get("KANTATA_TOKEN_SECRET_IDS", "{}")))
        for source in self.source_registry():
            crm_api = source.get("crm_api") or {}
            if crm_api.get("token_secret_id"):
                tokens[f"{source['name']}-crm-api" if source.get("secret_id") else source["name"]] = crm_api[
                    "token_secret_id"
                ]
        return tokens

    def _install_local_secrets(self) -> None:
        """Secret values come from the local secrets file, which maps a source name to its secret's JSON.

        Webhook sources: the signing secret (`{"current": "whsec_...", "previous": ...}`). Kantata poll
        sources and sources with a CRM API: the API token (`{"access_token": "..."}`), as an operator
        stores it with put-secret-value on AWS; a webhook source's CRM token is under `<name>-crm-api`,
        beside its signing secret. Missing entries are generated into the file (a `local-...` token is a
        placeholder: put a real one there to call a real API). Token secrets the stack only references
        (CRM tokens) are created locally.
        """
        stored: dict[str, dict[str, str]] = {}
        if self.secrets_file.is_file():
            stored = json.loads(self.secrets_file.read_text())
        changed = False
        sm = self.clients["secretsmanager"]
        for source in self.source_registry():
            if not source.get("secret_id"):
                continue  # Event Relay and Kantata sources have no signing secret
            if source["name"] not in stored:
                stored[source["name"]] = {"current": new_signing_secret()}
                changed = True
            sm.put_secret_value(SecretId=source["secret_id"], SecretString=json.dumps(stored[source["name"]]))
        for name, secret_id in sorted(self.api_token_secrets().items()):
            if name not in stored:
                stored[name] = {"access_token": f"local-{secrets.token_hex(16)}"}
                changed = True
            value = json.dumps(stored[name])
            try:
                sm.put_secret_value(SecretId=secret_id, SecretString=value)
            except sm.exceptions.ResourceNotFoundException:
                sm.create_secret(Name=secret_id, SecretString=value)
        if changed:
            self.secrets_file.write_text(json.dumps(stored, indent=2))
            self.secrets_file.chmod(0o600)
        self.local_secrets = stored  # every entry of the file: signing secrets and API tokens
        self.signing_secrets = stored  # the name the demo, the bench and the e2e driver read

    def _start_stand_ins(self) -> None:
        """Start the NetSuite stand-in with a new certificate and the Kantata OX stand-in with a new token,
        and store each one's credentials in the local Secrets Manager, where the functions read them exactly
        as on AWS (each stand-in's URL in its secret: NetSuite's REST domain, Kantata's base_url)."""
        from pssync.local.standins.kantata import KantataStandIn
        from pssync.local.standins.netsuite import NetSuiteStandIn, new_certificate_key

        private_key, public_key = new_certificate_key()
        netsuite = NetSuiteStandIn(public_key_pem=public_key)
        base_url = netsuite.start()
        self.stand_ins["netsuite"] = netsuite
        self.stand_in_urls["netsuite"] = base_url
        credentials = {
            "account_id": netsuite.account_id,
            "client_id": netsuite.client_id,
            "certificate_id": netsuite.certificate_id,
            "private_key_pem": private_key,
            "rest_domain": base_url,
        }
        self.clients["secretsmanager"].put_secret_value(
            SecretId=self.function_env("NETSUITE_SECRET_ID"), SecretString=json.dumps(credentials)
        )
        token = f"stand-in-{secrets.token_hex(16)}"
        kantata = KantataStandIn(token)
        kantata_url = kantata.start()
        self.stand_ins["kantata"] = kantata
        self.stand_in_urls["kantata"] = kantata_url
        self.clients["secretsmanager"].put_secret_value(
            SecretId=self.function_env("KANTATA_SECRET_ID"),
            SecretString=json.dumps(
                {"access_token": token, "base_url": kantata_url, "role_ids": kantata.ox.role_ids()}
            ),
        )

    def stand_in_holdings(self) -> dict[str, Any]:
        """What each vendor stand-in holds now (records and request counters), by vendor."""
        return {name: stand_in.holdings() for name, stand_in in self.stand_ins.items()}

    # --- observation -------------------------------------------------------------------------

    def aws_calls(self) -> Counter[tuple[str, str]]:
        """Every AWS API call the local AWS endpoint has served, by (service, operation)."""
        return self._moto.calls()

    @property
    def lambda_log_path(self) -> Path:
        """Where the functions' log lines (EMF metrics included) are written."""
        return self._lambda_log_path

    def function_env(self, variable: str) -> str:
        for function in self.resources.functions.values():
            if variable in function.environment:
                return function.environment[variable]
        raise KeyError(f"no function is configured with {variable}")

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.clients["stepfunctions"]
        found = []
        for arn in self.resources.state_machines.values():
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                found.extend(page["executions"])
        return sorted(found, key=lambda e: e["startDate"])

    def queue_depths(self) -> list[QueueDepth]:
        sqs = self.clients["sqs"]
        inboxes = {m.queue_url for m in self.resources.mappings}
        dead_letter_arns = set()
        for url in self.resources.queues.values():
            policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
            redrive = policy.get("Attributes", {}).get("RedrivePolicy")
            if redrive:
                dead_letter_arns.add(json.loads(redrive)["deadLetterTargetArn"])
        for _, rule in self.resources.of_type("AWS::Events::Rule"):
            for target in self.resources.resolve(rule["Properties"]).get("Targets", []):
                if "DeadLetterConfig" in target:
                    dead_letter_arns.add(target["DeadLetterConfig"]["Arn"])
        depths = []
        for logical_id, url in sorted(self.resources.queues.items()):
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            arn = self.resources.attributes[(logical_id, "Arn")]
            role = "inbox" if url in inboxes else "dead-letter" if arn in dead_letter_arns else "exceptions"
            depths.append(
                QueueDepth(
                    name=url.rsplit("/", 1)[-1],
                    role=role,
                    visible=int(attrs["ApproximateNumberOfMessages"]),
                    in_flight=int(attrs["ApproximateNumberOfMessagesNotVisible"]),
                )
            )
        return depths

    def wait_for_execution(self, execution_arn: str, timeout: float = 600.0) -> str | None:
        """Until the execution has ended (or has not started by then): its status, or None at `timeout`.

        Sleeps until moto's interpreter reports an end (pssync.local.execution_ends) rather than polling;
        the status is read through the API, and re-checked every few seconds in case a signal was missed.
        """
        sfn = self.clients["stepfunctions"]
        deadline = time.monotonic() + timeout
        while True:
            self.execution_ends.wait(execution_arn, min(_EXECUTION_RECHECK_S, deadline - time.monotonic()))
            try:
                status = str(sfn.describe_execution(executionArn=execution_arn)["status"])
            except sfn.exceptions.ExecutionDoesNotExist:
                status = None  # not started yet: its event may still be between the bus and the starter
            if status is not None and status != "RUNNING":
                return status
            if time.monotonic() >= deadline:
                return None

    def wait_until_idle(self, timeout: float = 180.0, settle: float = 0.3) -> None:
        """Until inboxes are drained, no poller is busy and no execution runs (twice in a row).

        Reads only what it needs (the inboxes' depths, the running executions): this loop competes for the
        runtime's one interpreter with the work it waits for."""
        sqs = self.clients["sqs"]
        sfn = self.clients["stepfunctions"]
        inboxes = sorted({m.queue_url for m in self.resources.mappings})
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            # Cheapest first: a busy poller or an inbox backlog needs no look at the executions.
            quiet = (
                not any(p.busy.is_set() for p in self._pollers)
                and not any(_backlog(sqs, url) for url in inboxes)
                and not any(
                    sfn.list_executions(stateMachineArn=m, statusFilter="RUNNING", maxResults=1)["executions"]
                    for m in self.resources.state_machines.values()
                )
            )
            if not quiet:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(_IDLE_POLL_S)
        raise TimeoutError(f"local runtime still busy after {timeout} s")


_EXECUTION_RECHECK_S = 5.0
_IDLE_POLL_S = 0.1


def _backlog(sqs: Any, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
