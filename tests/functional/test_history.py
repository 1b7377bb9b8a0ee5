"""`certrelay history`: the console's view of an execution, from a kept local run or from AWS."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from certrelay.cli import kept_runs, render
from certrelay.console import history
from certrelay.local.engine import LocalEngine
from certrelay.local.human import send_and_decide
from certrelay.local.results import Execution
from tests.functional.cli_helpers import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
RED = "\x1b[31m"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
TINY_MACHINE = {
    "Comment": "One task that fails twice (retried once, then caught), then a Fail.",
    "StartAt": "Read Missing Item",
    "States": {
        "Read Missing Item": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": "missing", "Key": {"pk": {"S": "x"}}},
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Give Up"}],
            "Next": "Item Read",
        },
        "Item Read": {"Type": "Succeed"},
        "Give Up": {"Type": "Fail", "Error": "ItemMissing", "Cause": "the item is not there"},
    },
}


@dataclass
class Recorded:
    name: str
    arn: str
    status: str
    history: list[dict[str, Any]]


def event(number: int, kind: str, seconds: float, **fields: Any) -> dict[str, Any]:
    """One history event in GetExecutionHistory's shape."""
    stamp = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return {"id": number, "previousEventId": number - 1, "type": kind, "timestamp": stamp, **fields}


def task_history(*outcomes: str, caught: bool = False) -> list[dict[str, Any]]:
    """One Task state whose attempts end as `outcomes` ("failed" / "succeeded"), then exits."""
    events = [
        event(1, "ExecutionStarted", 0, executionStartedEventDetails={"input": "{}"}),
        event(2, "TaskStateEntered", 0, stateEnteredEventDetails={"name": "Call", "input": "{}"}),
    ]
    for outcome in outcomes:
        n = len(events) + 1
        events.append(event(n, "TaskScheduled", n, taskScheduledEventDetails={"parameters": "{}"}))
        if outcome == "failed":
            details = {"error": "Lambda.ServiceException", "cause": "try again"}
            events.append(event(n + 1, "TaskFailed", n + 1, taskFailedEventDetails=details))
        else:
            details = {"output": '{"ok":true}'}
            events.append(event(n + 1, "TaskSucceeded", n + 1, taskSucceededEventDetails=details))
    if outcomes[-1] == "succeeded" or caught:
        n = len(events) + 1
        exited = {"name": "Call", "output": '{"ok":true}'}
        events.append(event(n, "TaskStateExited", n, stateExitedEventDetails=exited))
    return events


def secret_history() -> list[dict[str, Any]]:
    """A history holding a task token three ways and a PEM block twice."""
    parameters = {
        "FunctionName": "approve",
        "TaskToken": TOKEN,
        "Payload": {"token": TOKEN, "nested": json.dumps({"taskToken": TOKEN})},
    }
    return [
        event(1, "ExecutionStarted", 0, executionStartedEventDetails={"input": "{}"}),
        event(
            2,
            "TaskStateEntered",
            0,
            stateEnteredEventDetails={"name": "Ask", "input": json.dumps({"key": PEM})},
        ),
        event(
            3,
            "TaskScheduled",
            1,
            taskScheduledEventDetails={"parameters": json.dumps(parameters)},
        ),
        event(4, "TaskFailed", 2, taskFailedEventDetails={"error": "Boom", "cause": f"got {PEM}"}),
        event(5, "ExecutionFailed", 2, executionFailedEventDetails={"error": "Boom"}),
    ]


@pytest.fixture(scope="module")
def renewal() -> Execution:
    """A real local run through both Maps and an approval wait (a task token in the history)."""
    event_json = json.loads((EVENTS / "available.json").read_text(encoding="utf-8"))
    with LocalEngine(clock_speed=50) as engine:
        sent = engine.certificate_event(event_json, "web-private")
        (execution,) = send_and_decide(engine, sent, "approve", reason="test").executions
    return execution


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where kept runs land when certrelay's state directory is tmp_path."""
    monkeypatch.setenv("CERTRELAY_STATE_DIR", str(tmp_path))
    return tmp_path / "executions"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs each failed state
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def finished_execution(sfn: Any, definition: dict[str, Any], *, expect: str) -> str:
    """Run `definition` in moto's interpreter to its end (with a deadline); its ARN."""
    role = boto3.client("iam").create_role(RoleName="machine", AssumeRolePolicyDocument="{}")
    machine = sfn.create_state_machine(
        name="machine", definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]
    arn: str = sfn.start_execution(stateMachineArn=machine, name="run-1", input='{"a": 1}')[
        "executionArn"
    ]
    deadline = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, sfn.get_execution_history(executionArn=arn)
        time.sleep(0.05)
    assert status == expect
    return arn


