"""The whole ASL in the local engine: a stack per module, reset to its start for each test,
every history scanned for secrets and every Lambda result in it held to its closed model
(workflow.FUNCTION_RESULTS)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from certrelay.local.engine import LocalEngine
from certrelay.local.results import Execution, SendResult
from certrelay.workflow import check_result
from tests.shared_first import sharing_tests_first

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"

SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"Proc-Type: 4,ENCRYPTED"),
)


def private_key_fragments(engine: LocalEngine) -> list[str]:
    """Lines of every private key the embedded ACM holds: none may ever leave it."""
    from moto.acm.models import acm_backends

    backend = acm_backends[engine.fleet.account][engine.fleet.region]
    fragments = []
    for bundle in backend._certificates.values():
        for line in bundle.key.decode().splitlines():
            if len(line) >= 40 and "PRIVATE KEY" not in line:
                fragments.append(line)
    return fragments


def secret_values(engine: LocalEngine) -> list[str]:
    """Every value Secrets Manager holds: export passphrases, the approval link key."""
    import boto3

    client = boto3.client("secretsmanager", region_name=engine.fleet.region)
    values = []
    for secret in client.list_secrets()["SecretList"]:
        versions = client.list_secret_version_ids(SecretId=secret["ARN"])["Versions"]
        for version in versions:
            value = client.get_secret_value(SecretId=secret["ARN"], VersionId=version["VersionId"])
            values.append(value["SecretString"])
    return values


def assert_no_secrets(engine: LocalEngine, executions: list[Execution]) -> None:
    fragments = private_key_fragments(engine) + secret_values(engine)
    assert fragments, "the fleet should hold private keys for this scan to mean anything"
    for execution in executions:
        text = json.dumps(execution.history, default=str)
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{execution.name}: history matches {pattern.pattern}"
        leaked = [f for f in fragments if f in text]
        assert not leaked, f"{execution.name}: history holds private key material"
    outbox = json.dumps(engine.notifications())
    assert not any(f in outbox for f in fragments), "an email holds private key material"
    bus = json.dumps(engine.bus)
    assert not any(f in bus for f in fragments), "an event on the bus holds a secret"
    assert not any(p.search(bus) for p in SECRET_PATTERNS), "an event on the bus holds a key"
    logs = "\n".join(engine.runtime.log_lines)
    assert not any(f in logs for f in fragments), "a log line holds private key material"
    assert_events_out_follow_the_schema(engine)
    assert_lambda_results_match_their_models(executions)


def lambda_results(execution: Execution) -> Iterator[tuple[str, bool, Any]]:
    """(state, whether a callback answered, the result) for each Lambda Task result in the
    history: a function's `Payload` (TaskSucceeded; TaskSubmitted for a `.waitForTaskToken`
    state) and a callback's answer (TaskSucceeded of a `.waitForTaskToken` state)."""
    events = {event["id"]: event for event in execution.history}
    for event in execution.history:
        kind = event["type"]
        details = event.get("taskSucceededEventDetails") or event.get("taskSubmittedEventDetails")
        if kind not in ("TaskSucceeded", "TaskSubmitted") or details["resourceType"] != "lambda":
            continue
        state = scheduled_state(events, event)
        answered = kind == "TaskSucceeded" and details["resource"].endswith(".waitForTaskToken")
        output = json.loads(details["output"])
        yield state, answered, output if answered else output["Payload"]


def scheduled_state(events: dict[int, dict[str, Any]], event: dict[str, Any]) -> str:
    """The state name the task's TaskScheduled passed its function (`state`, $$.State.Name)."""
    for _ in range(len(events)):  # back along previousEventId: at most every event once
        event = events[event["previousEventId"]]
        if event["type"] == "TaskScheduled":
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            return str(parameters["Payload"]["state"])
    raise AssertionError(f"event {event['id']} follows no TaskScheduled")


def assert_lambda_results_match_their_models(executions: list[Execution]) -> set[str]:
    """Every Lambda result of every execution validates against its state's closed model
    (HIS-02); the states whose results were checked."""
    checked, wrong = set(), []
    for execution in executions:
        for state, answered, result in lambda_results(execution):
            try:
                check_result(state, result, callback=answered)
            except ValidationError as error:
                fields = [".".join(map(str, e["loc"])) + f": {e['msg']}" for e in error.errors()]
                wrong.append(f"{execution.name} {state}{' (callback)' * answered}: {fields}")
            checked.add(state + " (callback)" * answered)
    assert not wrong, "Lambda results outside their models:\n" + "\n".join(wrong)
    return checked


def assert_events_out_follow_the_schema(engine: LocalEngine) -> None:
    """Every certrelay.* event the run put on the bus validates against the documented schema."""
    from certrelay import announcements

    arns = {execution.arn for execution in engine.executions}
    for event in engine.events_out():
        announcement = announcements.parse(event)
        assert announcement.certificate.arn in event["resources"]
        if arns and announcement.execution not in arns:
            raise AssertionError(f"{event['detail-type']} names an unknown execution")


class SharedEngine:
    """One deployment for a module's tests: each test gets it as start-up left it. Started
    when a test first asks for it; stopped before a test that starts an engine of its own (one
    embedded AWS per process: two engines at once would share it)."""

    def __init__(self, start: Callable[[], LocalEngine] | None = None) -> None:
        # the install poll's Wait and the approval windows pass 50 times faster than on AWS
        self._start = start or (lambda: LocalEngine(clock_speed=50))
        self._exits = contextlib.ExitStack()
        self._engine: LocalEngine | None = None
        self._used = False

    def as_started(self) -> LocalEngine:
        """The engine, reset (LocalEngine.reset: observably a fresh engine, as
        test_engine_reset.py proves) if a test has used it since start-up."""
        if self._engine is None:
            self._engine = self._exits.enter_context(self._start())
        elif self._used:
            try:
                self._engine.reset()
            except Exception:  # this test errors; the next one gets a new engine
                self.stop()
                raise
        self._used = True
        return self._engine

    def stop(self) -> None:
        self._exits.close()
        self._engine, self._used = None, False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Within each module here, the tests that take the module's engine (`engine`) run first."""
    sharing_tests_first(items, Path(__file__).parent, "engine")


@pytest.fixture(scope="module")
def shared_engine() -> Iterator[SharedEngine]:
    """This directory's engine (a module may override it with its own fleet)."""
    shared = SharedEngine()
    yield shared
    shared.stop()


@pytest.fixture(autouse=True)
def no_shared_engine_beside_ones_own(
    request: pytest.FixtureRequest, shared_engine: SharedEngine
) -> None:
    """A test that does not take `engine` may start its own: the shared one stops first."""
    if "engine" not in request.fixturenames:
        shared_engine.stop()


@pytest.fixture
def engine(shared_engine: SharedEngine) -> Iterator[LocalEngine]:
    """The stack with the demo fleet, as a fresh start leaves it: deployed once per module and
    reset before each further test that takes it (0.1 s instead of a 0.5-1.5 s deployment)."""
    local = shared_engine.as_started()
    yield local
    assert_no_secrets(local, local.executions)


def send(
    engine: LocalEngine, event_file: str, certificate: str | None, **detail: Any
) -> SendResult:
    """Send events/<event_file>, re-stamped for a fleet certificate, with detail overrides."""
    event = json.loads((EVENTS / event_file).read_text(encoding="utf-8"))
    if certificate:
        event = engine.certificate_event(event, certificate)
    event["detail"].update(detail)
    return engine.send(event)


def only_execution(result: SendResult) -> Execution:
    assert len(result.executions) == 1, f"expected one execution, got {result.executions}"
    return result.executions[0]
