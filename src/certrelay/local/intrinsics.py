"""CloudFormation intrinsic functions, resolved the way CloudFormation would for one stack.

Only what a SAM-translated template uses: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select,
Fn::Split, Fn::If with Conditions, Fn::Equals/Not/And/Or. Anything else is a loud error, so the
local engine never silently deploys something different from what CloudFormation would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(Exception):
    """The template uses something the local engine cannot resolve."""


Lookup = Callable[[str, str | None], Any]
"""(logical id or parameter, attribute or None for Ref) -> value."""


NO_VALUE = object()
"""What `Ref: AWS::NoValue` resolves to: the property or list item disappears."""


def resolve(value: Any, lookup: Lookup, conditions: Mapping[str, bool]) -> Any:
    """Return `value` with every intrinsic function replaced by its result."""
    if isinstance(value, list):
        items = (resolve(item, lookup, conditions) for item in value)
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else lookup(arg, None)
        if key == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return lookup(name, attribute)
        if key == "Fn::Sub":
            return _sub(arg, lookup, conditions)
        if key == "Fn::Join":
            separator, items = resolve(arg, lookup, conditions)
            return str(separator).join(str(i) for i in items)
        if key == "Fn::Select":
            index, items = resolve(arg, lookup, conditions)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = resolve(arg, lookup, conditions)
            return text.split(separator)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return resolve(when_true if conditions[name] else when_false, lookup, conditions)
        if key.startswith("Fn::"):
            raise TemplateError(f"the local engine does not resolve {key}")
    resolved = {k: resolve(v, lookup, conditions) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def evaluate_condition(expr: Any, lookup: Lookup, conditions: Mapping[str, bool]) -> bool:
    """Evaluate one entry of the template's Conditions section."""
    if isinstance(expr, dict) and len(expr) == 1:
        ((key, arg),) = expr.items()
        if key == "Condition":
            return conditions[arg]
        if key == "Fn::Equals":
            left, right = (resolve(a, lookup, conditions) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not evaluate_condition(arg[0], lookup, conditions)
        if key == "Fn::And":
            return all(evaluate_condition(a, lookup, conditions) for a in arg)
        if key == "Fn::Or":
            return any(evaluate_condition(a, lookup, conditions) for a in arg)
    raise TemplateError(f"cannot evaluate condition {expr!r}")


def references(value: Any) -> Iterator[str]:
    """Yield every logical id or parameter name that `value` refers to."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                yield (arg.split(".", 1) if isinstance(arg, str) else arg)[0]
            elif key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                for name in SUB_VARIABLE.findall(text):
                    if name.split(".", 1)[0] not in variables:
                        yield name.split(".", 1)[0]
                yield from references(variables)
            else:
                yield from references(arg)


def _sub(arg: Any, lookup: Lookup, conditions: Mapping[str, bool]) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else arg
    values = {k: resolve(v, lookup, conditions) for k, v in variables.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return str(lookup(logical_id, attribute))
        return str(lookup(name, None))

    return SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def parameter_values(
    declared: Mapping[str, Any], given: Mapping[str, Any], *, who: str | None = None
) -> dict[str, Any]:
    """Each declared parameter's value: the one given, else its Default.

    `who` names the parent stack resource that passes `given` to a nested template; without it
    the values come from the deployer. Undeclared or missing values are refused."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        said = f"{who} passes undeclared" if who else "unknown template"
        raise TemplateError(f"{said} parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
        elif who:
            raise TemplateError(f"{who} passes no value for its parameter {name}")
        else:
            raise TemplateError(f"template parameter {name} needs a value")
    return values
