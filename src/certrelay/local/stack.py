"""Create a translated template's resources in the embedded AWS, as CloudFormation would.

Resources are created in dependency order with every intrinsic resolved. Each supported type is
created for real in moto; policy-only types that moto would not enforce anyway are recorded as
`not_emulated` (see DESIGN.md §8: check those on the template, not here).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import boto3

from certrelay.local import nested
from certrelay.local.http_api import LocalHttpApi, Route
from certrelay.local.intrinsics import (
    Lookup,
    TemplateError,
    evaluate_condition,
    parameter_values,
    references,
    resolve,
)
from certrelay.local.lambdas import LambdaRuntime, LocalFunction
from certrelay.local.template import Template

NOT_EMULATED = {
    # moto evaluates a bucket policy's conditions against its own fake requests (aws:SecureTransport
    # reads false there), so the TLS-only policy would refuse everything: checked on the template.
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Lambda::Permission",
    # alarms and the dashboard watch AWS's own metrics, which the embedded AWS does not emit
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    # the engine invokes functions synchronously; Lambda's async retries and destinations are
    # AWS's own (the template's settings are checked by cfn-lint)
    "AWS::Lambda::EventInvokeConfig",
}


@dataclass
class Rule:
    """An EventBridge rule of the stack: its pattern and the state machines it starts."""

    logical_id: str
    name: str
    pattern: dict[str, Any]
    state_machine_arns: list[str]


@dataclass
class Schedule:
    """An EventBridge Scheduler schedule: the embedded AWS keeps it; the engine fires it."""

    name: str
    expression: str
    target_arn: str
    input: str


@dataclass
class Deployed:
    """What one resource became: its Ref value and attributes."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    """The stack as deployed in the embedded AWS."""

    name: str
    region: str
    account: str
    parameters: dict[str, str]
    resources: dict[str, Deployed] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    state_machines: dict[str, str] = field(default_factory=dict)
    http_apis: dict[str, LocalHttpApi] = field(default_factory=dict)
    integrations: dict[str, str] = field(default_factory=dict)  # integration id -> function
    schedules: dict[str, Schedule] = field(default_factory=dict)
    not_emulated: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    nested: dict[str, Stack] = field(default_factory=dict)  # nested stack's logical id -> it

    def ref(self, logical_id: str) -> str:
        return self.resources[logical_id].ref


def deploy(
    template: Template,
    *,
    name: str,
    region: str,
    account: str,
    parameters: dict[str, str],
    runtime: LambdaRuntime,
    session: boto3.Session | None = None,
    client: Callable[[str], Any] | None = None,
) -> Stack:
    """Create every resource of `template` in moto (which must be active) and return the stack.

    `session`: the credentials to deploy with (another account's assumed role, say); default
    the process's own. `client`: where to get the client of a service in `region` (the
    engine's own, shared with its other work); default one per service made here."""
    cfn = template.cloudformation
    declared = cfn.get("Parameters", {})
    values = parameter_values(declared, parameters)
    stack = Stack(name, region, account, {k: str(v) for k, v in values.items()})
    lookup = _lookup(stack, cfn)
    conditions: dict[str, bool] = {}
    for condition_name, expr in cfn.get("Conditions", {}).items():
        conditions[condition_name] = evaluate_condition(expr, lookup, conditions)
    resources: dict[str, Any] = cfn["Resources"]
    order = _creation_order(resources)

    clients: dict[str, Any] = {}  # one per service: creating a client costs 10-30 ms

    def made_here(service: str) -> Any:
        if service not in clients:
            maker: Any = session.client if session is not None else boto3.client
            clients[service] = maker(service, region_name=region)
        return clients[service]

    client = client or made_here

    creators: dict[str, Callable[..., Deployed]] = {
        "AWS::KMS::Key": _kms_key,
        "AWS::KMS::Alias": _kms_alias,
        "AWS::SNS::Topic": _sns_topic,
        "AWS::SNS::Subscription": _sns_subscription,
        "AWS::SQS::Queue": _sqs_queue,
        "AWS::SQS::QueuePolicy": _sqs_queue_policy,
        "AWS::DynamoDB::Table": _dynamodb_table,
        "AWS::IAM::Role": _iam_role,
        "AWS::IAM::Policy": _iam_policy,
        "AWS::Logs::LogGroup": _log_group,
        "AWS::Lambda::LayerVersion": _layer,
        "AWS::Lambda::Function": _function,
        "AWS::StepFunctions::StateMachine": _state_machine,
        "AWS::Events::Rule": _rule,
        "AWS::Events::EventBus": _event_bus,
        "AWS::Events::EventBusPolicy": _event_bus_policy,
        "AWS::SecretsManager::Secret": _secret,
        "AWS::SecretsManager::ResourcePolicy": _secret_policy,
        "AWS::ApiGatewayV2::Api": _http_api,
        "AWS::ApiGatewayV2::Stage": _http_api_stage,
        "AWS::ApiGatewayV2::Integration": _http_api_integration,
        "AWS::ApiGatewayV2::Route": _http_api_route,
        "AWS::ApiGatewayV2::Authorizer": _http_api_authorizer,
        "AWS::S3::Bucket": _bucket,
        "AWS::SSM::Document": _ssm_document,
        "AWS::IAM::ManagedPolicy": _managed_policy,
        "AWS::Scheduler::Schedule": _schedule,
        "AWS::CloudFormation::Stack": _nested_stack,
    }
    for logical_id in order:
        resource = resources[logical_id]
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        kind = resource["Type"]
        properties = resolve(resource.get("Properties", {}), lookup, conditions)
        creator = creators.get(kind)
        if creator is None:
            if kind not in NOT_EMULATED:
                raise TemplateError(
                    f"{logical_id}: the local engine does not create {kind}; teach "
                    "certrelay.local.stack to, or list it in NOT_EMULATED with the reason"
                )
            stack.not_emulated.append(f"{logical_id} ({kind})")
            stack.resources[logical_id] = Deployed(ref=f"{name}-{logical_id}")
            continue
        context = _Context(stack, template, runtime, logical_id, client)
        stack.resources[logical_id] = creator(context, properties)
    stack.outputs = nested.outputs(cfn, lookup, conditions)
    return stack


def _lookup(stack: Stack, cfn: dict[str, Any]) -> Lookup:
    """How `stack`'s intrinsics resolve: pseudo parameters, parameters, resources created so far."""
    name, region, account = stack.name, stack.region, stack.account
    pseudo = {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::StackName": name,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": nested.stack_id(region, account, name),
    }

    def lookup(logical_id: str, attribute: str | None) -> Any:
        if attribute is None:
            if logical_id in pseudo:
                return pseudo[logical_id]
            if logical_id in stack.parameters:
                value = stack.parameters[logical_id]
                kind = str(cfn.get("Parameters", {}).get(logical_id, {}).get("Type", "String"))
                if kind == "CommaDelimitedList" or kind.startswith("List<"):
                    return [item.strip() for item in value.split(",")]
                return value
            if logical_id in stack.resources:
                return stack.resources[logical_id].ref
        elif logical_id in stack.resources:
            attributes = stack.resources[logical_id].attributes
            if attribute in attributes:
                return attributes[attribute]
        raise TemplateError(f"cannot resolve {logical_id}{'.' + attribute if attribute else ''}")

    return lookup


def _creation_order(resources: dict[str, Any]) -> list[str]:
    """Each resource after those it references or depends on, as CloudFormation creates them."""
    graph = {
        logical_id: {
            ref
            for ref in [*references(r.get("Properties", {})), *_depends_on(r)]
            if ref in resources
        }
        for logical_id, r in resources.items()
    }
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise TemplateError(f"the template has a dependency cycle: {error.args[1]}") from None


@dataclass
class _Context:
    stack: Stack
    template: Template
    runtime: LambdaRuntime
    logical_id: str
    client: Callable[[str], Any]

    def physical_name(self, limit: int = 64) -> str:
        return f"{self.stack.name}-{self.logical_id}"[:limit]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.stack.region}:{self.stack.account}:{resource}"


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def _kms_key(ctx: _Context, p: dict[str, Any]) -> Deployed:
    key = ctx.client("kms").create_key(
        Description=p.get("Description", ""), Policy=json.dumps(p.get("KeyPolicy", {}))
    )["KeyMetadata"]
    return Deployed(ref=key["KeyId"], attributes={"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _kms_alias(ctx: _Context, p: dict[str, Any]) -> Deployed:
    ctx.client("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
    return Deployed(ref=p["AliasName"])


def _sns_topic(ctx: _Context, p: dict[str, Any]) -> Deployed:
    attributes = {k: str(p[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in p}
    name = p.get("TopicName", ctx.physical_name(256))
    arn = ctx.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return Deployed(ref=arn, attributes={"TopicArn": arn, "TopicName": name})


def _sns_subscription(ctx: _Context, p: dict[str, Any]) -> Deployed:
    attributes = {
        k: json.dumps(p[k]) if isinstance(p[k], dict) else str(p[k])
        for k in ("FilterPolicy", "FilterPolicyScope", "RedrivePolicy", "RawMessageDelivery")
        if k in p
    }
    arn = ctx.client("sns").subscribe(
        TopicArn=p["TopicArn"],
        Protocol=p["Protocol"],
        Endpoint=p["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return Deployed(ref=arn)


def _sqs_queue(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("QueueName", ctx.physical_name(80))
    attributes = {
        k: str(p[k]).lower() if isinstance(p[k], bool) else str(p[k])
        for k in ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout")
        if k in p
    }
    url = ctx.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = ctx.arn("sqs", name)
    return Deployed(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


def _sqs_queue_policy(ctx: _Context, p: dict[str, Any]) -> Deployed:
    for url in p["Queues"]:
        ctx.client("sqs").set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
        )
    return Deployed(ref=ctx.physical_name())


def _dynamodb_table(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("TableName", ctx.physical_name(255))
    ddb = ctx.client("dynamodb")
    indexes = (
        {"GlobalSecondaryIndexes": p["GlobalSecondaryIndexes"]}
        if p.get("GlobalSecondaryIndexes")
        else {}
    )
    table = ddb.create_table(
        TableName=name,
        KeySchema=p["KeySchema"],
        AttributeDefinitions=p["AttributeDefinitions"],
        BillingMode=p.get("BillingMode", "PAY_PER_REQUEST"),
        SSESpecification=_table_encryption(p.get("SSESpecification", {})),
        **indexes,
    )["TableDescription"]
    ttl = p.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    return Deployed(ref=name, attributes={"Arn": table["TableArn"]})


def _table_encryption(sse: dict[str, Any]) -> dict[str, Any]:
    encryption: dict[str, Any] = {"Enabled": bool(sse.get("SSEEnabled"))}
    if sse.get("SSEType"):
        encryption["SSEType"] = sse["SSEType"]
    if sse.get("KMSMasterKeyId"):
        encryption["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
    return encryption


def _iam_role(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("RoleName", ctx.physical_name())
    iam = ctx.client("iam")
    role = iam.create_role(
        RoleName=name,
        Path=p.get("Path", "/"),
        AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]),
    )["Role"]
    for policy in p.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            # SAM's policy templates leave out Version; IAM then assumes 2012-10-17 too.
            PolicyDocument=json.dumps({"Version": "2012-10-17", **policy["PolicyDocument"]}),
        )
    return Deployed(ref=name, attributes={"Arn": role["Arn"], "RoleId": role["RoleId"]})


def _iam_policy(ctx: _Context, p: dict[str, Any]) -> Deployed:
    for role in p.get("Roles", []):
        ctx.client("iam").put_role_policy(
            RoleName=role,
            PolicyName=p["PolicyName"],
            PolicyDocument=json.dumps(p["PolicyDocument"]),
        )
    return Deployed(ref=ctx.physical_name())


def _log_group(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("LogGroupName", f"/local/{ctx.physical_name()}")
    kms = {"kmsKeyId": p["KmsKeyId"]} if p.get("KmsKeyId") else {}
    ctx.client("logs").create_log_group(logGroupName=name, **kms)
    return Deployed(ref=name, attributes={"Arn": ctx.arn("logs", f"log-group:{name}:*")})


def _layer(ctx: _Context, p: dict[str, Any]) -> Deployed:
    path = ctx.template.code_path(p.get("Content"))
    name = p.get("LayerName", ctx.logical_id)
    arn = ctx.arn("lambda", f"layer:{name}:1")
    return Deployed(ref=arn, attributes={"LocalPath": str(path) if path else ""})


def _function(ctx: _Context, p: dict[str, Any]) -> Deployed:
    code_dir = ctx.template.code_path(p.get("Code"))
    if code_dir is None or not code_dir.is_dir():
        raise TemplateError(f"{ctx.logical_id}: CodeUri must be a local directory")
    name = p.get("FunctionName", ctx.physical_name())
    environment = {k: str(v) for k, v in p.get("Environment", {}).get("Variables", {}).items()}
    layer_dirs = _layer_dirs(ctx.stack, p.get("Layers", []))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app.py", "# the local engine runs the real handler from the project tree\n")
    arn = ctx.client("lambda").create_function(
        FunctionName=name,
        Runtime=p.get("Runtime", "python3.12"),
        Role=p["Role"],
        Handler=p["Handler"],
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": environment},
        Timeout=int(p.get("Timeout", 3)),
        MemorySize=int(p.get("MemorySize", 128)),
    )["FunctionArn"]
    ctx.runtime.register(
        LocalFunction(
            name=name,
            arn=arn,
            code_dir=code_dir,
            handler=p["Handler"],
            environment=environment,
            layer_dirs=layer_dirs,
            timeout=int(p.get("Timeout", 3)),
            memory=int(p.get("MemorySize", 128)),
        )
    )
    return Deployed(ref=name, attributes={"Arn": arn})


def _layer_dirs(stack: Stack, layer_arns: list[str]) -> list[Path]:
    by_arn = {d.ref: d.attributes.get("LocalPath", "") for d in stack.resources.values()}
    return [Path(by_arn[arn]) for arn in layer_arns if by_arn.get(arn)]


def _state_machine(ctx: _Context, p: dict[str, Any]) -> Deployed:
    definition = p.get("DefinitionString")
    if definition is None:
        definition = json.dumps(p["Definition"])
    for key, value in p.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", json.dumps(str(value))[1:-1])
    name = p.get("StateMachineName", ctx.physical_name(80))
    # EncryptionConfiguration is passed on as given: moto keeps it (describe_state_machine shows
    # it) but encrypts nothing and checks no key policy; the key policies are checked on the
    # template (tests/contract/test_template.py).
    encryption = p.get("EncryptionConfiguration")
    arn = ctx.client("stepfunctions").create_state_machine(
        name=name,
        definition=definition,
        roleArn=p["RoleArn"],
        type=p.get("StateMachineType", "STANDARD"),
        **({"encryptionConfiguration": _sfn_encryption(encryption)} if encryption else {}),
    )["stateMachineArn"]
    ctx.stack.state_machines[ctx.logical_id] = arn
    return Deployed(ref=arn, attributes={"Arn": arn, "Name": name})


def _sfn_encryption(given: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's EncryptionConfiguration in the API's spelling."""
    encryption: dict[str, Any] = {"type": given["Type"]}
    if "KmsKeyId" in given:
        encryption["kmsKeyId"] = given["KmsKeyId"]
    if "KmsDataKeyReusePeriodSeconds" in given:
        encryption["kmsDataKeyReusePeriodSeconds"] = int(given["KmsDataKeyReusePeriodSeconds"])
    return encryption


def _rule(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("Name", ctx.physical_name())
    pattern = p["EventPattern"]
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError as error:
            raise TemplateError(f"{ctx.logical_id}: EventPattern is not JSON: {error}") from None
    events = ctx.client("events")
    bus = {"EventBusName": p["EventBusName"]} if p.get("EventBusName") else {}
    arn = events.put_rule(
        Name=name, EventPattern=json.dumps(pattern), State=p.get("State", "ENABLED"), **bus
    )["RuleArn"]
    targets = p.get("Targets", [])
    if targets:
        events.put_targets(Rule=name, Targets=targets, **bus)
    machines = [t["Arn"] for t in targets if ":states:" in t["Arn"]]
    if p.get("State", "ENABLED") == "ENABLED" and machines:  # Lambda targets: moto_fixes
        ctx.stack.rules.append(Rule(ctx.logical_id, name, pattern, machines))
    return Deployed(ref=name, attributes={"Arn": arn})


def _event_bus(ctx: _Context, p: dict[str, Any]) -> Deployed:
    # moto keeps a bus's policy and evaluates none of it: checked on the template
    events = ctx.client("events")
    arn = events.create_event_bus(Name=p["Name"])["EventBusArn"]
    if p.get("Policy"):
        events.put_permission(EventBusName=p["Name"], Policy=json.dumps(p["Policy"]))
    return Deployed(ref=p["Name"], attributes={"Arn": arn, "Name": p["Name"]})


def _event_bus_policy(ctx: _Context, p: dict[str, Any]) -> Deployed:
    bus = str(p.get("EventBusName", "default")).rsplit("/", 1)[-1]
    events = ctx.client("events")
    if "Statement" in p:
        policy = {"Version": "2012-10-17", "Statement": [p["Statement"]]}
        events.put_permission(EventBusName=bus, Policy=json.dumps(policy))
    else:  # the older shape: one Principal and Action (and a Condition) per resource
        condition = {"Condition": p["Condition"]} if p.get("Condition") else {}
        events.put_permission(
            EventBusName=bus,
            Action=p["Action"],
            Principal=p["Principal"],
            StatementId=p["StatementId"],
            **condition,
        )
    return Deployed(ref=f"{bus}-{p['StatementId']}")


def _secret(ctx: _Context, p: dict[str, Any]) -> Deployed:
    generate = p.get("GenerateSecretString")
    if generate is not None:
        length = int(generate.get("PasswordLength", 32))
        value = secrets.token_urlsafe(length)[:length]
    else:
        value = p.get("SecretString", "")
    kms = {"KmsKeyId": p["KmsKeyId"]} if p.get("KmsKeyId") else {}
    arn = ctx.client("secretsmanager").create_secret(
        Name=p.get("Name", ctx.physical_name(512)), SecretString=value, **kms
    )["ARN"]
    return Deployed(ref=arn, attributes={"Id": arn})


def _secret_policy(ctx: _Context, p: dict[str, Any]) -> Deployed:
    # moto stores the policy and enforces none of it (IAM is not emulated): checked on the template
    ctx.client("secretsmanager").put_resource_policy(
        SecretId=p["SecretId"],
        ResourcePolicy=json.dumps(p["ResourcePolicy"]),
        BlockPublicPolicy=bool(p.get("BlockPublicPolicy", False)),
    )
    return Deployed(ref=p["SecretId"], attributes={"Id": p["SecretId"]})


def _http_api(ctx: _Context, p: dict[str, Any]) -> Deployed:
    if p.get("ProtocolType") != "HTTP":
        raise TemplateError(f"{ctx.logical_id}: the local engine serves HTTP APIs only")
    api_id = f"local{len(ctx.stack.http_apis):05d}"
    api = LocalHttpApi(api_id, account=ctx.stack.account, invoke=ctx.runtime.invoke)
    ctx.stack.http_apis[ctx.logical_id] = api
    endpoint = f"https://{api_id}.execute-api.{ctx.stack.region}.amazonaws.com"
    ctx.runtime.url_rewrites[endpoint] = api.url
    return Deployed(ref=api_id, attributes={"ApiId": api_id, "ApiEndpoint": endpoint})


def _api_for(ctx: _Context, api_id: str) -> LocalHttpApi:
    for api in ctx.stack.http_apis.values():
        if api.api_id == api_id:
            return api
    raise TemplateError(f"{ctx.logical_id}: no HTTP API {api_id}")


def _http_api_stage(ctx: _Context, p: dict[str, Any]) -> Deployed:
    _api_for(ctx, p["ApiId"])
    return Deployed(ref=p.get("StageName", "$default"))


def _http_api_integration(ctx: _Context, p: dict[str, Any]) -> Deployed:
    if p.get("IntegrationType") != "AWS_PROXY" or p.get("PayloadFormatVersion") != "2.0":
        raise TemplateError(f"{ctx.logical_id}: only AWS_PROXY integrations, payload 2.0, run here")
    integration_id = f"int{ctx.logical_id[:20]}"
    ctx.stack.integrations[integration_id] = str(p["IntegrationUri"])
    return Deployed(ref=integration_id, attributes={"IntegrationId": integration_id})


def _http_api_route(ctx: _Context, p: dict[str, Any]) -> Deployed:
    method, path = str(p["RouteKey"]).split(" ", 1)
    integration_id = str(p.get("Target", "")).removeprefix("integrations/")
    function = ctx.stack.integrations.get(integration_id)
    if function is None:
        raise TemplateError(f"{ctx.logical_id}: route target {p.get('Target')} is no integration")
    route = Route(method, path, function, p.get("AuthorizationType", "NONE"))
    _api_for(ctx, p["ApiId"]).routes.append(route)
    return Deployed(ref=f"route{ctx.logical_id[:20]}")


def _http_api_authorizer(ctx: _Context, p: dict[str, Any]) -> Deployed:
    ctx.stack.not_emulated.append(f"{ctx.logical_id} (JWT authorizer: no identity provider here)")
    return Deployed(ref=f"auth{ctx.logical_id[:20]}")


def _bucket(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("BucketName", ctx.physical_name(63).lower())
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=name)
    if p.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if "BucketEncryption" in p:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": r["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
                    **(
                        {"KMSMasterKeyID": r["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]}
                        if "KMSMasterKeyID" in r["ServerSideEncryptionByDefault"]
                        else {}
                    ),
                },
                "BucketKeyEnabled": bool(r.get("BucketKeyEnabled")),
            }
            for r in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"]
        )
    return Deployed(ref=name, attributes={"Arn": f"arn:aws:s3:::{name}"})


def _ssm_document(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("Name", ctx.physical_name(128))
    ctx.client("ssm").create_document(
        Name=name,
        Content=json.dumps(p["Content"]),
        DocumentType=p.get("DocumentType", "Command"),
        DocumentFormat="JSON",
    )
    return Deployed(ref=name)


def _managed_policy(ctx: _Context, p: dict[str, Any]) -> Deployed:
    arn = ctx.client("iam").create_policy(
        PolicyName=p.get("ManagedPolicyName", ctx.physical_name(128)),
        PolicyDocument=json.dumps(p["PolicyDocument"]),
    )["Policy"]["Arn"]
    return Deployed(ref=arn)


def _nested_stack(ctx: _Context, p: dict[str, Any]) -> Deployed:
    """A nested template (SAM's Application): deployed in its scope; its Outputs are attributes."""
    child = nested.deploy_child(ctx.stack, ctx.template, ctx.logical_id, p, ctx.runtime, deploy)
    outputs = {f"Outputs.{k}": v for k, v in child.outputs.items()}
    ref = nested.stack_id(child.region, child.account, child.name)
    return Deployed(ref=ref, attributes=outputs)


def _schedule(ctx: _Context, p: dict[str, Any]) -> Deployed:
    name = p.get("Name", ctx.physical_name(64))
    target = p["Target"]
    arn = ctx.client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=p["ScheduleExpression"],
        ScheduleExpressionTimezone=p.get("ScheduleExpressionTimezone", "UTC"),
        FlexibleTimeWindow=p.get("FlexibleTimeWindow", {"Mode": "OFF"}),
        Target={"Arn": target["Arn"], "RoleArn": target["RoleArn"]},
    )["ScheduleArn"]
    ctx.stack.schedules[ctx.logical_id] = Schedule(
        name, p["ScheduleExpression"], target["Arn"], target.get("Input", "{}")
    )
    return Deployed(ref=name, attributes={"Arn": arn})
