"""The distribute function acts only on what the deployed profile holds, whoever invokes it.

GIVEN a renewal of web-private was exported (its bundle is in the stack's bucket), WHEN the
distribute function is invoked directly with a tampered item (a target id the profile does
not have, another profile, a kind the target is not, a stale serial, a bucket or paths of the
caller's choosing), THEN it refuses with the typed error, and nothing is copied or installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from certrelay.local.engine import LocalEngine
from tests.statemachine.conftest import assert_no_secrets
from tests.statemachine.test_distribution import WEB, bundle_of, renew_and_approve

ATTACKER_BUCKET = "attacker-bucket"


@pytest.fixture(scope="module")
def renewed() -> Iterator[tuple[LocalEngine, dict[str, Any]]]:
    """One engine for the module (a renewal takes seconds): web-private renewed, exported and
    distributed, and the untampered item of its bucket target."""
    with LocalEngine(clock_speed=50) as local:
        execution = renew_and_approve(local)
        assert execution.status == "SUCCEEDED"
        s3 = boto3.client("s3", region_name=local.fleet.region)
        s3.create_bucket(Bucket=ATTACKER_BUCKET)
        item = {
            "certificate_arn": local.certificates[WEB].arn,
            "serial": bundle_of(execution)["serial"],
            "profile": "web",
            "target": {"id": "web#1", "kind": "s3"},
        }
        yield local, item
        assert_no_secrets(local, local.executions)


@pytest.fixture
def engine(renewed: tuple[LocalEngine, dict[str, Any]]) -> LocalEngine:
    return renewed[0]


@pytest.fixture
def exported(renewed: tuple[LocalEngine, dict[str, Any]]) -> dict[str, Any]:
    return dict(renewed[1])


def invoke(engine: LocalEngine, payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Invoke the deployed distribute function as anyone with lambda:InvokeFunction could."""
    name = engine.stack.ref("DistributeFunction")  # type: ignore[union-attr]
    answer = boto3.client("lambda", region_name=engine.fleet.region).invoke(
        FunctionName=name, Payload=json.dumps(payload).encode()
    )
    return answer.get("FunctionError"), json.loads(answer["Payload"].read())


def nothing_done(engine: LocalEngine, runs_before: int, commands_before: int) -> None:
    s3 = boto3.client("s3", region_name=engine.fleet.region)
    assert s3.list_objects_v2(Bucket=ATTACKER_BUCKET).get("KeyCount", 0) == 0
    ssm = boto3.client("ssm", region_name=engine.fleet.region)
    assert len(ssm.list_commands()["Commands"]) == commands_before, "a command was sent"
    assert len(engine.servers.runs) == runs_before, "a host ran the install"


TAMPERED = {
    "a target id the profile does not hold": (
        {"target": {"id": "web#9", "kind": "s3"}},
        "TargetNotInProfile",
    ),
    "a target of another profile": (
        {"target": {"id": "api#1", "kind": "s3"}},
        "TargetNotInProfile",
    ),
    "another profile than ACM's tag": ({"profile": "api"}, "ProfileMismatch"),
    "a server target claimed as a bucket": (
        {"target": {"id": "web#2", "kind": "s3"}},
        "TargetNotInProfile",
    ),
    "a serial that is not ACM's current one": ({"serial": "0abc"}, "BundleNotFound"),
    "a bucket of the caller's choosing": (
        {"bucket": ATTACKER_BUCKET},
        "TargetNotInProfile",
    ),
    "a target given by value": (
        {"target": {"id": "web#1", "kind": "s3", "bucket": ATTACKER_BUCKET}},
        "TargetNotInProfile",
    ),
}


@pytest.mark.parametrize("case", TAMPERED, ids=list(TAMPERED))
def test_a_tampered_copy_is_refused_with_a_typed_error_and_nothing_is_copied(
    engine: LocalEngine, exported: dict[str, Any], case: str
):
    change, error = TAMPERED[case]
    commands = len(boto3.client("ssm", region_name=engine.fleet.region).list_commands()["Commands"])
    runs = len(engine.servers.runs)

    failed, body = invoke(
        engine, {"state": "Copy To Bucket", "execution": "x", "item": {**exported, **change}}
    )

    assert failed == "Unhandled"
    assert body["errorType"] == error, body
    nothing_done(engine, runs, commands)


def test_a_tampered_install_is_refused_and_no_command_is_sent(
    engine: LocalEngine, exported: dict[str, Any]
):
    commands = len(boto3.client("ssm", region_name=engine.fleet.region).list_commands()["Commands"])
    runs = len(engine.servers.runs)
    item = {**exported, "target": {"id": "web#7", "kind": "server"}}

    failed, body = invoke(
        engine, {"state": "Send Install Command", "execution": "x", "token": "t", "item": item}
    )

    assert (failed, body["errorType"]) == ("Unhandled", "TargetNotInProfile")
    nothing_done(engine, runs, commands)


def test_a_bucket_target_sent_the_install_command_is_refused(
    engine: LocalEngine, exported: dict[str, Any]
):
    commands = len(boto3.client("ssm", region_name=engine.fleet.region).list_commands()["Commands"])
    runs = len(engine.servers.runs)

    failed, body = invoke(
        engine, {"state": "Send Install Command", "execution": "x", "token": "t", "item": exported}
    )

    assert (failed, body["errorType"]) == ("Unhandled", "TargetNotInProfile")
    nothing_done(engine, runs, commands)


def test_the_old_instruction_shaped_payload_is_refused(
    engine: LocalEngine, exported: dict[str, Any]
):
    """The payload the function used to act on: a target's settings and a bundle's location."""
    commands = len(boto3.client("ssm", region_name=engine.fleet.region).list_commands()["Commands"])
    runs = len(engine.servers.runs)
    old = {
        "state": "Send Install Command",
        "name": "web.internal.example.com",
        "target": {
            "kind": "server",
            "instances": ["i-0a1b2c3d4e5f60001"],
            "cert_path": "/etc/ssl/web/cert.pem",
            "key_path": "/etc/ssl/web/key.pem",
            "chain_path": "/etc/ssl/web/chain.pem",
            "reload": "touch /tmp/owned",
        },
        "bundle": {"bucket": ATTACKER_BUCKET, "serial": exported["serial"]},
    }

    failed, body = invoke(engine, old)

    assert (failed, body["errorType"]) == ("Unhandled", "TargetNotInProfile")
    nothing_done(engine, runs, commands)


def test_the_untampered_item_is_copied(engine: LocalEngine, exported: dict[str, Any]):
    """The same call with the item as the workflow builds it works: the refusals above are
    about the tampering, not about invoking the function directly."""
    failed, body = invoke(engine, {"state": "Copy To Bucket", "execution": "x", "item": exported})

    assert failed is None
    assert (body["target"], body["status"]) == ("web#1", "DISTRIBUTED")


def test_a_payload_that_names_no_state_of_the_function_is_refused(
    engine: LocalEngine, exported: dict[str, Any]
):
    """The function routes on the state's name: the old `action` field alone picks nothing."""
    commands = len(boto3.client("ssm", region_name=engine.fleet.region).list_commands()["Commands"])
    runs = len(engine.servers.runs)

    failed, body = invoke(engine, {"action": "copy", "execution": "x", "item": exported})

    assert (failed, body["errorType"]) == ("Unhandled", "UnknownState")
    nothing_done(engine, runs, commands)