# -- steps on a real run ---------------------------------------------------------------------
def test_steps_are_the_states_entered_in_order_with_map_iterations_marked(renewal):
    steps = history.steps(renewal.history)

    assert [s.name for s in steps] == renewal.states
    assert all(s.exited is not None and s.seconds is not None and s.seconds >= 0 for s in steps)
    inner = [s for s in steps if s.depth == 1]
    assert {s.within for s in inner} == {"Notify Owners", "Distribute Certificate"}
    assert {s.iteration for s in inner if s.within == "Distribute Certificate"} == {0, 1, 2}
    assert [s.name for s in steps if s.depth == 0][-1] == "Renewal Distributed"
    assert {s.state_type for s in steps} >= {"Task", "Choice", "Map", "Succeed"}


def test_an_inner_state_belongs_to_its_own_iteration_even_when_iterations_interleave(renewal):
    steps = history.steps(renewal.history)

    inner = [s for s in steps if s.within == "Distribute Certificate" and s.output]
    assert {s.name for s in inner} >= {"Copy To Bucket", "Send Install Command"}
    for step in inner:  # item n is the profile's target web#(n+1); its result names it
        output = json.loads(step.output or "{}")
        if "target" in output and isinstance(output["target"], str):
            assert output["target"] == f"web#{step.iteration + 1}", step.name


def test_the_real_task_token_reaches_neither_the_view_nor_the_store(renewal, tmp_path):
    scheduled = [  # the approval's token and each server install's
        e
        for e in renewal.history
        if "waitForTaskToken" in e.get("taskScheduledEventDetails", {}).get("resource", "")
    ]
    tokens = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["token"]
        for e in scheduled
    ]
    assert len(tokens) == 3
    assert all(tokens)
    assert all(t in json.dumps(renewal.history, default=str) for t in tokens)  # so it can fail

    steps = history.steps(renewal.history)
    shown = history.render(renewal.name, renewal.status, steps, color=False)
    as_json = json.dumps(history.as_json(renewal.name, renewal.arn, renewal.status, steps))
    saved = kept_runs.save(renewal, tmp_path).read_text(encoding="utf-8")

    # the events table that `local run` and the demo print, however wide its column
    table = render.history_table(renewal, width=100_000)

    for text in (shown, as_json, saved, table):
        assert not [token for token in tokens if token in text]
    assert history.REDACTED in saved
    assert history.REDACTED in table


# -- redaction, retries, short, colors -------------------------------------------------------
def test_redact_masks_tokens_at_any_depth_and_pem_blocks_without_touching_the_original():
    original = secret_history()
    kept = json.dumps(original, default=str)

    redacted = json.dumps(history.redact(original), default=str)

    assert TOKEN not in redacted
    assert "BEGIN PRIVATE KEY" not in redacted
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in redacted
    assert json.dumps(original, default=str) == kept
    parameters = json.loads(history.redact(original)[2]["taskScheduledEventDetails"]["parameters"])
    assert parameters["FunctionName"] == "approve"
    assert parameters["Payload"]["token"] == history.REDACTED


