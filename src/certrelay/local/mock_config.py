"""Step Functions Local's MockConfigFile, honoured by the local engine.

Step Functions Local reads the file named by `SFN_MOCK_CONFIG` and, when an execution starts with
`stateMachineArn` = `<arn>#Case`, runs test case `Case`: each Task state the case names answers
with its mocked responses (Return or Throw, chosen by attempt number, so Retry is exercised),
every other state runs for real. moto 5.2.5 carries that interpreter
(`moto.stepfunctions.parser.mocking`) but nothing loads a file. `mocked_test_cases` restores the
contract around moto, so one file drives the local engine and Step Functions Local alike.

The file is checked before any execution starts: its shape, every response a case names, every
attempt range, and every state a case names against the deployed definitions. A problem is one
line naming the file and what is wrong (`MockConfigError`).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from moto.stepfunctions.exceptions import InvalidName
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.mocking import mock_config as moto_mocking
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from certrelay.local.asl import all_states

ENV_VAR = "SFN_MOCK_CONFIG"
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
Fail = Callable[[str], "MockConfigError"]


class MockConfigError(ValueError):
    """The mock configuration file cannot be used: the message names the file and the problem."""


@dataclass(frozen=True)
class MockedResponse:
    """What one attempt range of a state answers: a result, or an error to throw."""

    first: int
    last: int
    result: Any = None
    error: str | None = None
    cause: str = ""


@dataclass(frozen=True)
class MockConfig:
    """A loaded, shape-checked mock configuration file."""

    path: Path
    # state machine name -> test case name -> Task state name -> mocked response name
    test_cases: dict[str, dict[str, dict[str, str]]]
    responses: dict[str, list[MockedResponse]]

    def cases(self, state_machine: str) -> list[str]:
        return list(self.test_cases.get(state_machine, {}))

    def fail(self, problem: str) -> MockConfigError:
        return MockConfigError(f"{self.path}: {problem}")

    def check_definition(self, state_machine: str, definition: Mapping[str, Any]) -> None:
        """Every state a test case of `state_machine` mocks is a Task state of `definition`."""
        states = dict(all_states(definition.get("States") or {}))
        for case, mocked in self.test_cases.get(state_machine, {}).items():
            for state in mocked:
                kind = states.get(state, {}).get("Type")
                if kind is None:
                    raise self.fail(
                        f"test case {case!r} mocks state {state!r}, which state machine "
                        f"{state_machine!r} does not have"
                    )
                if kind != "Task":
                    raise self.fail(
                        f"test case {case!r} mocks state {state!r}, a {kind} state: only Task "
                        "states call a service"
                    )

    def moto_test_case(self, state_machine: str, case: str) -> Any:
        """Test case `case` as moto's interpreter takes it, or None if the file has no such case."""
        mocked = self.test_cases.get(state_machine, {}).get(case)
        if mocked is None:
            return None
        per_state = []
        for state, response_name in mocked.items():
            answers: list[Any] = [
                MockedResponseReturn(r.first, r.last, r.result)
                if r.error is None
                else MockedResponseThrow(r.first, r.last, r.error, r.cause)
                for r in self.responses[response_name]
            ]
            per_state.append(StateMockedResponses(state, response_name, answers))
        return MockTestCase(state_machine, case, per_state)


def configured_path(explicit: Path | None = None) -> Path | None:
    """The file to use: the one given, else `SFN_MOCK_CONFIG` (as Step Functions Local reads it)."""
    if explicit is not None:
        return explicit
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value) if value else None


def load_mock_config(path: Path) -> MockConfig:
    """Read and shape-check a MockConfigFile (AWS's format: StateMachines, MockedResponses)."""

    def fail(problem: str) -> MockConfigError:
        return MockConfigError(f"{path}: {problem}")

    raw = _read(path, fail)
    machines = _object(raw.get("StateMachines"), "StateMachines", fail)
    declared = _object(raw.get("MockedResponses"), "MockedResponses", fail)
    responses = {name: _responses(name, ranges, fail) for name, ranges in declared.items()}
    test_cases = {
        machine: _test_cases(f"StateMachines.{machine}", body, responses, fail)
        for machine, body in machines.items()
    }
    return MockConfig(path, test_cases, responses)


