"""Nested stacks: SAM's `AWS::Serverless::Application`, which becomes `AWS::CloudFormation::Stack`.

template.yaml keeps its operations (alarms, the dashboard) and the generated install document in
templates/*.yaml, included by `Location:`. The local engine deploys such a child as
CloudFormation does (`deploy_child`): the parameters the parent passes, resolved in the parent;
the child's resources created in a scope of their own (its conditions, its parameters' defaults,
`<stack>-<LogicalId>` as its stack name); its Outputs, resolved in that scope, given back to the
parent as the attributes `Outputs.<Name>` (`!GetAtt Child.Outputs.Name`).

`whole_stack` is the static view for checks on the template (tests/contract): the translated
parent with each nested template's resources put in place of its stack, each child parameter
replaced by what the parent passes, and each `Child.Outputs.Name` by the child's output value:
the one template a check read before the split, written the same way.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certrelay.local.intrinsics import (
    SUB_VARIABLE,
    Lookup,
    TemplateError,
    parameter_values,
    resolve,
)
from certrelay.local.template import Template, translate

if TYPE_CHECKING:
    from certrelay.local.lambdas import LambdaRuntime
    from certrelay.local.stack import Stack

STACK_TYPE = "AWS::CloudFormation::Stack"


def stack_id(region: str, account: str, name: str) -> str:
    """A stack's ARN (`AWS::StackId`, and a nested stack's Ref) in the embedded AWS."""
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/local"


def child_template(parent: Template, logical_id: str, url: Any) -> Path:
    """The local template file a nested stack's TemplateURL names (as `translate` packaged it)."""
    path = parent.template_path(url)
    if path is None or not path.is_file():
        raise TemplateError(
            f"{logical_id}: the local engine deploys nested templates from the project only "
            f"(a local Location); cannot read {url!r}"
        )
    return path


def deploy_child(
    parent: Stack,
    template: Template,
    logical_id: str,
    properties: dict[str, Any],
    runtime: LambdaRuntime,
    deploy: Callable[..., Stack],
) -> Stack:
    """Deploy the nested stack `logical_id` of `parent` (its properties resolved) with `deploy`.

    What the engine drives is the parent's: the child's rules, state machines, HTTP APIs and
    schedules join the parent's (under `<LogicalId>.` when keyed), as on AWS they are the
    account's, whichever stack created them."""
    path = child_template(template, logical_id, properties.get("TemplateURL"))
    parameters = {
        name: ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        for name, value in (properties.get("Parameters") or {}).items()
    }
    child = deploy(
        translate(path, parameters, parent.region),
        name=f"{parent.name}-{logical_id}",
        region=parent.region,
        account=parent.account,
        parameters=parameters,
        runtime=runtime,
    )
    parent.nested[logical_id] = child
    parent.rules.extend(child.rules)
    parent.state_machines.update({f"{logical_id}.{k}": v for k, v in child.state_machines.items()})
    parent.http_apis.update({f"{logical_id}.{k}": v for k, v in child.http_apis.items()})
    parent.schedules.update({f"{logical_id}.{k}": v for k, v in child.schedules.items()})
    parent.not_emulated.extend(f"{logical_id}/{entry}" for entry in child.not_emulated)
    return child


def outputs(cfn: dict[str, Any], lookup: Lookup, conditions: Mapping[str, bool]) -> dict[str, str]:
    """A deployed stack's Outputs (those whose Condition holds), as CloudFormation gives them:
    strings, a list joined with commas."""
    values: dict[str, str] = {}
    for name, output in (cfn.get("Outputs") or {}).items():
        if "Condition" in output and not conditions[output["Condition"]]:
            continue
        value = resolve(output["Value"], lookup, conditions)
        values[name] = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return values


# --- the static view: one template, as before the split ------------------------------------------


