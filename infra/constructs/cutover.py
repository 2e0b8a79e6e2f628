"""Cutover per target system: which PSA / ERP connector mode the functions that send commands run in, and
what a live mode needs (the vendor's secret, its internal-id mapping, the account's concurrency slots).

Context (cdk.json or `-c`):
- `pssync:cutover`: `{"erp": "shadow" | "dual" | "live", "psa": "shadow" | "dual" | "live"}` (default
  shadow for both: record only, write to no vendor).
- `pssync:netsuite` (needed once the ERP is not shadow): `{"mapping": {"subsidiaries": {...}, "currencies":
  {...}, "items": {...}, "accounts": {...}}, "secret_arn": "<optional: an existing secret>",
  "concurrency_limit": 5}`. Without `secret_arn` the stack creates `pssync/<stage>/erp/netsuite`, holding
  a placeholder until the operator stores the integration's credentials (JSON `account_id`, `client_id`,
  `certificate_id`, `private_key_pem`, optional `rest_domain`): until then the connector fails closed.

Functions get the secret's ARN (never its value), `secretsmanager:GetSecretValue` on that secret only,
the mapping as JSON (internal ids, not secret) and item access to the concurrency table.

A function that sends ERP commands live or dual must have time for one whole NetSuite command and the reserve
kept after it (`NETSUITE_COMMAND_SECONDS + NETSUITE_WRITES.invocation_reserve_seconds`): the synth fails
otherwise, so the client's policy and the functions' timeouts cannot drift apart. Inside an invocation every
vendor call also ends before the invocation does (pssync.connectors.http_policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsii
from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IValidation

from infra import runtime
from pssync.connectors.netsuite import NETSUITE_COMMAND_SECONDS, NETSUITE_WRITES

CUTOVER_CONTEXT_KEY = "pssync:cutover"
NETSUITE_CONTEXT_KEY = "pssync:netsuite"
# Not `pssync:kantata`: that key configures the Kantata time-entry poller (infra/sources.py).
KANTATA_PSA_CONTEXT_KEY = "pssync:kantata-psa"
# Kantata OX's documented API host (developer.kantata.com); another host goes in the context or the secret.
KANTATA_DEFAULT_BASE_URL = "https://api.mavenlink.com"
MODES = ("shadow", "dual", "live")
SYSTEMS = ("psa", "erp")
MAPPING_TABLES = ("subsidiaries", "currencies", "items", "accounts")
# Lambda allows 4 KB of environment in all; a mapping larger than this belongs in SSM (not built yet).
MAX_MAPPING_BYTES = 2048
# The variable each workflow step that sends commands already carries (infra/constructs/workflows.py).
CONNECTOR_VARIABLE = {"psa": "PSA_CONNECTOR", "erp": "ERP_CONNECTOR"}
# The shortest timeout of a function sending NetSuite commands: one command's calls and the reserve.
ERP_SENDER_MIN_TIMEOUT_SECONDS = NETSUITE_COMMAND_SECONDS + NETSUITE_WRITES.invocation_reserve_seconds


@dataclass(frozen=True)
class CutoverConfig:
    psa: str = "shadow"
    erp: str = "shadow"

    def mode(self, system: str) -> str:
        return str(getattr(self, system))


@dataclass(frozen=True)
class NetSuiteConfig:
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    secret_arn: str | None = None
    concurrency_limit: int = 5


@dataclass(frozen=True)
class KantataConfig:
    base_url: str = KANTATA_DEFAULT_BASE_URL
    secret_arn: str | None = None


def _object(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a JSON object")
    return value


def parse_cutover(value: Any) -> CutoverConfig:
    if value is None:
        return CutoverConfig()
    config = _object(value, CUTOVER_CONTEXT_KEY)
    unknown = set(config) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"{CUTOVER_CONTEXT_KEY}: unknown system(s) {sorted(unknown)}; use psa and erp")
    for system, mode in config.items():
        if mode not in MODES:
            raise ValueError(f"{CUTOVER_CONTEXT_KEY}.{system}: unknown mode {mode!r}; use one of {MODES}")
    return CutoverConfig(**config)


def parse_netsuite(value: Any) -> NetSuiteConfig | None:
    if value is None:
        return None
    config = _object(value, NETSUITE_CONTEXT_KEY)
    mapping = config.get("mapping")
    if not isinstance(mapping, dict) or not all(isinstance(mapping.get(t, {}), dict) for t in MAPPING_TABLES):
        raise ValueError(f"{NETSUITE_CONTEXT_KEY}.mapping must hold objects {', '.join(MAPPING_TABLES)}")
    limit = config.get("concurrency_limit", 5)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
        raise ValueError(f"{NETSUITE_CONTEXT_KEY}.concurrency_limit must be an integer from 1 to 100")
    secret_arn = config.get("secret_arn")
    if secret_arn is not None and not str(secret_arn).startswith("arn:"):
        raise ValueError(f"{NETSUITE_CONTEXT_KEY}.secret_arn must be a Secrets Manager ARN")
    return NetSuiteConfig(
        mapping={t: {str(k): str(v) for k, v in mapping.get(t, {}).items()} for t in MAPPING_TABLES},
        secret_arn=secret_arn,
        concurrency_limit=limit,
    )


def parse_kantata_psa(value: Any) -> KantataConfig:
    if value is None:
        return KantataConfig()
    config = _object(value, KANTATA_PSA_CONTEXT_KEY)
    unknown = set(config) - {"base_url", "secret_arn"}
    if unknown:
        raise ValueError(
            f"{KANTATA_PSA_CONTEXT_KEY}: unknown key(s) {sorted(unknown)}; use base_url, secret_arn"
        )
    base_url = str(config.get("base_url", KANTATA_DEFAULT_BASE_URL)).rstrip("/")
    if not base_url.startswith("https://"):
        # The bearer token goes with every request: never over plain HTTP.
        raise ValueError(f"{KANTATA_PSA_CONTEXT_KEY}.base_url must be an https:// URL")
    secret_arn = config.get("secret_arn")
    if secret_arn is not None and not str(secret_arn).startswith("arn:"):
        raise ValueError(f"{KANTATA_PSA_CONTEXT_KEY}.secret_arn must be a Secrets Manager ARN")
    return KantataConfig(base_url=base_url, secret_arn=secret_arn)


class VendorTargets(Construct):
    """What the command-sending functions need for their target's cutover mode."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        cutover: CutoverConfig,
        netsuite: NetSuiteConfig | None,
        kantata: KantataConfig | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cutover = cutover
        self.kantata_secret: secretsmanager.ISecret | None = None
        self._kantata_base_url = ""
        if cutover.psa != "shadow":
            if kantata is None:
                kantata = parse_kantata_psa(self.node.try_get_context(KANTATA_PSA_CONTEXT_KEY))
            self._kantata_base_url = kantata.base_url
            self.kantata_secret = self._kantata_secret(stage, kantata)
        self.netsuite_secret: secretsmanager.ISecret | None = None
        self.concurrency_table: dynamodb.Table | None = None
        self._timeouts: _ErpSendersHaveTimeForACommand | None = None
        self._mapping_json = ""
        self._limit = 0
        if cutover.erp == "shadow":
            return
        self._timeouts = _ErpSendersHaveTimeForACommand(self)
        self.node.add_validation(self._timeouts)
        if netsuite is None:
            raise ValueError(
                f"{CUTOVER_CONTEXT_KEY}.erp={cutover.erp!r} needs {NETSUITE_CONTEXT_KEY} with the account's "
                "mapping (subsidiaries, currencies, items, accounts)"
            )
        self._mapping_json = json.dumps(netsuite.mapping, sort_keys=True, separators=(",", ":"))
        if len(self._mapping_json.encode()) > MAX_MAPPING_BYTES:
            raise ValueError(
                f"{NETSUITE_CONTEXT_KEY}.mapping is over {MAX_MAPPING_BYTES} bytes: too large for the "
                "functions' environment"
            )
        self._limit = netsuite.concurrency_limit
        self.netsuite_secret = self._vendor_secret(
            "NetSuiteSecret",
            netsuite.secret_arn,
            secret_name=f"pssync/{stage}/erp/netsuite",
            description="NetSuite integration (OAuth 2.0 M2M): JSON account_id, client_id, "
            "certificate_id, private_key_pem, optional rest_domain",
            stage=stage,
            why_not_rotated="The certificate key pair is registered in NetSuite's OAuth 2.0 Client "
            "Credentials Setup by an administrator; a rotation Lambda cannot register a new "
            "certificate. Rotate by uploading a new certificate in NetSuite, then put-secret-value "
            "with its id and key.",
        )
        # One item per slot of each account's concurrency limit, leased by whichever function sends.
        self.concurrency_table = dynamodb.Table(
            self,
            "ConcurrencyTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=runtime.removal_policy(stage),
        )

    def _kantata_secret(self, stage: str, kantata: KantataConfig) -> secretsmanager.ISecret:
        return self._vendor_secret(
            "KantataSecret",
            kantata.secret_arn,
            secret_name=f"pssync/{stage}/psa/kantata",
            description='Kantata OX PSA API token and role mapping: JSON {"access_token": "...", '
            '"role_ids": {"<pssync role>": <Kantata role id>}, optional "base_url"}',
            stage=stage,
            why_not_rotated="Kantata OX issues the access token through its OAuth authorization flow, "
            "granted by an account user in a browser; a rotation Lambda cannot obtain a new one. Rotate by "
            "authorizing again, then put-secret-value with the new token.",
        )

    def _vendor_secret(
        self,
        construct_id: str,
        existing_arn: str | None,
        *,
        secret_name: str,
        description: str,
        stage: str,
        why_not_rotated: str,
    ) -> secretsmanager.ISecret:
        """The operator's existing secret when its ARN is given, else one created empty for them to fill.
        A vendor credential is issued by a person in the vendor's UI, so no rotation Lambda can renew it:
        cdk-nag's SMG4 is acknowledged with how to rotate it by hand."""
        if existing_arn:
            return secretsmanager.Secret.from_secret_complete_arn(self, construct_id, existing_arn)
        created = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=secret_name,
            description=description,
            removal_policy=runtime.removal_policy(stage),
        )
        Validations.of(created).acknowledge(Acknowledgment(id="AwsSolutions-SMG4", reason=why_not_rotated))
        return created

    def environment(self, environment: dict[str, str]) -> dict[str, str]:
        """A function's environment with its targets' modes and, for a live ERP, where its settings live."""
        configured = dict(environment)
        for system, variable in CONNECTOR_VARIABLE.items():
            if variable in configured:
                configured[variable] = self.cutover.mode(system)
        if CONNECTOR_VARIABLE["erp"] in configured and self.netsuite_secret is not None:
            assert self.concurrency_table is not None
            configured.update(
                NETSUITE_SECRET_ID=self.netsuite_secret.secret_arn,
                NETSUITE_MAPPING=self._mapping_json,
                CONCURRENCY_TABLE_NAME=self.concurrency_table.table_name,
                NETSUITE_CONCURRENCY_LIMIT=str(self._limit),
            )
        if CONNECTOR_VARIABLE["psa"] in configured and self.kantata_secret is not None:
            configured.update(
                KANTATA_SECRET_ID=self.kantata_secret.secret_arn,
                KANTATA_PSA_BASE_URL=self._kantata_base_url,
            )
        return configured

    def grant(self, role: iam.IRole, environment: dict[str, str]) -> None:
        """Read the vendor secret (that one only) and lease concurrency slots, when it sends live."""
        if CONNECTOR_VARIABLE["psa"] in environment and self.kantata_secret is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=[self.kantata_secret.secret_arn]
                )
            )
        if CONNECTOR_VARIABLE["erp"] not in environment or self.netsuite_secret is None:
            return
        assert self.concurrency_table is not None and self._timeouts is not None
        self._timeouts.sender_roles.append(Stack.of(self).resolve(role.role_arn))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[self.netsuite_secret.secret_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"],
                resources=[self.concurrency_table.table_arn],
            )
        )