def _read(path: Path, fail: Fail) -> dict[str, Any]:
    """The file's one JSON object, with only the two top-level fields AWS defines."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as duplicate:
        raise fail(f"field {duplicate.args[0]!r} appears twice in one object") from None
    except OSError as error:
        raise fail(f"cannot read the file ({error.strerror or error})") from None
    except ValueError as error:
        raise fail(f"not valid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise fail("the file must hold one JSON object")
    unknown = sorted(set(raw) - {"StateMachines", "MockedResponses"})
    if unknown:
        raise fail(f"unknown top-level field(s) {', '.join(unknown)}")
    return raw


def _test_cases(
    where: str,
    body: Any,
    responses: Mapping[str, Any],
    fail: Fail,
) -> dict[str, dict[str, str]]:
    """One state machine's TestCases: case -> state -> the name of a declared mocked response."""
    body = _object(body, where, fail)
    if set(body) != {"TestCases"}:
        raise fail(f"{where} must hold exactly one field, TestCases")
    cases = _object(body["TestCases"], f"{where}.TestCases", fail)
    found: dict[str, dict[str, str]] = {}
    for case, mocked in cases.items():
        mocked = _object(mocked, f"{where}.TestCases.{case}", fail)
        for state, response in mocked.items():
            if not isinstance(response, str):
                raise fail(f"test case {case!r}: state {state!r} must name a mocked response")
            if response not in responses:
                raise fail(
                    f"test case {case!r} gives state {state!r} mocked response "
                    f"{response!r}, which MockedResponses does not define"
                )
        found[case] = dict(mocked)
    return found


@contextlib.contextmanager
def mocked_test_cases(path: Path, *, region: str) -> Iterator[MockConfig]:
    """While the block runs (moto active, the stack deployed), `<arn>#Case` runs test case Case."""
    config = load_mock_config(path)
    _check_deployed(config, boto3.client("stepfunctions", region_name=region))
    with _test_cases_start(config), _mocked_throws_keep_their_names():
        yield config


def _check_deployed(config: MockConfig, sfn: Any) -> None:
    deployed = {
        machine["name"]: machine["stateMachineArn"]
        for page in sfn.get_paginator("list_state_machines").paginate()
        for machine in page["stateMachines"]
    }
    for machine in config.test_cases:
        if machine not in deployed:
            known = ", ".join(sorted(deployed)) or "none"
            raise config.fail(f"state machine {machine!r} is not deployed (deployed: {known})")
        described = sfn.describe_state_machine(stateMachineArn=deployed[machine])
        config.check_definition(machine, json.loads(described["definition"]))


@contextlib.contextmanager
def _test_cases_start(config: MockConfig) -> Iterator[None]:
    """moto's loader answers from `config`; start_execution takes `<arn>#Case` as SFN Local does.

    The backend's start_execution strips the suffix and hands the case to the execution worker
    it creates (moto's worker takes a test case, but its backend never passes one).
    """
    pending: contextvars.ContextVar[Any] = contextvars.ContextVar("mock_test_case", default=None)
    start_original: Any = StepFunctionsParserBackend.start_execution
    worker_original: Any = Execution._get_start_execution_worker

    def load_mock_test_case_for(state_machine_name: str, test_case_name: str) -> Any:
        return config.moto_test_case(state_machine_name, test_case_name)

    def start_execution(
        backend: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        arn, _, case = state_machine_arn.partition("#")
        if not case:
            return start_original(backend, arn, name, execution_input, trace_header)
        machine = backend.describe_state_machine(arn).name
        test_case = moto_mocking.load_mock_test_case_for(machine, case)
        if test_case is None:
            known = ", ".join(config.cases(machine)) or "none"
            raise InvalidName(
                f"Invalid mock test case name '{case}' for state machine '{machine}': "
                f"{config.path} defines {known}"
            )
        token = pending.set(test_case)
        try:
            return start_original(backend, arn, name, execution_input, trace_header)
        finally:
            pending.reset(token)

    def start_execution_worker(execution: Any) -> Any:
        worker = worker_original(execution)
        test_case = pending.get()
        if test_case is not None:  # read by the worker thread when it builds its environment
            worker._mock_test_case = test_case
        return worker

    with (
        mock.patch.object(moto_mocking, "load_mock_test_case_for", load_mock_test_case_for),
        mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution),
        mock.patch.object(Execution, "_get_start_execution_worker", start_execution_worker),
    ):
        yield