def whole_stack(
    path: Path, parameters: dict[str, str], region: str, *, inline_definitions: bool = True
) -> dict[str, Any]:
    """The translated template at `path` with its nested templates' resources in place of their
    stacks (recursively), child parameters and parent `Outputs.*` references substituted."""
    template = translate(path, parameters, region, inline_definitions=inline_definitions)
    cfn = copy.deepcopy(template.cloudformation)
    resources: dict[str, Any] = cfn["Resources"]
    references: dict[str, Any] = {}  # "<Stack>.Outputs.<Name>" -> the child's output value
    for logical_id, resource in list(resources.items()):
        if resource.get("Type") != STACK_TYPE:
            continue
        if "Condition" in resource:
            raise TemplateError(f"{logical_id}: whole_stack does not inline a conditional stack")
        properties = resource.get("Properties", {})
        child_path = child_template(template, logical_id, properties.get("TemplateURL"))
        child = whole_stack(child_path, {}, region, inline_definitions=inline_definitions)
        bindings = parameter_values(
            child.get("Parameters") or {}, properties.get("Parameters") or {}, who=logical_id
        )
        clashes = (set(child["Resources"]) | set(child.get("Conditions", {}))) & (
            set(resources) | set(cfn.get("Conditions", {}))
        )
        if clashes:
            raise TemplateError(f"{logical_id}: names in both templates: {sorted(clashes)}")
        del resources[logical_id]
        resources.update(substitute(child["Resources"], bindings))
        if child.get("Conditions"):
            cfn.setdefault("Conditions", {}).update(substitute(child["Conditions"], bindings))
        for name, output in (child.get("Outputs") or {}).items():
            references[f"{logical_id}.Outputs.{name}"] = substitute(output["Value"], bindings)
    substituted: dict[str, Any] = substitute(cfn, references)
    leftover = [ref for ref in _named(substituted) if ".Outputs." in ref]
    if leftover:
        raise TemplateError(f"no such nested stack output: {', '.join(sorted(set(leftover)))}")
    return substituted


def substitute(value: Any, names: Mapping[str, Any]) -> Any:
    """`value` with every Ref, Fn::GetAtt and Fn::Sub variable named in `names` (a parameter,
    or "<Stack>.Outputs.<Name>") replaced by its expression."""
    if isinstance(value, list):
        return [substitute(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str) and arg in names:
            return copy.deepcopy(names[arg])
        if key == "Fn::GetAtt":
            dotted = arg if isinstance(arg, str) else ".".join(str(a) for a in arg)
            if dotted in names:
                return copy.deepcopy(names[dotted])
        if key == "Fn::Sub":
            return _substitute_sub(arg, names)
    return {k: substitute(v, names) for k, v in value.items()}


def _substitute_sub(arg: Any, names: Mapping[str, Any]) -> dict[str, Any]:
    """A Fn::Sub with its `${Name}` variables substituted: a Ref or GetAtt is written back as a
    variable (`${Resource}`, `${Resource.Attribute}`), a string inline, anything else through
    Fn::Sub's variable map."""
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], dict(arg[1]))
    variables = {k: substitute(v, names) for k, v in variables.items()}
    extra: dict[str, Any] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables or name not in names:
            return match.group(0)
        expression = names[name]
        if isinstance(expression, str):
            return expression.replace("${", "${!")
        if isinstance(expression, dict) and list(expression) == ["Ref"]:
            return "${" + str(expression["Ref"]) + "}"
        if isinstance(expression, dict) and list(expression) == ["Fn::GetAtt"]:
            target = expression["Fn::GetAtt"]
            return "${" + (target if isinstance(target, str) else ".".join(target)) + "}"
        variable = re.sub(r"[^A-Za-z0-9]", "", name)
        extra[variable] = copy.deepcopy(expression)
        return "${" + variable + "}"

    substituted = SUB_VARIABLE.sub(replace, text)
    variables.update(extra)
    return {"Fn::Sub": [substituted, variables] if variables else substituted}


def _named(value: Any) -> list[str]:
    """Every dotted name a Ref, Fn::GetAtt or Fn::Sub variable in `value` names."""
    if isinstance(value, list):
        return [name for item in value for name in _named(item)]
    if not isinstance(value, dict):
        return []
    found: list[str] = []
    for key, arg in value.items():
        if key == "Fn::GetAtt":
            found.append(arg if isinstance(arg, str) else ".".join(str(a) for a in arg))
        elif key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            found += SUB_VARIABLE.findall(text)
            found += _named(variables)
        else:
            found += _named(arg)
    return found
