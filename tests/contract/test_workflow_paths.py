"""Every path the ASL reads exists on the workflow payload's model, at the state that reads it.

Paths are read by `….$` parameters (plain or inside intrinsic functions), Choice `Variable`s,
ItemsPath, *SecondsPath, MaxConcurrencyPath, ErrorPath, CausePath and TimestampPath. A root
state reads `Workflow`; a state inside Distribute Certificate's item processor reads
`DistributionItem` (plus the error a Catch put next to it); a state inside Notify Owners reads
`OwnerMailItem` (the mail, its marker); a Map's ItemSelector reads the Map's input.
ResultSelectors of the states whose function answers with a certrelay model
are checked against that model.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from certrelay import workflow
from certrelay.workflow import (
    DistributionItem,
    ExportResult,
    OwnerMailItem,
    StateError,
    TargetResult,
    WindowOpening,
    Workflow,
)

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachines" / "certificate_lifecycle.asl.json").read_text())
PATH_FIELDS = {
    "Variable",
    "ItemsPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ErrorPath",
    "CausePath",
    "TimestampPath",
    "SecondsPath",
}
ITEM_MODELS: dict[str, type[BaseModel]] = {
    "Distribute Certificate": DistributionItem,
    "Notify Owners": OwnerMailItem,
}
# What the function (or, for Send Install Command, the callback's SendTaskSuccess) answers.
RESULT_MODELS: dict[str, tuple[str, type[BaseModel]]] = {
    "Export Certificate": ("$.Payload", ExportResult),
    "Find Window": ("$.Payload", WindowOpening),
    "Copy To Bucket": ("$.Payload", TargetResult),
    "Cancel Install": ("$.Payload", TargetResult),
    "Send Install Command": ("$", TargetResult),
}
_PATH = re.compile(r"(?<![\w$])\$(?:\.[A-Za-z_][\w-]*|\[\d+\])*")


def readable(model: Any, path: str) -> bool:
    """Whether `path` ($.a.b[0].c) names a declared field of `model`'s field tree."""
    if not path.startswith("$"):
        return False
    parts = [p for p in re.split(r"\.|\[\d+\]", path[1:]) if p]
    return _walk(model, parts)


def _walk(annotation: Any, parts: list[str]) -> bool:
    if not parts or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_walk(a, parts) for a in typing.get_args(annotation) if a is not type(None))
    if origin is list:
        return _walk(typing.get_args(annotation)[0], parts)
    if origin is dict:
        return True  # a mapping of free keys (attributes, keys by file name)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(parts[0])
        return field is not None and _walk(field.annotation, parts[1:])
    return False


def _paths_in(value: Any) -> Iterator[str]:
    """Paths read inside a Parameters / ItemSelector / ResultSelector block."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.endswith(".$") and isinstance(inner, str):
                yield from (p for p in _PATH.findall(inner) if not inner.startswith("$$"))
            else:
                yield from _paths_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _paths_in(inner)


def _choice_variables(rules: list[dict[str, Any]]) -> Iterator[str]:
    for rule in rules:
        if "Variable" in rule:
            yield rule["Variable"]
        yield from _choice_variables(rule.get("And", []) + rule.get("Or", []))
        if "Not" in rule:
            yield from _choice_variables([rule["Not"]])


def _catch_roots(block: dict[str, Any]) -> dict[str, set[str]]:
    """{state: the ResultPath roots (`error`, …) the Catches that lead to it write}."""
    roots: dict[str, set[str]] = {}
    for state in block.values():
        for catcher in state.get("Catch", []):
            root = str(catcher.get("ResultPath") or "").removeprefix("$.")
            roots.setdefault(catcher["Next"], set()).add(root)
    return roots


def _reader(model: type[BaseModel], error_roots: set[str]) -> Any:
    """`model`, plus a StateError at each root a Catch wrote (Workflow declares its own)."""
    errors = {root: StateError for root in error_roots if root}
    if not errors or model is Workflow:
        return model
    return types.new_class(
        f"{model.__name__}WithError",
        (model,),
        exec_body=lambda ns: ns.update(
            {"__annotations__": {k: v | None for k, v in errors.items()}}
        ),
    )


def _own_reads(state: dict[str, Any]) -> Iterator[str]:
    """Paths a state reads from its input: path fields, Choice rules, Parameters, ItemSelector."""
    yield from (state[field] for field in sorted(PATH_FIELDS & set(state)))
    yield from _choice_variables(state.get("Choices", []))
    yield from _paths_in(state.get("Parameters", {}))
    yield from _paths_in(state.get("ItemSelector", {}))


def _result_reads(name: str, state: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """Paths a ResultSelector reads from the answer of a function with a certrelay model."""
    if name not in RESULT_MODELS or "ResultSelector" not in state:
        return
    prefix, answer = RESULT_MODELS[name]
    for path in _paths_in(state["ResultSelector"]):
        assert path.startswith(prefix), f"{name}: {path} outside {prefix}"
        yield name, "$" + path.removeprefix(prefix), answer


def _block_reads(block: dict[str, Any], model: type[BaseModel]) -> Iterator[tuple[str, str, Any]]:
    catch_roots = _catch_roots(block)
    for name, state in block.items():
        reader = _reader(model, catch_roots.get(name, set()))
        yield from ((name, path, reader) for path in _own_reads(state))
        yield from _result_reads(name, state)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _block_reads(processor["States"], ITEM_MODELS[name])


def reads() -> Iterator[tuple[str, str, Any]]:
    """(state, path, the model that state reads) for every path the ASL reads."""
    yield from _block_reads(ASL["States"], Workflow)


READS = list(reads())


def test_the_checker_knows_the_asl_reads_paths_at_all():
    assert len(READS) > 50
    assert ("Distribute Certificate", "$.distribution.targets", Workflow) in READS


@pytest.mark.parametrize(("state", "path", "model"), READS, ids=[f"{s}: {p}" for s, p, _ in READS])
def test_every_path_the_asl_reads_exists_on_the_payload_model(state: str, path: str, model: Any):
    assert readable(model, path), f"{state} reads {path}, which {model.__name__} does not declare"


def test_the_checker_refuses_a_path_the_model_does_not_declare():
    assert not readable(Workflow, "$.distribution.target_settings")
    assert not readable(DistributionItem, "$.bundle.bucket"), "an item names no bucket"
    assert not readable(DistributionItem, "$.target.cert_path"), "an item holds no target settings"
    assert readable(DistributionItem, "$.target.id")


def test_the_distribute_map_builds_exactly_a_distribution_item():
    selector = ASL["States"]["Distribute Certificate"]["ItemSelector"]
    assert {key.removesuffix(".$") for key in selector} == set(DistributionItem.model_fields)


def test_every_map_item_result_has_the_fixed_shape():
    processor = ASL["States"]["Distribute Certificate"]["ItemProcessor"]["States"]
    shape = set(TargetResult.model_fields)
    for name, state in processor.items():
        if not state.get("End"):
            continue
        produced = state.get("ResultSelector") or state.get("Parameters") or {}
        assert {key.removesuffix(".$") for key in produced} == shape, name


def test_the_parts_functions_return_forbid_extra_keys():
    for model in (
        workflow.TargetResult,
        workflow.BundleRef,
        workflow.ExportResult,
        workflow.DistributionItem,
        workflow.DistributionPlan,
        workflow.TargetRef,
        workflow.DistributionReport,
    ):
        assert model.model_config.get("extra") == "forbid", model.__name__