@contextlib.contextmanager
def _mocked_throws_keep_their_names() -> Iterator[None]:
    """A mocked Throw fails its state with the Error and Cause the file gives, as in SFN Local.

    moto 5.2.5 refuses `States.*` names there (`States.Timeout` is what an unanswered
    waitForTaskToken throws), and most service integrations (DynamoDB, SNS, EventBridge, …)
    re-label any failure as their generic error in `_from_error`, so `Catch` never saw
    `DynamoDB.ConditionalCheckFailedException`. Only failures raised by a mocked Throw are kept.
    """
    # every service integration's class, so each `_from_error` override below is found
    importlib.import_module(f"{mock_eval_utils.__package__}.service.state_task_service_factory")

    class MockedThrow(FailureEventException):
        pass

    def throw(env: Any, mocked_response: Any) -> None:
        details = TaskFailedEventDetails(error=mocked_response.error, cause=mocked_response.cause)
        event_details: Any = {"taskFailedEventDetails": details}  # moto's EventDetails TypedDict
        raise MockedThrow(
            failure_event=FailureEvent(
                env=env,
                error_name=_thrown_error_name(mocked_response.error),
                event_type=HistoryEventType.TaskFailed,
                event_details=event_details,
            )
        )

    def keeping_mocked_throws(original: Any) -> Any:
        def from_error(state: Any, env: Any, ex: Exception) -> Any:
            if isinstance(ex, MockedThrow):
                return ex.failure_event
            return original(state, env, ex)

        return from_error

    with contextlib.ExitStack() as patches:
        patches.enter_context(
            mock.patch.object(mock_eval_utils, "_eval_mocked_response_throw", throw)
        )
        for task_class in _subclasses(StateTask):
            if "_from_error" in vars(task_class):
                patches.enter_context(
                    mock.patch.object(
                        task_class,
                        "_from_error",
                        keeping_mocked_throws(vars(task_class)["_from_error"]),
                    )
                )
        yield


def _subclasses(cls: type) -> Iterator[type]:
    subclasses: list[type] = cls.__subclasses__()
    for subclass in subclasses:
        yield subclass
        yield from _subclasses(subclass)


def _thrown_error_name(error: str) -> Any:
    """A mocked Throw's error name: `States.*` names are the interpreter's own, others custom."""
    if error.startswith("States."):
        return StatesErrorName.from_name(error)
    return CustomErrorName(error)


def _object(value: Any, where: str, fail: Fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(f"{where} must be a JSON object")
    return value


def _responses(name: str, ranges: Any, fail: Fail) -> list[MockedResponse]:
    """One mocked response: attempt ranges "0", "1-2", … numbered from 0 without a gap."""
    where = f"MockedResponses.{name}"
    ranges = _object(ranges, where, fail)
    if not ranges:
        raise fail(f"{where} defines no attempt")
    answers = sorted(
        (_response(where, key, answer, fail) for key, answer in ranges.items()),
        key=lambda r: r.first,
    )
    expected = 0
    for answer in answers:
        if answer.first < expected:
            raise fail(f"{where}: two ranges answer attempt {answer.first}")
        if answer.first > expected:
            raise fail(f"{where}: attempt {expected} has no response (ranges must run on from 0)")
        expected = answer.last + 1
    return answers


def _response(where: str, key: str, answer: Any, fail: Fail) -> MockedResponse:
    """The answer for one attempt range: a Return, or a Throw of an Error with a Cause."""
    matched = _RANGE.fullmatch(key)
    if matched is None:
        raise fail(f'{where}: attempt key {key!r} is neither a number ("0") nor a range ("1-2")')
    first = int(matched.group(1))
    last = int(matched.group(2) or first)
    if last < first:
        raise fail(f"{where}: attempt range {key!r} ends before it starts")
    at = f"{where}.{key}"
    answer = _object(answer, at, fail)
    if set(answer) not in ({"Return"}, {"Throw"}):
        raise fail(f"{at} must hold exactly one of Return or Throw")
    if "Return" in answer:
        return MockedResponse(first, last, result=answer["Return"])
    error, cause = _thrown(_object(answer["Throw"], f"{at}.Throw", fail), at, fail)
    return MockedResponse(first, last, error=error, cause=cause)


def _thrown(thrown: dict[str, Any], where: str, fail: Fail) -> tuple[str, str]:
    error, cause = thrown.get("Error"), thrown.get("Cause")
    if set(thrown) != {"Error", "Cause"} or not isinstance(error, str) or not error:
        raise fail(f"{where}.Throw must hold exactly a non-empty Error and a Cause")
    if not isinstance(cause, str):
        raise fail(f"{where}.Throw.Cause must be a string")
    if error.startswith("States."):
        try:
            StatesErrorNameType.from_name(error)
        except ValueError:
            raise fail(f"{where}: {error} is not an error Step Functions throws") from None
    return error, cause


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal keys; a mock file with one has a silent typo."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen
