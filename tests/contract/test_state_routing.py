"""Every Lambda Task state is one hop from its code: its function's routing table names it.

The ASL's Task states (those inside Map item processors too, in both state machines: the
lifecycle and the organisation sweep) that invoke a Lambda function pass their own name as the
payload's `state`. The function is found as a reader would find it: the state's
`${…FunctionArn}` placeholder → the state machine's DefinitionSubstitutions →
the template's logical id → its CodeUri, functions/<name>/. That function's app.py holds one
table `ROUTES = {state name: callable in certrelay.tasks.<name>}` with exactly one entry per
state invoking it, and no entry for any other state. A function serving a single state needs
no table (SINGLE_STATE here); the rest are invoked by no state at all (OUTSIDE_THE_WORKFLOW).
Non-Lambda Task states (SNS, DynamoDB, EventBridge, aws-sdk) are exempt.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# the lifecycle, and the organisation sweep (hub mode): both route their states by name
ASL_FILES = ("statemachines/certificate_lifecycle.asl.json", "statemachines/org_sweep.asl.json")
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
SINGLE_STATE = {"triage": "Triage Event", "export": "Export Certificate"}
# the HTTP API, the SSM rule, and the two schedules
OUTSIDE_THE_WORKFLOW = {"approval", "install_callback", "sweep", "digest"}
STATE_NAME = "$$.State.Name"


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with CloudFormation's short tags, each read as its long form ({"Fn::Sub": …}).
    libyaml's parser where PyYAML has it: the template is read as each xdist worker collects
    this module, 0.16 s of CPU with the pure-Python parser, 0.02 s with libyaml (same document)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def _substitutions(asl_file: str) -> dict[str, Any]:
    """The DefinitionSubstitutions of the state machine whose definition is `asl_file`."""
    for resource in TEMPLATE["Resources"].values():
        properties = resource.get("Properties") or {}
        location = properties.get("DefinitionS3Location") or properties.get("DefinitionUri")
        if location == asl_file:
            return dict(properties["DefinitionSubstitutions"])
    raise AssertionError(f"no state machine in template.yaml is defined by {asl_file}")


def _placeholder(value: Any, substitutions: dict[str, Any]) -> Any:
    """A whole-string `${Name}` replaced by its substitution; anything else as it is."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return substitutions[value[2:-1]]
    return value


def _is_lambda_invoke(resource: Any, substitutions: dict[str, Any]) -> bool:
    text = json.dumps(_placeholder(resource, substitutions))
    return ":states:::lambda:invoke" in text or ":lambda:" in text


def _function_dir(function_name: Any, substitutions: dict[str, Any]) -> str:
    """functions/<name> of the template function a FunctionName placeholder points at."""
    value = _placeholder(function_name, substitutions)
    target = value.get("Fn::GetAtt") or value.get("Ref") if isinstance(value, dict) else None
    logical_id = target.split(".")[0] if isinstance(target, str) else (target or [None])[0]
    assert logical_id in TEMPLATE["Resources"], f"{function_name} names no template resource"
    code_uri = str(TEMPLATE["Resources"][logical_id]["Properties"]["CodeUri"]).rstrip("/")
    assert code_uri.startswith("functions/"), f"{logical_id}'s CodeUri is {code_uri}"
    return code_uri.removeprefix("functions/")


def _all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        blocks = [processor] if processor else []
        for block in [*blocks, *state.get("Branches", [])]:
            yield from _all_states(block["States"])


def lambda_tasks() -> dict[str, tuple[str, dict[str, Any]]]:
    """{state name: (function directory, the state's Parameters)} for every Lambda Task."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for asl_file in ASL_FILES:
        asl, substitutions = json.loads((ROOT / asl_file).read_text()), _substitutions(asl_file)
        for name, state in _all_states(asl["States"]):
            if state["Type"] != "Task" or not _is_lambda_invoke(state["Resource"], substitutions):
                continue
            parameters = state.get("Parameters") or state.get("Arguments") or {}
            assert name not in found, f"two states are named {name!r}"
            found[name] = (_function_dir(parameters["FunctionName"], substitutions), parameters)
    return found


TASKS = lambda_tasks()


def routes_of(function: str) -> dict[str, Any] | None:
    """functions/<function>/app.py's ROUTES, or None when it has none."""
    module = importlib.import_module(f"functions.{function}.app")
    routes = getattr(module, "ROUTES", None)
    return None if routes is None else dict(routes)


def table_keys_as_written(function: str) -> list[str]:
    """The keys of the ROUTES dict literal as the file spells them (a repeated key shows)."""
    tree = ast.parse((ROOT / "functions" / function / "app.py").read_text())
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "ROUTES" for t in targets):
            assert isinstance(node.value, ast.Dict), f"{function}: ROUTES is not a dict literal"
            return [ast.literal_eval(key) for key in node.value.keys if key is not None]
    raise AssertionError(f"functions/{function}/app.py has no ROUTES literal")


def invokers(function: str) -> set[str]:
    return {state for state, (name, _) in TASKS.items() if name == function}


def test_the_walk_finds_the_lambda_tasks_at_the_root_and_inside_the_map():
    assert TASKS["Triage Event"][0] == "triage"
    assert TASKS["Find Window"][0] == "distribute"
    assert TASKS["Send Install Command"][0] == "distribute", "a Map item state is walked"
    assert "Record Event" not in TASKS, "a DynamoDB task is not a Lambda task"
    assert "Send Email" not in TASKS, "an SNS task inside a Map is not a Lambda task"
    assert TASKS["Sweep Pair"][0] == "org_sweep", "the org sweep's Distributed Map is walked"


def test_every_function_is_routed_single_state_or_outside_the_workflow():
    for function in FUNCTIONS:
        kinds = [
            routes_of(function) is not None,
            function in SINGLE_STATE,
            function in OUTSIDE_THE_WORKFLOW,
        ]
        assert sum(kinds) == 1, f"functions/{function}: routed, single-state or outside: {kinds}"


@pytest.mark.parametrize("state", sorted(TASKS))
def test_every_lambda_task_has_exactly_one_entry_in_its_functions_table(state: str):
    function, parameters = TASKS[state]
    assert parameters["Payload"].get("state.$") == STATE_NAME, f"{state} does not pass its name"
    routes = routes_of(function)
    if routes is None:
        assert SINGLE_STATE.get(function) == state, f"{function} has no table, yet serves {state}"
        assert invokers(function) == {state}, f"{function} serves {sorted(invokers(function))}"
        return
    assert table_keys_as_written(function).count(state) == 1, f"{function}: {state} not once"
    assert callable(routes[state])
    assert routes[state].__module__ == f"certrelay.tasks.{function}", (
        f"{state}'s code is {routes[state].__module__}, not certrelay.tasks.{function}"
    )


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f not in SINGLE_STATE])
def test_no_table_names_a_state_that_does_not_invoke_its_function(function: str):
    routes = routes_of(function) or {}
    assert set(routes) == invokers(function), (
        f"functions/{function}: table {sorted(routes)} != invoking states "
        f"{sorted(invokers(function))}"
    )


def test_the_single_state_functions_name_real_states():
    for function, state in SINGLE_STATE.items():
        assert TASKS.get(state, ("",))[0] == function, f"{state} does not invoke {function}"