# A token with no "token" in it: only the key says what it is.
OPAQUE = "AQCEAAAAKgAAAAMAAAAAAAAAAopaque"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"Payload": {"TaskToken": OPAQUE}}),  # plain key
        '{"Payload": {"\\u0074oken": "' + OPAQUE + '"}}',  # escaped key
        '{"to\\u212aen": "' + OPAQUE + '"}',  # KELVIN SIGN, escaped: lowers to "token"
        '{"TO\u212aEN.$": "' + OPAQUE + '"}',  # the same, unescaped, as a path key
        json.dumps({"outer": json.dumps({"inner": json.dumps({"token": OPAQUE})})}),  # JSON in JSON
        '{"key": "' + PEM.replace("\n", "\\n").replace("-", "\\u002d") + '"}',  # escaped PEM
        json.dumps({"note": "before " + PEM + " after"}),  # PEM inside JSON text
        "plain text " + PEM,  # PEM in plain text
    ],
)
def test_redaction_finds_tokens_and_pem_blocks_however_their_json_spells_them(text):
    (cleaned,) = history.redact([{"input": text}])

    assert OPAQUE not in cleaned["input"]
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in cleaned["input"]
    assert cleaned["input"] != text


def test_text_with_nothing_to_redact_comes_back_as_it_was():
    texts = [
        json.dumps({"Certificate": {"Arn": "arn:aws:acm:x", "Names": ["a", "b"]}}, indent=2),
        '{"broken": ',
        "tok en and BEGIN without dashes",
    ]

    assert history.redact([{"input": text} for text in texts]) == [{"input": t} for t in texts]


def test_neither_token_nor_pem_appears_in_the_rendered_view_or_the_saved_file(tmp_path):
    recorded = Recorded("secret-run", "arn:local", "FAILED", secret_history())

    steps = history.steps(recorded.history)
    shown = history.render(recorded.name, recorded.status, steps, color=True)
    saved = kept_runs.save(recorded, tmp_path).read_text(encoding="utf-8")

    for text in (shown, saved, json.dumps(history.as_json("n", "a", "FAILED", steps))):
        assert TOKEN not in text
        assert "PRIVATE KEY" not in text
    assert "Boom" in shown


@pytest.mark.parametrize(
    ("outcomes", "caught", "retries", "error"),
    [
        (("succeeded",), False, 0, None),
        (("failed", "failed", "succeeded"), False, 2, None),
        (("failed", "failed"), True, 1, "Lambda.ServiceException"),
        (("failed",), False, 0, "Lambda.ServiceException"),
    ],
)
def test_retries_count_failures_answered_by_another_attempt(outcomes, caught, retries, error):
    (step,) = history.steps(task_history(*outcomes, caught=caught))

    assert step.retries == retries
    assert step.error == error


def test_short_is_one_line_of_compact_json_cut_with_an_ellipsis():
    assert history.short(None) is None
    assert history.short('{\n  "a": [1,  2]\n}') == '{"a":[1,2]}'
    assert history.short("not\n json  at all") == "not json at all"
    cut = history.short(json.dumps({"k": "v" * 500}), limit=20)
    assert cut == json.dumps({"k": "v" * 500}, separators=(",", ":"))[:19] + "…"


def test_failures_are_red_only_when_color_is_asked_for():
    steps = history.steps(task_history("failed"))

    plain = history.render("run", "FAILED", steps, color=False)
    colored = history.render("run", "FAILED", steps, color=True)

    assert "\x1b[" not in plain
    assert "Lambda.ServiceException" in plain
    assert f"{RED}FAILED" in colored
    assert any(
        line.startswith(RED) and "Lambda.ServiceException" in line
        for line in (line.lstrip() for line in colored.splitlines())
    )


def test_a_successful_run_has_no_red_even_with_color():
    steps = history.steps(task_history("succeeded"))

    assert RED not in history.render("run", "SUCCEEDED", steps, color=True)


# -- the local store -------------------------------------------------------------------------
def test_latest_is_the_last_saved_and_only_the_newest_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(kept_runs, "KEEP", 3)
    for number in range(5):
        kept_runs.save(
            Recorded(f"run-{number}", "arn", "SUCCEEDED", task_history("succeeded")), tmp_path
        )

    assert [s.name for s in kept_runs.list_saved(tmp_path)] == ["run-4", "run-3", "run-2"]
    assert kept_runs.latest(tmp_path).name == "run-4"
    assert kept_runs.load("run-2", tmp_path).status == "SUCCEEDED"