@jsii.implements(IValidation)
class _ErpSendersHaveTimeForACommand:
    """Every function granted a live or dual ERP (`VendorTargets.grant`) has time for one NetSuite command.

    Functions are matched by their role: a CfnFunction's environment is not readable back from Python
    (jsii drops the lazy value), its role and timeout are."""

    def __init__(self, scope: Construct) -> None:
        self._scope = scope
        self.sender_roles: list[Any] = []  # resolved role ARNs of the functions that send ERP commands

    def validate(self) -> list[str]:
        stack = Stack.of(self._scope)
        problems = []
        for construct in stack.node.find_all():
            if not isinstance(construct, lambda_.CfnFunction):
                continue
            if stack.resolve(construct.role) not in self.sender_roles:
                continue
            timeout = float(stack.resolve(construct.timeout) or 3)  # Lambda's default is 3 s
            if timeout < ERP_SENDER_MIN_TIMEOUT_SECONDS:
                problems.append(
                    f"{construct.node.path} sends NetSuite commands with a {timeout:.0f} s timeout; one "
                    f"command needs {ERP_SENDER_MIN_TIMEOUT_SECONDS:.0f} s (pssync.connectors.netsuite: "
                    "NETSUITE_COMMAND_SECONDS + the invocation reserve)"
                )
        return problems
