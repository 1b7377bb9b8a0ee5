"""MockConfigFile scenarios: a test case per path, on the local engine and in Step Functions Local.

GIVEN tests/sfn_local/MockConfigFile.json (Step Functions Local's format), WHEN an execution of
the stack's state machine starts with `stateMachineArn` = `<arn>#<Case>`, THEN exactly the
expected states are entered, in order, the expected errors are thrown (so the retries are
counted) and the execution ends as expected.

Every Task state on each path is mocked, because Step Functions Local can neither run the Lambda
handlers nor reach DynamoDB, SNS or EventBridge; Choice, Map, Pass, Wait, Retry, Catch and every
Parameters, ResultSelector and ResultPath run for real on both. The mocked triage decision sets
`distribution.max_concurrency` to 1, so the Map's iterations (and the list of states) have one
order. The Docker variant replays the same file in amazon/aws-stepfunctions-local
(docker-compose.yml here) and skips only when no Docker engine answers:

    docker compose -f tests/sfn_local/docker-compose.yml up -d && pytest tests/sfn_local -k docker
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from certrelay.local.asl import all_states
from certrelay.local.engine import LocalEngine
from certrelay.local.mock_config import ENV_VAR, MockConfigError, load_mock_config

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MOCK_CONFIG = HERE / "MockConfigFile.json"
COMPOSE = HERE / "docker-compose.yml"
ASL = ROOT / "statemachines" / "certificate_lifecycle.asl.json"
EVENT = ROOT / "events" / "available.json"
MACHINE = "certrelay-CertificateLifecycleStateMachine"
SFN_LOCAL = os.environ.get("SFN_LOCAL_ENDPOINT", "http://localhost:8083")


@dataclass(frozen=True)
class Run:
    """How one test case must run."""

    status: str
    states: list[str]
    error: str | None = None
    # (state, error) of every failed attempt, in order; a retried state appears once per retry
    thrown: tuple[tuple[str, str], ...] = ()
    retries: tuple[tuple[str, int], ...] = ()


TO_APPROVAL = [
    "Triage Event",
    "Record Event",
    "Route Event?",
    "Notify Owners",
    "Claim Owner Mail",
    "Deliver Now?",
    "Send Email",
    "Owner Mailed",
    "Every Owner Mailed?",
    "Announce Notice",
    "After Notice?",
    "Approval Required?",
    "Request Approval",
]
TO_INSTALL = [
    "Announce Approval",
    "Maintenance Window?",
    "Export Certificate",
    "Distribute Certificate",
    "Target Kind?",
    "Copy To Bucket",
    "Target Kind?",
    "Send Install Command",
]
DISTRIBUTED = [
    *TO_APPROVAL,
    *TO_INSTALL,
    "Report Distribution",
    "Record Distribution",
    "Announce Distribution",
    "Distributed Everywhere?",
    "Close Findings",
    "Renewal Distributed",
]

EXPECTED = {
    "HappyPath": Run("SUCCEEDED", DISTRIBUTED),
    "Rejected": Run(
        "SUCCEEDED",
        [
            *TO_APPROVAL,
            "Notify Rejection",
            "Announce Rejection",
            "Forget Rejected Event",
            "Renewal Rejected",
        ],
        thrown=(("Request Approval", "ApprovalRejected"),),
    ),
    "ApprovalTimeout": Run(
        "FAILED",
        [
            *TO_APPROVAL,
            "Escalate Approval",
            "Notify Expiry",
            "Forget Expired Event",
            "Approval Expired",
        ],
        error="ApprovalExpired",
        thrown=(("Request Approval", "States.Timeout"), ("Escalate Approval", "States.Timeout")),
    ),
    "ExportThrottledThenSucceeds": Run(
        "SUCCEEDED",
        DISTRIBUTED,
        thrown=(
            ("Export Certificate", "ServiceThrottled"),
            ("Export Certificate", "ServiceThrottled"),
        ),
        retries=(("Export Certificate", 2),),
    ),
    "OneServerFails": Run(
        "FAILED",
        [
            *TO_APPROVAL,
            *TO_INSTALL,
            "Report Distribution",
            "Record Distribution",
            "Announce Distribution",
            "Distributed Everywhere?",
            "Raise Distribution Finding",
            "Forget Incomplete Event",
            "Distribution Incomplete",
        ],
        error="DistributionIncomplete",
    ),
    "DuplicateEvent": Run(
        "SUCCEEDED",
        ["Triage Event", "Record Event", "Already Handled"],
        thrown=(("Record Event", "DynamoDB.ConditionalCheckFailedException"),),
    ),
}


# -- reading a history (AWS's shape: the engine's and Step Functions Local's alike) ------------
def entered(history: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def state_of(event: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> str:
    """The state a task event belongs to: follow previousEventId back to a *StateEntered."""
    while "stateEnteredEventDetails" not in event:
        event = by_id[event["previousEventId"]]
    return str(event["stateEnteredEventDetails"]["name"])


def thrown(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    by_id = {e["id"]: e for e in history}
    failures = []
    for event in history:
        details = event.get("taskFailedEventDetails") or event.get("taskTimedOutEventDetails")
        if details is not None:
            failures.append((state_of(event, by_id), str(details.get("error"))))
    return failures


def retries(history: list[dict[str, Any]]) -> dict[str, int]:
    """Per state, how many times it was scheduled again after a failed attempt."""
    by_id = {e["id"]: e for e in history}
    attempts = Counter(state_of(e, by_id) for e in history if e["type"] == "TaskScheduled")
    return {state: count - 1 for state, count in attempts.items() if count > 1}


def assert_ran(
    case: str, status: str, error: str | None, output: Any, history: list[dict[str, Any]]
) -> None:
    expected = EXPECTED[case]
    assert entered(history) == expected.states, f"{case}: states entered"
    assert thrown(history) == list(expected.thrown), f"{case}: errors thrown"
    assert retries(history) == dict(expected.retries), f"{case}: retries"
    assert (status, error) == (expected.status, expected.error), f"{case}: outcome"
    # a side task's error caught on the way (announce_error, findings_error, …) means a mocked
    # result did not have the shape the next states read
    assert not [key for key in output or {} if key.endswith("_error")], f"{case}: {output}"


def available_event() -> dict[str, Any]:
    return dict(json.loads(EVENT.read_text(encoding="utf-8")))


# -- the file itself -----------------------------------------------------------------------------
def test_every_test_case_of_the_file_has_an_expected_path():
    config = load_mock_config(MOCK_CONFIG)

    assert list(config.test_cases) == [MACHINE]
    assert set(config.cases(MACHINE)) == set(EXPECTED)


def test_every_task_state_on_each_path_is_mocked_so_step_functions_local_can_run_it():
    config = load_mock_config(MOCK_CONFIG)
    asl = json.loads(ASL.read_text(encoding="utf-8"))
    kinds = {name: state["Type"] for name, state in all_states(asl["States"])}
    config.check_definition(MACHINE, asl)

    for case, expected in EXPECTED.items():
        tasks = {state for state in expected.states if kinds[state] == "Task"}
        assert tasks == set(config.test_cases[MACHINE][case]), case


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "MockConfigFile.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), "utf-8")
    return path


def one_case(mocked: dict[str, str], responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "StateMachines": {MACHINE: {"TestCases": {"Case": mocked}}},
        "MockedResponses": responses,
    }


RECORDED = {"0": {"Return": {}}}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("{ not json", "not valid JSON"),
        ({"StateMachines": {}, "MockedResponse": {}}, "unknown top-level field(s) MockedResponse"),
        (
            one_case({"Record Event": "Recorded"}, {}),
            "gives state 'Record Event' mocked response 'Recorded', which MockedResponses does "
            "not define",
        ),
        (
            one_case({"Record Event": "R"}, {"R": {"0": {"Return": {}}, "2": {"Return": {}}}}),
            "MockedResponses.R: attempt 1 has no response",
        ),
        (
            one_case({"Record Event": "R"}, {"R": {"0": {"Return": {}, "Throw": {}}}}),
            "MockedResponses.R.0 must hold exactly one of Return or Throw",
        ),
        (
            one_case({"Record Event": "R"}, {"R": {"0": {"Throw": {"Error": "States.Late"}}}}),
            "MockedResponses.R.0.Throw must hold exactly a non-empty Error and a Cause",
        ),
        (
            one_case(
                {"Record Event": "R"},
                {"R": {"0": {"Throw": {"Error": "States.Late", "Cause": ""}}}},
            ),
            "States.Late is not an error Step Functions throws",
        ),
        (
            '{"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1}, '
            '"0": {"Return": 2}}}}',
            "field '0' appears twice in one object",
        ),
    ],
)
def test_a_bad_file_is_refused_in_one_line_naming_the_file_and_the_problem(
    tmp_path: Path, document: Any, problem: str
):
    path = write(tmp_path, document)

    with pytest.raises(MockConfigError) as refused:
        load_mock_config(path)

    message = str(refused.value)
    assert message.startswith(f"{path}: "), message
    assert problem in message
    assert "\n" not in message


def test_a_case_mocking_a_state_the_asl_does_not_have_is_refused(tmp_path: Path):
    path = write(tmp_path, one_case({"Record The Event": "R"}, {"R": RECORDED}))
    asl = json.loads(ASL.read_text(encoding="utf-8"))

    with pytest.raises(
        MockConfigError, match="mocks state 'Record The Event', which state machine"
    ):
        load_mock_config(path).check_definition(MACHINE, asl)


def test_a_case_mocking_a_choice_state_is_refused(tmp_path: Path):
    path = write(tmp_path, one_case({"Route Event?": "R"}, {"R": RECORDED}))
    asl = json.loads(ASL.read_text(encoding="utf-8"))

    with pytest.raises(MockConfigError, match="a Choice state: only Task states"):
        load_mock_config(path).check_definition(MACHINE, asl)


def test_the_engine_reads_sfn_mock_config_like_step_functions_local(monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(MOCK_CONFIG))

    assert LocalEngine().mock_config == MOCK_CONFIG
    assert LocalEngine(mock_config=HERE / "other.json").mock_config == HERE / "other.json"


def test_the_engine_refuses_to_start_when_a_case_names_a_missing_state(tmp_path: Path):
    path = write(tmp_path, one_case({"Record The Event": "R"}, {"R": RECORDED}))

    with pytest.raises(MockConfigError, match="'Record The Event'"), LocalEngine(mock_config=path):
        pass


# -- the local engine (CI) -----------------------------------------------------------------------
@pytest.fixture(scope="class")  # one stack for the class; torn down before Docker's
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(mock_config=MOCK_CONFIG, clock_speed=50) as local:
        yield local


class TestLocalEngine:
    @pytest.mark.parametrize("case", list(EXPECTED))
    def test_local_engine_runs_the_case_on_its_path(self, engine: LocalEngine, case: str):
        execution = engine.start(available_event(), case=case)

        assert_ran(case, execution.status, execution.error, execution.output, execution.history)

    def test_an_unknown_case_is_refused_naming_the_cases_the_file_defines(self, engine):
        with pytest.raises(ClientError, match="InvalidName") as refused:
            engine.start(available_event(), case="NoSuchCase")

        assert "HappyPath" in str(refused.value)

    def test_without_a_case_the_state_machine_runs_unmocked(self, engine: LocalEngine):
        execution = engine.start({"detail-type": "Nothing certrelay knows"})

        assert execution.states == ["Triage Event", "Report Rejected Event", "Event Rejected"]


# -- Step Functions Local in Docker --------------------------------------------------------------
def no_docker_engine() -> str | None:
    """Why the Docker-backed replay cannot run here, or None when a Docker engine answers."""
    if shutil.which("docker") is None:
        return "no Docker engine answers: the docker client is not installed"
    try:
        answer = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "no Docker engine answers: `docker info` did not return within 30 s"
    if answer.returncode != 0:
        why = (answer.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers (`docker info` exited {answer.returncode}: {why})"
    return None


def sfn_local_client() -> Any:
    import boto3

    return boto3.client(
        "stepfunctions",
        endpoint_url=SFN_LOCAL,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # Step Functions Local checks no credentials
    )


def answers(client: Any) -> bool:
    from botocore.exceptions import BotoCoreError

    try:
        client.list_state_machines()
    except (BotoCoreError, ClientError):
        return False
    return True


def deployed_definition() -> str:
    """The definition the stack deploys (DefinitionSubstitutions filled), from the local engine."""
    import boto3

    with LocalEngine(mock_config=None) as local:
        arn = local.stack.state_machines["CertificateLifecycleStateMachine"]  # type: ignore[union-attr]
        sfn = boto3.client("stepfunctions", region_name=local.fleet.region)
        described = sfn.describe_state_machine(stateMachineArn=arn)
    assert described["name"] == MACHINE
    return str(described["definition"])


@pytest.fixture(scope="class")
def machine() -> Iterator[tuple[Any, str]]:
    reason = no_docker_engine()
    if reason:
        pytest.skip(reason)
    definition = deployed_definition()  # before any client talks to Docker: moto is off again
    client = sfn_local_client()
    started = not answers(client)
    if started:
        up = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "up", "-d"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert up.returncode == 0, f"docker compose up failed: {up.stderr.strip()}"
    deadline = time.monotonic() + 120
    while not answers(client):
        assert time.monotonic() < deadline, f"Step Functions Local not answering on {SFN_LOCAL}"
        time.sleep(1)
    for existing in client.list_state_machines()["stateMachines"]:
        if existing["name"] == MACHINE:
            client.delete_state_machine(stateMachineArn=existing["stateMachineArn"])
    arn = client.create_state_machine(
        name=MACHINE,
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/certrelay-local",
    )["stateMachineArn"]
    try:
        yield client, arn
    finally:
        client.delete_state_machine(stateMachineArn=arn)
        if started:
            subprocess.run(
                ["docker", "compose", "-f", str(COMPOSE), "down"],
                capture_output=True,
                timeout=300,
                check=False,
            )


class TestStepFunctionsLocal:
    @pytest.mark.parametrize("case", list(EXPECTED))
    def test_docker_step_functions_local_runs_the_case_on_its_path(
        self, machine: tuple[Any, str], case: str
    ):
        client, arn = machine
        execution_arn = client.start_execution(
            stateMachineArn=f"{arn}#{case}",
            name=f"{case}-{uuid.uuid4().hex[:8]}",
            input=json.dumps(available_event()),
        )["executionArn"]
        deadline = time.monotonic() + 120
        while (described := client.describe_execution(executionArn=execution_arn))[
            "status"
        ] == "RUNNING":
            assert time.monotonic() < deadline, f"{case} still RUNNING after 120 s"
            time.sleep(0.5)
        history = [
            event
            for page in client.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn
            )
            for event in page["events"]
        ]

        output = json.loads(described.get("output") or "null")
        assert_ran(case, described["status"], described.get("error"), output, history)