def test_the_store_defaults_to_the_xdg_state_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("CERTRELAY_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))

    assert kept_runs.default_directory() == tmp_path / "certrelay" / "executions"


# -- the CLI ---------------------------------------------------------------------------------
def test_a_local_run_is_kept_and_history_shows_its_path(capsys, store):
    status, _, _ = run(
        capsys, "local", "run", str(EVENTS / "expired.json"), "--cert", "expired-imported"
    )
    assert status == 0

    status, out, err = run(capsys, "history")

    assert (status, err) == (0, "")
    assert "SUCCEEDED" in out
    assert "Triage Event → Record Event → Route Event?" in out
    assert "Owners Alerted" in out
    assert "\x1b[" not in out  # not a terminal: no colors
    (saved,) = kept_runs.list_saved(store)
    status, listed, _ = run(capsys, "history", "--list")
    assert saved.name in listed
    status, as_json, _ = run(capsys, "history", saved.name[:12], "--json")
    shown = json.loads(as_json)
    assert shown["name"] == saved.name
    assert shown["states"][-1] == "Owners Alerted"


def test_history_aws_reads_a_deployed_execution(capsys, aws):
    arn = finished_execution(aws, TINY_MACHINE, expect="FAILED")

    status, out, err = run(capsys, "history", "--aws", "--execution-arn", arn)

    assert status == 0, err
    assert "FAILED" in out
    assert "Read Missing Item → Give Up" in out
    assert "ItemMissing" in out
    assert "(1 retry)" in out
    status, as_json, _ = run(capsys, "history", "--aws", "--execution-arn", arn, "--json")
    steps = json.loads(as_json)["steps"]
    assert [(s["name"], s["retries"], s["error"]) for s in steps] == [
        ("Read Missing Item", 1, "DynamoDB.ResourceNotFoundException"),
        ("Give Up", 0, "ItemMissing"),
    ]


def test_history_aws_for_an_unknown_execution_is_one_line(capsys, aws):
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:nothing-here"

    status, _, err = run(capsys, "history", "--aws", "--execution-arn", arn)

    assert_one_line_error(status, err, "ExecutionDoesNotExist")


def test_history_aws_denied_is_one_line(capsys, aws, monkeypatch):
    @set_initial_no_auth_action_count(2)
    def denied() -> tuple[int, str, str]:
        iam = boto3.client("iam")
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # forget the fixture's credentials
        arn = "arn:aws:states:us-east-1:123456789012:execution:machine:run-1"
        return run(capsys, "history", "--aws", "--execution-arn", arn)

    status, _, err = denied()

    assert_one_line_error(status, err, "not authorized", "states:DescribeExecution")


def test_history_aws_without_credentials_is_one_line(capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no credentials cached by other tests
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:run-1"

    status, _, err = run(capsys, "history", "--aws", "--execution-arn", arn)

    assert_one_line_error(status, err, "no AWS credentials")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("history", "nothing"), "no saved execution named 'nothing'"),
        (("history", "run-"), "matches 2 executions"),
        (("history", "--aws"), "--aws needs --execution-arn"),
        (("history", "--aws", "--execution-arn", "arn:aws:s3:::bucket"), "not a Step Functions"),
        (("history", "--execution-arn", "arn:x"), "add --aws"),
    ],
)
def test_bad_history_requests_are_one_line(capsys, store, args, fragment):
    for name in ("run-a", "run-b"):
        kept_runs.save(Recorded(name, "arn", "SUCCEEDED", task_history("succeeded")), store)

    status, _, err = run(capsys, *args)

    assert_one_line_error(status, err, fragment)


def test_history_with_nothing_saved_says_so_in_one_line(capsys, store):
    status, _, err = run(capsys, "history")

    assert_one_line_error(status, err, "no saved executions")


def test_parallel_branches_are_nested_under_their_parallel_state(aws):
    machine = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                    {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": True}}},
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    arn = finished_execution(aws, machine, expect="SUCCEEDED")

    steps = history.steps(aws.get_execution_history(executionArn=arn)["events"])

    assert [(s.name, s.depth, s.within) for s in steps if s.depth == 0] == [
        ("Both", 0, None),
        ("Done", 0, None),
    ]
    assert sorted((s.name, s.depth, s.within) for s in steps if s.depth) == [
        ("Left", 1, "Both"),
        ("Right", 1, "Both"),
    ]
    assert all(s.exited is not None for s in steps)
