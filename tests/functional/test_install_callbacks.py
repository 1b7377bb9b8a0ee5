"""The install task's token: kept until SSM answers, answered exactly once, never handed out.

GIVEN a stored token for an install command (DynamoDB in moto; SSM and Step Functions as small
fakes that record what they are asked), WHEN SSM's status-change event arrives (once, twice,
before the token was stored, before the command finished), THEN SendTaskSuccess is called at
most once, with the target's trimmed result and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from certrelay.install_callbacks import cancel, command_of, complete, store_token
from certrelay.workflow import DETAIL_LIMIT, TargetResult, check_result

TABLE = "install-tokens"
TOKEN = "AQCEAAAAKgAAAAMAAAAA-secret-task-token"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:m:run-1"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeSsm:
    """ListCommandInvocations with Details, as check_install reads it; CancelCommand recorded."""

    def __init__(self, statuses: dict[str, str], lines: dict[str, str] | None = None) -> None:
        self.statuses, self.lines, self.cancelled = statuses, lines or {}, []

    def get_paginator(self, _: str) -> Any:
        ssm = self

        class Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return [{"CommandInvocations": ssm.invocations()}]

        return Pages()

    def invocations(self) -> list[dict[str, Any]]:
        return [
            {
                "InstanceId": instance,
                "Status": status,
                "CommandPlugins": [
                    {"Name": "installCertificate", "Output": self.lines.get(instance, "")}
                ],
            }
            for instance, status in self.statuses.items()
        ]

    def cancel_command(self, CommandId: str) -> None:
        self.cancelled.append(CommandId)


class FakeSfn:
    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, *, taskToken: str, output: str) -> None:
        self.answers.append((taskToken, json.loads(output)))


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def stored(ddb: Any, command_id: str = "cmd-1", instances: tuple[str, ...] = ("i-1",)) -> None:
    store_token(
        ddb,
        TABLE,
        command_id=command_id,
        token=TOKEN,
        execution=EXECUTION,
        target_id="web#2",
        instances=list(instances),
        now=NOW,
    )


def items(ddb: Any) -> list[dict[str, Any]]:
    return list(ddb.scan(TableName=TABLE)["Items"])


def test_a_finished_install_answers_its_task_once_with_the_trimmed_result(ddb: Any) -> None:
    stored(ddb)
    ssm, sfn = FakeSsm({"i-1": "Success"}), FakeSfn()

    first = complete(ddb, ssm, sfn, TABLE, "cmd-1")
    again = complete(ddb, ssm, sfn, TABLE, "cmd-1")  # EventBridge delivers at least once

    assert first == {"command_id": "cmd-1", "answered": True, "status": "DISTRIBUTED"}
    assert again["answered"] is False
    ((token, answer),) = sfn.answers
    assert token == TOKEN
    assert check_result("Send Install Command", answer, callback=True).model_dump() == answer
    assert TargetResult.model_validate(answer).target == "web#2"
    assert answer["status"] == "DISTRIBUTED"
    assert TOKEN not in json.dumps([first, again])
    assert items(ddb) == [], "both items are deleted once answered"


def test_an_event_before_the_token_was_stored_does_nothing(ddb: Any) -> None:
    sfn = FakeSfn()
    answer = complete(ddb, FakeSsm({"i-1": "Undeliverable"}), sfn, TABLE, "cmd-1")
    assert answer == {"command_id": "cmd-1", "answered": False, "why": "no waiting task"}
    assert sfn.answers == []


def test_a_command_still_running_keeps_its_token(ddb: Any) -> None:
    stored(ddb, instances=("i-1", "i-2"))
    sfn = FakeSfn()
    answer = complete(ddb, FakeSsm({"i-1": "Success", "i-2": "InProgress"}), sfn, TABLE, "cmd-1")
    assert answer["why"] == "still running"
    assert sfn.answers == []
    assert len(items(ddb)) == 2


def test_many_failed_hosts_are_cut_to_five_short_reasons_and_a_count(ddb: Any) -> None:
    hosts = {f"i-{n}": "Failed" for n in range(40)}
    stored(ddb, instances=tuple(hosts))
    lines = {host: "certrelay: ROLLED BACK: " + "x" * 500 for host in hosts}
    sfn = FakeSfn()
    complete(ddb, FakeSsm(hosts, lines), sfn, TABLE, "cmd-1")
    ((_, answer),) = sfn.answers
    assert answer["status"] == "FAILED"
    assert answer["detail"].startswith("i-0 Failed certrelay: ROLLED BACK")
    assert answer["detail"].endswith(" (+35 more)")
    assert "i-5 " not in answer["detail"], "five hosts at most"
    assert len(answer["detail"]) <= DETAIL_LIMIT


def test_cancel_at_the_deadline_cancels_the_command_and_forgets_the_token(ddb: Any) -> None:
    stored(ddb)
    ssm = FakeSsm({"i-1": "InProgress"})
    assert cancel(ddb, ssm, TABLE, execution=EXECUTION, target_id="web#2") == {
        "command_id": "cmd-1",
        "status": "CANCELLED",
    }
    assert ssm.cancelled == ["cmd-1"]
    assert items(ddb) == []
    sfn = FakeSfn()
    complete(ddb, FakeSsm({"i-1": "Cancelled"}), sfn, TABLE, "cmd-1")
    assert sfn.answers == [], "the task has timed out; nothing answers it any more"


def test_the_stored_items_expire_by_ttl() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        stored(client)
        expiries = {int(i["expires_at"]["N"]) for i in items(client)}
    assert expiries == {int(NOW.timestamp()) + 1500 + 3600}


@pytest.mark.parametrize("event", [{}, {"detail": {}}, {"detail": {"command-id": ""}}])
def test_an_event_without_a_command_id_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="command-id"):
        command_of(event)
