"""The local engine fails what AWS fails: Step Functions' history and payload quotas, and
EventBridge's PutEvents size (moto 5.2.5 enforces none of them, or not as AWS does).

One engine serves the module; each test deploys its own small state machine next to the stack's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from certrelay.local import moto_fixes
from certrelay.local.engine import LocalEngine
from certrelay.local.errors import EventRefused

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ROLE = "arn:aws:iam::123456789012:role/quota-tests"
LIMIT = moto_fixes.PAYLOAD_LIMIT_BYTES
DATA_LIMIT = "States.DataLimitExceeded"


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    with LocalEngine() as local:
        yield local


def run(engine: LocalEngine, definition: dict[str, Any], execution_input: str) -> dict[str, Any]:
    """Deploy `definition`, start it on `execution_input`, wait: describe + full history."""
    sfn = engine._sfn
    machine = sfn.create_state_machine(
        name=f"quota-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="run", input=execution_input)[
        "executionArn"
    ]
    deadline = time.monotonic() + 60
    described = sfn.describe_execution(executionArn=arn)
    while described["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still running: {engine.history(arn)[-3:]}"
        time.sleep(0.01)
        described = sfn.describe_execution(executionArn=arn)
    return {**described, "history": engine.history(arn)}


def entered(ran: dict[str, Any]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in ran["history"]
        if "stateEnteredEventDetails" in e
    ]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def sized(total: int) -> str:
    """A compact JSON input {"s": "xx…"} of exactly `total` bytes."""
    return compact({"s": "x" * (total - len(compact({"s": ""})))})


DOUBLE = {  # the state's input, twice: over the quota for any input of more than 128 KiB
    "StartAt": "Double",
    "States": {"Double": {"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}, "End": True}},
}


def wrapped_in_parallel(catch: list[str]) -> dict[str, Any]:
    return {
        "StartAt": "Branch",
        "States": {
            "Branch": {
                "Type": "Parallel",
                "Branches": [DOUBLE],
                "Catch": [{"ErrorEquals": catch, "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "Result": "caught", "End": True},
        },
    }


# -- the 25,000-event history ------------------------------------------------------------------
SPIN = {"StartAt": "Spin", "States": {"Spin": {"Type": "Pass", "Next": "Spin"}}}


def test_an_execution_that_never_ends_fails_when_its_history_reaches_the_quota(
    engine: LocalEngine,
) -> None:
    # GIVEN a loop with no way out, and the quota lowered from AWS's 25,000 to keep it quick
    with mock.patch.object(moto_fixes, "HISTORY_EVENT_LIMIT", 200):
        # WHEN it runs
        ran = run(engine, SPIN, "{}")
    # THEN it fails as AWS fails it: event 200 is the ExecutionFailed, 199 the last real one
    history = ran["history"]
    assert ran["status"] == "FAILED"
    assert ran["error"] == "States.Runtime"
    assert ran["cause"] == "The execution reached the maximum number of history events (200)."
    assert [event["id"] for event in history] == list(range(1, 201))
    assert history[-1]["type"] == "ExecutionFailed"
    assert history[-1]["executionFailedEventDetails"]["error"] == "States.Runtime"
    assert history[-2]["type"] == "PassStateExited"


def test_concurrent_map_iterations_cannot_write_past_the_history_quota(
    engine: LocalEngine,
) -> None:
    # GIVEN a Map whose 40 iterations, run together, would write about 250 events
    fan_out = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "One",
                    "States": {
                        "One": {"Type": "Pass", "Next": "Two"},
                        "Two": {"Type": "Pass", "End": True},
                    },
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    # WHEN it runs under a quota of 100 events
    with mock.patch.object(moto_fixes, "HISTORY_EVENT_LIMIT", 100):
        ran = run(engine, fan_out, compact({"items": list(range(40))}))
    # THEN no Catch sees it, and nothing is written after the ExecutionFailed that is event 100
    assert (ran["status"], ran["error"]) == ("FAILED", "States.Runtime")
    assert [event["id"] for event in ran["history"]] == list(range(1, 101))
    assert ran["history"][-1]["type"] == "ExecutionFailed"


def test_an_execution_under_the_history_quota_runs_to_its_end(engine: LocalEngine) -> None:
    # GIVEN a Map that writes about 60 events, WHEN it runs under a quota of 100
    fan_out = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "One",
                    "States": {"One": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    with mock.patch.object(moto_fixes, "HISTORY_EVENT_LIMIT", 100):
        ran = run(engine, fan_out, compact({"items": list(range(10))}))
    # THEN it succeeds
    assert ran["status"] == "SUCCEEDED", ran.get("cause")
    assert len(ran["history"]) < 100


# -- 256 KiB of payload --------------------------------------------------------------------------
def test_a_state_input_over_the_payload_quota_fails_the_execution_past_a_catch_all(
    engine: LocalEngine,
) -> None:
    # GIVEN a branch whose Parameters double a 140,000-byte input, under a Catch on States.ALL
    # WHEN it runs
    ran = run(engine, wrapped_in_parallel(["States.ALL"]), sized(140_000))
    # THEN States.ALL does not catch States.DataLimitExceeded (a terminal error on AWS)
    assert (ran["status"], ran["error"]) == ("FAILED", DATA_LIMIT)
    assert "'Double'" in ran["cause"]
    assert "Caught" not in entered(ran)


def test_a_catch_that_names_data_limit_exceeded_catches_it(engine: LocalEngine) -> None:
    # GIVEN the same branch under a Catch naming States.DataLimitExceeded, WHEN it runs
    ran = run(engine, wrapped_in_parallel([DATA_LIMIT]), sized(140_000))
    # THEN the Catch takes it
    assert ran["status"] == "SUCCEEDED", ran.get("cause")
    assert entered(ran)[-1] == "Caught"


def test_a_map_iteration_over_the_quota_fails_the_map_with_the_quota_error(
    engine: LocalEngine,
) -> None:
    # GIVEN a Map whose one iteration doubles a 140,000-byte item (moto made this a
    # States.Runtime "Custom Error Names MUST NOT begin with the prefix 'States.'")
    over = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Double",
                    "States": {
                        "Double": {
                            "Type": "Pass",
                            "Parameters": {"a.$": "$", "b.$": "$"},
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
    # WHEN it runs
    ran = run(engine, over, compact({"items": ["x" * 140_000]}))
    # THEN the Map fails with the quota's own error
    assert (ran["status"], ran["error"]) == ("FAILED", DATA_LIMIT)
    assert "MapStateFailed" in [event["type"] for event in ran["history"]]


def test_a_task_whose_parameters_pass_the_quota_fails_before_calling_anything(
    engine: LocalEngine,
) -> None:
    # GIVEN a task whose Parameters would send 280,000 bytes to S3
    task = {
        "StartAt": "Put",
        "States": {
            "Put": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets",
                "Parameters": {"a.$": "$.s", "b.$": "$.s"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    # WHEN it runs
    ran = run(engine, task, sized(140_000))
    # THEN the task fails with the quota error, nothing scheduled, no Catch-all taking it
    types = [event["type"] for event in ran["history"]]
    assert (ran["status"], ran["error"]) == ("FAILED", DATA_LIMIT)
    assert "TaskScheduled" not in types
    assert "TaskFailed" in types


def test_a_task_result_over_the_quota_fails_the_execution(engine: LocalEngine) -> None:
    # GIVEN a bucket listing of 300 keys of 1,000 bytes, read by a task under a Catch-all
    import boto3

    s3 = boto3.client("s3", region_name=engine.fleet.region)
    s3.create_bucket(Bucket="quota-tests")
    for n in range(300):
        s3.put_object(Bucket="quota-tests", Key=f"{n:03d}" + "k" * 997, Body=b"")
    task = {
        "StartAt": "List",
        "States": {
            "List": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listObjectsV2",
                "Parameters": {"Bucket": "quota-tests"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    # WHEN it runs
    ran = run(engine, task, "{}")
    # THEN its result is refused with the quota error, which the Catch-all does not take
    assert (ran["status"], ran.get("error")) == ("FAILED", DATA_LIMIT), ran.get("cause")
    assert "aws-sdk:s3" in ran["cause"]
    assert "Caught" not in entered(ran)


def test_a_payload_of_exactly_the_quota_passes(engine: LocalEngine) -> None:
    # GIVEN an input of exactly 262,144 bytes (moto refused it: it counted "< 262,144")
    # WHEN a state passes it on
    ran = run(
        engine, {"StartAt": "On", "States": {"On": {"Type": "Pass", "End": True}}}, sized(LIMIT)
    )
    # THEN the execution succeeds with it
    assert ran["status"] == "SUCCEEDED", ran.get("cause")
    assert len(compact(json.loads(ran["output"])).encode()) == LIMIT


def test_start_execution_refuses_an_input_over_the_quota(engine: LocalEngine) -> None:
    # GIVEN an input one byte over 262,144, WHEN an execution is started on it
    with pytest.raises(ClientError) as refused:
        run(engine, SPIN, sized(LIMIT + 1))
    # THEN StartExecution refuses it, as AWS does, and nothing runs
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "'input'" in error["Message"]
    assert "262144" in error["Message"]


# -- EventBridge PutEvents -------------------------------------------------------------------------
def acm_event(engine: LocalEngine, padding: int) -> dict[str, Any]:
    """An Expired event for a fleet certificate, its detail padded with `padding` bytes."""
    event = json.loads((EVENTS / "expired.json").read_text(encoding="utf-8"))
    event = engine.certificate_event(event, next(iter(engine.certificates)))
    event["detail"]["Padding"] = "x" * padding
    return event


def executions_of_the_stack(engine: LocalEngine) -> int:
    (machine,) = engine._require_stack().state_machines.values()
    return len(engine._sfn.list_executions(stateMachineArn=machine)["executions"])


def test_an_event_over_the_execution_input_quota_is_refused_and_starts_nothing(
    engine: LocalEngine,
) -> None:
    # GIVEN an ACM event of about 300 KB that the stack's rule matches
    before = executions_of_the_stack(engine)
    # WHEN it is sent
    with pytest.raises(EventRefused) as refused:
        engine.put_event(acm_event(engine, 300_000))
    # THEN the engine says Step Functions refuses it, in one line, and no execution started
    assert "Step Functions refuses" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert executions_of_the_stack(engine) == before


def test_an_event_over_eventbridges_entry_limit_is_refused_by_eventbridge(
    engine: LocalEngine,
) -> None:
    # GIVEN an event whose PutEvents entry would be more than 1 MiB, WHEN it is sent
    with pytest.raises(EventRefused) as refused:
        engine.put_event(acm_event(engine, moto_fixes.EVENTBRIDGE_REQUEST_LIMIT_BYTES))
    # THEN EventBridge is the one refusing it
    assert str(refused.value).startswith("EventBridge refuses this event")


def entry(detail_bytes: int) -> dict[str, Any]:
    detail = compact({"DaysToExpiry": 30, "Padding": ""})
    padding = "x" * (detail_bytes - len(detail))
    return {
        "Source": "certrelay.sweep",
        "DetailType": "ACM Certificate Approaching Expiration",
        "Detail": compact({"DaysToExpiry": 30, "Padding": padding}),
    }


def test_put_events_refuses_a_request_over_eventbridges_limit(engine: LocalEngine) -> None:
    import boto3

    events = boto3.client("events", region_name=engine.fleet.region)
    # GIVEN two entries that together are one byte over 1 MiB
    half = moto_fixes.EVENTBRIDGE_REQUEST_LIMIT_BYTES // 2
    fixed = moto_fixes.put_events_entry_size({**entry(0), "Detail": ""})
    entries = [entry(half - fixed), entry(half - fixed + 1)]
    assert sum(map(moto_fixes.put_events_entry_size, entries)) == half * 2 + 1
    # WHEN they are put on the bus
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=entries)
    # THEN the whole request is refused, as EventBridge does, and nothing reached the bus
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "Total size of the entries in the request is over the limit."
    )
    assert not [e for e in engine.bus if len(json.dumps(e)) > half]


def test_a_bus_event_too_large_for_step_functions_fails_the_target_not_the_put(
    engine: LocalEngine,
) -> None:
    import boto3

    events = boto3.client("events", region_name=engine.fleet.region)
    before = executions_of_the_stack(engine)
    # GIVEN a sweep event of 300,000 bytes that the stack's rule matches
    # WHEN it is put on the bus
    answer = events.put_events(Entries=[entry(300_000)])
    # THEN EventBridge takes it, the rule's target fails to start, and nothing runs
    assert answer["FailedEntryCount"] == 0
    assert engine.failed_invocations
    machine, why = engine.failed_invocations[-1]
    assert machine in engine._require_stack().state_machines.values()
    assert "ValidationException" in why
    assert executions_of_the_stack(engine) == before
