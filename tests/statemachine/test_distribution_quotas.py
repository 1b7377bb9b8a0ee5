"""However many servers a profile has, one execution stays far below Step Functions' quotas.

GIVEN a profile of 50 servers none of which is reachable (their instances are not in the
fleet, so SSM reports them Undeliverable), WHEN a renewal is approved, THEN the run ends in
Distribution Incomplete with a finding, its history is a few hundred events (AWS's quota is
25,000) and no state's input or output comes near 256 KB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from certrelay.cli.report import distributions
from certrelay.local.engine import LocalEngine
from certrelay.local.fleet.seed import load_fleet
from certrelay.workflow import Workflow
from tests.statemachine.conftest import SharedEngine
from tests.statemachine.test_distribution import renew_and_approve

SERVERS = 50
HISTORY_QUOTA = 25_000
PAYLOAD_QUOTA = 256 * 1024
# Each server target costs about 10 events (iteration started/succeeded, the kind Choice, the
# task's entered/scheduled/started/submitted/succeeded/exited); the rest of the run about 150.
EVENTS_PER_TARGET, EVENTS_AROUND = 12, 200
BOUND = EVENTS_AROUND + SERVERS * EVENTS_PER_TARGET  # 800, 3% of the quota


def unreachable_targets(count: int) -> list[dict]:
    return [
        {
            "kind": "server",
            "instances": [f"i-{0x0B00000000000000 + n:017x}"],
            "cert_path": "/etc/ssl/web/cert.pem",
            "key_path": "/etc/ssl/web/key.pem",
            "chain_path": "/etc/ssl/web/chain.pem",
            "reload": "nginx",
            "verify_port": 443,
        }
        for n in range(1, count + 1)
    ]


@pytest.fixture(scope="module")
def shared_engine() -> Iterator[SharedEngine]:
    """The module's engine (conftest's `engine` resets it for each test that takes it): web's
    profile distributes to fifty servers no host answers for."""
    shared = SharedEngine(_fifty_unreachable_servers)
    yield shared
    shared.stop()


def _fifty_unreachable_servers() -> LocalEngine:
    fleet = load_fleet()
    assert fleet.profiles is not None
    fleet.profiles["web"]["targets"] = unreachable_targets(SERVERS)
    return LocalEngine(fleet=fleet, clock_speed=50)


@pytest.fixture
def fifty_unreachable_servers(engine: LocalEngine) -> LocalEngine:
    """conftest's `engine` (its teardown scans for secrets), with this module's fleet."""
    return engine


def payload_sizes(history: list[dict]) -> list[tuple[int, str]]:
    """(bytes, state) of every state's input and output in the history."""
    sizes = []
    for event in history:
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            details = event.get(key)
            if details:
                text = details.get("input") or details.get("output") or ""
                sizes.append((len(text.encode()), details["name"]))
    return sizes


def test_fifty_unreachable_servers_end_incomplete_with_a_finding_far_below_the_quotas(
    fifty_unreachable_servers: LocalEngine,
):
    engine = fifty_unreachable_servers
    execution = renew_and_approve(engine)

    assert execution.status == "FAILED"
    assert execution.error == "DistributionIncomplete"
    assert execution.states[-3:] == [
        "Raise Distribution Finding",
        "Forget Incomplete Event",
        "Distribution Incomplete",
    ]
    (finding,) = engine.findings()
    assert (finding["severity"], finding["status"]) == ("HIGH", "ACTIVE")
    results = distributions(execution)
    assert len(results) == SERVERS
    assert {r["status"] for r in results} == {"FAILED"}
    assert {r["target"] for r in results} == {f"web#{n}" for n in range(1, SERVERS + 1)}
    assert engine.servers.runs == [], "no host ran the install"
    assert "Undeliverable" in (execution.cause or "")
    assert len(execution.history) < BOUND, f"{len(execution.history)} history events"
    largest = max(payload_sizes(execution.history))
    assert largest[0] < PAYLOAD_QUOTA / 8, f"{largest[1]} carries {largest[0]} bytes"
    assert "Wait For Install" not in execution.states, "no poll loop"
    after_map = next(
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in execution.history
        if e["type"] == "MapStateExited"
        and e["stateExitedEventDetails"]["name"] == "Distribute Certificate"
    )
    Workflow.model_validate(after_map)  # the payload's model holds for the real payload
    assert "Send Install Command" in execution.states


def test_no_task_token_reaches_a_state_output_or_a_log(fifty_unreachable_servers: LocalEngine):
    engine = fifty_unreachable_servers
    execution = renew_and_approve(engine)

    tokens = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["token"]
        for e in execution.history
        if e["type"] == "TaskScheduled"
        and '"token"' in e["taskScheduledEventDetails"].get("parameters", "")
    ]
    assert len(tokens) >= SERVERS  # one per install, handed to the function as AWS does
    outputs = json.dumps(
        [
            e.get("stateExitedEventDetails") or e.get("taskSucceededEventDetails") or {}
            for e in execution.history
        ]
    )
    logs = "\n".join(engine.runtime.log_lines)
    bus = json.dumps(engine.bus)
    for token in tokens:
        assert token not in outputs
        assert token not in logs
        assert token not in bus


@pytest.fixture
def a_server_that_never_answers() -> Iterator[LocalEngine]:
    """A target selected by a tag no instance has: SSM never finishes, no event ever comes.

    The clock runs 1,500x, so Send Install Command's 25-minute deadline passes in a second.
    """
    fleet = load_fleet()
    assert fleet.profiles is not None
    (target, *_) = unreachable_targets(1)
    target.pop("instances")
    target["tags"] = {"certrelay:role": "nowhere"}
    fleet.profiles["web"]["targets"] = [target]
    with LocalEngine(fleet=fleet, clock_speed=1500) as engine:
        yield engine


def test_an_install_that_never_answers_is_cancelled_at_its_deadline_and_reported_timed_out(
    a_server_that_never_answers: LocalEngine,
):
    engine = a_server_that_never_answers
    execution = renew_and_approve(engine)

    assert execution.status == "FAILED"
    assert execution.error == "DistributionIncomplete"
    position = execution.states.index("Send Install Command")
    assert execution.states[position : position + 2] == ["Send Install Command", "Cancel Install"]
    assert distributions(execution) == [{"target": "web#1", "status": "TIMED_OUT"}]
    assert "cancelled" in (execution.cause or "")
    (finding,) = engine.findings()
    assert finding["status"] == "ACTIVE"
    import boto3

    ssm = boto3.client("ssm", region_name=engine.fleet.region)
    (command,) = ssm.list_commands()["Commands"]
    assert command["Status"] == "Cancelled", "no host installs after the report"
    assert "Install Timed Out" not in execution.states, "the cancel itself worked"
