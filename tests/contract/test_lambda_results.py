"""Every Lambda Task state's result has a closed model that carries references only (HIS-02).

workflow.FUNCTION_RESULTS names the model of what each Lambda Task state's function returns
(Map item states included), workflow.CALLBACK_RESULTS the model of what the callback of each
`.waitForTaskToken` state answers. Held here: the tables cover exactly the ASL's Lambda Task
states; every model, all the way down, refuses extra keys and has no free-shaped (Any) value;
no field is named for a secret; and every path a Lambda state's ResultSelector reads is one
its model declares. The real answers are validated against these models by the functional
tests (each handler) and by tests/statemachine/conftest.py (every execution's history).

The name rule, decided from what the functions really return: a field name whose words
(split on "_") include a secret's word (private, privkey, passphrase, password, token,
secret, pem, credential(s), plaintext, key(s)) is refused, unless its last word says it is a
reference (arn, hash, digest, id, ids, version, fingerprint: `secret_arn`, `token_hash`,
`secret_version`) or it is one of REFERENCE_NAMES, each with the reason it names no secret.
"""

from __future__ import annotations

import ast
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from certrelay import workflow
from certrelay.workflow import CALLBACK_RESULTS, FUNCTION_RESULTS, check_result
from tests.contract.test_state_routing import (
    ASL_FILES,
    TASKS,
    _all_states,
    _placeholder,
    _substitutions,
)
from tests.contract.test_workflow_paths import _paths_in, readable

ROOT = Path(__file__).resolve().parents[2]
SECRET_WORDS = frozenset(
    {
        "private",
        "privkey",
        "passphrase",
        "password",
        "token",
        "secret",
        "pem",
        "credential",
        "credentials",
        "plaintext",
        "key",
        "keys",
    }
)
REFERENCE_SUFFIXES = frozenset({"arn", "hash", "digest", "id", "ids", "version", "fingerprint"})
REFERENCE_NAMES = {
    "keys": "ExportResult.keys: the S3 object keys of the bundle's files, by file name",
    "dedupe_key": "the event table's key <certificate arn>#<event kind>#<serial>",
}
RESULT_MODELS = sorted(
    {*FUNCTION_RESULTS.values(), *CALLBACK_RESULTS.values()}, key=lambda m: m.__name__
)


