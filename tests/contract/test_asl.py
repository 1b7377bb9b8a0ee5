"""The ASL file is a contract: valid JSON, whole-string placeholders, typed errors, fail paths."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from certrelay import errors
from certrelay.console.diagram import BEGIN, END, readme_block
from certrelay.local.asl import all_states
from tests.templates import read_template

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachines" / "certificate_lifecycle.asl.json"
AWS_ERROR_PREFIXES = ("States.", "Lambda.", "DynamoDB.", "SNS.", "EventBridge.")


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text(encoding="utf-8"))


def state_machine_resource() -> dict[str, Any]:
    sam = read_template(ROOT / "template.yaml")
    return sam["Resources"]["CertificateLifecycleStateMachine"]["Properties"]


def test_placeholders_are_whole_strings_and_match_the_definition_substitutions():
    text = ASL_PATH.read_text(encoding="utf-8")
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    whole = set(re.findall(r'"\$\{(\w+)\}"', text))

    assert placeholders == whole, "a placeholder sits inside a longer string"
    assert placeholders == set(state_machine_resource()["DefinitionSubstitutions"])


def test_every_named_error_is_a_certrelay_error_class_or_an_aws_error(asl):
    classes = {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.CertrelayError)
    }
    names = {
        error
        for _, state in all_states(asl["States"])
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]
        for error in rule["ErrorEquals"]
    }
    ours = {n for n in names if not n.startswith(AWS_ERROR_PREFIXES)}

    assert ours, "the ASL should catch at least one domain error"
    assert ours <= classes, f"not in errors.py: {sorted(ours - classes)}"


def test_retryable_flag_agrees_with_the_retry_lists(asl):
    retried = {
        error
        for _, state in all_states(asl["States"])
        for rule in state.get("Retry", [])
        for error in rule["ErrorEquals"]
    }
    for name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.CertrelayError) and cls is not errors.CertrelayError:
            assert cls.retryable == (name in retried), name


def test_every_task_retries_with_full_jitter_and_is_caught(asl):
    for name, state in asl["States"].items():
        tasks = [(name, state)] if state["Type"] == "Task" else []
        if state["Type"] == "Map":
            tasks = [(n, s) for n, s in all_states(state["ItemProcessor"]["States"])]
            assert state.get("Catch"), f"{name}: a Map catches its items' failures"
        for task_name, task in tasks:
            if task["Type"] != "Task":
                continue
            assert task.get("Retry"), f"{task_name} has no Retry"
            for rule in task["Retry"]:
                assert rule.get("JitterStrategy") == "FULL", task_name
                assert rule.get("MaxAttempts", 3) <= 6, task_name
            if state["Type"] == "Task":
                assert task.get("Catch"), f"{task_name} has no Catch"
                assert all(c.get("ResultPath") for c in task["Catch"]), task_name


def test_every_fail_state_says_what_and_why(asl):
    for name, state in all_states(asl["States"]):
        if state["Type"] == "Fail":
            assert {"Error", "ErrorPath"} & set(state), name
            assert {"Cause", "CausePath"} & set(state), name


def test_every_transition_lands_on_a_state_and_every_state_is_reachable(asl):
    states = asl["States"]
    targets = {asl["StartAt"]}
    for _, state in all_states(states):
        targets |= {state[k] for k in ("Next", "Default") if k in state}
        targets |= {c["Next"] for c in [*state.get("Choices", []), *state.get("Catch", [])]}
    top_level_targets = {t for t in targets if t in states}
    inner = {n for n, _ in all_states(states)} - set(states)

    assert targets <= set(states) | inner, f"missing targets: {targets - set(states) - inner}"
    assert top_level_targets == set(states), f"unreachable: {set(states) - top_level_targets}"


def test_state_machine_has_a_real_comment_and_title_case_names(asl):
    assert len(asl["Comment"]) > 40
    for name, state in all_states(asl["States"]):
        assert all(word[0].isupper() for word in name.split()), name
        if state["Type"] == "Choice":
            assert name.endswith("?"), f"a choice is a question: {name}"


def test_the_docs_state_graph_is_generated_from_the_asl(asl):
    doc = (ROOT / "docs" / "state-machine.md").read_text(encoding="utf-8")

    assert BEGIN in doc
    assert END in doc
    assert readme_block(asl) in doc, "run: make diagram"
