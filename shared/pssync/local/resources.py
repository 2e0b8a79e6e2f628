"""Create the template's resources on the moto server, and remember how to resolve references to them.

Only the resource types the runtime needs are created; IAM, logs, alarms and the like have no local
behaviour and resolve to placeholder names so references to them still work.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from pssync.local.intrinsics import ACCOUNT_ID, REGION, resolve
from pssync.local.lambda_host import HostedFunction
from pssync.local.schedules import ScheduledTarget

FUNCTION_METADATA_KEY = "pssync:function"


@dataclass
class EventSourceMapping:
    queue_url: str
    function_name: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class HttpRoute:
    method: str
    path: str  # e.g. /webhooks/{source}
    function_name: str


@dataclass
class LocalResources:
    """Physical names and attributes by logical id, plus what the runtime wires by hand."""

    template: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    functions: dict[str, HostedFunction] = field(default_factory=dict)
    mappings: list[EventSourceMapping] = field(default_factory=list)
    routes: list[HttpRoute] = field(default_factory=list)
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> url
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> arn
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> name
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> name
    buckets: dict[str, str] = field(default_factory=dict)  # logical id -> name
    schedules: list[ScheduledTarget] = field(default_factory=list)  # rules moto stores but never fires
    execution_role_arn: str = ""

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template["Resources"])

    def of_type(self, cfn_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [(lid, r) for lid, r in self.resources.items() if r["Type"] == cfn_type]

    def ref(self, logical_id: str) -> Any:
        if logical_id in self.refs:
            return self.refs[logical_id]
        if logical_id in self.template.get("Parameters", {}):
            return self.template["Parameters"][logical_id].get("Default", "")
        return f"local-{logical_id}"  # IAM roles, log groups...: no local behaviour

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        if attribute == "Arn":
            return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
        return f"local-{logical_id}-{attribute}"

    def resolve(self, value: Any) -> Any:
        return resolve(value, self.ref, self.get_att)


def _physical_name(logical_id: str, limit: int = 64) -> str:
    return logical_id[:limit]


def create_resources(template: dict[str, Any], clients: dict[str, Any]) -> LocalResources:
    """Create in dependency order: secrets, tables, bus, queues, functions, state machines, rules."""
    res = LocalResources(template=template)
    res.execution_role_arn = _execution_role(clients["iam"])
    _secrets(res, clients["secretsmanager"])
    _tables(res, clients["dynamodb"])
    _buckets(res, clients["s3"])
    _buses(res, clients["events"])
    _archives(res, clients["events"])
    _queues(res, clients["sqs"])
    _name_functions_and_state_machines(res)  # they reference each other's ARNs
    _functions(res, clients["lambda"])
    _state_machines(res, clients["stepfunctions"])
    _rules(res, clients["events"])
    _event_source_mappings(res)
    _routes(res)
    return res


def _execution_role(iam: Any) -> str:
    # moto checks that a role exists; permissions are not evaluated locally (the template's
    # least-privilege roles are checked by the infrastructure tests instead).
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return str(
        iam.create_role(RoleName="pssync-local-execution", AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
    )


def _secrets(res: LocalResources, sm: Any) -> None:
    for logical_id, resource in res.of_type("AWS::SecretsManager::Secret"):
        props = resource.get("Properties", {})
        name = res.resolve(props.get("Name", logical_id))
        # The value is set by the runtime from the local secrets file, like an operator would in AWS.
        arn = sm.create_secret(Name=name, SecretString=json.dumps({}))["ARN"]
        res.refs[logical_id] = arn
        res.attributes[(logical_id, "Id")] = arn
        res.secrets[logical_id] = name


def _tables(res: LocalResources, dynamodb: Any) -> None:
    for logical_id, resource in res.of_type("AWS::DynamoDB::Table"):
        props = res.resolve(resource["Properties"])
        name = props.get("TableName", _physical_name(logical_id, 255))
        dynamodb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        res.refs[logical_id] = name
        res.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        res.tables[logical_id] = name


_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize")


def _queues(res: LocalResources, sqs: Any) -> None:
    queues = res.of_type("AWS::SQS::Queue")
    tagged: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in queues:
        props = resource.get("Properties", {})
        name = props.get("QueueName", _physical_name(logical_id, 80))
        attributes = {k: str(props[k]) for k in _QUEUE_ATTRIBUTES if k in props}
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        tagged[logical_id] = props.get("Tags", [])
        res.refs[logical_id] = url
        res.attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        res.attributes[(logical_id, "QueueName")] = name
        res.attributes[(logical_id, "QueueUrl")] = url
        res.queues[logical_id] = url
    # Redrive policies and tags reference other resources (queue URLs, the bus): set them once all exist.
    for logical_id, tags in tagged.items():
        if tags:
            resolved = res.resolve(tags)
            sqs.tag_queue(QueueUrl=res.queues[logical_id], Tags={t["Key"]: str(t["Value"]) for t in resolved})
    for logical_id, resource in queues:
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            sqs.set_queue_attributes(
                QueueUrl=res.queues[logical_id],
                Attributes={"RedrivePolicy": json.dumps(res.resolve(redrive))},
            )


def _buckets(res: LocalResources, s3: Any) -> None:
    for logical_id, resource in res.of_type("AWS::S3::Bucket"):
        name = resource.get("Properties", {}).get("BucketName") or f"pssync-local-{logical_id.lower()}"[:63]
        s3.create_bucket(Bucket=name)
        res.refs[logical_id] = name
        res.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        res.buckets[logical_id] = name


def _buses(res: LocalResources, events: Any) -> None:
    for logical_id, resource in res.of_type("AWS::Events::EventBus"):
        props = res.resolve(resource["Properties"])
        name = props["Name"]
        extra: dict[str, str] = {}
        if "EventSourceName" in props:
            # A partner event bus (Salesforce Event Relay) carries its partner event source's name, and
            # that source must exist first: on AWS the partner (Salesforce) creates it in the account when
            # the Event Relay is set up; locally we play the partner (moto refuses the bus otherwise).
            source_name = props["EventSourceName"]
            accept_partner_bus_names()
            events.create_partner_event_source(Name=source_name, Account=ACCOUNT_ID)
            extra["EventSourceName"] = source_name
        arn = events.create_event_bus(Name=name, **extra)["EventBusArn"]
        res.refs[logical_id] = name
        res.attributes[(logical_id, "Arn")] = arn
        res.attributes[(logical_id, "Name")] = name


def _archives(res: LocalResources, events: Any) -> None:
    """The bus archive: moto keeps every matching event, which `pssync events replay` reads back and puts on
    the bus again (moto's own StartReplay ignores the window and every rule's pattern)."""
    for logical_id, resource in res.of_type("AWS::Events::Archive"):
        props = res.resolve(resource["Properties"])
        name = props.get("ArchiveName") or _physical_name(logical_id, 48)  # EventBridge's limit
        kwargs: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if props.get("RetentionDays") is not None:
            kwargs["RetentionDays"] = int(props["RetentionDays"])
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        events.create_archive(**kwargs)
        res.refs[logical_id] = name


def accept_partner_bus_names() -> None:
    """Let moto address a bus named `aws.partner/...` by its name, as EventBridge does.

    moto 5.2 reduces every `EventBusName` of PutRule, PutTargets, PutEvents, ListRules... to the text after
    its last `/` (right for an ARN's `event-bus/<name>`, wrong for a partner bus name, which contains `/`):
    `aws.partner/salesforce.com/<org>/<channel>` became `<channel>` and "does not exist". Names are kept
    whole; ARNs still give the part after `event-bus/`. Patched once, process-wide, like the Lambda host.
    """
    from moto.events.models import EventsBackend

    if getattr(EventsBackend, "_pssync_partner_bus_names", False):
        return

    def _normalize_event_bus_arn(self: Any, event_bus_arn: str | None) -> str:
        if event_bus_arn is None:
            return "default"
        if event_bus_arn.startswith("arn:"):
            return event_bus_arn.split(":event-bus/", 1)[-1]
        return event_bus_arn

    EventsBackend._normalize_event_bus_arn = _normalize_event_bus_arn  # type: ignore[method-assign]
    EventsBackend._pssync_partner_bus_names = True  # type: ignore[attr-defined]


def _placeholder_zip() -> bytes:
    # moto stores a code package; the real code runs from functions/<folder> through the Lambda host.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "handler.py", "def handler(event, context):\n    raise RuntimeError('local host only')\n"
        )
    return buffer.getvalue()


def _name_functions_and_state_machines(res: LocalResources) -> None:
    for logical_id, resource in res.of_type("AWS::Lambda::Function"):
        if FUNCTION_METADATA_KEY not in resource.get("Metadata", {}):
            continue  # CDK-internal helpers (log retention, custom resources) have no local behaviour
        name = resource["Properties"].get("FunctionName", _physical_name(logical_id))
        res.refs[logical_id] = name
        res.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    for logical_id, resource in res.of_type("AWS::StepFunctions::StateMachine"):
        name = resource["Properties"].get("StateMachineName", _physical_name(logical_id, 80))
        arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
        res.refs[logical_id] = arn
        res.attributes[(logical_id, "Arn")] = arn
        res.attributes[(logical_id, "Name")] = name


def _functions(res: LocalResources, lam: Any) -> None:
    code = _placeholder_zip()
    for logical_id, resource in res.of_type("AWS::Lambda::Function"):
        folder = resource.get("Metadata", {}).get(FUNCTION_METADATA_KEY)
        if folder is None:
            continue
        props = resource["Properties"]
        name = res.refs[logical_id]
        environment = {
            k: str(v) for k, v in res.resolve(props.get("Environment", {}).get("Variables", {})).items()
        }
        reserved = res.resolve(props.get("ReservedConcurrentExecutions"))
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=res.execution_role_arn,
            Handler=props.get("Handler", "handler.handler"),
            Code={"ZipFile": code},
            Timeout=int(props.get("Timeout", 30)),
            MemorySize=int(props.get("MemorySize", 256)),
            Environment={"Variables": environment},
        )
        res.functions[name] = HostedFunction(
            name=name,
            folder=folder,
            handler=props.get("Handler", "handler.handler"),
            environment=environment,
            timeout_seconds=int(props.get("Timeout", 30)),
            memory_mb=int(props.get("MemorySize", 256)),
            reserved_concurrency=None if reserved is None else int(reserved),
        )


def _state_machines(res: LocalResources, sfn: Any) -> None:
    for logical_id, resource in res.of_type("AWS::StepFunctions::StateMachine"):
        props = resource["Properties"]
        definition = res.resolve(props["DefinitionString"]) if "DefinitionString" in props else None
        if definition is None:
            definition = json.dumps(res.resolve(props["Definition"]))
        substitutions = res.resolve(props.get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        name = res.attributes[(logical_id, "Name")]
        arn = sfn.create_state_machine(
            name=name,
            definition=definition,
            roleArn=res.execution_role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]
        if arn != res.refs[logical_id]:
            raise RuntimeError(f"moto named state machine {name} {arn}, expected {res.refs[logical_id]}")
        res.state_machines[logical_id] = arn


def _rules(res: LocalResources, events: Any) -> None:
    function_names = {
        res.attributes[(lid, "Arn")]: name
        for lid, name in res.refs.items()
        if (lid, "Arn") in res.attributes and res.attributes[(lid, "Arn")].startswith("arn:aws:lambda:")
    }
    for logical_id, resource in res.of_type("AWS::Events::Rule"):
        props = res.resolve(resource["Properties"])
        if "ScheduleExpression" in props:
            for target in props.get("Targets", []):
                if target.get("Arn") in function_names:
                    res.schedules.append(
                        ScheduledTarget(
                            logical_id, props["ScheduleExpression"], function_names[target["Arn"]]
                        )
                    )
        rule_name = props.get("Name") or f"rule-{abs(hash(json.dumps(props, sort_keys=True))) % 10**8}"
        bus = props.get("EventBusName", "default")
        kwargs: dict[str, Any] = {
            "Name": rule_name,
            "EventBusName": bus,
            "State": props.get("State", "ENABLED"),
        }
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        events.put_rule(**kwargs)
        targets = []
        for target in props.get("Targets", []):
            entry = {
                k: v
                for k, v in target.items()
                if k
                in ("Id", "Arn", "Input", "InputPath", "DeadLetterConfig", "RetryPolicy", "SqsParameters")
            }
            targets.append(entry)
        if targets:
            events.put_targets(Rule=rule_name, EventBusName=bus, Targets=targets)


def _event_source_mappings(res: LocalResources) -> None:
    arn_to_url = {res.attributes[(lid, "Arn")]: url for lid, url in res.queues.items()}
    for _, resource in res.of_type("AWS::Lambda::EventSourceMapping"):
        props = res.resolve(resource["Properties"])
        source_arn = props["EventSourceArn"]
        if source_arn not in arn_to_url:
            raise ValueError(f"event source {source_arn} is not a queue of this template")
        res.mappings.append(
            EventSourceMapping(
                queue_url=arn_to_url[source_arn],
                function_name=str(props["FunctionName"]).rsplit(":", 1)[-1],
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
            )
        )


def _routes(res: LocalResources) -> None:
    """API Gateway REST methods: path from the resource tree, function from the integration URI."""
    resources = res.resources
    rest_api_ids = {lid for lid, r in resources.items() if r["Type"] == "AWS::ApiGateway::RestApi"}

    def path_of(resource_ref: Any) -> str:
        if isinstance(resource_ref, dict) and "Fn::GetAtt" in resource_ref:
            return ""  # the API's root resource
        logical_id = resource_ref["Ref"]
        if logical_id in rest_api_ids:
            return ""
        props = resources[logical_id]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    for _, resource in res.of_type("AWS::ApiGateway::Method"):
        props = resource["Properties"]
        integration = props.get("Integration", {})
        if integration.get("Type") != "AWS_PROXY":
            continue
        uri = str(res.resolve(integration["Uri"]))
        function_name = uri.split(":function:", 1)[1].split("/", 1)[0]
        res.routes.append(
            HttpRoute(
                method=props["HttpMethod"],
                path=path_of(props["ResourceId"]) or "/",
                function_name=function_name,
            )
        )