def _states() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """{state name: (state, its state machine's substitutions)} across every state machine."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for asl_file in ASL_FILES:
        asl = json.loads((ROOT / asl_file).read_text())
        substitutions = _substitutions(asl_file)
        for name, state in _all_states(asl["States"]):
            found[name] = (state, substitutions)
    return found


def _waits_for_a_token(name: str) -> bool:
    state, substitutions = STATES_AND_SUBSTITUTIONS[name]
    return ".waitForTaskToken" in json.dumps(_placeholder(state["Resource"], substitutions))


STATES_AND_SUBSTITUTIONS = _states()
STATES = {name: state for name, (state, _) in STATES_AND_SUBSTITUTIONS.items()}
CALLBACK_STATES = {name for name in TASKS if _waits_for_a_token(name)}


def _models_in(annotation: Any) -> Iterator[Any]:
    """Every model and every free-shaped (Any) value in an annotation, recursively."""
    if annotation is Any:
        yield Any
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models_in(field.annotation)
        return
    if typing.get_origin(annotation) is Literal:
        return
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def open_parts(model: type[BaseModel]) -> list[str]:
    """The models under `model` (itself included) that take extra keys or a free-shaped value."""
    found = []
    for part in _models_in(model):
        if part is Any:
            found.append(f"{model.__name__}: a value typed Any")
        elif part.model_config.get("extra") != "forbid":
            found.append(f"{part.__name__}: extra={part.model_config.get('extra', 'ignore')!r}")
    return found


def secret_names(model: type[BaseModel]) -> list[str]:
    """`Model.field` for every field under `model` that the name rule refuses."""
    refused = []
    for part in _models_in(model):
        if part is Any:
            continue
        for name in part.model_fields:
            words = name.lower().split("_")
            if not SECRET_WORDS & set(words) or name in REFERENCE_NAMES:
                continue
            if words[-1] not in REFERENCE_SUFFIXES:
                refused.append(f"{part.__name__}.{name}")
    return refused


def table_keys_as_written(table: str) -> list[str]:
    """The keys of workflow.py's `table` dict literal as written (a repeated key shows)."""
    tree = ast.parse((ROOT / "src" / "certrelay" / "workflow.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == table:
            assert isinstance(node.value, ast.Dict), f"{table} is not a dict literal"
            return [ast.literal_eval(key) for key in node.value.keys if key is not None]
    raise AssertionError(f"workflow.py has no {table} literal")


def test_every_lambda_task_state_has_exactly_one_function_result_model():
    # GIVEN the ASL's Lambda Task states, at the root and inside the Maps' item processors
    # WHEN the result table is read as written
    written = table_keys_as_written("FUNCTION_RESULTS")
    # THEN it names each of them once, and no other state
    assert len(TASKS) >= 18, "the walk found the Lambda Task states"
    assert sorted(written) == sorted(TASKS), "one entry per Lambda Task state, no other"


def test_every_wait_for_token_state_has_exactly_one_callback_result_model():
    written = table_keys_as_written("CALLBACK_RESULTS")
    assert {"Request Approval", "Send Install Command"} <= CALLBACK_STATES
    assert sorted(written) == sorted(CALLBACK_STATES)


@pytest.mark.parametrize("model", RESULT_MODELS, ids=lambda m: m.__name__)
def test_every_result_model_refuses_extra_keys_all_the_way_down(model: type[BaseModel]):
    assert open_parts(model) == []


@pytest.mark.parametrize("model", [*RESULT_MODELS, workflow.Workflow], ids=lambda m: m.__name__)
def test_no_result_field_is_named_for_a_secret(model: type[BaseModel]):
    # the payload as a whole (Workflow) is held to the rule too: its declared parts are states'
    assert secret_names(model) == []


def test_every_reference_name_excepted_from_the_rule_is_still_in_use():
    declared = {
        name
        for model in [*RESULT_MODELS, workflow.Workflow]
        for part in _models_in(model)
        if part is not Any
        for name in part.model_fields
    }
    assert set(REFERENCE_NAMES) <= declared, "drop an exception no model needs any more"


def test_the_name_rule_refuses_secrets_and_lets_references_through():
    class Leaky(workflow._Closed):
        private_key: str
        passphrase: str
        task_token: str
        token: str
        key: str
        cert_pem: str
        secret_arn: str
        token_hash: str
        secret_version: str
        kms_key_arn: str

    assert secret_names(Leaky) == [
        "Leaky.private_key",
        "Leaky.passphrase",
        "Leaky.task_token",
        "Leaky.token",
        "Leaky.key",
        "Leaky.cert_pem",
    ]


def test_the_closed_check_finds_an_open_part_and_a_free_shaped_value_deep_down():
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        note: str

    class Holder(workflow._Closed):
        parts: list[Loose | None]
        anything: dict[str, Any]

    assert open_parts(Holder) == ["Loose: extra='allow'", "Holder: a value typed Any"]


@pytest.mark.parametrize("state", sorted(TASKS))
def test_every_path_a_result_selector_reads_is_declared_by_the_states_result_model(state: str):
    # GIVEN a Lambda Task state's ResultSelector (on `$.Payload` of what the function returns,
    # or, for a .waitForTaskToken state, on `$` of what the callback answers)
    selector = STATES[state].get("ResultSelector") or {}
    callback = state in CALLBACK_STATES
    model = CALLBACK_RESULTS[state] if callback else FUNCTION_RESULTS[state]
    prefix = "$" if callback else "$.Payload"
    # THEN each path it reads names a field of that model
    for path in _paths_in(selector):
        assert path.startswith(prefix), f"{state}: {path} outside {prefix}"
        assert readable(model, "$" + path.removeprefix(prefix)), f"{state}: {path}"


def test_check_result_refuses_an_extra_key_a_missing_key_and_a_wrong_type():
    good = {"target": "web#1", "kind": "s3", "status": "DISTRIBUTED", "detail": "ok"}
    assert check_result("Copy To Bucket", good).model_dump() == good
    for bad in (
        {**good, "passphrase": "hunter2"},
        {k: v for k, v in good.items() if k != "detail"},
        {**good, "status": "SENT"},
    ):
        with pytest.raises(ValidationError):
            check_result("Copy To Bucket", bad)
    with pytest.raises(ValidationError):  # strict: no coercion of "3" to 3
        check_result("Notify Expiry", {"sent": "3", "summary": {}})
    receipt = {"command_id": "c-1", "instances": 2, "status": "SENT"}
    assert check_result("Send Install Command", receipt).model_dump() == receipt
    with pytest.raises(ValidationError):
        check_result("Send Install Command", receipt, callback=True)


def test_the_payload_model_is_the_triage_result_plus_what_later_states_add():
    # one declaration of triage's fields: the payload's model cannot drift from the result's
    assert issubclass(workflow.Workflow, workflow.TriageResult)
    assert workflow.Workflow.model_config.get("extra") == "allow"
    assert workflow.TriageResult.model_config.get("extra") == "forbid"
